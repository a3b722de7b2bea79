"""Time in the county's zone.

The regulation is administered in Asia/Shanghai time: report timestamps carry +08:00 and an
``--as-of`` date means a calendar day there, whatever zone the terminal's clock is set to.

Every "now" of the product comes from :func:`now`, so one clock decides it: the system's, or one
that :func:`use_clock` puts in place (tests pin a moment with it; nothing else reads the time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo

COUNTY_TZ = ZoneInfo("Asia/Shanghai")
EPOCH = dt.date(1970, 1, 1)

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    """The machine's clock, aware."""
    return dt.datetime.now(COUNTY_TZ)


_clock: Clock = system_clock


def now() -> dt.datetime:
    """The current time, aware, in the county's zone, from the clock in use."""
    return _clock().astimezone(COUNTY_TZ)


@contextmanager
def use_clock(clock: Clock | dt.datetime) -> Iterator[None]:
    """Take "now" from ``clock`` (a function, or an aware moment that then stands still) inside
    the block; the clock in use before is back afterwards, even on an exception."""
    global _clock
    if isinstance(clock, dt.datetime):
        if clock.tzinfo is None:
            raise ValueError("a pinned moment must be timezone-aware")
        moment = clock
        clock = lambda: moment  # noqa: E731
    before, _clock = _clock, clock
    try:
        yield
    finally:
        _clock = before


def today() -> dt.date:
    """Today's date in the county's zone."""
    return now().date()


def rfc3339(moment: dt.datetime) -> str:
    """RFC 3339 with seconds and a numeric offset, e.g. ``2026-11-28T09:30:00+08:00``."""
    return moment.isoformat(timespec="seconds")


def parse_date(text: str) -> dt.date:
    """Parse ``YYYY-MM-DD``; raise ValueError with a plain message otherwise."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date in YYYY-MM-DD form: {text!r}") from None


def days_to_date(days: int) -> dt.date:
    """Dates in /etc/shadow count days since 1970-01-01."""
    return EPOCH + dt.timedelta(days=days)
