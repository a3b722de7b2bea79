"""Authentication records of the last days, for an incident bundle (article 27).

After an incident the first questions are who tried to log in, from where, and who succeeded.
The answers are in the authentication log that syslog writes (``/var/log/auth.log`` on Debian,
UOS and Kylin's Debian-based editions; ``/var/log/secure`` on Red Hat-style systems and Kylin
Server) and in ``/var/log/btmp``, the failed logins ``lastb`` shows.

Logs rotate: ``auth.log.1`` then ``auth.log.2.gz``...; ``secure-20261122`` (plain or gzip) with
dateext. Every one is read, oldest first, through the target's :class:`RootFS`. Classic syslog
lines carry no year ("Nov 28 09:30:01", local time, taken as the county's): a line belongs to
the latest year that does not put it after the file was last written, so December lines in a
file written in January belong to the year before. rsyslog's high-precision format carries a
full RFC 3339 time. The excerpt is capped, keeping the newest lines, so a log flooded by a
password-guessing run cannot exhaust memory.
"""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from nanbu_secops.collect import Target
from nanbu_secops.collect.logins import parse_wtmp
from nanbu_secops.timeutil import COUNTY_TZ, rfc3339

LOG_DIR = "/var/log"
AUTH_LOGS = ("auth.log", "secure")
ROTATION = r"(?:\.(?P<number>[0-9]+)|-(?P<date>[0-9]{8}))?(?:\.gz)?"
BTMP = "btmp"
BTMP_BLOCK = 16384 * 384  # whole utmp records: btmp grows by one per guessed password
MAX_ATTEMPTS = 50_000
MAX_LINES = 50_000
MAX_BYTES = 16 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024  # longer lines are cut: no syslog daemon writes them
WRAP_SLACK = dt.timedelta(days=1)  # a line may be stamped a little after the file's mtime (clock skew)

MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
SYSLOG_TIME = re.compile(rb"(?P<month>[A-Z][a-z]{2}) (?P<day>[ 0-9]?[0-9]) "
                         rb"(?P<h>[0-9]{2}):(?P<m>[0-9]{2}):(?P<s>[0-9]{2})\s")
RFC3339_TIME = re.compile(rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
                          rb"(?:Z|[+-][0-9]{2}:[0-9]{2})(?=\s)")


@dataclass(frozen=True)
class AuthLog:
    """An excerpt of the authentication log; ``files`` are the target paths read, oldest first."""

    text: str
    files: list[str]
    lines: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FailedLogin:
    """One btmp record: a login attempt that failed."""

    user: str
    time: dt.datetime  # naive, Asia/Shanghai, as collect/logins gives times
    line: str
    host: str
    address: str | None


@dataclass(frozen=True)
class FailedLogins:
    attempts: list[FailedLogin]
    sources: list[str]
    notes: list[str] = field(default_factory=list)


def window(as_of: dt.date, days: int) -> tuple[dt.datetime, dt.datetime]:
    """The ``days`` calendar days ending with ``as_of`` (county time): [start, end)."""
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), COUNTY_TZ)
    return end - dt.timedelta(days=days), end


def rotations(target: Target, name: str) -> list[str]:
    """``/var/log/NAME`` and its rotations (``NAME.1``, ``NAME.2.gz``, ``NAME-20261122[.gz]``), oldest first."""
    pattern = re.compile(re.escape(name) + ROTATION)

    def age(path: str) -> tuple[int, str, int]:
        m = pattern.fullmatch(path.rsplit("/", 1)[1])
        assert m is not None
        if m["date"]:
            return 0, m["date"], 0
        return (1, "", -int(m["number"])) if m["number"] else (2, "", 0)

    found = [path for path in target.fs.glob(f"{LOG_DIR}/{name}*")
             if pattern.fullmatch(path.rsplit("/", 1)[1]) and target.fs.resolve(path).is_file()]
    return sorted(found, key=age)


def _open(real: Path, path: str) -> IO[bytes]:
    return gzip.open(real, "rb") if path.endswith(".gz") else open(real, "rb")


def syslog_year(month: int, day: int, clock: tuple[int, int, int], written: dt.datetime) -> dt.datetime | None:
    """The time of a year-less syslog stamp in a file last written at ``written`` (aware)."""
    for year in (written.year, written.year - 1):
        try:
            moment = dt.datetime(year, month, day, *clock, tzinfo=COUNTY_TZ)
        except ValueError:  # Feb 29 outside a leap year
            continue
        if moment <= written + WRAP_SLACK:
            return moment
    return None


def line_time(line: bytes, written: dt.datetime) -> dt.datetime | None:
    """When a log line was written (aware), or None when it starts with no time stamp."""
    m = RFC3339_TIME.match(line)
    if m:
        try:
            return dt.datetime.fromisoformat(m[0].decode("ascii").replace("Z", "+00:00"))
        except ValueError:
            return None
    m = SYSLOG_TIME.match(line)
    if m and m["month"].decode() in MONTHS:
        hour, minute, second = int(m["h"]), int(m["m"]), int(m["s"])
        if hour > 23 or minute > 59 or second > 60:
            return None
        return syslog_year(MONTHS[m["month"].decode()], int(m["day"]), (hour, minute, min(second, 59)), written)
    return None


