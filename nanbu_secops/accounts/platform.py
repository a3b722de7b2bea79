"""Audit the platform's accounts against its login log and the staff roster (article 26).

Accounts and the roster (tens of thousands of rows) are held in memory; the login log (millions
of rows) is streamed once through :class:`~nanbu_secops.accounts.rules.ActivityScanner`.
Thresholds, severities and actions come from the policy's variables, like every control's.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import gc
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nanbu_secops.accounts import sources
from nanbu_secops.accounts.model import ACTIVE, PlatformAccount, RowProblem, StaffRecord
from nanbu_secops.accounts.rules import ActivityScanner, dormancy_cut, is_dormant, scan
from nanbu_secops.policy import PolicySet, require_variables
from nanbu_secops.policy.model import Text
from nanbu_secops.progress import Meter

RULES = ("dormant", "shared", "not-current-staff", "unit-mismatch", "generic-name")
_TEXT = {"type": "object", "required": ["zh", "en"], "additionalProperties": False,
         "properties": {"zh": {"type": "string", "minLength": 1}, "en": {"type": "string", "minLength": 1}}}
SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["dormant_months", "session_minutes", "max_terminals_per_day", "generic_account_patterns",
                 "establishment_exempt_roles", "account_findings"],
    "properties": {
        "dormant_months": {"type": "integer", "minimum": 1},
        "session_minutes": {"type": "integer", "minimum": 1},
        "max_terminals_per_day": {"type": "integer", "minimum": 1},
        "generic_account_patterns": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "establishment_exempt_roles": {"type": "array", "items": {"type": "string"}},
        "account_findings": {
            "type": "object", "required": list(RULES), "additionalProperties": False,
            "properties": {rule: {"type": "object", "required": ["severity", "action"], "additionalProperties": False,
                                  "properties": {"severity": {"enum": ["low", "medium", "high", "critical"]},
                                                 "action": _TEXT}} for rule in RULES},
        },
    },
}


@dataclass(frozen=True)
class Settings:
    dormant_months: int
    session: dt.timedelta
    max_terminals_per_day: int
    generic_patterns: tuple[str, ...]
    exempt_roles: frozenset[str]
    severity: dict[str, str]
    action: dict[str, Text]

    @classmethod
    def from_policy(cls, policies: PolicySet) -> Settings:
        v = require_variables(policies, SETTINGS_SCHEMA)
        findings = v["account_findings"]
        return cls(v["dormant_months"], dt.timedelta(minutes=v["session_minutes"]), v["max_terminals_per_day"],
                   tuple(p.casefold() for p in v["generic_account_patterns"]),
                   frozenset(v["establishment_exempt_roles"]),
                   {r: findings[r]["severity"] for r in RULES}, {r: Text(**findings[r]["action"]) for r in RULES})


@dataclass(frozen=True)
class Finding:
    rule: str
    account: str
    holder: str
    unit: str
    severity: str
    evidence: dict[str, Any]
    action: Text

    def as_json(self, lang: str) -> dict[str, Any]:
        return {"rule": self.rule, "account": self.account, "holder": self.holder, "unit": self.unit,
                "article": "26", "severity": self.severity, "evidence": self.evidence,
                "action": self.action.get(lang)}


@dataclass
class PlatformAudit:
    as_of: dt.date
    summary: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    def as_json(self, lang: str, problem_cap: int = 1000) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "summary": self.summary,
                "findings": [f.as_json(lang) for f in self.findings],
                "problems": [str(p) for p in self.problems[:problem_cap]]}


def _norm(text: str) -> str:
    return "".join(text.split()).casefold()


def _staff_findings(account: PlatformAccount, roster: dict[str, list[StaffRecord]],
                    settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """not-current-staff and unit-mismatch for one account's holder."""
    people = roster.get(_norm(account.holder), [])
    if not people:
        return [("not-current-staff", {"reason": "holder not in the roster"})]
    same_unit = [p for p in people if _norm(p.unit) == _norm(account.unit)]
    person = (same_unit or people)[0]
    seen = {"name": person.name, "staff_id": person.staff_id, "unit": person.unit,
            "employment": person.employment, "establishment": person.establishment, "roster_row": person.row}
    out: list[tuple[str, dict[str, Any]]] = []
    if person.employment != "active":
        out.append(("not-current-staff", {"reason": f"employment is {person.employment}", "roster": seen}))
    elif person.establishment != "established" and account.role not in settings.exempt_roles:
        out.append(("not-current-staff", {"reason": f"establishment is {person.establishment}", "roster": seen}))
    if not same_unit:
        out.append(("unit-mismatch", {"account_unit": account.unit, "roster_unit": person.unit, "roster": seen}))
    return out


