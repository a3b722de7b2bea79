"""The Ansible inventory read as the county office's list of units and their terminals.

A unit is an inventory group whose own variables define a ``unit:`` mapping (name, leader,
office, account manager: what article 25 asks each unit to name); its terminals are the hosts of
that group and of the groups below it.

The inventory is read by ansible-core itself (``ansible-inventory -i SOURCE --list --export``,
the one installed beside this Python), never by a parser of our own: YAML and INI inventories,
host ranges (``term[01:20]``), ``group_vars/<group>/`` folders, ``host_vars``, nested children,
inventory plugins and vault-encrypted values all mean what they mean to the playbooks, so the
report and the playbooks cannot disagree about who owns a terminal. A value encrypted with vault
whose password is not at hand stays encrypted and counts as filled in (it cannot be read, so it
cannot be called missing).

Article 25 findings name the file and line of the field when the ``unit:`` mapping comes from a
group_vars file (found beside the inventory, read again only for its line numbers); a unit set
elsewhere (inline in the inventory, a plugin) is named by the inventory source alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nanbu_secops.errors import InputError
from nanbu_secops.yamlfile import NodePath, read_with_lines

VARS_SUFFIXES = ("", ".yml", ".yaml", ".json")   # what Ansible's host_group_vars plugin reads
PLACEHOLDER = "示例"     # the example inventory's fictional people are all named 示例·…
VAULTED = "(vault)"      # the text of a field that is encrypted with vault
TIMEOUT = 300            # seconds; a dynamic inventory plugin may query a CMDB
# Article 25's fields: the dotted path in ``unit:`` and its label in the report.
REQUIRED_FIELDS = {
    "name": ("单位名称", "unit name"),
    "leader.name": ("分管领导", "leader"),
    "leader.phone": ("分管领导电话", "leader's phone"),
    "office": ("具体承办股(室)", "office"),
    "account_manager.name": ("账号管理负责人", "account manager"),
    "account_manager.phone": ("账号管理负责人电话", "account manager's phone"),
}
# ansible-inventory quietly returns an empty inventory for a source it cannot parse, unless told.
_STRICT_ENV = {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "True", "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
               "ANSIBLE_DUPLICATE_YAML_DICT_KEY": "error", "ANSIBLE_NOCOLOR": "True", "ANSIBLE_FORCE_COLOR": "False"}
_ATTEMPT = re.compile(r"WARNING\]: Failed to parse inventory with '(?P<plugin>[^']+)' plugin: (?P<message>.*)")
_ORIGIN = re.compile(r"Origin: (?P<path>/[^\n]*?):(?P<line>\d+)(?::\d+)?\s*$", re.MULTILINE)

Lines = dict[NodePath, int]


@dataclass(frozen=True)
class Unit:
    """One unit's ``unit:`` mapping as Ansible sees it, with where each field is written for findings."""

    group: str
    fields: dict[str, str]          # REQUIRED_FIELDS' paths -> text ("" when missing)
    source: str                     # group_vars file, else the inventory source
    lines: dict[str, int | None]    # path -> line (missing fields: the ``unit:`` line; None: unknown)

    @property
    def name(self) -> str:
        """The unit's Chinese name, the group name while the unit has not given one."""
        return self.fields["name"] or self.group

    def where(self, dotted: str) -> str:
        """``file:line`` of a field, or the file alone when the line is not known."""
        line = self.lines.get(dotted)
        return self.source if line is None else f"{self.source}:{line}"


@dataclass
class Inventory:
    units: dict[str, Unit]
    hosts: dict[str, dict[str, Any]]                 # host -> its own variables (inline and host_vars)
    _members: dict[str, set[str]] = field(default_factory=dict)     # group -> every host below it
    _unit_of: dict[str, str] = field(default_factory=dict)

    def unit_of(self, host: str) -> str | None:
        """The unit group holding ``host``, None for a host outside every unit."""
        return self._unit_of.get(host)

    def hosts_of(self, unit: str) -> list[str]:
        return sorted(self._members.get(unit, ()))

    def host_units(self) -> dict[str, str | None]:
        """Every inventory host with its unit (None outside every unit): what ``ingest`` checks against."""
        return {host: self._unit_of.get(host) for host in self.hosts}


