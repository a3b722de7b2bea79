"""Item dates in the forms Chinese government list pages use (article 14's freshness).

Recognised, in text that is first NFKC-normalised (so full-width ``２０２６－１１－２８`` reads as
ASCII):

* ``2026-11-28``, ``2026/11/28``, ``2026.11.28`` (one separator, used twice);
* ``2026年11月28日`` (spaces allowed between the parts);
* ``[11-28]``, ``【11-28】``, ``(11-28)`` or a text that is only ``11-28`` / ``11月28日``, under a year
  heading (a text that is only ``2026`` or ``2026年``): the short form has no year of its own.

A general date parser (dateparser) was weighed: it reads "11-28" or "2026" alone as a date in the
current month or year, i.e. it guesses from the clock, which must not decide whether a column is
stale; these fixed forms are what the sites use, so they are matched exactly and every match is
checked as a real calendar day (2026-02-30 is no date). Years outside :data:`YEARS` are not a
publication date (a phone number, an article number) and are dropped.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field

YEARS = range(1990, 2101)
_FULL = re.compile(r"(?<![\d.])(\d{4})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{1,2})(?![\d])"
                   r"|(?<!\d)(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_SHORT = re.compile(r"[\[【(]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[\]】)]"
                    r"|^\s*(\d{1,2})\s*(?:-|/|月)\s*(\d{1,2})\s*日?\s*$")
_YEAR = re.compile(r"^\s*(\d{4})\s*年?\s*$")
MAX_TEXT = 10_000  # a text node longer than this is not a list item: only its start is read


@dataclass(frozen=True)
class Found:
    """One item date: the day and the text it was read from."""

    date: dt.date
    text: str


def _day(year: str, month: str, day: str) -> dt.date | None:
    try:
        found = dt.date(int(year), int(month), int(day))
    except ValueError:
        return None
    return found if found.year in YEARS else None


@dataclass
class Scanner:
    """Fed a page's text nodes in document order; keeps the item dates and what it could not use.

    ``rejected``: date-shaped texts that are no calendar day in :data:`YEARS`; ``yearless``: short
    dates met before any year heading."""

    found: list[Found] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    yearless: list[str] = field(default_factory=list)
    year: str | None = None

    def feed(self, text: str, in_item: bool) -> None:
        text = unicodedata.normalize("NFKC", text[:MAX_TEXT])
        heading = _YEAR.match(text)
        if heading:
            if int(heading.group(1)) in YEARS:
                self.year = heading.group(1)
            return
        if not in_item:
            return
        full = False
        for match in _FULL.finditer(text):
            full = True
            parts = match.groups()
            year, month, day = parts[0:1] + parts[2:4] if parts[0] else parts[4:7]
            self._keep(_day(year, month, day), match.group(0))
        if full:
            return
        for match in _SHORT.finditer(text):
            month, day = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
            if self.year is None:
                self.yearless.append(match.group(0).strip())
            else:
                self._keep(_day(self.year, month, day), match.group(0).strip())

    def _keep(self, day: dt.date | None, text: str) -> None:
        if day is None:
            self.rejected.append(text)
        else:
            self.found.append(Found(day, text))


def scan(texts: list[tuple[str, bool]]) -> Scanner:
    """Scan (text, inside an item element) pairs in order; for tests and callers without HTML."""
    scanner = Scanner()
    for text, in_item in texts:
        scanner.feed(text, in_item)
    return scanner
