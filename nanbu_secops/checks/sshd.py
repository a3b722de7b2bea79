"""SSH daemon settings on login terminals (article 26: 定期检查登录终端的安全情况)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

from nanbu_secops.checks import COMPARATORS, COMPARE_PARAMS, Outcome, check, failed, passed, skipped, threshold
from nanbu_secops.collect.sshd import Conditional, SshdConfig, seconds

# PermitRootLogin values that refuse a root password (without-password is the old spelling).
NO_ROOT_PASSWORD = frozenset({"no", "prohibit-password", "without-password", "forced-commands-only"})
PASSWORD_METHODS = ("passwordauthentication", "kbdinteractiveauthentication")


def _base(sshd: SshdConfig) -> dict[str, Any]:
    evidence: dict[str, Any] = {"source": sshd.source}
    if sshd.source == "files":
        evidence["openssh"] = sshd.defaults.note
    if sshd.notes:
        evidence["notes"] = sshd.notes
    return evidence


def _refused(sshd: SshdConfig) -> Outcome:
    """sshd refuses to start with a configuration holding an invalid value anywhere (``sshd -t``
    fails), so none of its settings can be relied on, whatever the valid lines say."""
    return failed(**_base(sshd), invalid=sshd.invalid,
                  problem="sshd refuses this configuration (as sshd -t would): fix the lines named")


@check("sshd_root_password_login", facts=("sshd",))
def sshd_root_password_login(sshd: SshdConfig) -> Outcome:
    """Root must not be able to log in with a password, globally or in any Match block.
    ``PermitRootLogin yes`` is harmless only while every password method is off (both flags, or
    an AuthenticationMethods that lists none), so the check reads all four settings. A Match block
    is judged with the global values it inherits and its own: which connections it applies to
    cannot be known offline, so any block that lets root use a password fails.
    """
    if not sshd.installed:
        return skipped("sshd is not installed")
    if sshd.invalid:
        return _refused(sshd)
    evidence = _base(sshd)
    permit, origin = sshd.get("permitrootlogin")
    evidence["permitrootlogin"] = {"value": permit, "origin": origin}
    effective: dict[str, str | None] = {}
    for key in (*PASSWORD_METHODS, "authenticationmethods"):
        value, where = sshd.get(key)
        evidence[key] = {"value": value, "origin": where}
        effective[key] = value
    methods_on = _password_methods(effective)  # AuthenticationMethods without a password method shuts them out
    keys = (*PASSWORD_METHODS, "authenticationmethods", "permitrootlogin")
    risky = []
    for match, settings in _blocks(sshd, keys).items():
        inside = {**effective, "permitrootlogin": permit, **{k: c.value for k, c in settings.items()}}
        if (inside["permitrootlogin"] or "").lower() not in NO_ROOT_PASSWORD and _password_methods(inside):
            risky.append({"match": match, "permitrootlogin": inside["permitrootlogin"],
                          "password_methods": _password_methods(inside),
                          "origins": sorted(c.origin for c in settings.values())})
    if risky:
        evidence["match_blocks"] = risky
    if risky or ((permit or "").lower() not in NO_ROOT_PASSWORD and methods_on):
        return failed(**evidence)
    return passed(**evidence)


@check("sshd_option", facts=("sshd",), params=COMPARE_PARAMS)
def sshd_option(sshd: SshdConfig, *, key: str, op: str, value: int) -> Outcome:
    """A numeric sshd setting compared with the policy's threshold, Match blocks included."""
    if not sshd.installed:
        return skipped("sshd is not installed")
    if sshd.invalid:
        return _refused(sshd)
    actual, origin = sshd.get(key)
    violations = [{"match": c.match, "value": c.value, "origin": c.origin} for c in sshd.conditional
                  if c.key == key.lower() and not (c.value.isdigit() and COMPARATORS[op](int(c.value), value))]
    evidence = {**_base(sshd), "key": key, "origin": origin}
    if violations:
        evidence["match_blocks"] = violations
    return threshold(actual, op, value, evidence, extra_ok=not violations)


# --- password authentication ---------------------------------------------------------------------

PASSWORD_AUTH_PARAMS: Mapping[str, Any] = {
    "type": "object",
    "required": ["value"],
    "additionalProperties": False,
    "properties": {"value": {"enum": ["no", "yes"]}},
}
# AuthenticationMethods entries that ask for a password (keyboard-interactive may carry ":pam").
PASSWORD_METHOD_NAMES = ("password", "keyboard-interactive")


