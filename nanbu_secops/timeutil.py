"""Time in the county's zone.

The regulation is administered in Asia/Shanghai time: report timestamps carry +08:00 and an
``--as-of`` date means a calendar day there, whatever zone the terminal's clock is set to.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

COUNTY_TZ = ZoneInfo("Asia/Shanghai")
EPOCH = dt.date(1970, 1, 1)


def now() -> dt.datetime:
    """The current time, aware, in the county's zone."""
    return dt.datetime.now(COUNTY_TZ)


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