def ansible_inventory_command() -> str:
    """The ``ansible-inventory`` of this installation (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "ansible-inventory"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("ansible-inventory")
    if found is None:
        raise InputError("ansible-inventory not found: install nanbu-secops with its controller extra "
                         "(pip install 'nanbu-secops[controller]')")
    return found


def export(source: Path) -> dict[str, Any]:
    """``ansible-inventory -i source --list --export`` as data; InputError naming file and line on failure."""
    if not source.exists():
        raise InputError("no such inventory", source)
    try:
        done = subprocess.run([ansible_inventory_command(), "-i", str(source), "--list", "--export"],
                              capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, **_STRICT_ENV},
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise InputError(f"ansible-inventory did not finish in {TIMEOUT} s", source) from None
    if done.returncode != 0:
        raise _failure(done.stderr, source)
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise InputError(f"ansible-inventory printed no JSON ({exc.msg})", source) from None
    if not isinstance(data, dict):
        raise InputError("ansible-inventory printed no inventory", source)
    return data


def _failure(stderr: str, source: Path) -> InputError:
    """The error ansible-inventory gave, pinned to the file and line it names when it names one.

    It tries every inventory plugin on each file and reports each plugin's failure: the one that
    matters is the plugin for the file's kind (yaml for .yml/.yaml/.json, else ini); the ``auto``
    plugin's "not a plugin config file" is noise, its YAML syntax errors are not.
    """
    attempts: list[tuple[str, str, str | None, int | None]] = []
    final = "failed without a message"
    for block in re.split(r"^\[(?=WARNING\]|ERROR\])", stderr, flags=re.MULTILINE):
        head = block.split("\n", 1)[0]
        found = _ATTEMPT.match(head)
        origin = _ORIGIN.search(block)
        where = (origin["path"], int(origin["line"])) if origin else (None, None)
        if found and "root 'plugin' key" not in found["message"]:
            attempts.append((found["plugin"], found["message"].strip(), *where))
        elif head.startswith("ERROR]"):
            final = head.split(":", 1)[1].strip()
    failed = Path(final.rsplit(" ", 1)[-1]) if final.startswith("Completely failed") else source
    wanted = ("auto", "yaml") if failed.suffix in (".yml", ".yaml", ".json") else ("ini",)
    chosen = next((a for a in attempts if a[0] in wanted), attempts[0] if attempts else None)
    if chosen is None:
        return InputError(f"ansible-inventory: {final}", source)
    _, message, path, line = chosen
    return InputError(f"ansible-inventory: {message}", path or failed, line)


def load_inventory(source: Path) -> Inventory:
    """The inventory at ``source`` (a folder or a file, anything ``ansible-inventory -i`` takes)."""
    source = Path(source)
    return from_export(export(source), source)


def from_export(data: dict[str, Any], source: Path) -> Inventory:
    """Units, members and host variables from ``ansible-inventory --list --export`` output."""
    meta = data.get("_meta") if isinstance(data.get("_meta"), dict) else {}
    hostvars = {str(h): v if isinstance(v, dict) else {} for h, v in (meta.get("hostvars") or {}).items()}
    groups = {str(name): body for name, body in data.items() if name != "_meta" and isinstance(body, dict)}
    members = _members(groups)
    for hosts in members.values():
        for host in hosts:
            hostvars.setdefault(host, {})
    units = {name: _unit(name, body["vars"]["unit"], source)
             for name, body in sorted(groups.items())
             if isinstance(body.get("vars"), dict) and "unit" in body["vars"]}
    owner: dict[str, str] = {}
    for group in sorted(units):
        for host in sorted(members.get(group, ())):
            if host in owner and owner[host] != group:
                raise InputError(f"host {host!r} is in two units, {owner[host]} and {group}", source)
            owner[host] = group
    return Inventory(units, hostvars, members, owner)


def _members(groups: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """Every group's hosts, its children's included (ansible-core has refused cycles already)."""
    done: dict[str, set[str]] = {}

    def walk(group: str) -> set[str]:
        if group not in done:
            done[group] = set()      # a guard, should a plugin hand over a cycle anyway
            body = groups.get(group, {})
            found = set(map(str, body.get("hosts") or ()))
            for child in body.get("children") or ():
                found |= walk(str(child))
            done[group] = found
        return done[group]

    for group in groups:
        walk(group)
    return done


def _vars_files(source: Path, group: str) -> list[Path]:
    """The group_vars files of ``group`` that Ansible reads beside ``source``, in its order."""
    base = source if source.is_dir() else source.parent
    folder = base / "group_vars"
    found = [folder / f"{group}{suffix}" for suffix in VARS_SUFFIXES if (folder / f"{group}{suffix}").is_file()]
    if (folder / group).is_dir():
        found += sorted(p for p in (folder / group).rglob("*")
                        if p.is_file() and p.suffix in VARS_SUFFIXES and not p.name.startswith("."))
    return found


def _unit_lines(source: Path, group: str) -> tuple[str, Lines] | None:
    """The group_vars file that writes ``unit:`` for ``group``, with its node lines; None when none does.

    A file Ansible read but our strict reader refuses (vault-encrypted as a whole, JSON with
    duplicate keys…) just gives no lines: the values are Ansible's either way.
    """
    for path in _vars_files(source, group):
        try:
            if path.read_bytes()[:14] == b"$ANSIBLE_VAULT":
                continue
            data, lines = read_with_lines(path, allow_empty=True)
        except (InputError, OSError):
            continue
        if isinstance(data, dict) and "unit" in data:
            return str(path), lines
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and "__ansible_vault" in value:
        return VAULTED
    return str(value).strip()


def _unit(group: str, raw: Any, source: Path) -> Unit:
    found = _unit_lines(source, group)
    path, lines = found if found is not None else (str(source), {})
    if not isinstance(raw, dict) or "__ansible_vault" in raw:
        kind = "vault-encrypted text" if isinstance(raw, dict) else type(raw).__name__
        raise InputError(f"group {group}: unit must be a mapping, not {kind}", path, lines.get(("unit",)))
    fields: dict[str, str] = {}
    where: dict[str, int | None] = {}
    for dotted in REQUIRED_FIELDS:
        value: Any = raw
        at: tuple[str, ...] = ("unit",)
        for part in dotted.split("."):
            if value is not None and (not isinstance(value, dict) or "__ansible_vault" in value):
                raise InputError(f"{'.'.join(at)} must be a mapping, not {type(value).__name__}", path, lines.get(at))
            value = None if value is None else value.get(part)
            at = (*at, part)
        fields[dotted] = _text(value)
        where[dotted] = lines.get(at, lines.get(("unit",)))
    return Unit(group, fields, path, where)


def unit_findings(inventory: Inventory, lang: str = "zh") -> list[dict[str, Any]]:
    """Article 25: every unit names its leader, office and account manager (and their phones).

    An empty field is a finding, and so is one still holding the example inventory's placeholder
    (示例): a unit that copied the example without filling it in has named nobody.
    """
    findings = []
    for group, unit in sorted(inventory.units.items()):
        for dotted, labels in REQUIRED_FIELDS.items():
            value = unit.fields[dotted]
            problem = "missing" if not value else "placeholder" if PLACEHOLDER in value else None
            if problem:
                findings.append({"unit": group, "name": unit.name, "article": "25", "field": dotted,
                                 "label": labels[1] if lang == "en" else labels[0], "problem": problem,
                                 "value": value, "source": unit.where(dotted)})
    return findings
