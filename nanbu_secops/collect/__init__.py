"""Collectors: gather facts about a target once, for every check that needs them.

A target is a root path (``/`` for the live system, or a chroot / mounted disk image) plus, on
the live system only, what psutil and running daemons report. Each collector is registered
under a fact name; a collector that fails yields a :class:`CollectError`, which the audit turns
into an ``error`` result for the controls that need that fact while the rest still run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from nanbu_secops.collect.rootfs import RootFS


class CollectError(Exception):
    """A fact could not be gathered; the message says why, for the evidence."""


@dataclass(frozen=True)
class Target:
    """What is being audited."""

    fs: RootFS
    as_of: dt.date

    @property
    def live(self) -> bool:
        """True when auditing the running system: processes and daemons may be asked too."""
        return self.fs.live


Collector = Callable[[Target], Any]
COLLECTORS: dict[str, Collector] = {}
# Fact name -> the sources its collector reads, declared beside the collector so the README's table
# of controls (scripts/readme_tables.py) says what each control reads without a second, hand-kept copy.
READS: dict[str, tuple[str, ...]] = {"as_of": ("the as-of date (--as-of)",)}


def collector(name: str, *, reads: tuple[str, ...]) -> Callable[[Collector], Collector]:
    """Register a function that gathers fact ``name`` from a target, reading the sources ``reads`` names."""

    def register(func: Collector) -> Collector:
        if name in COLLECTORS:
            raise RuntimeError(f"collector {name!r} registered twice")
        COLLECTORS[name] = func
        READS[name] = reads
        return func

    return register


def load_all() -> dict[str, Collector]:
    """Import every collector module so the registry is complete, and return it."""
    from nanbu_secops.collect import (  # noqa: F401  (registration)
        accounts,
        antivirus,
        exemptions,
        firewall,
        ipv6,
        logindefs,
        logins,
        network,
        pam,
        paths,
        software,
        sshd,
        sudoers,
        timesync,
    )

    COLLECTORS.setdefault("as_of", lambda target: target.as_of)
    return COLLECTORS


def gather(target: Target, names: Iterable[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Collect the named facts. Returns (facts, errors) where errors maps fact name to reason."""
    registry = load_all()
    facts: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in sorted(set(names)):
        try:
            facts[name] = registry[name](target)
        except CollectError as exc:
            errors[name] = str(exc)
        except OSError as exc:
            errors[name] = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return facts, errors
