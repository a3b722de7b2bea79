"""What systemd reads from a root tree: unit enablement and daemon configuration files.

Shared by the collectors of daemons that systemd runs (firewalls, time sync, resolver), so that
each reads drop-ins and list settings the way systemd itself does.
"""

from __future__ import annotations

import os
import re

from nanbu_secops.collect.rootfs import RootFS


def enabled(fs: RootFS, unit: str) -> str | None:
    """The wants link that starts ``unit`` at boot, or None (also when the unit is masked).

    Links are looked at with lstat: in an image they point to /lib/systemd/system/..., which a
    partial copy of the tree may not have, and the link itself is what systemd acts on.
    """
    masked = fs.resolve("/etc/systemd/system") / unit  # the link itself, not where it points
    if masked.is_symlink() and os.readlink(masked) == "/dev/null":
        return None
    for wants in fs.glob("/etc/systemd/system/*.wants"):
        if os.path.lexists(fs.resolve(wants) / unit):
            return f"{wants}/{unit}"
    return None


def config_files(fs: RootFS, main: str) -> list[str]:
    """``main`` (e.g. /etc/systemd/timesyncd.conf) and its drop-ins in the order systemd reads them:
    sorted by file name across /usr/lib, /run and /etc, a file in /etc replacing one of the same
    name in /run, and one in /run replacing one in /usr/lib."""
    name = main.rsplit("/", 1)[1]
    dropins: dict[str, str] = {}
    for folder in (f"/usr/lib/systemd/{name}.d", f"/run/systemd/{name}.d", f"/etc/systemd/{name}.d"):
        for path in fs.glob(f"{folder}/*.conf"):
            dropins[path.rsplit("/", 1)[1]] = path
    return ([main] if fs.exists(main) else []) + [dropins[n] for n in sorted(dropins)]


def list_setting(fs: RootFS, files: list[str], section: str, key: str) -> list[tuple[str, str]]:
    """Values of a space-separated list setting, with ``path:line`` each: later assignments add
    to the list and an empty one resets it, as systemd does for ``DNS=`` or ``NTP=``."""
    values: list[tuple[str, str]] = []
    pattern = re.compile(rf"{re.escape(key)}\s*=(.*)")
    for path in files:
        current = ""
        for number, raw in enumerate(fs.read_text(path).splitlines(), start=1):
            line = raw.strip()
            if line.startswith("["):
                current = line.strip("[]")
            elif current == section and (match := pattern.fullmatch(line)):
                words = match.group(1).split()
                values = values + [(w, f"{path}:{number}") for w in words] if words else []
    return values


def shell_assignments(text: str, where: str) -> dict[str, tuple[str, str]]:
    """``KEY=value`` lines of a shell-style file: the last wins, quotes removed, with origins."""
    found: dict[str, tuple[str, str]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        m = re.fullmatch(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*?)\s*", raw)
        if m and not raw.lstrip().startswith("#"):
            value = m.group(2)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            found[m.group(1)] = (value, f"{where}:{number}")
    return found


def unit_files(fs: RootFS, unit: str) -> list[str]:
    """A service unit's file (/etc/systemd/system replacing /run, replacing /usr/lib and /lib) and
    its drop-ins (``unit.d/*.conf``, sorted by name across those folders, /etc winning a name)."""
    folders = ("/lib/systemd/system", "/usr/lib/systemd/system", "/run/systemd/system", "/etc/systemd/system")
    main = next((f"{folder}/{unit}" for folder in reversed(folders) if fs.resolve(f"{folder}/{unit}").is_file()), None)
    dropins: dict[str, str] = {}
    for folder in folders:
        for path in fs.glob(f"{folder}/{unit}.d/*.conf"):
            dropins[path.rsplit("/", 1)[1]] = path
    return ([main] if main else []) + [dropins[n] for n in sorted(dropins)]


def exec_start(fs: RootFS, unit: str) -> tuple[list[tuple[str, str]], str] | None:
    """The words of a service's ExecStart= with ``$VAR`` (split on blanks) and ``${VAR}`` (one
    word) expanded from its EnvironmentFile= files, each word with where it came from, and the
    ExecStart line's origin; None without a unit or an ExecStart. A later EnvironmentFile
    overrides an earlier one's variables; an empty ExecStart= or EnvironmentFile= resets."""
    env_files: list[str] = []
    start: tuple[str, str] | None = None
    for path in unit_files(fs, unit):
        section = ""
        for number, raw in enumerate(fs.read_text(path).splitlines(), start=1):
            line = raw.strip()
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, sep, value = line.partition("=")
            if section != "Service" or not sep:
                continue
            if key.strip() == "EnvironmentFile":
                env_files = env_files + [value.strip()] if value.strip() else []
            elif key.strip() == "ExecStart":
                start = (value.strip().lstrip("-@:+!"), f"{path}:{number}") if value.strip() else None
    if start is None:
        return None
    env: dict[str, tuple[str, str]] = {}
    for name in env_files:
        name = name.lstrip("-")
        if fs.resolve(name).is_file():  # systemd skips a missing "-" file; a missing other one fails the unit
            env.update(shell_assignments(fs.read_text(name), name))
    words: list[tuple[str, str]] = []
    for word in start[0].split():
        whole = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", word)
        split = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole or split:
            name = (whole or split).group(1)  # type: ignore[union-attr]
            value, origin = env.get(name, ("", ""))
            parts = [value] if whole and value else value.split()
            words += [(part, f"${name} from {origin}") for part in parts]
        else:
            words.append((word, start[1]))
    return words, start[1]
