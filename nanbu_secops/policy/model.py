"""The in-memory form of a validated policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LANGS = ("zh", "en")


@dataclass(frozen=True)
class Text:
    """Bilingual text; Chinese is the default report language."""

    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


@dataclass(frozen=True)
class Control:
    id: str
    article: str
    title: Text
    severity: str
    check: str
    params: dict[str, Any]
    rationale: Text
    remediation: Text
    enabled: bool
    source: str  # "file:line" where the control is defined


@dataclass(frozen=True)
class Policy:
    id: str
    version: str
    title: Text
    path: str
    variables: dict[str, Any]
    variable_lines: dict[str, int]
    controls: tuple[Control, ...]


@dataclass(frozen=True)
class PolicySet:
    policies: tuple[Policy, ...]

    @property
    def controls(self) -> list[Control]:
        return [c for p in self.policies for c in p.controls]

    def variables(self, names: set[str]) -> tuple[dict[str, Any], Policy]:
        """The first policy's variables that define all of ``names`` (for commands beside ``check``)."""
        for policy in self.policies:
            if names <= policy.variables.keys():
                return policy.variables, policy
        raise LookupError(", ".join(sorted(names)))

    @property
    def version(self) -> str:
        """``id@version`` of each policy, comma-joined: what the results were judged against."""
        return ",".join(f"{p.id}@{p.version}" for p in self.policies)