def _generic(account: PlatformAccount, units: set[str], patterns: tuple[str, ...]) -> dict[str, Any] | None:
    if not account.holder.strip():
        return {"reason": "no holder named"}
    if _norm(account.holder) in units:
        return {"reason": "holder is a unit's name", "holder": account.holder}
    for name, value in (("account", account.account), ("holder", account.holder)):
        value = value.casefold()
        if _any_pattern(patterns).match(value):
            pattern = next(p for p in patterns if fnmatch.fnmatchcase(value, p))
            return {"reason": f"{name} matches a generic name", "pattern": pattern}
    return None


@functools.lru_cache(maxsize=8)
def _any_pattern(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regular expression for all glob patterns: checked against every account."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns) or "(?!)")


def audit(accounts_path: Path, logins_path: Path, roster_path: Path, settings: Settings, as_of: dt.date,
          mapping: sources.ColumnMapping | None = None, strict: bool = False,
          progress: Meter | None = None) -> PlatformAudit:
    """Run every rule. The cyclic garbage collector is paused meanwhile: the audit builds
    millions of small acyclic objects, and collecting them over and over doubled its time."""
    gc.disable()
    try:
        return _audit(accounts_path, logins_path, roster_path, settings, as_of, mapping, strict, progress)
    finally:
        gc.enable()


def _audit(accounts_path: Path, logins_path: Path, roster_path: Path, settings: Settings, as_of: dt.date,
           mapping: sources.ColumnMapping | None, strict: bool, progress: Meter | None) -> PlatformAudit:
    problems: list[RowProblem] = []
    accounts = list(sources.read_accounts(accounts_path, mapping, problems, strict, progress=progress))
    roster_rows = list(sources.read_roster(roster_path, mapping, problems, strict, progress=progress))
    login_problems: list[RowProblem] = []
    started: int | None = None  # the bytes done when the log was first opened

    def open_logins():
        nonlocal started
        login_problems.clear()
        if progress is not None:
            if started is not None:  # read again, to sort it: what the pass given up read is added to the total
                progress.expect(progress.done - started)
            started = progress.done
        return sources.read_logins(logins_path, mapping, login_problems, strict, progress=progress)

    scanner = scan(open_logins, ActivityScanner(settings.session, settings.max_terminals_per_day))
    problems += login_problems

    roster: dict[str, list[StaffRecord]] = defaultdict(list)
    for person in roster_rows:
        roster[_norm(person.name)].append(person)
    units = {_norm(a.unit) for a in accounts} | {_norm(p.unit) for p in roster_rows}
    cut = dormancy_cut(as_of, settings.dormant_months)
    known = {a.account for a in accounts}
    findings: list[Finding] = []
    unverifiable: list[str] = []

    def add(rule: str, account: PlatformAccount, evidence: dict[str, Any]) -> None:
        findings.append(Finding(rule, account.account, account.holder, account.unit, settings.severity[rule],
                                {**evidence, "row": account.row}, settings.action[rule]))

    for account in accounts:
        if account.status != ACTIVE:
            continue
        logged = scanner.last_login(account.account)
        last, origin = (logged, "login log") if logged else (account.last_login, "accounts file")
        verdict = is_dormant(last, account.created, cut)
        if verdict:
            add("dormant", account, {"last_login": last.isoformat() if last else None,
                                     "last_login_from": origin if last else "never",
                                     "created": account.created.isoformat() if account.created else None,
                                     "cut": cut.date().isoformat()})
        elif verdict is None:
            unverifiable.append(account.account)
        sharing = scanner.sharing(account.account)
        if sharing:
            add("shared", account, {"overlaps": sharing.overlaps, "pairs": sharing.pairs,
                                    "busy_days": sharing.busy_days})
        for rule, evidence in _staff_findings(account, roster, settings):
            add(rule, account, evidence)
        generic = _generic(account, units, settings.generic_patterns)
        if generic:
            add("generic-name", account, generic)

    findings.sort(key=lambda f: (f.unit, f.account, RULES.index(f.rule)))
    counts = Counter(f.rule for f in findings)
    summary = {
        "accounts": len(accounts),
        "active": sum(1 for a in accounts if a.status == ACTIVE),
        "disabled": sum(1 for a in accounts if a.status != ACTIVE),
        "roster": len(roster_rows),
        "login_events": scanner.events,
        "units": len({a.unit for a in accounts}),
        "cut": cut.date().isoformat(),
        "dormant_months": settings.dormant_months,
        "findings": {rule: counts.get(rule, 0) for rule in RULES},
        "accounts_with_findings": len({f.account for f in findings}),
        "log_accounts_unknown": sorted(set(scanner.states) - known)[:100],
        "log_accounts_unknown_count": len(set(scanner.states) - known),
        "never_used_creation_unknown": unverifiable,
        "rows_skipped": len(problems),
    }
    return PlatformAudit(as_of, summary, findings, problems)
