"""Root's PATH, from every place it is set, and the ownership and mode of each directory in it.

A directory root searches for commands that someone else can write to lets that someone plant
a command root runs. Sources: ``ENV_SUPATH`` in /etc/login.defs (``su``/``login`` for root;
shadow-utils' default when unset), sudo's ``secure_path``, PATH in /etc/environment (pam_env),
``PATH=`` assignments in /root/.profile and /root/.bashrc (literal forms; ``$PATH`` stands for
the PATH before it, already covered by the other sources), and on the live system the agent's
own PATH when it runs as root.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field

from nanbu_secops.collect import Target, collector
from nanbu_secops.collect.logindefs import PATH as LOGIN_DEFS
from nanbu_secops.collect.logindefs import parse as parse_login_defs
from nanbu_secops.collect.sudoers import read_sudoers

# shadow-utils' built-in ENV_SUPATH when login.defs does not set it.
DEFAULT_SUPATH = "/sbin:/bin:/usr/sbin:/usr/bin"
ENVIRONMENT = "/etc/environment"
ROOT_SHELL_FILES = ("/root/.profile", "/root/.bashrc")
ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?PATH=(.*)$")
SELF_REFERENCE = ("$PATH", "${PATH}")


@dataclass(frozen=True)
class PathSource:
    source: str  # "ENV_SUPATH", "sudo secure_path", "/etc/environment", "/root/.profile", "agent environment"
    origin: str  # file:line, "built-in default" or "process environment"
    value: str
    entries: list[str]  # in order; relative ones ("." or "") kept as they are
    unresolved: list[str] = field(default_factory=list)  # entries with other $variables or `commands`


@dataclass(frozen=True)
class DirState:
    exists: bool
    is_dir: bool = False
    mode: int = 0
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class RootPath:
    sources: list[PathSource]
    dirs: dict[str, DirState]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value.split(" #", 1)[0].strip()


def _source(source: str, origin: str, value: str, *, shell: bool = False) -> PathSource:
    entries: list[str] = []
    unresolved: list[str] = []
    for entry in value.split(":"):
        if shell and entry in SELF_REFERENCE:
            continue
        if shell and entry.startswith("~"):
            entry = "/root" + entry[1:]
        if shell and ("$" in entry or "`" in entry):
            unresolved.append(entry)
            continue
        entries.append(entry)
    return PathSource(source, origin, value, entries, unresolved)


def _sources(target: Target) -> list[PathSource]:
    fs = target.fs
    sources: list[PathSource] = []
    setting = parse_login_defs(fs.read_text(LOGIN_DEFS)) if fs.exists(LOGIN_DEFS) else None
    if setting is not None and "ENV_SUPATH" in setting.values:
        value = setting.values["ENV_SUPATH"].removeprefix("PATH=")
        sources.append(_source("ENV_SUPATH", f"{LOGIN_DEFS}:{setting.lines['ENV_SUPATH']}", value))
    else:
        sources.append(_source("ENV_SUPATH", "built-in default", DEFAULT_SUPATH))
    sudoers = read_sudoers(target)
    secure = [(value, entry.origin) for entry in sudoers.defaults
              if entry.scope == "" or (entry.scope == ":" and {"root", "ALL"} & set(entry.targets))
              for name, value, negated in entry.settings if name == "secure_path" and value and not negated]
    if secure:
        value, origin = secure[-1]
        sources.append(_source("sudo secure_path", origin, value))
    for path in (ENVIRONMENT, *ROOT_SHELL_FILES):
        if not fs.exists(path):
            continue
        found = None
        for number, raw in enumerate(fs.read_text(path).splitlines(), start=1):
            match = ASSIGNMENT.match(raw)
            if match:
                found = (number, _unquote(match.group(1)))
        if found:
            sources.append(_source(path, f"{path}:{found[0]}", found[1], shell=path != ENVIRONMENT))
    if target.live and os.geteuid() == 0 and "PATH" in os.environ:
        sources.append(_source("agent environment", "process environment", os.environ["PATH"]))
    return sources


def _state(target: Target, directory: str) -> DirState:
    try:
        info = os.stat(target.fs.resolve(directory))
    except OSError:
        return DirState(exists=False)
    return DirState(True, stat.S_ISDIR(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)


@collector("root_path", reads=("ENV_SUPATH (login.defs)", "sudo secure_path", "/etc/environment", "/root/.profile", "/root/.bashrc",
                               "the agent's PATH (live)"))
def collect_root_path(target: Target) -> RootPath:
    sources = _sources(target)
    dirs = {entry: _state(target, entry) for source in sources for entry in source.entries if entry.startswith("/")}
    return RootPath(sources, dirs)
