"""Login terminal security (article 26: 定期检查登录终端的安全情况): remote-control software,
passwordless sudo for people, and root's PATH."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Mapping, Sequence
from typing import Any

from nanbu_secops.checks import Outcome, check, failed, passed
from nanbu_secops.checks.accounts import INTERACTIVE_PARAMS, interactive
from nanbu_secops.collect.accounts import Passwd, PasswdEntry
from nanbu_secops.collect.paths import RootPath
from nanbu_secops.collect.software import Software
from nanbu_secops.collect.sudoers import Sudoers

# --- remote-control software ---------------------------------------------------------------------

PATTERNS = {"type": "array", "items": {"type": "string", "minLength": 1}}
REMOTE_CONTROL_PARAMS: Mapping[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["products", "allowed"],
    "properties": {
        "products": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1}, "packages": PATTERNS,
                           "processes": PATTERNS, "paths": PATTERNS, "desktop": PATTERNS}}},
        "allowed": {"type": "array", "items": {"type": "string"}},
    },
}


def _match(value: str, patterns: Sequence[str]) -> bool:
    """Case-insensitive fnmatch: vendors spell their binaries SunloginClient or sunloginclient."""
    return bool(value) and any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)


def _found(software: Software, product: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(installed traces, running processes) of one catalogue product."""
    packages = product.get("packages", [])
    processes = product.get("processes", [])
    installed: list[dict[str, Any]] = [
        {"package": p.name, "version": p.version, "origin": p.origin}
        for p in software.packages.values() if _match(p.name, packages)]
    installed += [{"path": path} for path in software.paths if _match(path, product.get("paths", []))]
    installed += [{"desktop": d.path, "origin": f"{d.path}:{d.line}", "program": d.program}
                  for d in software.desktops
                  if _match(os.path.basename(d.path), product.get("desktop", [])) or _match(d.program, processes)]
    running = [{"pid": p.pid, "name": p.name, "exe": p.exe, "cmdline": p.cmdline} for p in software.processes
               if _match(p.name, processes) or _match(os.path.basename(p.exe), processes)
               or _match(os.path.basename(p.cmdline.split(" ", 1)[0]), processes)]
    return installed, running


@check("remote_control_software", facts=("software",), params=REMOTE_CONTROL_PARAMS)
def remote_control_software(software: Software, *, products: Sequence[Mapping[str, Any]],
                            allowed: Sequence[str]) -> Outcome:
    """No remote-control product of the catalogue is installed or running unless the county
    approved it: each one opens the terminal, and the platform session on it, to whoever holds
    the product's ID and code, past every login control.

    Installed is judged from dpkg's status, install folders and .desktop launchers; running from
    the processes, which only a live system has, so offline the evidence says it was not checked.
    """
    findings: list[dict[str, Any]] = []
    approved: list[dict[str, Any]] = []
    for product in products:
        installed, running = _found(software, product)
        if not installed and not running:
            continue
        entry = {"product": product["name"], "installed": installed, "running": running}
        (approved if product["name"] in allowed else findings).append(entry)
    evidence: dict[str, Any] = {
        "products_checked": [p["name"] for p in products], "found": findings, "allowed": approved,
        "dpkg_status": "read" if software.dpkg_status else "absent (not a dpkg system)",
        **({"rpm_database": software.rpm_database} if software.rpm_database else {}),
        "running": "checked" if software.live else "not checked (offline: processes need the live system)"}
    return failed(**evidence) if findings else passed(**evidence)


# --- passwordless sudo ---------------------------------------------------------------------------

SUDO_PARAMS: Mapping[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["uid_min", "nologin_shells", "allowed"],
    "properties": {**INTERACTIVE_PARAMS, "allowed": {"type": "array", "items": {"type": "string"}}},
}


class _Identity:
    """How sudoers(5) can name one account: user, #uid, %group, %#gid, aliases, ALL."""

    def __init__(self, entry: PasswdEntry, sudoers: Sudoers):
        self.entry = entry
        self.aliases = sudoers.user_aliases
        self.groups = {g for g, members in sudoers.group_members.items() if entry.name in members}
        primary = sudoers.group_names.get(entry.gid)
        if primary:
            self.groups.add(primary)
        self.gids = {gid for gid, name in sudoers.group_names.items() if name in self.groups} | {entry.gid}

    def item(self, item: str, seen: frozenset[str]) -> bool:
        if item == "ALL":
            return True
        if item.startswith("%#") and item[2:].isdigit():
            return int(item[2:]) in self.gids
        if item.startswith("%"):
            return item[1:].lstrip(":") in self.groups
        if item.startswith("#") and item[1:].isdigit():
            return int(item[1:]) == self.entry.uid
        if item in self.aliases and item not in seen:
            return self.matches(self.aliases[item], seen | {item})
        return item.strip('"') == self.entry.name

    def matches(self, items: Sequence[str], seen: frozenset[str] = frozenset()) -> bool:
        """sudoers list semantics: the last item that matches decides, ``!`` negates it."""
        result = False
        for raw in items:
            negated = len(raw) - len(raw.lstrip("!"))
            if self.item(raw.lstrip("!").strip(), seen):
                result = negated % 2 == 0
        return result