def _blocks(sshd: SshdConfig, keys: Sequence[str]) -> dict[str, dict[str, Conditional]]:
    """Match blocks that set any of ``keys``: criteria -> key -> the block's first setting of it."""
    blocks: dict[str, dict[str, Conditional]] = {}
    for c in sshd.conditional:
        if c.key in keys:
            blocks.setdefault(c.match, {}).setdefault(c.key, c)
    return blocks


def _password_methods(values: Mapping[str, str | None]) -> list[str]:
    """Which password methods these effective settings leave usable (empty: keys only).

    ``AuthenticationMethods`` other than ``any`` that lists no password method shuts passwords
    out whatever PasswordAuthentication says.
    """
    methods = (values.get("authenticationmethods") or "any").strip()
    if methods.lower() != "any":
        listed = {m.split(":", 1)[0].lower() for chain in methods.split() for m in chain.split(",")}
        if not listed & set(PASSWORD_METHOD_NAMES):
            return []
    return [key for key in PASSWORD_METHODS if (values.get(key) or "").lower() == "yes"]


@check("sshd_password_authentication", facts=("sshd",), params=PASSWORD_AUTH_PARAMS)
def sshd_password_authentication(sshd: SshdConfig, *, value: str) -> Outcome:
    """With ``value: no`` (staff log in with keys) no password method may be usable, globally or
    in any Match block; ``value: yes`` means the unit accepts passwords, and the state is only shown.

    Keyboard-interactive counts as a password method (through PAM it asks for the password).
    """
    if not sshd.installed:
        return skipped("sshd is not installed")
    if sshd.invalid:
        return _refused(sshd)
    keys = (*PASSWORD_METHODS, "authenticationmethods")
    settings = {key: sshd.get(key) for key in keys}
    effective = {key: found for key, (found, _) in settings.items()}
    usable = _password_methods(effective)
    evidence = {**_base(sshd), "password_methods": usable, "required": value,
                **{key: {"value": found, "origin": origin} for key, (found, origin) in settings.items()}}
    risky = []
    for match, settings in _blocks(sshd, keys).items():
        inside = {**effective, **{k: c.value for k, c in settings.items()}}
        if _password_methods(inside):
            risky.append({"match": match, "password_methods": _password_methods(inside),
                          "origins": sorted(c.origin for c in settings.values())})
    if risky:
        evidence["match_blocks"] = risky
    if value == "no" and (usable or risky):
        return failed(**evidence)
    return passed(**evidence)


# --- idle sessions ---------------------------------------------------------------------------------

IDLE_PARAMS: Mapping[str, Any] = {
    "type": "object",
    "required": ["max_seconds"],
    "additionalProperties": False,
    "properties": {"max_seconds": {"type": "integer", "minimum": 1}},
}
IDLE_KEYS = ("clientaliveinterval", "clientalivecountmax")


def _idle_problem(interval: str | None, countmax: str | None, max_seconds: int) -> tuple[int | None, str | None]:
    """(seconds until an unresponsive session is dropped, what is wrong or None)."""
    every = seconds(interval)  # a time: "5m" is 300 s, as sshd reads it
    try:
        count = int(countmax or "")
    except ValueError:
        count = None
    if every is None or count is None:
        return None, "not a number"
    if every <= 0:
        return None, "ClientAliveInterval is 0: unresponsive sessions are never dropped"
    if count <= 0:
        return None, "ClientAliveCountMax is 0: sessions are never dropped"
    return every * count, None if every * count <= max_seconds else f"longer than {max_seconds} s"