def _lines(handle: IO[bytes], cut: list[int]) -> Iterator[bytes]:
    """Lines of at most MAX_LINE_BYTES; the rest of a longer line is skipped (counted in ``cut``)."""
    while True:
        line = handle.readline(MAX_LINE_BYTES)
        if not line:
            return
        if not line.endswith(b"\n") and len(line) == MAX_LINE_BYTES:
            cut[0] += 1
            while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            line += b" [...]\n"
        yield line


class _Excerpt:
    """The newest lines added, within MAX_LINES and MAX_BYTES."""

    def __init__(self) -> None:
        self.lines: collections.deque[bytes] = collections.deque()
        self.size = self.dropped = 0

    def add(self, line: bytes) -> None:
        self.lines.append(line if line.endswith(b"\n") else line + b"\n")
        self.size += len(self.lines[-1])
        while len(self.lines) > MAX_LINES or self.size > MAX_BYTES:
            self.size -= len(self.lines.popleft())
            self.dropped += 1


def _read_log(handle: IO[bytes], path: str, written: dt.datetime, span: tuple[dt.datetime, dt.datetime],
              excerpt: _Excerpt, notes: list[str]) -> None:
    """Add the lines of one log file that fall in ``span``."""
    start, end = span
    reference = min(written, end)  # nothing in the excerpt was written after the as-of day
    keep, cut, unstamped = False, [0], 0
    try:
        for line in _lines(handle, cut):
            moment = line_time(line, reference)
            if moment is None:
                unstamped += 1
            else:
                keep = start <= moment < end
            if keep:
                excerpt.add(line)
    except (OSError, EOFError, zlib.error) as exc:
        notes.append(f"{path}: read stopped early ({exc})")
    if cut[0]:
        notes.append(f"{path}: {cut[0]} lines longer than {MAX_LINE_BYTES} bytes were cut")
    if unstamped:
        notes.append(f"{path}: {unstamped} lines without a time stamp went with the line before")


def collect_authlog(target: Target, days: int) -> AuthLog:
    """Lines of the last ``days`` days (ending with ``target.as_of``), newest kept within the caps.

    A line without a time stamp (a continuation) goes with the line before it. A file last
    written before the window holds nothing in it and is not read.
    """
    span = window(target.as_of, days)
    excerpt = _Excerpt()
    files: list[str] = []
    notes: list[str] = []
    paths = [path for name in AUTH_LOGS for path in rotations(target, name)]
    if not paths:
        notes.append(f"no {' or '.join(AUTH_LOGS)} in {LOG_DIR} on the target")
    for path in paths:
        real = target.fs.resolve(path)
        try:
            written = dt.datetime.fromtimestamp(real.stat().st_mtime, COUNTY_TZ)
            if written < span[0]:
                notes.append(f"{path}: last written {rfc3339(written)}, before the window: not read")
                continue
            handle = _open(real, path)
        except OSError as exc:
            notes.append(f"{path}: unreadable ({exc.strerror or exc})")
            continue
        files.append(path)
        with handle:
            _read_log(handle, path, written, span, excerpt, notes)
    if excerpt.dropped:
        notes.append(f"excerpt capped at {MAX_LINES} lines / {MAX_BYTES} bytes: "
                     f"the {excerpt.dropped} oldest lines within the window were left out")
    text = b"".join(excerpt.lines).decode("utf-8", errors="backslashreplace")
    return AuthLog(text, files, len(excerpt.lines), notes)


def failed_logins(target: Target, days: int) -> FailedLogins:
    """btmp records (the wtmp format) within the last ``days`` days; the newest MAX_ATTEMPTS are kept.

    Read in blocks of whole records: a password-guessing run leaves a btmp of hundreds of MB.
    """
    start, end = (moment.replace(tzinfo=None) for moment in window(target.as_of, days))
    attempts: collections.deque[FailedLogin] = collections.deque(maxlen=MAX_ATTEMPTS)
    seen = 0
    sources: list[str] = []
    notes: list[str] = []
    for path in rotations(target, BTMP):
        try:
            handle = _open(target.fs.resolve(path), path)
        except OSError as exc:
            notes.append(f"{path}: unreadable ({exc.strerror or exc})")
            continue
        sources.append(path)
        try:
            with handle:
                while block := handle.read(BTMP_BLOCK):
                    for r in parse_wtmp(block, path, notes):
                        if start <= r.time < end:
                            attempts.append(FailedLogin(r.user, r.time, r.line, r.host, r.address))
                            seen += 1
        except (OSError, EOFError, zlib.error) as exc:
            notes.append(f"{path}: read stopped early ({exc})")
    if seen > len(attempts):
        notes.append(f"{seen} failed logins in the window: the {seen - len(attempts)} oldest were left out")
    if not sources:
        notes.append(f"no {LOG_DIR}/{BTMP} on the target: failed logins are not recorded there")
    return FailedLogins(list(attempts), sources, notes)
