"""Checks on local accounts (article 26: accounts belong to named, current people)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from typing import Any

from nanbu_secops.accounts.model import LoginEvent
from nanbu_secops.accounts.rules import ActivityScanner, dormancy_cut, is_dormant
from nanbu_secops.checks import Outcome, check, failed, passed, unverified
from nanbu_secops.collect.accounts import Passwd, PasswdEntry, Shadow, ShadowEntry
from nanbu_secops.collect.exemptions import Exemptions
from nanbu_secops.collect.logins import Logins
from nanbu_secops.timeutil import days_to_date

NOLOGIN_NAMES = frozenset({"nologin", "false"})

INTERACTIVE_PARAMS = {
    "uid_min": {"type": "integer", "minimum": 1},
    "nologin_shells": {"type": "array", "items": {"type": "string"}},
}


def interactive(passwd: Passwd, uid_min: int, nologin_shells: Iterable[str]) -> list[PasswdEntry]:
    """Accounts a person can log in to: root, or UID >= uid_min, with a shell that allows login.

    An empty shell field means /bin/sh to login(1), so it counts as interactive.
    """
    blocked = set(nologin_shells)
    return [e for e in passwd.entries
            if (e.uid == 0 or e.uid >= uid_min)
            and e.shell not in blocked and os.path.basename(e.shell) not in NOLOGIN_NAMES]


@check("uid0_only", facts=("passwd",), params={
    "type": "object", "additionalProperties": False, "required": ["allowed"],
    "properties": {"allowed": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
})
def uid0_only(passwd: Passwd, *, allowed: Sequence[str]) -> Outcome:
    """Only the allowed names (root) may have UID 0: any other holds every privilege unseen."""
    extra = [{"account": e.name, "line": e.line} for e in passwd.entries
             if e.uid == 0 and e.name not in allowed]
    if extra:
        return failed(uid0_accounts=extra, allowed=list(allowed))
    return passed(uid0_accounts=[e.name for e in passwd.entries if e.uid == 0], allowed=list(allowed))


def disabled(record: ShadowEntry | None, as_of: dt.date) -> bool:
    """Locked (``!`` before the hash) or expired on or before ``as_of``: no longer usable."""
    if record is None:
        return False
    expired = record.expire is not None and record.expire > 0 and days_to_date(record.expire) <= as_of
    return expired or record.hash.startswith("!")


LOCAL_ACCOUNT_PARAMS = {
    **INTERACTIVE_PARAMS,
    "exclude": {"type": "array", "items": {"type": "string"}},
}


@check("local_dormant", facts=("passwd", "shadow", "logins", "exemptions", "as_of"), needs_id=True, params={
    "type": "object", "additionalProperties": False, "required": ["months", "uid_min", "nologin_shells"],
    "properties": {"months": {"type": "integer", "minimum": 1}, **LOCAL_ACCOUNT_PARAMS},
})
def local_dormant(passwd: Passwd, shadow: Shadow, logins: Logins, exemptions: Exemptions, as_of: dt.date, *,
                  control_id: str, months: int, uid_min: int, nologin_shells: Sequence[str],
                  exclude: Sequence[str] = ("root",)) -> Outcome:
    """Interactive accounts not logged in since the cut (as-of minus ``months`` calendar months).

    The last login is the latest of wtmp, lastlog and lastlog2. A never-used account is dormant
    when it was created before the cut; a terminal keeps no creation date, so the day its
    password was first set (/etc/shadow) stands in, and with none the account is listed as
    unverifiable. Disabled (locked or expired) and exempted accounts are not findings.
    """
    if not logins.sources:
        return unverified("no login records on this terminal (wtmp, lastlog, lastlog2)")
    cut = dormancy_cut(as_of, months)
    dormant: list[dict[str, Any]] = []
    exempted: list[dict[str, Any]] = []
    checked: list[str] = []
    unverifiable: list[str] = []
    for entry in interactive(passwd, uid_min, nologin_shells):
        record = shadow.entries.get(entry.name)
        if entry.name in exclude or disabled(record, as_of):
            continue
        exemption = exemptions.applies(entry.name, control_id, as_of)
        if exemption is not None:
            exempted.append({"account": entry.name, "owner": exemption.owner, "expires": exemption.expires.isoformat()})
            continue
        checked.append(entry.name)
        last = logins.last.get(entry.name)
        created = (dt.datetime.combine(days_to_date(record.last_change), dt.time())
                   if record is not None and record.last_change else None)
        verdict = is_dormant(last.time if last else None, created, cut)
        if verdict is None:
            unverifiable.append(entry.name)
        elif verdict:
            dormant.append({"account": entry.name, "last_login": last.time.isoformat() if last else None,
                            "source": last.source if last else "never", "terminal": last.terminal if last else None})
    evidence = {"cut": cut.date().isoformat(), "months": months, "dormant": dormant, "exempted": exempted,
                "checked": checked, "unverifiable": unverifiable, "sources": logins.sources,
                "evidence_since": logins.earliest.isoformat() if logins.earliest else None}
    return failed(**evidence) if dormant else passed(**evidence)


@check("local_shared", facts=("logins", "exemptions", "as_of"), needs_id=True, params={
    "type": "object", "additionalProperties": False, "required": ["session_minutes", "max_terminals_per_day"],
    "properties": {"session_minutes": {"type": "integer", "minimum": 1},
                   "max_terminals_per_day": {"type": "integer", "minimum": 1}},
})
def local_shared(logins: Logins, exemptions: Exemptions, as_of: dt.date, *, control_id: str,
                 session_minutes: int, max_terminals_per_day: int) -> Outcome:
    """Signs of a lent account in wtmp: overlapping sessions from different terminals, or too
    many terminals in one day. Same rules as the platform audit."""
    if "/var/log/wtmp" not in logins.sources:
        return unverified("no wtmp on this terminal: sessions cannot be compared")
    scanner = ActivityScanner(dt.timedelta(minutes=session_minutes), max_terminals_per_day)
    for number, session in enumerate(logins.sessions, start=1):
        scanner.feed(LoginEvent(session.user, session.start, session.end, "", session.terminal, number))
    scanner.finish()
    shared: list[dict[str, Any]] = []
    exempted: list[str] = []
    for user in sorted(scanner.states):
        found = scanner.sharing(user)
        if found is None:
            continue
        if exemptions.applies(user, control_id, as_of) is not None:
            exempted.append(user)
            continue
        shared.append({"account": user, "overlaps": found.overlaps, "pairs": found.pairs, "busy_days": found.busy_days})
    evidence = {"sessions": len(logins.sessions), "shared": shared, "exempted": exempted}
    return failed(**evidence) if shared else passed(**evidence)


@check("exemptions_current", facts=("exemptions", "as_of"))
def exemptions_current(exemptions: Exemptions, as_of: dt.date) -> Outcome:
    """Every exemption from the account controls is still in force: an expired one must be
    renewed with a reason or removed, so the account is judged again."""
    expired = [{"account": e.account, "owner": e.owner, "reason": e.reason, "expires": e.expires.isoformat(),
                "line": e.line} for e in exemptions.expired(as_of)]
    evidence = {"source": exemptions.source, "exemptions": len(exemptions.entries)}
    return failed(**evidence, expired=expired) if expired else passed(**evidence)
