"""Installed and running software: dpkg's status file (Debian family) or the rpm database
(rpmdb.sqlite, Red Hat family), install folders, .desktop files, processes.

The collector does not know which products the policy looks for (that catalogue is policy data,
so an operator adds a product without Python); it gathers what the checks match against:
every installed package, the entries of the folders software is installed into, every .desktop
launcher, and on the live system every process.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field

from nanbu_secops.collect import CollectError, Target, collector, rpmdb

DPKG_STATUS = "/var/lib/dpkg/status"

# Folders whose direct entries are listed: a catalogue path must be one of these entries
# (e.g. /opt/todesk, /usr/local/sunlogin, /opt/apps/com.oray.sunlogin.client).
INSTALL_FOLDERS = ("/opt", "/opt/apps", "/usr/local", "/usr/local/bin", "/usr/local/sbin", "/usr/bin",
                   "/usr/sbin", "/usr/share", "/usr/lib", "/etc/systemd/system", "/lib/systemd/system")

# Where desktop launchers and autostart entries live (Debian, and Kylin/UOS's /opt/apps layout).
DESKTOP_GLOBS = ("/usr/share/applications/*.desktop", "/usr/local/share/applications/*.desktop",
                 "/etc/xdg/autostart/*.desktop", "/opt/apps/*/entries/applications/*.desktop",
                 "/root/.config/autostart/*.desktop", "/home/*/.config/autostart/*.desktop",
                 "/home/*/.local/share/applications/*.desktop")


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    status: str
    line: int  # line of its Package: field in the status file (0 for an rpm database)
    source: str = DPKG_STATUS  # the package database it was read from

    @property
    def origin(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


@dataclass(frozen=True)
class Desktop:
    path: str
    line: int  # line of Exec=, or 1 when there is none
    program: str  # basename of the Exec= program ("" when none)


@dataclass(frozen=True)
class Process:
    pid: int
    name: str
    exe: str
    cmdline: str


@dataclass(frozen=True)
class Software:
    """What is installed, and (``live`` only) what runs."""

    live: bool
    packages: dict[str, Package] = field(default_factory=dict)
    dpkg_status: bool = False  # the status file exists (a non-dpkg system has none)
    rpm_database: str = ""  # the rpmdb.sqlite read, when there is one
    paths: list[str] = field(default_factory=list)
    desktops: list[Desktop] = field(default_factory=list)
    processes: list[Process] = field(default_factory=list)


def parse_dpkg_status(text: str) -> dict[str, Package]:
    """Installed packages of a dpkg status file: Status whose state (third word) is ``installed``.

    ``deinstall ok config-files`` (removed, configuration left) is not installed.
    """
    packages: dict[str, Package] = {}
    fields: dict[str, str] = {}
    start = 0

    def flush() -> None:
        status = fields.get("status", "")
        words = status.split()
        if "package" in fields and len(words) == 3 and words[2] == "installed":
            packages[fields["package"]] = Package(fields["package"], fields.get("version", ""), status, start)

    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            flush()
            fields = {}
            continue
        if raw[0] in " \t" or ":" not in raw:
            continue  # continuation of a multi-line field (Description, Conffiles)
        key, value = raw.split(":", 1)
        if key.lower() == "package":
            start = number
        fields[key.lower()] = value.strip()
    flush()
    return packages


def _desktop(path: str, text: str) -> Desktop:
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.startswith("Exec="):
            try:
                words = shlex.split(raw[5:])
            except ValueError:
                words = raw[5:].split()
            # "env VAR=x prog" launches prog
            while words and (words[0] == "env" or os.path.basename(words[0]) == "env" or "=" in words[0]):
                words = words[1:]
            return Desktop(path, number, os.path.basename(words[0]) if words else "")
    return Desktop(path, 1, "")


def _processes() -> list[Process]:
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "name", "exe", "cmdline"]):
        info = proc.info
        found.append(Process(info["pid"], info["name"] or "", info["exe"] or "", " ".join(info["cmdline"] or [])))
    return found


@collector("software", reads=("dpkg status", "rpmdb.sqlite", "install folders", ".desktop launchers", "processes (live)"))
def collect_software(target: Target) -> Software:
    fs = target.fs
    dpkg = fs.exists(DPKG_STATUS)
    try:
        packages = parse_dpkg_status(fs.read_text(DPKG_STATUS)) if dpkg else {}
    except OSError as exc:
        raise CollectError(f"cannot read {DPKG_STATUS}: {exc.strerror}") from None
    rpm = rpmdb.installed(fs)
    if rpm is not None:
        packages.update({name: Package(name, version, "installed", 0, rpm[1]) for name, version in rpm[0].items()
                         if name not in packages})
    paths = sorted({p for folder in INSTALL_FOLDERS for p in fs.glob(f"{folder}/*")})
    desktops = []
    for pattern in DESKTOP_GLOBS:
        for path in fs.glob(pattern):
            try:
                desktops.append(_desktop(path, fs.read_text(path)))
            except OSError:
                continue  # a dangling or unreadable launcher starts nothing
    return Software(target.live, packages, dpkg, rpm[1] if rpm else "", paths, desktops,
                    _processes() if target.live else [])
