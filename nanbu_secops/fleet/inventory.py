"""The Ansible inventory read as the county office's list of units and their terminals.

A unit is an inventory group whose ``group_vars/<group>.yml`` defines a ``unit:`` mapping (name,
leader, office, account manager: what article 25 asks each unit to name); its terminals are
the hosts of that group and of the groups below it. The playbooks read the same files, so the
report and the playbooks can never disagree about who owns a terminal.

Only the YAML inventory form is read (``hosts.yml``: nested ``children``/``hosts``/``vars``), with
``group_vars/<group>.yml`` and ``host_vars/<host>.yml`` files (not folders per group or host).
Every problem is an :class:`InputError` with the file and line.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from nanbu_secops.errors import InputError
from nanbu_secops.yamlfile import NodePath, read_with_lines

HOSTS_FILES = ("hosts.yml", "hosts.yaml")
VARS_SUFFIXES = (".yml", ".yaml")
PLACEHOLDER = "示例"     # the example inventory's fictional people are all named 示例·…
# Article 25's fields: the dotted path in ``unit:`` and its label in the report.
REQUIRED_FIELDS = {
    "name": ("单位名称", "unit name"),
    "leader.name": ("分管领导", "leader"),
    "leader.phone": ("分管领导电话", "leader's phone"),
    "office": ("具体承办股(室)", "office"),
    "account_manager.name": ("账号管理负责人", "account manager"),
    "account_manager.phone": ("账号管理负责人电话", "account manager's phone"),
}

Lines = dict[NodePath, int]


@dataclass(frozen=True)
class Unit:
    """One unit's ``unit:`` mapping as written, with the line of each key for findings."""

    group: str
    fields: dict[str, str]          # REQUIRED_FIELDS' paths -> text ("" when missing)
    source: str                     # group_vars file
    lines: dict[str, int]           # path -> line (missing fields: the ``unit:`` line)

    @property
    def name(self) -> str:
        """The unit's Chinese name, the group name while the unit has not given one."""
        return self.fields["name"] or self.group


@dataclass
class Inventory:
    units: dict[str, Unit]
    hosts: dict[str, dict[str, Any]]                 # host -> its variables (inline, then host_vars)
    _members: dict[str, set[str]] = field(default_factory=dict)     # group -> every host below it
    _unit_of: dict[str, str] = field(default_factory=dict)

    def unit_of(self, host: str) -> str | None:
        """The unit group holding ``host``, None for a host outside every unit."""
        return self._unit_of.get(host)

    def hosts_of(self, unit: str) -> list[str]:
        return sorted(self._members.get(unit, ()))


def load_inventory(directory: Path) -> Inventory:
    """Read ``hosts.yml``, ``group_vars/*.yml`` and ``host_vars/*.yml`` under ``directory``."""
    directory = Path(directory)
    hosts_file = next((directory / n for n in HOSTS_FILES if (directory / n).is_file()), None)
    if hosts_file is None:
        raise InputError(f"no {' or '.join(HOSTS_FILES)} in the inventory folder", directory)
    data, lines = read_with_lines(hosts_file, allow_empty=True)
    tree = _Tree(hosts_file, lines)
    if data is not None:
        tree.groups(_mapping(data, (), tree.source, lines, "the inventory"), ())
    units = _units(directory / "group_vars")
    members = tree.members()
    owner: dict[str, str] = {}
    for group in sorted(units):
        for host in members.get(group, ()):
            if host in owner and owner[host] != group:
                raise InputError(f"host {host!r} is in two units, {owner[host]} and {group}",
                                 hosts_file, tree.host_lines[host])
            owner[host] = group
    hosts = {host: {**tree.host_vars[host], **_vars_file(directory / "host_vars", host)} for host in tree.host_vars}
    return Inventory(units, hosts, members, owner)