def _no_authenticate(identity: _Identity, sudoers: Sudoers) -> str | None:
    """Origin of the Defaults line that leaves this account's sudo without a password, if any.

    User-scoped Defaults apply after global ones, so they override them; within each, the last wins.
    """
    state: tuple[bool, str] = (True, "")
    scoped = [d for d in sudoers.defaults if d.scope == ":" and identity.matches(d.targets)]
    for entry in [d for d in sudoers.defaults if d.scope == ""] + scoped:
        for name, _, negated in entry.settings:
            if name == "authenticate":
                state = (not negated, entry.origin)
    return None if state[0] else state[1]


@check("sudo_nopasswd", facts=("sudoers", "passwd"), params=SUDO_PARAMS)
def sudo_nopasswd(sudoers: Sudoers, passwd: Passwd, *, uid_min: int, nologin_shells: Sequence[str],
                  allowed: Sequence[str]) -> Outcome:
    """No person's account may run sudo without a password: a stolen unlocked session or an
    unattended terminal then becomes root at once. Rules grant it directly, through %group
    (listed members and primary group), User_Alias or ALL; ``Defaults !authenticate`` counts too.
    Service accounts (not interactive) and the ``allowed`` exceptions are not findings.
    """
    if not sudoers.installed:
        return passed(sudoers="no /etc/sudoers: sudo is not installed")
    rules: list[dict[str, Any]] = []
    exempted: list[str] = []
    checked: list[str] = []
    for entry in interactive(passwd, uid_min, nologin_shells):
        identity = _Identity(entry, sudoers)
        specs = [s for s in sudoers.specs if identity.matches(s.users)]
        if not specs:
            continue
        checked.append(entry.name)
        no_auth = _no_authenticate(identity, sudoers)
        grants = [{"origin": s.origin, "users": s.users, "commands": s.commands,
                   "why": "NOPASSWD" if s.nopasswd else f"Defaults !authenticate ({no_auth})"}
                  for s in specs if s.nopasswd or no_auth]
        if not grants:
            continue
        if entry.name in allowed:
            exempted.append(entry.name)
            continue
        for grant in grants:
            rule = next((r for r in rules if r["origin"] == grant["origin"] and r["why"] == grant["why"]), None)
            if rule is None:
                rules.append({**grant, "accounts": [entry.name]})
            else:
                rule["accounts"].append(entry.name)
    evidence: dict[str, Any] = {"files": sudoers.files, "nopasswd_rules": sorted(rules, key=lambda r: r["origin"]),
                                "accounts": sorted({a for r in rules for a in r["accounts"]}),
                                "sudo_users_checked": checked, "allowed": exempted}
    # Defaults!command / Defaults>runas !authenticate apply per command or target user, which
    # this check does not match rule by rule: shown so a reviewer looks at them.
    scoped = [d.origin for d in sudoers.defaults if d.scope in ("!", ">")
              and any(name == "authenticate" and negated for name, _, negated in d.settings)]
    if scoped:
        evidence["command_or_runas_scoped_no_authenticate"] = scoped
    if sudoers.notes:
        evidence["notes"] = sudoers.notes
    return failed(**evidence) if rules else passed(**evidence)


# --- root's PATH ---------------------------------------------------------------------------------


def _unsafe(state_mode: int, uid: int, gid: int) -> list[str]:
    """Why others than root could write to a directory (CIS/Lynis: world-writable or not root's)."""
    problems = []
    if state_mode & stat.S_IWOTH:
        problems.append("world-writable")
    if uid != 0:
        problems.append(f"owned by uid {uid}")
    if state_mode & stat.S_IWGRP and gid != 0:
        problems.append(f"group-writable by gid {gid}")
    return problems


@check("root_path_safe", facts=("root_path",))
def root_path_safe(root_path: RootPath) -> Outcome:
    """No directory in root's PATH may be writable by anyone but root, nor may PATH hold a
    relative entry ('.' or empty, i.e. the current folder): either lets another user plant a
    command root then runs. Missing directories are noted (creating one later would need root).
    """
    findings: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    for source in root_path.sources:
        where = {"source": source.source, "origin": source.origin}
        for entry in source.entries:
            if not entry.startswith("/"):
                findings.append({**where, "entry": entry or "(empty)", "problems": ["relative entry: the current folder"]})
                continue
            state = root_path.dirs[entry]
            if not state.exists:
                missing.append({**where, "entry": entry})
                continue
            problems = _unsafe(state.mode, state.uid, state.gid)
            if problems:
                findings.append({**where, "entry": entry, "mode": f"{state.mode:04o}", "uid": state.uid,
                                 "gid": state.gid, "problems": problems})
    evidence: dict[str, Any] = {
        "sources": [{"source": s.source, "origin": s.origin, "value": s.value} for s in root_path.sources],
        "unsafe": findings, "missing": missing}
    unresolved = [{"source": s.source, "origin": s.origin, "entries": s.unresolved} for s in root_path.sources
                  if s.unresolved]
    if unresolved:
        evidence["not_evaluated"] = unresolved
    return failed(**evidence) if findings else passed(**evidence)
