"""Running processes and open sockets of the live system, for an incident bundle (article 27).

What ran and what it talked to is lost at the next reboot, so it is written down first. Each
process comes with the sha256 of its executable, read through ``/proc/PID/exe``: that is the
file the process runs even when it has been replaced or deleted on disk since (a common way
malware hides), and a deleted one is said so. Each distinct file is hashed once.

Processes start and end during the walk, and some refuse to be inspected: a process that is
gone is noted, a field that cannot be read is null with the reason, and the walk goes on.
Only the live system has these facts; they are not registered as collectors of the audit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nanbu_secops.collect import CollectError
from nanbu_secops.timeutil import COUNTY_TZ, rfc3339

MAX_HASH_BYTES = 512 * 1024 * 1024
DELETED = " (deleted)"  # the kernel's suffix on /proc/PID/exe of an unlinked file
FIELDS = ("ppid", "username", "name", "exe", "cmdline", "create_time", "status")


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int | None
    user: str | None
    name: str | None
    exe: str | None
    cmdline: list[str] | None
    create_time: str | None  # RFC 3339, +08:00
    status: str | None
    exe_sha256: str | None
    unreadable: dict[str, str] = field(default_factory=dict)  # field -> why it is null


@dataclass(frozen=True)
class Processes:
    processes: list[ProcessInfo]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Address:
    ip: str
    port: int


@dataclass(frozen=True)
class Connection:
    family: str  # "inet" or "inet6"
    type: str  # "tcp" or "udp"
    laddr: Address | None
    raddr: Address | None
    status: str
    pid: int | None
    process: str | None


def _sha256(pid: int, exe: str) -> tuple[str | None, str]:
    """The hash of the file process ``pid`` runs, or None and why not."""
    reason = ""
    for path in (f"/proc/{pid}/exe", exe):
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > MAX_HASH_BYTES:
                    return None, f"not hashed: {size} bytes, over {MAX_HASH_BYTES}"
                return hashlib.file_digest(handle, "sha256").hexdigest(), ""
        except OSError as exc:
            reason = f"unreadable: {exc.strerror or exc}"
    return None, reason


def _identity(pid: int) -> tuple[int, int] | None:
    """The executable file's device and inode, so each distinct file is hashed once."""
    try:
        info = os.stat(f"/proc/{pid}/exe")
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _read(proc: Any, name: str, unreadable: dict[str, str]) -> Any:
    """One field of a process; None (and the reason) when denied. A vanished process raises."""
    import psutil

    try:
        return getattr(proc, name)()
    except psutil.ZombieProcess:
        unreadable[name] = "zombie process"
    except psutil.AccessDenied:
        unreadable[name] = "access denied"
    return None


def _process(pid: int, hashes: dict[Any, tuple[str | None, str]]) -> ProcessInfo:
    import psutil

    proc = psutil.Process(pid)
    unreadable: dict[str, str] = {}
    with proc.oneshot():
        values = {name: _read(proc, name, unreadable) for name in FIELDS}
    exe = values["exe"] or None  # kernel threads have no executable
    digest = None
    if exe:
        try:
            deleted = os.readlink(f"/proc/{pid}/exe").endswith(DELETED)
        except OSError:
            deleted = False
        key = _identity(pid) or exe
        if key not in hashes:
            hashes[key] = _sha256(pid, exe)
        digest, why = hashes[key]
        if why:
            unreadable["exe_sha256"] = why
        if deleted:
            unreadable["exe"] = "deleted from disk since it was started (hashed through /proc)"
    created = values["create_time"]
    return ProcessInfo(
        pid=pid, ppid=values["ppid"], user=values["username"], name=values["name"], exe=exe,
        cmdline=values["cmdline"], status=values["status"], exe_sha256=digest, unreadable=unreadable,
        create_time=rfc3339(dt.datetime.fromtimestamp(created, COUNTY_TZ)) if created is not None else None)


def processes() -> Processes:
    """Every process of the live system, by pid."""
    import psutil

    found: list[ProcessInfo] = []
    notes: list[str] = []
    hashes: dict[Any, tuple[str | None, str]] = {}
    for pid in psutil.pids():
        try:
            found.append(_process(pid, hashes))
        except psutil.NoSuchProcess:
            notes.append(f"pid {pid} ended during the walk")
        except psutil.AccessDenied as exc:
            notes.append(f"pid {pid}: access denied ({exc})")
    return Processes(found, notes)


def _address(addr: Any) -> Address | None:
    return Address(addr.ip, addr.port) if addr else None


def connections(names: Mapping[int, str] | None = None) -> list[Connection]:
    """Internet sockets of the live system with their process; ``names`` maps pids already known."""
    import psutil

    try:
        sockets = psutil.net_connections(kind="inet")
    except psutil.AccessDenied as exc:
        raise CollectError(f"listing sockets needs root: {exc}") from None
    known = dict(names or {})
    found = []
    for conn in sockets:
        if conn.pid and conn.pid not in known:
            with contextlib.suppress(psutil.Error):
                known[conn.pid] = psutil.Process(conn.pid).name()
        found.append(Connection(
            family="inet6" if conn.family == socket.AF_INET6 else "inet",
            type="tcp" if conn.type == socket.SOCK_STREAM else "udp",
            laddr=_address(conn.laddr), raddr=_address(conn.raddr), status=conn.status,
            pid=conn.pid, process=known.get(conn.pid) if conn.pid else None))
    return sorted(found, key=lambda c: (c.type, c.family, c.laddr.port if c.laddr else 0, c.pid or 0))