@check("sshd_idle_timeout", facts=("sshd",), params=IDLE_PARAMS)
def sshd_idle_timeout(sshd: SshdConfig, *, max_seconds: int) -> Outcome:
    """ClientAliveInterval > 0 and ClientAliveInterval x ClientAliveCountMax <= ``max_seconds``,
    globally and in every Match block (a block may set either value and inherits the other).

    sshd then drops a session whose terminal stopped answering (left, crashed, network gone) within
    the limit, instead of leaving a logged-in session open.
    """
    if not sshd.installed:
        return skipped("sshd is not installed")
    if sshd.invalid:
        return _refused(sshd)
    settings = {key: sshd.get(key) for key in IDLE_KEYS}
    values = {key: found for key, (found, _) in settings.items()}
    seconds, problem = _idle_problem(values["clientaliveinterval"], values["clientalivecountmax"], max_seconds)
    evidence: dict[str, Any] = {**_base(sshd), "timeout_seconds": seconds, "required": f"1..{max_seconds}"}
    if problem:
        evidence["problem"] = problem
    evidence.update({key: {"value": found, "origin": origin} for key, (found, origin) in settings.items()})
    risky = []
    for match, settings in _blocks(sshd, IDLE_KEYS).items():
        inside = {**values, **{k: c.value for k, c in settings.items()}}
        block_seconds, block_problem = _idle_problem(inside["clientaliveinterval"], inside["clientalivecountmax"],
                                                     max_seconds)
        if block_problem:
            risky.append({"match": match, "timeout_seconds": block_seconds, "problem": block_problem,
                          "origins": sorted(c.origin for c in settings.values())})
    if risky:
        evidence["match_blocks"] = risky
    return failed(**evidence) if problem or risky else passed(**evidence)


# --- weak algorithms -------------------------------------------------------------------------------

CATEGORIES = ("kex", "hostkey", "ciphers", "macs")
WEAK_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "required": list(CATEGORIES),
    "additionalProperties": False,
    "properties": {name: {"type": "array", "items": {"type": "string", "minLength": 1}} for name in CATEGORIES},
}
# The policy variable ``ssh-probe`` reads (the one NS26-SSH-005 uses), for require_variables; here
# and not in report/sshprobe.py, so ``policy validate`` checks it on terminals, which lack paramiko.
PROBE_POLICY_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "required": ["ssh_weak_algorithms"],
    "properties": {"ssh_weak_algorithms": dict(WEAK_SCHEMA)},
}
WEAK_PARAMS: Mapping[str, Any] = {
    "type": "object",
    "required": ["weak"],
    "additionalProperties": False,
    "properties": {"weak": WEAK_SCHEMA},
}
# The sshd keywords whose lists a client is offered or may use, and the category judging them.
KEYWORD_CATEGORY = {"kexalgorithms": "kex", "hostkeyalgorithms": "hostkey", "pubkeyacceptedalgorithms": "hostkey",
                    "ciphers": "ciphers", "macs": "macs"}


def weak_algorithms(offered: Mapping[str, Sequence[str]], weak: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """For each list in ``offered``, the names matching a pattern (fnmatch, case-sensitive) in the
    same key of ``weak``; lists with none are left out, so an empty result means nothing weak.

    Shared by the sshd check (keys are sshd keywords) and ``ssh-probe`` (keys are the KEXINIT
    categories), so a terminal's configuration and what it offers on the wire are judged alike.
    """
    found: dict[str, list[str]] = {}
    for key, names in offered.items():
        patterns = weak.get(key, ())
        hits = [name for name in names if any(fnmatch.fnmatchcase(name, p) for p in patterns)]
        if hits:
            found[key] = hits
    return found


@check("sshd_weak_algorithms", facts=("sshd",), params=WEAK_PARAMS)
def sshd_weak_algorithms(sshd: SshdConfig, *, weak: Mapping[str, Sequence[str]]) -> Outcome:
    """sshd offers no kex, host-key, cipher or MAC algorithm (and accepts no user-key signature)
    matching the policy's weak patterns, globally or in a Match block.

    Lists are the effective ones: ``sshd -T``'s, or the files' ``+``/``-``/``^`` forms resolved
    against OpenSSH's defaults, because the defaults themselves include e.g. hmac-sha1.
    """
    if not sshd.installed:
        return skipped("sshd is not installed")
    if sshd.invalid:
        return _refused(sshd)
    by_keyword = {keyword: weak[category] for keyword, category in KEYWORD_CATEGORY.items()}
    evidence = _base(sshd)
    found = weak_algorithms({k: sshd.algorithms(k) for k in KEYWORD_CATEGORY}, by_keyword)
    evidence["weak"] = {k: {"algorithms": names, "origin": sshd.get(k)[1]} for k, names in found.items()}
    risky = []
    for match, settings in _blocks(sshd, tuple(KEYWORD_CATEGORY)).items():
        for key, c in settings.items():
            names = weak_algorithms({key: sshd.algorithms(key, c.value)}, by_keyword).get(key)
            if names:
                risky.append({"match": match, "key": key, "algorithms": names, "origin": c.origin})
    if risky:
        evidence["match_blocks"] = risky
    return failed(**evidence) if found or risky else passed(**evidence)
