"""What an audit produces: one result per control, and the report around them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Status(str, Enum):  # noqa: UP042 (StrEnum would change str() of a member, which reports print)
    """A control's outcome. ``error`` means it could not be evaluated: never an all-clear."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"


SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Result:
    """One control's outcome on one target, already in the report's language."""

    control: str
    article: str
    title: str
    status: Status
    severity: str
    evidence: dict[str, Any]
    remediation: str

    def as_json(self) -> dict[str, Any]:
        return {
            "control": self.control,
            "article": self.article,
            "title": self.title,
            "status": self.status.value,
            "severity": self.severity,
            "evidence": self.evidence,
            "remediation": self.remediation,
        }


@dataclass
class Report:
    """The outcome of ``check`` on one target."""

    host: str
    generated: str
    policy_version: str
    as_of: str
    root: str
    lang: str
    tool_version: str
    results: list[Result] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def clear(self) -> bool:
        """All clear: nothing failed and nothing went unverified."""
        return not any(r.status in (Status.FAIL, Status.ERROR) for r in self.results)

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "generated": self.generated,
            "policy_version": self.policy_version,
            "as_of": self.as_of,
            "root": self.root,
            "lang": self.lang,
            "tool": {"name": "nanbu-secops", "version": self.tool_version},
            "summary": {s.value: self.count(s) for s in Status},
            "results": [r.as_json() for r in self.results],
        }
