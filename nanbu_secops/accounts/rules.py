"""Article 26 account rules, shared by the platform audit and the terminals' own accounts.

- dormant: an active account whose last login is before the cut, ``as_of`` minus N calendar
  months (2026-11-28 -> 2026-08-28; 2026-05-31 -> 2026-02-28: the day is clamped to the month's
  end). A never-used account is dormant only when it was created before the cut.
- shared: two sessions of one account from different terminals overlap in time (a session with
  no logout lasts the policy's session length; touching end-to-start is not an overlap), or one
  account is used from more distinct terminals in one day than the policy allows.

The sharing rules stream: :class:`ActivityScanner` keeps per account only the sessions still
open at the current login time and the current day's terminals, so memory follows the number of
accounts, not the length of the log. That needs events in login-time order; :func:`scan` reads
an ordered log once and sorts anything else on disk in bounded chunks.
"""

from __future__ import annotations

import calendar
import datetime as dt
import heapq
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from nanbu_secops.accounts.model import LoginEvent

SORT_CHUNK = 250_000      # events sorted in memory at a time when the log is out of order
PAIR_CAP = 20             # overlapping pairs kept as evidence per account (all are counted)


def months_before(day: dt.date, months: int) -> dt.date:
    """``day`` minus calendar months, the day clamped to the target month's length."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def dormancy_cut(as_of: dt.date, months: int) -> dt.datetime:
    """Start of the cut day: a last login strictly before it makes an account dormant."""
    return dt.datetime.combine(months_before(as_of, months), dt.time())


def is_dormant(last_login: dt.datetime | None, created: dt.datetime | None, cut: dt.datetime) -> bool | None:
    """True/False, or None when a never-used account's creation date is unknown."""
    if last_login is not None:
        return last_login < cut
    if created is None:
        return None
    return created < cut


# A session still open: (start, end, terminal, row). Plain tuples: millions are made.
_Open = tuple[dt.datetime, dt.datetime, str, int]


class _State:
    """Per account: what one pass needs to remember. Evidence lists are made only when needed."""

    __slots__ = ("last_login", "open", "day", "day_terminals", "overlaps", "pairs", "busy_days")

    def __init__(self) -> None:
        self.last_login: dt.datetime | None = None
        self.open: list[_Open] = []
        self.day: dt.date | None = None
        self.day_terminals: set[str] | str = ""  # one terminal as a str, several as a set
        self.overlaps = 0
        self.pairs: list[dict[str, Any]] | None = None
        self.busy_days: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Sharing:
    """What the scanner found for one account."""

    overlaps: int
    pairs: list[dict[str, Any]]
    busy_days: list[dict[str, Any]]


