"""The article 26 rules on hand-computed cases: calendar months, the cut day, overlaps, order."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from nanbu_secops.accounts.model import LoginEvent
from nanbu_secops.accounts.rules import ActivityScanner, dormancy_cut, is_dormant, months_before, scan

T = dt.datetime
HALF_HOUR = dt.timedelta(minutes=30)


@pytest.mark.parametrize("day, months, expected", [
    (dt.date(2026, 11, 28), 3, dt.date(2026, 8, 28)),
    (dt.date(2026, 5, 31), 3, dt.date(2026, 2, 28)),    # clamped to February's end
    (dt.date(2028, 5, 31), 3, dt.date(2028, 2, 29)),    # leap year
    (dt.date(2026, 2, 15), 3, dt.date(2025, 11, 15)),   # across the year
    (dt.date(2026, 3, 31), 1, dt.date(2026, 2, 28)),
    (dt.date(2026, 12, 31), 3, dt.date(2026, 9, 30)),
    (dt.date(2026, 1, 1), 12, dt.date(2025, 1, 1)),
])
def test_months_before(day, months, expected):
    assert months_before(day, months) == expected


CUT = dormancy_cut(dt.date(2026, 11, 28), 3)


@pytest.mark.parametrize("last, created, expected", [
    (T(2026, 8, 27, 23, 59, 59), None, True),     # the second before the cut day
    (T(2026, 8, 28, 0, 0, 0), None, False),       # the cut day itself is not dormant
    (T(2026, 11, 27, 9, 0), None, False),
    (None, T(2026, 8, 27, 12, 0), True),          # never used, created before the cut
    (None, T(2026, 8, 28, 12, 0), False),         # never used, created on the cut day
    (None, None, None),                           # never used, creation unknown: cannot say
])
def test_dormancy_boundaries(last, created, expected):
    assert T(2026, 8, 28) == CUT
    assert is_dormant(last, created, CUT) is expected


def ev(account: str, login: dt.datetime, logout: dt.datetime | None, terminal: str, row: int) -> LoginEvent:
    return LoginEvent(account, login, logout, "", terminal, row)


def scanned(events: list[LoginEvent], max_terminals: int = 3, chunk: int = 250_000) -> ActivityScanner:
    return scan(lambda: list(events), ActivityScanner(HALF_HOUR, max_terminals), chunk=chunk)


def test_overlap_by_one_second_is_sharing():
    s = scanned([ev("a", T(2026, 9, 1, 9, 0), T(2026, 9, 1, 10, 0), "pc-1", 2),
                 ev("a", T(2026, 9, 1, 9, 59, 59), T(2026, 9, 1, 11, 0), "pc-2", 3)])
    found = s.sharing("a")
    assert found is not None and found.overlaps == 1
    assert found.pairs[0]["first"]["row"] == 2 and found.pairs[0]["second"]["row"] == 3


def test_touching_end_to_start_is_not_sharing():
    s = scanned([ev("a", T(2026, 9, 1, 9, 0), T(2026, 9, 1, 10, 0), "pc-1", 2),
                 ev("a", T(2026, 9, 1, 10, 0), T(2026, 9, 1, 11, 0), "pc-2", 3)])
    assert s.sharing("a") is None


def test_missing_logout_lasts_the_session_length():
    overlapping = [ev("a", T(2026, 9, 1, 9, 0), None, "pc-1", 2), ev("a", T(2026, 9, 1, 9, 29), None, "pc-2", 3)]
    touching = [ev("a", T(2026, 9, 1, 9, 0), None, "pc-1", 2), ev("a", T(2026, 9, 1, 9, 30), None, "pc-2", 3)]
    assert scanned(overlapping).sharing("a").overlaps == 1
    assert scanned(touching).sharing("a") is None


def test_same_terminal_overlap_is_not_sharing():
    s = scanned([ev("a", T(2026, 9, 1, 9, 0), T(2026, 9, 1, 12, 0), "pc-1", 2),
                 ev("a", T(2026, 9, 1, 10, 0), T(2026, 9, 1, 11, 0), "pc-1", 3)])
    assert s.sharing("a") is None


def test_other_accounts_do_not_interfere():
    s = scanned([ev("a", T(2026, 9, 1, 9, 0), T(2026, 9, 1, 12, 0), "pc-1", 2),
                 ev("b", T(2026, 9, 1, 10, 0), T(2026, 9, 1, 11, 0), "pc-2", 3)])
    assert s.sharing("a") is None and s.sharing("b") is None


def test_too_many_terminals_in_one_day():
    day = [ev("a", T(2026, 9, 1, h, 0), T(2026, 9, 1, h, 10), f"pc-{h}", h) for h in (8, 10, 12, 14)]
    assert scanned(day, max_terminals=3).sharing("a").busy_days == [
        {"day": "2026-09-01", "terminals": ["pc-10", "pc-12", "pc-14", "pc-8"]}]
    assert scanned(day, max_terminals=4).sharing("a") is None
    # the same four terminals spread over two days stay within the limit
    spread = day[:2] + [ev("a", T(2026, 9, 2, 9, 0), None, "pc-12", 20), ev("a", T(2026, 9, 2, 11, 0), None, "pc-14", 21)]
    assert scanned(spread, max_terminals=3).sharing("a") is None


def test_pairs_are_capped_but_all_counted():
    events = [ev("a", T(2026, 9, 1, 9, 0), T(2026, 9, 1, 18, 0), "pc-0", 1)]
    events += [ev("a", T(2026, 9, 1, 9, i), T(2026, 9, 1, 9, i, 30), f"pc-{i}", i + 1) for i in range(1, 40)]
    found = scanned(events, max_terminals=100).sharing("a")
    assert found.overlaps == 39 and len(found.pairs) == 20


def test_order_of_the_log_does_not_change_the_result():
    rng = random.Random(7)
    events = []
    for row in range(2, 3000):
        start = T(2026, 9, 1) + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 10))
        logout = None if rng.random() < 0.2 else start + dt.timedelta(minutes=rng.randrange(1, 90))
        events.append(ev(f"u{rng.randrange(40)}", start, logout, f"pc-{rng.randrange(6)}", row))
    ordered = sorted(events, key=lambda e: (e.login, e.row))
    reference = scanned(ordered)
    for variant in (list(reversed(ordered)), rng.sample(events, len(events))):
        got = scanned(variant, chunk=500)  # several spilled chunks
        for account in reference.states:
            assert got.last_login(account) == reference.last_login(account)
            assert got.sharing(account) == reference.sharing(account)
    assert reference.events == len(events)
