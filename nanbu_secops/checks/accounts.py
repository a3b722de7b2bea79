"""Checks on local accounts (article 26: accounts belong to named, current people)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from nanbu_secops.checks import Outcome, check, failed, passed
from nanbu_secops.collect.accounts import Passwd, PasswdEntry

NOLOGIN_NAMES = frozenset({"nologin", "false"})

INTERACTIVE_PARAMS = {
    "uid_min": {"type": "integer", "minimum": 1},
    "nologin_shells": {"type": "array", "items": {"type": "string"}},
}


def interactive(passwd: Passwd, uid_min: int, nologin_shells: Iterable[str]) -> list[PasswdEntry]:
    """Accounts a person can log in to: root, or UID >= uid_min, with a shell that allows login.

    An empty shell field means /bin/sh to login(1), so it counts as interactive.
    """
    blocked = set(nologin_shells)
    return [e for e in passwd.entries
            if (e.uid == 0 or e.uid >= uid_min)
            and e.shell not in blocked and os.path.basename(e.shell) not in NOLOGIN_NAMES]


@check("uid0_only", facts=("passwd",), params={
    "type": "object", "additionalProperties": False, "required": ["allowed"],
    "properties": {"allowed": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
})
def uid0_only(passwd: Passwd, *, allowed: Sequence[str]) -> Outcome:
    """Only the allowed names (root) may have UID 0: any other holds every privilege unseen."""
    extra = [{"account": e.name, "line": e.line} for e in passwd.entries
             if e.uid == 0 and e.name not in allowed]
    if extra:
        return failed(uid0_accounts=extra, allowed=list(allowed))
    return passed(uid0_accounts=[e.name for e in passwd.entries if e.uid == 0], allowed=list(allowed))
