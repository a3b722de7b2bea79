"""SSH daemon settings on login terminals (article 26: 定期检查登录终端的安全情况)."""

from __future__ import annotations

from typing import Any

from nanbu_secops.checks import COMPARATORS, COMPARE_PARAMS, Outcome, check, failed, passed, skipped, threshold
from nanbu_secops.collect.sshd import SshdConfig

# PermitRootLogin values that refuse a root password (without-password is the old spelling).
NO_ROOT_PASSWORD = frozenset({"no", "prohibit-password", "without-password", "forced-commands-only"})
PASSWORD_METHODS = ("passwordauthentication", "kbdinteractiveauthentication")


def _base(sshd: SshdConfig) -> dict[str, Any]:
    evidence: dict[str, Any] = {"source": sshd.source}
    if sshd.notes:
        evidence["notes"] = sshd.notes
    return evidence


@check("sshd_root_password_login", facts=("sshd",))
def sshd_root_password_login(sshd: SshdConfig) -> Outcome:
    """Root must not be able to log in with a password, globally or in any Match block.

    ``PermitRootLogin yes`` is harmless only while every password method is off, so the check
    reads all three settings; a Match block that sets ``PermitRootLogin yes`` fails outright,
    since which connections it applies to cannot be known offline.
    """
    if not sshd.installed:
        return skipped("sshd is not installed")
    evidence = _base(sshd)
    permit, origin = sshd.get("permitrootlogin")
    evidence["permitrootlogin"] = {"value": permit, "origin": origin}
    methods_on = []
    for key in PASSWORD_METHODS:
        value, where = sshd.get(key)
        evidence[key] = {"value": value, "origin": where}
        if (value or "").lower() == "yes":
            methods_on.append(key)
    risky = [c for c in sshd.conditional if c.key == "permitrootlogin" and c.value.lower() == "yes"]
    if risky:
        evidence["match_blocks"] = [{"match": c.match, "value": c.value, "origin": c.origin} for c in risky]
    if risky or ((permit or "").lower() not in NO_ROOT_PASSWORD and methods_on):
        return failed(**evidence)
    return passed(**evidence)


@check("sshd_option", facts=("sshd",), params=COMPARE_PARAMS)
def sshd_option(sshd: SshdConfig, *, key: str, op: str, value: int) -> Outcome:
    """A numeric sshd setting compared with the policy's threshold, Match blocks included."""
    if not sshd.installed:
        return skipped("sshd is not installed")
    actual, origin = sshd.get(key)
    violations = [{"match": c.match, "value": c.value, "origin": c.origin} for c in sshd.conditional
                  if c.key == key.lower() and not (c.value.isdigit() and COMPARATORS[op](int(c.value), value))]
    evidence = {**_base(sshd), "key": key, "origin": origin}
    if violations:
        evidence["match_blocks"] = violations
    return threshold(actual, op, value, evidence, extra_ok=not violations)