class ActivityScanner:
    """One pass over login events in login-time order: last login and signs of sharing."""

    def __init__(self, session: dt.timedelta, max_terminals_per_day: int, pair_cap: int = PAIR_CAP):
        self.session = session
        self.max_terminals = max_terminals_per_day
        self.pair_cap = pair_cap
        self.states: dict[str, _State] = {}
        self.events = 0

    def reset(self) -> None:
        """Forget everything: the log is about to be read again from the start."""
        self.states = {}
        self.events = 0

    def feed(self, event: LoginEvent) -> None:
        # The hot loop of a multi-million-row audit: kept flat on purpose.
        self.events += 1
        states = self.states
        state = states.get(event.account)
        if state is None:
            state = states[event.account] = _State()
        start = event.login
        end = event.logout if event.logout is not None else start + self.session
        terminal = event.terminal
        last = state.last_login
        if last is None or start > last:
            state.last_login = start
        opened = state.open
        if len(opened) == 1 and opened[0][1] <= start:
            opened[0] = (start, end, terminal, event.row)  # the usual case: the last session is over
        elif opened:
            live = [o for o in opened if o[1] > start]
            for other in live:
                if other[2] != terminal:
                    self._overlap(state, other, (start, end, terminal, event.row))
            live.append((start, end, terminal, event.row))
            state.open = live
        else:
            state.open.append((start, end, terminal, event.row))
        day = start.date()
        if day != state.day:
            # Most events open a new day for their account: remember its first terminal as a
            # plain string and make a set only when a second terminal shows up that day.
            if state.day_terminals.__class__ is set and len(state.day_terminals) > self.max_terminals:
                self._close_day(state)
            state.day = day
            state.day_terminals = terminal
        elif state.day_terminals != terminal:
            if state.day_terminals.__class__ is str:
                state.day_terminals = {state.day_terminals}
            state.day_terminals.add(terminal)

    def _overlap(self, state: _State, first: _Open, second: _Open) -> None:
        state.overlaps += 1
        if state.pairs is None:
            state.pairs = []
        if len(state.pairs) < self.pair_cap:
            state.pairs.append({side: {"terminal": s[2], "login": s[0].isoformat(), "end": s[1].isoformat(),
                                       "row": s[3]} for side, s in (("first", first), ("second", second))})

    def _close_day(self, state: _State) -> None:
        if isinstance(state.day_terminals, set) and len(state.day_terminals) > self.max_terminals:
            if state.busy_days is None:
                state.busy_days = []
            state.busy_days.append({"day": state.day.isoformat(), "terminals": sorted(state.day_terminals)})

    def finish(self) -> None:
        for state in self.states.values():
            self._close_day(state)
            state.open = []
            state.day_terminals = ""

    def last_login(self, account: str) -> dt.datetime | None:
        state = self.states.get(account)
        return state.last_login if state else None

    def sharing(self, account: str) -> Sharing | None:
        """Evidence of sharing for ``account``, or None when there is none."""
        state = self.states.get(account)
        if state is None or not (state.overlaps or state.busy_days):
            return None
        return Sharing(state.overlaps, state.pairs or [], state.busy_days or [])


def _key(event: LoginEvent) -> tuple[dt.datetime, int]:
    return event.login, event.row


def scan(open_events: Callable[[], Iterable[LoginEvent]], scanner: ActivityScanner,
         chunk: int = SORT_CHUNK) -> ActivityScanner:
    """Feed every event to ``scanner`` in login-time order, with bounded memory.

    Exports are usually in ascending order and then the log is read once, straight through.
    At the first event out of order the scanner is reset and the log read again (``open_events``
    opens it afresh), sorted in chunks of ``chunk`` events spilled to temporary files and merged.
    """
    previous: dt.datetime | None = None
    feed = scanner.feed
    for event in open_events():
        # Rows count up within a file, so equal times are in (login, row) order already.
        if previous is not None and event.login < previous:
            break
        feed(event)
        previous = event.login
    else:
        scanner.finish()
        return scanner
    scanner.reset()
    for event in _sorted(open_events(), chunk):
        scanner.feed(event)
    scanner.finish()
    return scanner


def _sorted(events: Iterable[LoginEvent], chunk: int) -> Iterator[LoginEvent]:
    files: list[IO[bytes]] = []
    try:
        batch: list[LoginEvent] = []
        for event in events:
            batch.append(event)
            if len(batch) >= chunk:
                files.append(_spill(batch))
                batch = []
        batch.sort(key=_key)
        yield from heapq.merge(*(_replay(f) for f in files), iter(batch), key=_key)
    finally:
        for f in files:
            f.close()


def _spill(batch: list[LoginEvent]) -> IO[bytes]:
    batch.sort(key=_key)
    handle = tempfile.TemporaryFile(prefix="nanbu-logins-")  # noqa: SIM115 (the caller reads and closes it)
    for start in range(0, len(batch), 5000):
        pickle.dump(batch[start:start + 5000], handle, protocol=pickle.HIGHEST_PROTOCOL)
    handle.seek(0)
    return handle


def _replay(handle: IO[bytes]) -> Iterator[LoginEvent]:
    while True:
        try:
            yield from pickle.load(handle)
        except EOFError:
            return
