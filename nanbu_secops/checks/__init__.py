"""Checks: pure functions from facts and policy parameters to an outcome.

A check never reads a file or runs a command; it receives facts gathered by ``collect``. Each
check declares which facts it needs and a JSON Schema for its parameters, so a policy file is
validated (unknown check, wrong type, missing parameter) before anything runs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nanbu_secops.results import Status


@dataclass(frozen=True)
class Outcome:
    """What a check decided, with the evidence an operator needs to act on it."""

    status: Status
    evidence: dict[str, Any] = field(default_factory=dict)


def passed(**evidence: Any) -> Outcome:
    return Outcome(Status.PASS, evidence)


def failed(**evidence: Any) -> Outcome:
    return Outcome(Status.FAIL, evidence)


def skipped(reason: str, **evidence: Any) -> Outcome:
    return Outcome(Status.SKIP, {"reason": reason, **evidence})


def unverified(error: str, **evidence: Any) -> Outcome:
    """The facts are there but cannot settle the question (e.g. no login records at all)."""
    return Outcome(Status.ERROR, {"error": error, **evidence})


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: its function, the facts it reads and its parameter schema."""

    name: str
    func: Callable[..., Outcome]
    facts: tuple[str, ...]
    params: Mapping[str, Any]
    doc: str
    needs_id: bool = False  # called with control_id=..., for checks that honour per-control exemptions


REGISTRY: dict[str, CheckSpec] = {}

NO_PARAMS: Mapping[str, Any] = {"type": "object", "additionalProperties": False}


def check(name: str, *, facts: tuple[str, ...], params: Mapping[str, Any] = NO_PARAMS,
          needs_id: bool = False) -> Callable:
    """Register ``func`` as check ``name``; it is called as ``func(*facts, **params)``."""

    def register(func: Callable[..., Outcome]) -> Callable[..., Outcome]:
        if name in REGISTRY:
            raise RuntimeError(f"check {name!r} registered twice")
        REGISTRY[name] = CheckSpec(name, func, facts, params, (func.__doc__ or "").strip(), needs_id)
        return func

    return register


# Comparison operators a policy may use for numeric thresholds.
COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "==": operator.eq,
    "!=": operator.ne,
}

COMPARE_PARAMS: Mapping[str, Any] = {
    "type": "object",
    "required": ["key", "op", "value"],
    "additionalProperties": False,
    "properties": {
        "key": {"type": "string", "minLength": 1},
        "op": {"enum": list(COMPARATORS)},
        "value": {"type": "integer"},
    },
}


def threshold(actual: str | None, op: str, value: int, evidence: dict[str, Any],
              extra_ok: bool = True) -> Outcome:
    """Compare a configured number with the policy's threshold; unset or non-numeric fails."""
    evidence = {**evidence, "value": actual, "required": f"{op} {value}"}
    if actual is None:
        return failed(**evidence, problem="not set")
    try:
        number = int(actual)
    except ValueError:
        return failed(**evidence, problem="not a number")
    return passed(**evidence) if COMPARATORS[op](number, value) and extra_ok else failed(**evidence)


def load_all() -> dict[str, CheckSpec]:
    """Import every check module so the registry is complete, and return it."""
    from nanbu_secops.checks import accounts, antivirus, ipv6, network, pam, passwords, sshd, terminal  # noqa: F401  (registration)

    return REGISTRY
