"""Calendar quarters in the county's zone (article 29: inspections are quarterly).

A quarter is a half-open interval [start, end) of Asia/Shanghai time; runs are stored with their
UTC epoch, so the bounds are given as epoch seconds too: "2026Q4" starts on 2026-10-01 00:00
in Nanbu, which is 2026-09-30 16:00 UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from nanbu_secops.timeutil import COUNTY_TZ

_LABEL = re.compile(r"(\d{4})\s*[Qq]([1-4])")


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int              # 1..4

    @property
    def label(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def start(self) -> dt.datetime:
        """Midnight of the quarter's first day, aware, in the county's zone."""
        return dt.datetime(self.year, 3 * self.number - 2, 1, tzinfo=COUNTY_TZ)

    @property
    def end(self) -> dt.datetime:
        """The next quarter's start: the interval is half-open."""
        return self.next().start

    @property
    def start_utc(self) -> int:
        return int(self.start.timestamp())

    @property
    def end_utc(self) -> int:
        return int(self.end.timestamp())

    @classmethod
    def of(cls, moment: dt.datetime) -> Quarter:
        """The quarter ``moment`` (aware) falls in, in the county's zone: 2026-12-31 16:30 UTC is
        already 2027Q1 there."""
        local = moment.astimezone(COUNTY_TZ)
        return cls(local.year, (local.month - 1) // 3 + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)


def parse(text: str) -> Quarter:
    """``2026Q4`` (also ``2026q4``) -> Quarter; ValueError with a plain message otherwise."""
    found = _LABEL.fullmatch(text.strip())
    if found is None or int(found.group(1)) < 1970:
        raise ValueError(f"not a quarter in YYYYQn form (e.g. 2026Q4): {text!r}")
    return Quarter(int(found.group(1)), int(found.group(2)))

