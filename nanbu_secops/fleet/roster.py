"""Staff who left or moved since last quarter and still hold platform accounts (article 8).

Article 8 asks units to close or transfer an account when its holder leaves or changes post.
Comparing last quarter's roster with this quarter's finds those people; the platform's account
export tells which of them still hold an active account of the unit they were in. Files are read
by :mod:`nanbu_secops.accounts.sources`, so every roster the account audit reads works here.

People are matched across rosters by staff number when both rows have one, else by name
(whitespace and case ignored); accounts by holder name and unit, as the account audit does.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nanbu_secops.accounts import sources
from nanbu_secops.accounts.model import ACTIVE, PlatformAccount, RowProblem, StaffRecord

GONE = ("left", "retired")


def _norm(text: str) -> str:
    return "".join(text.split()).casefold()


def _key(person: StaffRecord) -> tuple[str, str]:
    return ("id", person.staff_id) if person.staff_id else ("name", _norm(person.name))


def _find(person: StaffRecord, by_id: dict[str, StaffRecord],
          by_name: dict[str, list[StaffRecord]]) -> StaffRecord | None:
    """``person`` in the other roster: by staff number, else the same name (in the same unit first)."""
    if person.staff_id and person.staff_id in by_id:
        return by_id[person.staff_id]
    namesakes = by_name.get(_norm(person.name), [])
    candidates = [p for p in namesakes if _norm(p.unit) == _norm(person.unit)] or namesakes
    return candidates[0] if candidates else None


def _change(before: StaffRecord, now: StaffRecord | None) -> tuple[str, str | None] | None:
    """("left", None) or ("moved", new unit) for someone active last quarter; None when unchanged."""
    if now is None or now.employment in GONE:
        return "left", None
    if _norm(now.unit) != _norm(before.unit):
        return "moved", now.unit
    return None


def roster_changes(previous: Iterable[StaffRecord], current: Iterable[StaffRecord],
                   accounts: Iterable[PlatformAccount]) -> list[dict[str, Any]]:
    """People active last quarter who are gone or in another unit now, with the active accounts they
    still hold in their former unit (people without such an account are not listed)."""
    now = list(current)
    by_id = {p.staff_id: p for p in now if p.staff_id}
    by_name: dict[str, list[StaffRecord]] = {}
    for person in now:
        by_name.setdefault(_norm(person.name), []).append(person)
    held: dict[tuple[str, str], list[str]] = {}
    for account in accounts:
        if account.status == ACTIVE:
            held.setdefault((_norm(account.holder), _norm(account.unit)), []).append(account.account)
    out = []
    seen: set[tuple[str, str]] = set()
    for before in previous:
        if before.employment in GONE or _key(before) in seen:
            continue
        seen.add(_key(before))
        change = _change(before, _find(before, by_id, by_name))
        still = sorted(held.get((_norm(before.name), _norm(before.unit)), []))
        if change and still:
            out.append({"article": "8", "change": change[0], "name": before.name, "staff_id": before.staff_id,
                        "from_unit": before.unit, "to_unit": change[1], "accounts": still})
    return sorted(out, key=lambda c: (c["from_unit"], c["name"]))


def read_roster_changes(previous: Path, current: Path, accounts: Path,
                        mapping: sources.ColumnMapping | None = None) -> tuple[list[dict[str, Any]], list[RowProblem]]:
    """:func:`roster_changes` on files; rows that cannot be read are returned as problems."""
    problems: list[RowProblem] = []
    changes = roster_changes(list(sources.read_roster(previous, mapping, problems)),
                             list(sources.read_roster(current, mapping, problems)),
                             sources.read_accounts(accounts, mapping, problems))
    return changes, problems
