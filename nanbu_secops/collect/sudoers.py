"""sudo's policy as sudoers(5) reads it, with the group memberships needed to resolve %group.

Followed: ``@include``/``#include`` and ``@includedir``/``#includedir`` (files in the folder
whose names have no ``.`` and do not end in ``~``, in sorted order; relative paths are relative to
the including file's folder), line continuations with ``\\``, ``User_Alias`` and ``Defaults``
lines with their scope. Each rule keeps the file and line it starts on for the evidence.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from nanbu_secops.collect import CollectError, Target, collector

SUDOERS = "/etc/sudoers"
GROUP = "/etc/group"
MAX_DEPTH = 128  # sudo's own include nesting limit

ALIAS_KINDS = ("User_Alias", "Runas_Alias", "Host_Alias", "Cmnd_Alias", "Cmd_Alias")
INCLUDE = re.compile(r"^[@#](include|includedir)\s+(.+)$")
NOPASSWD_TAG = re.compile(r"(?<![\w!])NOPASSWD\s*:")


@dataclass(frozen=True)
class DefaultsEntry:
    """A ``Defaults`` line: ``scope`` is "" (global), ":" (users), "@" (hosts), "!" (commands) or ">" (run-as)."""

    scope: str
    targets: list[str]
    settings: list[tuple[str, str | None, bool]]  # (name, value or None, negated)
    origin: str


@dataclass(frozen=True)
class UserSpec:
    """A rule ``users hosts = (runas) TAGS: commands``."""

    users: list[str]
    commands: str
    nopasswd: bool  # some command in it carries the NOPASSWD tag
    origin: str


@dataclass(frozen=True)
class Sudoers:
    installed: bool
    files: list[str] = field(default_factory=list)
    user_aliases: dict[str, list[str]] = field(default_factory=dict)
    defaults: list[DefaultsEntry] = field(default_factory=list)
    specs: list[UserSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    group_members: dict[str, set[str]] = field(default_factory=dict)  # /etc/group: name -> listed members
    group_names: dict[int, str] = field(default_factory=dict)  # gid -> group name, for primary groups


def split_list(text: str) -> list[str]:
    """Split a sudoers list on commas that are not escaped or inside quotes or parentheses."""
    items: list[str] = []
    current = []
    depth = 0
    quoted = False
    escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            current.append(ch)
        elif ch == "(" and not quoted:
            depth += 1
            current.append(ch)
        elif ch == ")" and not quoted:
            depth = max(0, depth - 1)
            current.append(ch)
        elif ch == "," and not quoted and depth == 0:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    items.append("".join(current).strip())
    return [i for i in items if i]


def _strip_comment(line: str) -> str:
    """Drop a ``#`` comment; ``#123`` is a UID in a user list, not a comment."""
    for match in re.finditer(r"#", line):
        pos = match.start()
        before = line[pos - 1] if pos else " "
        after = line[pos + 1:pos + 2]
        if before.isspace() and not after.isdigit():
            return line[:pos].rstrip()
    return line


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join ``\\``-continued lines; each logical line keeps the number of its first line."""
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        start, prefix = pending if pending else (number, "")
        line = prefix + raw
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = (start, line[:-1] + " ")
            continue
        pending = None
        joined.append((start, line))
    if pending:
        joined.append(pending)
    return joined


def _defaults(head: str, rest: str, origin: str) -> DefaultsEntry:
    scope = head[len("Defaults"):len("Defaults") + 1]
    targets = split_list(head[len("Defaults") + 1:]) if scope else []
    settings = []
    for item in split_list(rest):
        negated = item.startswith("!")
        item = item.lstrip("!").strip()
        if "=" in item:
            name, value = item.split("=", 1)
            name = name.rstrip("+-").strip()
            settings.append((name, value.strip().strip('"'), negated))
        else:
            settings.append((item, None, negated))
    return DefaultsEntry(scope, targets, settings, origin)


class _Parser:
    def __init__(self, target: Target):
        self.fs = target.fs
        self.result = Sudoers(installed=True)

    def file(self, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.result.notes.append(f"{path}: includes nested deeper than {MAX_DEPTH}, not read")
            return
        try:
            text = self.fs.read_text(path)
        except OSError as exc:
            self.result.notes.append(f"{path}: {exc.strerror or exc}")
            return
        self.result.files.append(path)
        for number, raw in _logical_lines(text):
            stripped = raw.strip()
            include = INCLUDE.match(stripped)
            if include:
                self.include(path, include.group(1), include.group(2).strip().strip('"'), depth)
                continue
            line = _strip_comment(stripped)
            if line:
                self.statement(line, f"{path}:{number}")

    def include(self, parent: str, kind: str, name: str, depth: int) -> None:
        if not name.startswith("/"):
            name = os.path.join(os.path.dirname(parent), name)
        if kind == "include":
            self.file(name, depth + 1)
            return
        folder = self.fs.resolve(name)
        try:
            entries = sorted(os.listdir(folder))
        except OSError:
            return  # sudo ignores a missing includedir
        for entry in entries:
            if "." in entry or entry.endswith("~") or not (folder / entry).is_file():
                continue
            self.file(f"{name.rstrip('/')}/{entry}", depth + 1)

    def statement(self, line: str, origin: str) -> None:
        word = line.split(None, 1)[0]
        if word.startswith("Defaults"):
            rest = line[len(word):].strip()
            self.result.defaults.append(_defaults(word, rest, origin))
            return
        if word in ALIAS_KINDS:
            if word == "User_Alias":
                for definition in re.split(r"\s*:\s*(?=[A-Z][A-Z0-9_]*\s*=)", line[len(word):].strip()):
                    if "=" in definition:
                        name, members = definition.split("=", 1)
                        self.result.user_aliases[name.strip()] = split_list(members)
            return
        users, sep, _ = line.partition("=")
        if not sep:
            self.result.notes.append(f"{origin}: not understood, skipped: {line}")
            return
        # "users hosts = ...": the user list ends where the host list begins (first blank outside a list)
        head = re.sub(r"\s*,\s*", ",", users.strip())
        user_list = head.split(None, 1)[0]
        commands = line.split("=", 1)[1].strip()
        self.result.specs.append(UserSpec(split_list(user_list), commands, bool(NOPASSWD_TAG.search(commands)),
                                          origin))


def parse_group(text: str) -> tuple[dict[str, set[str]], dict[int, str]]:
    """/etc/group: members listed per group, and gid -> name for primary-group lookups."""
    members: dict[str, set[str]] = {}
    names: dict[int, str] = {}
    for raw in text.splitlines():
        fields = raw.strip().split(":")
        if len(fields) != 4 or raw.startswith("#"):
            continue
        members[fields[0]] = {m.strip() for m in fields[3].split(",") if m.strip()}
        if fields[2].isdigit():
            names.setdefault(int(fields[2]), fields[0])
    return members, names


def read_sudoers(target: Target) -> Sudoers:
    """The parsed policy; ``installed`` is False when there is no /etc/sudoers."""
    if not target.fs.exists(SUDOERS):
        return Sudoers(installed=False)
    parser = _Parser(target)
    parser.file(SUDOERS, 0)
    return parser.result


@collector("sudoers", reads=("/etc/sudoers and its includes", "/etc/group"))
def collect_sudoers(target: Target) -> Sudoers:
    sudoers = read_sudoers(target)
    if sudoers.installed and SUDOERS not in sudoers.files:
        raise CollectError(f"{SUDOERS} exists but cannot be read: {'; '.join(sudoers.notes)}")
    try:
        members, names = parse_group(target.fs.read_text(GROUP)) if target.fs.exists(GROUP) else ({}, {})
    except OSError as exc:
        raise CollectError(f"cannot read {GROUP}: {exc.strerror}") from None
    sudoers.group_members.update(members)
    sudoers.group_names.update(names)
    return sudoers
