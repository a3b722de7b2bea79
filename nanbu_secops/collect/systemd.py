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
