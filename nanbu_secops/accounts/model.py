"""Records read from the platform's and HR's exports, normalised to English values.

Times are naive datetimes in the county's zone (Asia/Shanghai, no DST since 1991): sources
convert values that carry an offset, and comparing plain datetimes is then exact and fast.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

ACTIVE, DISABLED = "active", "disabled"                       # account status
EMPLOYMENT = ("active", "left", "retired", "seconded")        # 在职 / 离职 / 退休 / 借调
ESTABLISHMENT = ("established", "contract", "temporary")      # 在编 / 聘用 / 临时


@dataclass(frozen=True, slots=True)
class PlatformAccount:
    account: str
    holder: str
    unit: str
    role: str
    status: str                      # ACTIVE or DISABLED
    created: dt.datetime | None
    last_login: dt.datetime | None
    row: int                         # 1-based row in the source file (header is row 1)


@dataclass(frozen=True, slots=True)
class LoginEvent:
    account: str
    login: dt.datetime
    logout: dt.datetime | None
    source_ip: str
    terminal: str                    # the terminal column, else the source IP
    row: int


@dataclass(frozen=True, slots=True)
class StaffRecord:
    name: str
    staff_id: str
    unit: str
    employment: str                  # one of EMPLOYMENT
    establishment: str               # one of ESTABLISHMENT
    row: int


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that could not be used; reported with file and row, skipped unless --strict."""

    source: str
    row: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.row}: {self.message}"
