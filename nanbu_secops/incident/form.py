"""The incident report form (article 27): what the county office's 网络安全事件报告 asks for.

Categories and grades follow the national classification of information-security incidents
(GB/Z 20986-2007: seven categories; four grades, 特别重大 I to 一般 IV). English aliases are
accepted on the command line; the form always stores the Chinese terms the office files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from nanbu_secops.timeutil import COUNTY_TZ, rfc3339

CATEGORIES = {
    "有害程序事件": ("malware",),
    "网络攻击事件": ("network-attack", "attack"),
    "信息破坏事件": ("information-destruction", "data-breach", "leak"),
    "信息内容安全事件": ("content",),
    "设备设施故障": ("equipment-failure", "equipment"),
    "灾害性事件": ("disaster",),
    "其他信息安全事件": ("other", "其他"),
}
SEVERITIES = {
    "特别重大": ("I", "critical", "特别重大事件"),
    "重大": ("II", "major", "重大事件"),
    "较大": ("III", "significant", "较大事件"),
    "一般": ("IV", "general", "一般事件"),
}
LABELS = {  # report field → (zh, en)
    "title": ("事件名称", "Incident"),
    "discovered_at": ("发现时间", "Discovered at"),
    "unit": ("单位", "Unit"),
    "category": ("类别", "Category"),
    "severity": ("级别", "Severity"),
    "measures": ("处置措施", "Measures taken"),
    "reported_at": ("上报时间", "Reported at"),
    "host": ("终端", "Terminal"),
}


def _choose(value: str, table: dict[str, tuple[str, ...]], what: str) -> str:
    folded = value.strip().lower()
    for name, aliases in table.items():
        if folded == name.lower() or folded in (alias.lower() for alias in aliases):
            return name
    raise ValueError(f"{what} {value!r} is not one of: {', '.join(table)} "
                     f"(or {', '.join(a for aliases in table.values() for a in aliases if a.isascii())})")


def category(value: str) -> str:
    return _choose(value, CATEGORIES, "category")


def severity(value: str) -> str:
    return _choose(value, SEVERITIES, "severity")


def discovered(value: str, reported: dt.datetime) -> dt.datetime:
    """An ISO 8601 time; without an offset it is county time. The future is refused."""
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"discovered-at {value!r} is not a time like 2026-11-28T09:30 or 2026-11-28 09:30+08:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=COUNTY_TZ)
    if moment > reported + dt.timedelta(minutes=5):
        raise ValueError(f"discovered-at {value!r} is in the future")
    return moment.astimezone(COUNTY_TZ)


@dataclass(frozen=True)
class IncidentForm:
    title: str
    discovered_at: dt.datetime
    unit: str
    category: str
    severity: str
    measures: str
    reported_at: dt.datetime
    host: str

    def fields(self) -> dict[str, str]:
        return {"title": self.title, "discovered_at": rfc3339(self.discovered_at), "unit": self.unit,
                "category": self.category, "severity": self.severity, "measures": self.measures,
                "reported_at": rfc3339(self.reported_at), "host": self.host}

    def as_json(self) -> dict[str, Any]:
        """English keys for programs, and the form as the office reads it under ``表单``."""
        fields = self.fields()
        return {**fields, "表单": {LABELS[key][0]: value for key, value in fields.items()}}
