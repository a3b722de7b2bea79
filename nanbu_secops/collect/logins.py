"""Who logged in to this terminal, and when: wtmp sessions plus lastlog / lastlog2 last logins.

Article 26 asks for regular checks of the login terminals' security, and an account nobody has
used for months is the classic way in. Three records exist, each optional:

* ``/var/log/wtmp`` (and its plain rotation ``wtmp.1``): every login and logout, read like
  ``last`` reads it, so an operator can compare the fact with ``last -F`` on the terminal;
* ``/var/log/lastlog``: one record per UID (sparse, indexed by UID), never rotated, so it still
  knows logins older than the oldest wtmp;
* lastlog2's SQLite database (util-linux >= 2.40), which replaces lastlog on newer systems.

Every file is read through ``target.fs``: the target may be a mounted disk image.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sqlite3
import struct
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from nanbu_secops.collect import CollectError, Target, collector
from nanbu_secops.collect.accounts import PASSWD, parse_passwd
from nanbu_secops.timeutil import COUNTY_TZ

WTMP = "/var/log/wtmp"
WTMP_FILES = (f"{WTMP}.1", WTMP)  # oldest first: records are replayed in the order written
LASTLOG = "/var/log/lastlog"
LASTLOG2 = "/var/lib/lastlog/lastlog2.db"
WTMPDB = "/var/lib/wtmpdb/wtmp.db"
LOG_DIR = "/var/log"

# struct utmp of glibc on x86_64/aarch64 (ut_tv is two int32 there, for 32-bit compatibility).
UTMP = struct.Struct("<h2xi32s4s32s256shhiii16s20s")
assert UTMP.size == 384
RUN_LVL, BOOT_TIME, USER_PROCESS, DEAD_PROCESS = 1, 2, 7, 8
KNOWN_TYPES = frozenset(range(0, 10))  # EMPTY .. ACCOUNTING

# struct lastlog: ll_time int32, ll_line[32], ll_host[256].
LASTLOG_RECORD = struct.Struct("<i32s256s")
assert LASTLOG_RECORD.size == 292


@dataclass(frozen=True)
class Session:
    """One login session from wtmp.

    ``ended_by``: "logout"; "login" (a later login took the same line without a logout, which
    ``last`` also reads as the end); "shutdown" (open at a clean shutdown: ``last``'s "down");
    "reboot" (open when the system booted again: ``last``'s "crash"); None while still open.
    """

    user: str
    start: datetime
    end: datetime | None  # None: still logged in, as far as wtmp tells
    terminal: str  # ut_host if set, else the remote address, else "local:" + line
    line: str
    address: str | None  # remote address as text (IPv4 or IPv6), None when not recorded
    ended_by: str | None
    source: str = "wtmp"


@dataclass(frozen=True)
class LastLogin:
    user: str
    time: datetime
    terminal: str
    line: str
    source: str  # "wtmp" | "lastlog" | "lastlog2"


@dataclass(frozen=True)
class Logins:
    """Login evidence of a target. ``sources`` empty means there is none: NOT "nobody logged in"."""

    sessions: list[Session]  # from wtmp, by start time
    last: dict[str, LastLogin]  # per user, the latest across all sources
    sources: list[str]  # target paths actually read, e.g. ["/var/log/wtmp", "/var/log/lastlog"]
    notes: list[str]  # partial records, unreadable or corrupt sources
    earliest: datetime | None  # wtmp evidence starts here: "no login since at least" this time

    def sessions_of(self, user: str) -> list[Session]:
        return [s for s in self.sessions if s.user == user]


def county_time(epoch: int) -> datetime:
    """Epoch seconds as a naive Asia/Shanghai time, as the account rules compare them."""
    return datetime.fromtimestamp(epoch, COUNTY_TZ).replace(tzinfo=None)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def address_text(raw: bytes) -> str | None:
    """ut_addr_v6: IPv4 in the first 4 bytes when the other 12 are zero, else IPv6."""
    if not any(raw):
        return None
    if not any(raw[4:]):
        return str(ipaddress.IPv4Address(raw[:4]))
    address = ipaddress.IPv6Address(raw)
    return str(address.ipv4_mapped or address)


@dataclass(frozen=True)
class _Record:
    type: int
    pid: int
    line: str
    user: str
    host: str
    address: str | None
    time: datetime


def parse_wtmp(data: bytes, path: str, notes: list[str]) -> list[_Record]:
    """Decode utmp records; a trailing partial record or an unknown type is noted and skipped."""
    whole = len(data) - len(data) % UTMP.size
    if whole != len(data):
        notes.append(f"{path}: {len(data) - whole} trailing bytes are a partial record, ignored")
    records: list[_Record] = []
    unknown = bad_time = 0
    for fields in UTMP.iter_unpack(memoryview(data)[:whole]):
        ut_type, pid, line, _id, user, host, _term, _exit, _session, sec, _usec, addr, _ = fields
        if ut_type not in KNOWN_TYPES:
            unknown += 1
            continue
        try:
            when = county_time(sec)
        except (OverflowError, OSError, ValueError):
            bad_time += 1
            continue
        records.append(_Record(ut_type, pid, _text(line), _text(user), _text(host),
                               address_text(addr), when))
    if unknown:
        notes.append(f"{path}: {unknown} records of unknown type ignored (corrupt file?)")
    if bad_time:
        notes.append(f"{path}: {bad_time} records with an impossible time ignored")
    return records


def _kind(rec: _Record) -> str | None:
    """What a record means to ``last``, including its fixes for writers that fill types badly.

    Special lines start with "~": user "reboot" is a boot, "shutdown" a shutdown. A runlevel
    change to 0 or 6 (the runlevel is the low byte of ut_pid) is a shutdown too. Otherwise a
    record with a user and a line is a login (unless it is getty's "LOGIN" or a logout), and
    one without a user is a logout; "date" records mark clock changes.
    """
    if rec.line.startswith("~"):
        if rec.user.startswith("shutdown"):
            return "shutdown"
        if rec.user.startswith("reboot"):
            return "boot"
    elif rec.user.startswith("date") and rec.line[:1] in ("|", "{"):
        return None
    elif not rec.user or rec.type == DEAD_PROCESS:
        return "logout" if rec.line else None
    elif rec.line and (rec.type == USER_PROCESS or not rec.user.startswith("LOGIN")):
        return "login"
    if rec.type == BOOT_TIME:
        return "boot"
    if rec.type == RUN_LVL and rec.pid & 0xFF in (ord("0"), ord("6")):
        return "shutdown"
    return None


def replay(records: list[_Record]) -> list[Session]:
    """Pair logins with what ended them, the way util-linux ``last`` does.

    A logout ends the open session on its line; ``last`` matches by line alone, so a differing
    pid still ends it (sshd even writes two logout records per session: the first one counts).
    A new login on a line ends the session still open there. A shutdown ends every open
    session, and so does a boot with sessions still open (a crash: they end at the boot).
    """
    done: list[Session] = []
    open_: dict[str, _Record] = {}

    def close(line: str, end: datetime, why: str) -> None:
        rec = open_.pop(line)
        done.append(Session(rec.user, rec.time, end, _terminal(rec), rec.line, rec.address, why))

    for rec in records:
        kind = _kind(rec)
        if kind == "login":
            if rec.line in open_:
                close(rec.line, rec.time, "login")
            open_[rec.line] = rec
        elif kind == "logout":
            if rec.line in open_:
                close(rec.line, rec.time, "logout")
        elif kind in ("boot", "shutdown"):
            for line in list(open_):
                close(line, rec.time, "reboot" if kind == "boot" else "shutdown")
    for rec in open_.values():
        done.append(Session(rec.user, rec.time, None, _terminal(rec), rec.line, rec.address, None))
    done.sort(key=lambda s: s.start)  # stable: same-second logins keep the order written
    return done


def _terminal(rec: _Record) -> str:
    return rec.host or rec.address or f"local:{rec.line}"


def _read_wtmp(target: Target, sources: list[str], notes: list[str]) -> tuple[list[_Record], datetime | None]:
    records: list[_Record] = []
    earliest: datetime | None = None
    for path in WTMP_FILES:
        real = target.fs.resolve(path)
        if not real.exists():
            continue
        try:
            data = real.read_bytes()
        except OSError as exc:
            notes.append(f"{path}: unreadable ({exc.strerror or exc})")
            continue
        sources.append(path)
        found = parse_wtmp(data, path, notes)
        if earliest is None and found:
            earliest = found[0].time
        elif earliest is None and not data:
            # Nothing was written since the file was created (rotated): it covers the time
            # since then. Its ctime, as `last` says "wtmp begins" (touch cannot set a ctime).
            earliest = county_time(int(real.stat().st_ctime))
        records += found
    if target.fs.glob(f"{WTMP}.*.gz"):
        notes.append(f"compressed rotations {WTMP}.*.gz are not read")
    return records, earliest


def _read_lastlog(target: Target, sources: list[str], notes: list[str]) -> list[LastLogin]:
    """Seek to each /etc/passwd UID's record: the file is sparse and nominally huge."""
    real = target.fs.resolve(LASTLOG)
    if not real.exists():
        return []
    try:
        passwd = parse_passwd(target.fs.read_text(PASSWD))
    except OSError as exc:
        notes.append(f"{LASTLOG}: not read, {PASSWD} is unreadable ({exc.strerror or exc})")
        return []
    owners: dict[int, list[str]] = {}
    for entry in passwd.entries:
        owners.setdefault(entry.uid, []).append(entry.name)
    found: list[LastLogin] = []
    try:
        with open(real, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            for uid, names in sorted(owners.items()):
                offset = uid * LASTLOG_RECORD.size
                if offset + LASTLOG_RECORD.size > size:
                    continue
                handle.seek(offset)
                ll_time, ll_line, ll_host = LASTLOG_RECORD.unpack(handle.read(LASTLOG_RECORD.size))
                if ll_time <= 0:
                    continue  # never logged in
                if len(names) > 1:
                    notes.append(f"{LASTLOG}: UID {uid} is shared by {', '.join(names)}; "
                                 f"its record is attributed to {names[0]}")
                line, host = _text(ll_line), _text(ll_host)
                try:
                    when = county_time(ll_time)
                except (OverflowError, OSError, ValueError):
                    notes.append(f"{LASTLOG}: impossible time {ll_time} for UID {uid}, ignored")
                    continue
                found.append(LastLogin(names[0], when, host or f"local:{line}", line, "lastlog"))
    except OSError as exc:
        notes.append(f"{LASTLOG}: unreadable ({exc.strerror or exc})")
        return []
    sources.append(LASTLOG)
    return found


def _read_lastlog2(target: Target, sources: list[str], notes: list[str]) -> list[LastLogin]:
    """Opened read-only AND immutable: no lock, no -wal or -shm, nothing written to the target."""
    real = target.fs.resolve(LASTLOG2)
    if not real.exists():
        return []
    found: list[LastLogin] = []
    try:
        uri = f"file:{quote(str(real))}?mode=ro&immutable=1"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            rows = db.execute("SELECT Name, Time, TTY, RemoteHost FROM Lastlog2").fetchall()
    except sqlite3.Error as exc:
        notes.append(f"{LASTLOG2}: unusable ({exc})")
        return []
    for name, time, tty, remote in rows:
        if not name or not isinstance(time, int) or time <= 0:
            continue
        try:
            when = county_time(time)
        except (OverflowError, OSError, ValueError):
            notes.append(f"{LASTLOG2}: impossible time {time} for {name}, ignored")
            continue
        tty, remote = str(tty or ""), str(remote or "")
        found.append(LastLogin(str(name), when, remote or f"local:{tty}", tty, "lastlog2"))
    sources.append(LASTLOG2)
    return found


@collector("logins", reads=("wtmp", "lastlog", "lastlog2"))
def collect(target: Target) -> Logins:
    sources: list[str] = []
    notes: list[str] = []
    records, earliest = _read_wtmp(target, sources, notes)
    sessions = replay(records)
    last: dict[str, LastLogin] = {}
    candidates = [LastLogin(r.user, r.time, _terminal(r), r.line, "wtmp")
                  for r in records if _kind(r) == "login"]
    candidates += _read_lastlog(target, sources, notes)
    candidates += _read_lastlog2(target, sources, notes)
    for login in candidates:  # on a tie the earlier source (wtmp: it has the address) stays
        if login.user not in last or login.time > last[login.user].time:
            last[login.user] = login
    if target.fs.exists(WTMPDB) and not target.fs.exists(WTMP):
        notes.append(f"{WTMPDB} (wtmpdb) exists but is not read; no {WTMP}")
    if not sources:
        # Login records that exist but cannot be used, or a log directory without any of them
        # (wiped records are how an intrusion hides), must not pass for "nobody logged in".
        if notes:
            raise CollectError("no usable login record: " + "; ".join(notes))
        if target.fs.exists(LOG_DIR):
            raise CollectError(f"no login record on the target: none of {WTMP}, {LASTLOG}, {LASTLOG2}")
        notes.append(f"no {LOG_DIR} on the target: no login evidence")
    return Logins(sessions, last, sources, notes, earliest)