def _mapping(value: Any, at: tuple[str, ...], source: Path, lines: Lines, what: str) -> dict[str, Any]:
    """``value`` as a mapping (null is an empty one); anything else is an error at its line."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a mapping, not {type(value).__name__}", source, lines.get(at))
    return value


class _Tree:
    """Groups and hosts of hosts.yml as Ansible nests them: a group may appear under several parents."""

    def __init__(self, source: Path, lines: Lines) -> None:
        self.source, self.lines = source, lines
        self.children: dict[str, set[str]] = defaultdict(set)
        self.direct: dict[str, set[str]] = defaultdict(set)
        self.host_vars: dict[str, dict[str, Any]] = {}
        self.host_lines: dict[str, int] = {}

    def groups(self, groups: dict[str, Any], at: tuple[str, ...]) -> None:
        for name, body in groups.items():
            here = (*at, str(name))
            body = _mapping(body, here, self.source, self.lines, f"group {name!r}")
            unknown = sorted(set(body) - {"hosts", "children", "vars"})
            if unknown:
                raise InputError(f"group {name!r}: unknown key {unknown[0]!r} (expected hosts, children, vars)",
                                 self.source, self.lines.get((*here, unknown[0])))
            self.direct[str(name)]        # a group without hosts is still a group
            for host, variables in _mapping(body.get("hosts"), (*here, "hosts"), self.source, self.lines,
                                            f"{name}.hosts").items():
                where = (*here, "hosts", str(host))
                self.direct[str(name)].add(str(host))
                self.host_lines.setdefault(str(host), self.lines.get(where, 0))
                self.host_vars.setdefault(str(host), {}).update(
                    _mapping(variables, where, self.source, self.lines, f"host {host!r}"))
            children = _mapping(body.get("children"), (*here, "children"), self.source, self.lines,
                                f"{name}.children")
            self.children[str(name)].update(map(str, children))
            self.groups(children, (*here, "children"))

    def members(self) -> dict[str, set[str]]:
        """Every group's hosts, its children's included (a cycle is an error, as in Ansible)."""
        done: dict[str, set[str]] = {}

        def walk(group: str, path: tuple[str, ...]) -> set[str]:
            if group in path:
                raise InputError(f"group {group!r} is its own descendant ({' > '.join((*path, group))})", self.source)
            if group not in done:
                done[group] = set(self.direct[group]).union(
                    *(walk(child, (*path, group)) for child in self.children[group]))
            return done[group]

        for group in list(self.direct):
            walk(group, ())
        return done


def _vars_file(folder: Path, name: str) -> dict[str, Any]:
    """``folder/name.yml`` (or .yaml) as a mapping; empty when there is none."""
    path = next((folder / f"{name}{s}" for s in VARS_SUFFIXES if (folder / f"{name}{s}").is_file()), None)
    if path is None:
        return {}
    data, lines = read_with_lines(path, allow_empty=True)
    return _mapping(data, (), path, lines, "a vars file")


def _units(folder: Path) -> dict[str, Unit]:
    """Units from every group_vars file that defines ``unit:``."""
    units: dict[str, Unit] = {}
    files = sorted(p for p in folder.iterdir() if p.suffix in VARS_SUFFIXES and p.is_file()) if folder.is_dir() else []
    for path in files:
        data, lines = read_with_lines(path, allow_empty=True)
        data = _mapping(data, (), path, lines, "a vars file")
        if "unit" in data:
            units[path.stem] = _unit(path.stem, _mapping(data["unit"], ("unit",), path, lines, "unit"), path, lines)
    return units


def _unit(group: str, raw: dict[str, Any], path: Path, lines: Lines) -> Unit:
    fields: dict[str, str] = {}
    where: dict[str, int] = {}
    for dotted in REQUIRED_FIELDS:
        value: Any = raw
        at: tuple[str, ...] = ("unit",)
        for part in dotted.split("."):
            value = _mapping(value, at, path, lines, ".".join(at)).get(part)
            at = (*at, part)
        fields[dotted] = "" if value is None else str(value).strip()
        where[dotted] = lines.get(at, lines[("unit",)])
    return Unit(group, fields, str(path), where)


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
                                 "value": value, "source": f"{unit.source}:{unit.lines[dotted]}"})
    return findings
