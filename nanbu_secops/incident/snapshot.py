"""The evidence of an incident bundle: what the terminal looked like when the incident was reported.

Article 27 asks units to report incidents and keep what shows what happened. Some of it lasts
only while the system runs (processes, connections, who is logged in), some is rotated away
within days (authentication logs), and the audit's results tell what was already wrong. All of
it is gathered here as files under ``evidence/``; a bundle writer packs (and masks) them.

Each part is gathered on its own: a part that fails is listed in ``evidence/errors.json`` with
the exception, and the other parts are still written, since a half-broken terminal is exactly
where evidence is needed. Live-only parts of a target that is not the running system (a
mounted disk) are written as ``{"skipped": "not the live system"}``, so a reader sees they
were not forgotten.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import platform
import shlex
from collections.abc import Callable
from enum import Enum
from pathlib import PurePath
from typing import Any, TypeVar

from nanbu_secops import audit
from nanbu_secops.collect import Target, antivirus, authlog, logins, network, processes
from nanbu_secops.collect.rootfs import RootFS
from nanbu_secops.policy import PolicySet, load_policies
from nanbu_secops.timeutil import COUNTY_TZ, now, rfc3339

T = TypeVar("T")

HOST = "evidence/system/host.json"
PROCESSES = "evidence/system/processes.json"
CONNECTIONS = "evidence/network/connections.json"
LISTENING = "evidence/network/listening.json"
SESSIONS = "evidence/logins/sessions.json"
AUTH_LOG = "evidence/logs/auth.log"
AUTH_LOG_SOURCES = "evidence/logs/auth-sources.json"
ANTIVIRUS = "evidence/antivirus/status.json"
RESULTS = "evidence/check/results.json"
ERRORS = "evidence/errors.json"
SKIPPED = {"skipped": "not the live system"}
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")  # the first that exists, as systemd reads them


@dataclasses.dataclass(frozen=True)
class Evidence:
    path: str  # inside the bundle, always under "evidence/"
    data: bytes


def plain(value: Any) -> Any:
    """``json.dumps`` default: facts as JSON values; times as RFC 3339 in the county's zone.

    Naive times are the county's local time, as ``collect/logins`` gives them.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dt.datetime):
        return rfc3339((value if value.tzinfo else value.replace(tzinfo=COUNTY_TZ)).astimezone(COUNTY_TZ))
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not serialisable as evidence")


def to_json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True, default=plain) + "\n").encode("utf-8")


class _Book:
    """The evidence gathered so far and every part that failed."""

    def __init__(self) -> None:
        self.evidence: list[Evidence] = []
        self.errors: list[dict[str, str]] = []

    def attempt(self, part: str, func: Callable[[], T]) -> T | None:
        try:
            return func()
        except Exception as exc:  # one broken part must not cost the others
            self.errors.append({"part": part, "error": f"{type(exc).__name__}: {exc}"})
            return None

    def write(self, path: str, func: Callable[[], Any]) -> None:
        """Add the file ``path``: text as UTF-8, anything else as JSON."""
        def build() -> bytes:
            content = func()
            return content.encode("utf-8") if isinstance(content, str) else to_json(content)

        data = self.attempt(path, build)
        if data is not None:
            self.evidence.append(Evidence(path, data))


def os_release(fs: RootFS) -> dict[str, str]:
    """os-release(5) fields: ``KEY=value`` lines with shell quoting."""
    for path in OS_RELEASE:
        if fs.exists(path):
            fields = {}
            for line in fs.read_text(path).splitlines():
                key, sign, value = line.strip().partition("=")
                if sign and key and not key.startswith("#"):
                    try:
                        fields[key] = " ".join(shlex.split(value))
                    except ValueError:  # unbalanced quote: keep it as written
                        fields[key] = value
            return fields
    return {}


def _host(target: Target, days: int) -> dict[str, Any]:
    start, end = authlog.window(target.as_of, days)
    facts: dict[str, Any] = {
        "hostname": audit.hostname(target), "os_release": os_release(target.fs), "root": str(target.fs.root),
        "live": target.live, "collected_at": rfc3339(now()), "as_of": target.as_of,
        "window": {"days": days, "start": start, "end": end},
    }
    if target.live:
        import psutil

        uname = platform.uname()
        boot = psutil.boot_time()
        facts["kernel"] = {"release": uname.release, "version": uname.version, "machine": uname.machine}
        facts["boot_time"] = dt.datetime.fromtimestamp(boot, COUNTY_TZ)
        facts["uptime_seconds"] = int(now().timestamp() - boot)
    return facts


def _users_now() -> list[dict[str, Any]]:
    import psutil

    return [{"user": u.name, "terminal": u.terminal, "host": u.host, "pid": u.pid,
             "started": dt.datetime.fromtimestamp(u.started, COUNTY_TZ)} for u in psutil.users()]


def _recent_logins(target: Target, days: int) -> dict[str, Any]:
    """wtmp sessions that overlap the window (a session still open counts)."""
    start, end = (moment.replace(tzinfo=None) for moment in authlog.window(target.as_of, days))
    facts = logins.collect(target)
    return {"sessions": [s for s in facts.sessions if s.start < end and (s.end is None or s.end >= start)],
            "sources": facts.sources, "notes": facts.notes, "earliest": facts.earliest}


def _sessions(book: _Book, target: Target, days: int) -> dict[str, Any]:
    return {
        "logged_in_now": book.attempt(f"{SESSIONS}: logged in now", _users_now) if target.live else SKIPPED,
        "recent_logins": book.attempt(f"{SESSIONS}: recent logins", lambda: _recent_logins(target, days)),
        "failed_logins": book.attempt(f"{SESSIONS}: failed logins", lambda: authlog.failed_logins(target, days)),
    }


def snapshot(target: Target, *, days: int = 7, policy: PolicySet | None = None, lang: str = "zh") -> list[Evidence]:
    """Every evidence file for ``target``, covering the ``days`` days up to ``target.as_of``."""
    book = _Book()
    book.write(HOST, lambda: _host(target, days))
    if target.live:
        found = book.attempt(PROCESSES, processes.processes)
        if found is not None:
            book.write(PROCESSES, lambda: found)
        names = {p.pid: p.name for p in found.processes if p.name} if found else {}
        book.write(CONNECTIONS, lambda: {"connections": processes.connections(names)})
    else:
        book.write(PROCESSES, lambda: SKIPPED)
        book.write(CONNECTIONS, lambda: SKIPPED)
    book.write(LISTENING, lambda: SKIPPED if not target.live else network.collect_listening(target))
    book.write(SESSIONS, lambda: _sessions(book, target, days))
    excerpt = book.attempt(AUTH_LOG, lambda: authlog.collect_authlog(target, days))
    if excerpt is not None:
        book.write(AUTH_LOG, lambda: excerpt.text)
        book.write(AUTH_LOG_SOURCES, lambda: {"files": excerpt.files, "lines": excerpt.lines, "notes": excerpt.notes})
    book.write(ANTIVIRUS, lambda: antivirus.collect(target))
    book.write(RESULTS, lambda: audit.run(load_policies(None) if policy is None else policy, target,
                                          lang=lang).as_json())
    book.evidence.append(Evidence(ERRORS, to_json({"errors": book.errors})))
    return book.evidence
