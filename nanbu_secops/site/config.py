"""A unit's site as its inventory ``group_vars`` state it under ``unit.site``: ``home`` (URL),
``columns`` ([{name, url, kind: dynamic|other}]) and ``allowed_external`` (domain suffixes allowed
beyond gov.cn for this unit). Every mistake is an InputError naming the file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nanbu_secops.checks.site import Column
from nanbu_secops.errors import InputError
from nanbu_secops.fleet.inventory import load_inventory
from nanbu_secops.yamlfile import read_with_lines

KINDS = ("dynamic", "other")


@dataclass(frozen=True)
class SiteConfig:
    unit: str
    home: str
    columns: list[Column] = field(default_factory=list)
    allowed_external: list[str] = field(default_factory=list)


def check_url(text: Any, what: str, source: str | Path | None = None, line: int | None = None) -> str:
    """An http(s) URL with a host, else InputError."""
    try:
        parts = urlsplit(text) if isinstance(text, str) else None
        ok = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
        if ok:
            parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        ok = False
    if not ok:
        raise InputError(f"{what}: not an http(s) URL: {text!r}", source, line)
    return str(text)


def from_inventory(directory: Path, unit: str) -> SiteConfig:
    """``unit.site`` of the unit group ``unit`` (its group name, e.g. u_shengzhong)."""
    inventory = load_inventory(directory)
    if unit not in inventory.units:
        raise InputError(f"no unit {unit!r} in the inventory (units: {', '.join(sorted(inventory.units))})",
                         directory)
    source = Path(inventory.units[unit].source)
    data, lines = read_with_lines(source)
    site = data["unit"].get("site") if isinstance(data.get("unit"), dict) else None
    here = lines.get(("unit", "site"), lines.get(("unit",)))
    if not isinstance(site, dict):
        raise InputError("unit.site is missing or not a mapping (home, columns, allowed_external)", source, here)
    home = check_url(site.get("home"), "unit.site.home", source, lines.get(("unit", "site", "home"), here))
    raw_columns = site.get("columns") or []
    if not isinstance(raw_columns, list):
        raise InputError("unit.site.columns must be a list", source, lines.get(("unit", "site", "columns"), here))
    columns = []
    for i, raw in enumerate(raw_columns):
        line = lines.get(("unit", "site", "columns", i), here)
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"].strip():
            raise InputError("a column needs name, url and kind", source, line)
        if raw.get("kind") not in KINDS:
            raise InputError(f"column {raw['name']!r}: kind must be dynamic or other, not {raw.get('kind')!r}",
                             source, line)
        columns.append(Column(raw["name"].strip(), check_url(raw.get("url"), f"column {raw['name']!r}", source, line),
                              raw["kind"]))
    allowed = site.get("allowed_external") or []
    if not isinstance(allowed, list) or not all(isinstance(a, str) and a.strip(".") for a in allowed):
        raise InputError("unit.site.allowed_external must be a list of domain suffixes", source,
                         lines.get(("unit", "site", "allowed_external"), here))
    return SiteConfig(unit, home, columns, [a.strip(".").lower() for a in allowed])
