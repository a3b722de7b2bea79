"""Run a policy against a target: select controls, gather the facts they need once, judge."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Sequence
from pathlib import Path

from nanbu_secops import __version__, checks, collect
from nanbu_secops.collect import Target
from nanbu_secops.collect.rootfs import RootFS
from nanbu_secops.errors import InputError
from nanbu_secops.policy import Control, PolicySet
from nanbu_secops.results import Report, Result, Status
from nanbu_secops.timeutil import now, rfc3339


def make_target(root: str, as_of: dt.date) -> Target:
    """A target for ``root``, refused (exit 2) when it cannot be audited at all."""
    path = Path(root)
    if not path.is_dir():
        raise InputError("--root: not a directory", root)
    if not os.access(path, os.R_OK | os.X_OK):
        raise InputError("--root: not readable", root)
    fs = RootFS(path)
    if not fs.resolve("/etc").is_dir():
        raise InputError("--root: no /etc in it, so not a system's root (is the image mounted there?)", root)
    return Target(fs, as_of)


def _names(control: Control) -> set[str]:
    """What ``--only`` may call a control: its id, its article, and for an article with an item
    (``9(2)``) the article alone (``9``)."""
    return {control.id, control.article, control.article.split("(", 1)[0]}


def select(policy: PolicySet, only: Sequence[str] = ()) -> list[Control]:
    """Enabled controls, narrowed to those whose id or article is named in ``only``."""
    controls = [c for c in policy.controls if c.enabled]
    if not only:
        return controls
    known = set().union(*(_names(c) for c in controls))
    unknown = [o for o in only if o not in known]
    if unknown:
        raise InputError(f"--only: no enabled control or article named {', '.join(unknown)} "
                         f"(controls: {', '.join(c.id for c in controls)})")
    return [c for c in controls if _names(c) & set(only)]


def hostname(target: Target) -> str:
    """The audited system's name: its /etc/hostname under a root, else this machine's."""
    if not target.live:
        try:
            name = target.fs.read_text("/etc/hostname").strip()
        except OSError:
            name = ""
        return name or str(target.fs.root)
    return socket.gethostname()


def judge(control: Control, facts: dict, errors: dict[str, str], lang: str) -> Result:
    """One control's result; a missing fact or a failing check gives ``error``, never a crash."""
    spec = checks.REGISTRY[control.check]
    missing = {name: errors[name] for name in spec.facts if name in errors}
    if missing:
        status, evidence = Status.ERROR, {"error": "; ".join(f"{k}: {v}" for k, v in missing.items())}
    else:
        try:
            extra = {"control_id": control.id} if spec.needs_id else {}
            outcome = spec.func(*(facts[name] for name in spec.facts), **control.params, **extra)
            status, evidence = outcome.status, outcome.evidence
        except Exception as exc:  # a defect in one check must not hide the other results
            status, evidence = Status.ERROR, {"error": f"check {control.check} failed: {type(exc).__name__}: {exc}"}
    return Result(control.id, control.article, control.title.get(lang), status, control.severity, evidence,
                  control.remediation.get(lang))


def run(policy: PolicySet, target: Target, only: Sequence[str] = (), lang: str = "zh") -> Report:
    controls = select(policy, only)
    needed = {name for c in controls for name in checks.REGISTRY[c.check].facts}
    facts, errors = collect.gather(target, needed)
    return Report(
        host=hostname(target), generated=rfc3339(now()), policy_version=policy.version,
        as_of=target.as_of.isoformat(), root=str(target.fs.root), lang=lang, tool_version=__version__,
        results=[judge(c, facts, errors, lang) for c in controls],
    )
