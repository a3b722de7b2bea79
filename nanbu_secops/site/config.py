"""A unit's site as its inventory ``group_vars`` state it under ``unit.site``: ``home`` (URL),
``columns`` ([{name, url, kind: dynamic|other}]) and ``allowed_external`` (domain suffixes allowed
beyond gov.cn for this unit). Every mistake is an InputError naming the file and line."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from nanbu_secops.checks.site import Column
from nanbu_secops.errors import InputError
from nanbu_secops.fleet.inventory import load_inventory
from nanbu_secops.ipv6.assess import target_url
from nanbu_secops.yamlfile import read_text_with_lines, read_with_lines

KINDS = ("dynamic", "other")


@dataclass(frozen=True)
class SiteConfig:
    unit: str
    home: str
    columns: list[Column] = field(default_factory=list)
    allowed_external: list[str] = field(default_factory=list)


def check_url(text: Any, what: str, source: str | Path | None = None, line: int | None = None) -> str:
    """An http(s) URL, by the rules ``ipv6 check`` applies to its targets (a host, a valid port, no
    credentials), else InputError; the URL is kept as written."""
    if isinstance(text, str) and "://" in text:
        try:
            target_url(text)
            return text
        except ValueError as exc:
            if "user name or password" in str(exc):
                raise InputError(f"{what}: {exc}", source, line) from None
    raise InputError(f"{what}: not an http(s) URL: {text!r}", source, line)


def from_inventory(directory: Path, unit: str) -> SiteConfig:
    """``unit.site`` of the unit group ``unit`` (its group name, e.g. u_shengzhong)."""
    inventory = load_inventory(directory)
    if unit not in inventory.units:
        raise InputError(f"no unit {unit!r} in the inventory (units: {', '.join(sorted(inventory.units))})",
                         directory)
    source = Path(inventory.units[unit].source)
    data, lines = read_with_lines(source)
    site = data["unit"].get("site") if isinstance(data.get("unit"), dict) else None
    return from_mapping(site, unit, source, lines, ("unit", "site"))


def from_file(path: Path, stdin: TextIO | None = None) -> SiteConfig:
    """A site file (YAML or JSON; ``-``: standard input): ``unit`` and what ``unit.site`` holds.
    playbooks/site_inspection.yml hands a unit's site to the agent this way, on standard input,
    so nothing is copied to the terminal."""
    if str(path) == "-":
        text = (stdin or sys.stdin).read()
        data, lines = read_text_with_lines(text, "<stdin>", allow_empty=True)
        source: Path | str = "<stdin>"
    else:
        data, lines = read_with_lines(path)
        source = path
    unit = data.get("unit") if isinstance(data, dict) else None
    if not isinstance(unit, str) or not unit.strip():
        raise InputError("the site file needs unit (the unit's code) beside home, columns and allowed_external",
                         source, lines.get(("unit",), 1))
    return from_mapping(data, unit.strip(), source, lines, ())


def from_mapping(site: Any, unit: str, source: Path | str, lines: dict[Any, int], at: tuple[str, ...]) -> SiteConfig:
    """Validate a site mapping found at the key path ``at`` of ``source``."""
    here = lines.get(at, lines.get(at[:1], 1)) if at else 1
    name = ".".join(at) or "site"
    if not isinstance(site, dict):
        raise InputError(f"{name} is missing or not a mapping (home, columns, allowed_external)", source, here)
    home = check_url(site.get("home"), f"{name}.home", source, lines.get((*at, "home"), here))
    raw_columns = site.get("columns") or []
    if not isinstance(raw_columns, list):
        raise InputError(f"{name}.columns must be a list", source, lines.get((*at, "columns"), here))
    columns = []
    for i, raw in enumerate(raw_columns):
        line = lines.get((*at, "columns", i), here)
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"].strip():
            raise InputError("a column needs name, url and kind", source, line)
        if raw.get("kind") not in KINDS:
            raise InputError(f"column {raw['name']!r}: kind must be dynamic or other, not {raw.get('kind')!r}",
                             source, line)
        columns.append(Column(raw["name"].strip(), check_url(raw.get("url"), f"column {raw['name']!r}", source, line),
                              raw["kind"]))
    allowed = site.get("allowed_external") or []
    if not isinstance(allowed, list) or not all(isinstance(a, str) and a.strip(".") for a in allowed):
        raise InputError(f"{name}.allowed_external must be a list of domain suffixes", source,
                         lines.get((*at, "allowed_external"), here))
    return SiteConfig(unit, home, columns, [a.strip(".").lower() for a in allowed])
