"""Password hygiene (article 26: 不定期更换登录口令)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from nanbu_secops.checks import COMPARE_PARAMS, Outcome, check, failed, passed, threshold
from nanbu_secops.checks.accounts import INTERACTIVE_PARAMS, interactive
from nanbu_secops.collect.accounts import Passwd, Shadow
from nanbu_secops.collect.logindefs import LoginDefs
from nanbu_secops.timeutil import days_to_date


@check("login_defs", facts=("login_defs",), params=COMPARE_PARAMS)
def login_defs(defs: LoginDefs, *, key: str, op: str, value: int) -> Outcome:
    """A numeric login.defs setting compared with the policy's threshold (last occurrence wins).

    An ageing key that is absent or negative switches its feature off (no expiry, no warning):
    that fails any threshold, with the meaning in the evidence."""
    setting = defs.get(key)
    evidence = {"key": key, "origin": setting.origin, **({"meaning": setting.meaning} if setting.meaning else {})}
    return threshold(setting.value, op, value, evidence)


@check("password_age", facts=("passwd", "shadow", "as_of"), params={
    "type": "object", "additionalProperties": False, "required": ["max_days", "uid_min", "nologin_shells"],
    "properties": {"max_days": {"type": "integer", "minimum": 1}, **INTERACTIVE_PARAMS},
})
def password_age(passwd: Passwd, shadow: Shadow, as_of: dt.date, *, max_days: int, uid_min: int,
                 nologin_shells: Sequence[str]) -> Outcome:
    """Every interactive account with a usable password changed it within ``max_days`` of as-of.

    login.defs only shapes new accounts; /etc/shadow's last-change day shows what people did.
    Locked accounts (``!``/``*``) cannot log in with a password and are listed apart.
    """
    overdue: list[dict[str, Any]] = []
    checked: list[str] = []
    locked: list[str] = []
    for entry in interactive(passwd, uid_min, nologin_shells):
        record = shadow.entries.get(entry.name)
        if record is None:
            if entry.password not in ("x", "*", "!") and not entry.password.startswith("!"):
                overdue.append({"account": entry.name, "problem": "password in /etc/passwd, no shadow entry"})
            else:
                locked.append(entry.name)
            continue
        if record.locked:
            locked.append(entry.name)
            continue
        checked.append(entry.name)
        if record.last_change is None:
            overdue.append({"account": entry.name, "problem": "password ageing disabled (empty last-change)"})
        elif record.last_change == 0:
            overdue.append({"account": entry.name, "problem": "password change forced at next login"})
        else:
            changed = days_to_date(record.last_change)
            age = (as_of - changed).days
            if age > max_days:
                overdue.append({"account": entry.name, "last_change": changed.isoformat(), "age_days": age})
            elif age < 0:
                overdue.append({"account": entry.name, "last_change": changed.isoformat(),
                                "problem": "last change lies after the as-of date"})
    evidence = {"as_of": as_of.isoformat(), "max_days": max_days, "checked": checked, "locked": locked}
    return failed(**evidence, overdue=overdue) if overdue else passed(**evidence)


@check("no_empty_password", facts=("passwd", "shadow"))
def no_empty_password(passwd: Passwd, shadow: Shadow) -> Outcome:
    """No account, interactive or not, may log in with an empty password."""
    empty = sorted({e.name for e in shadow.entries.values() if e.hash == ""}
                   | {e.name for e in passwd.entries if e.password == ""})
    if empty:
        return failed(accounts=empty)
    return passed(accounts_checked=len(passwd.entries))
