"""Password complexity and failed-login lockout in the PAM stacks (GB/T 22239-2019 8.1.4.1 a and b,
which article 26's passwords and terminals imply), for both platform families.

A stack file that exists must carry the control itself: on Red Hat-style systems ``passwd`` and
local logins go through system-auth while sshd goes through password-auth, so one weak file is a
way around the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nanbu_secops.checks import Outcome, check, failed, passed, unverified
from nanbu_secops.collect.pam import ModuleUse, Option, PamFacts, PamLine, Stack

#: libpwquality's and pam_cracklib's built-in values when neither file nor argument sets them.
PWQUALITY_DEFAULTS = {"minlen": 8, "dcredit": 0, "ucredit": 0, "lcredit": 0, "ocredit": 0, "minclass": 0,
                      "enforcing": 1}
CRACKLIB_DEFAULTS = {"minlen": 9, "dcredit": 1, "ucredit": 1, "lcredit": 1, "ocredit": 1, "minclass": 0}
#: Neither module accepts a minimum below 6 (pwquality.conf(5); pam_cracklib's hard-coded floor).
MIN_LENGTH_FLOOR = 6
CREDITS = ("dcredit", "ucredit", "lcredit", "ocredit")
#: pam_faillock's built-in deny and unlock_time (faillock.conf(5)); pam_tally2 never denies without deny=.
FAILLOCK_DEFAULTS = {"deny": 3, "unlock_time": 600}


def _number(options: Mapping[str, Option], name: str, default: int) -> tuple[int | None, str]:
    """(value, origin) of an integer setting; (None, origin) when it is not an integer."""
    if name not in options:
        return default, "built-in default"
    option = options[name]
    try:
        return int(option.value, 10), option.origin
    except ValueError:
        return None, option.origin


def _fatal(rule: PamLine) -> bool:
    """Whether a rejected password (PAM_AUTHTOK_ERR) fails the whole stack: required and
    requisite do, optional and sufficient never, a bracketed control when its ``authtok_err``
    (else ``default``) action is ``bad`` or ``die``."""
    if rule.control in ("required", "requisite"):
        return True
    if rule.control.startswith("["):
        actions = dict(item.partition("=")[::2] for item in rule.control.strip("[]").split())
        return actions.get("authtok_err", actions.get("default")) in ("bad", "die")
    return False


QUALITY_PARAMS: Mapping[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["min_length", "min_classes"],
    "properties": {"min_length": {"type": "integer", "minimum": 6}, "min_classes": {"type": "integer", "minimum": 0,
                                                                                       "maximum": 4}},
}


def quality_settings(use: ModuleUse) -> dict[str, Any]:
    """What a pam_pwquality / pam_cracklib line enforces: the shortest password it accepts
    (``minlen`` counts a character and a credit alike, so each positive credit lets a password be
    one character shorter) and the character classes it demands (``minclass``, or each negative credit)."""
    defaults = PWQUALITY_DEFAULTS if use.rule.module == "pam_pwquality.so" else CRACKLIB_DEFAULTS
    settings: dict[str, Any] = {}
    problems: list[str] = []
    for name in ("minlen", "minclass", *CREDITS):
        value, origin = _number(use.options, name, defaults[name])
        if value is None:
            problems.append(f"{origin}: {name} is not a number")
            value = defaults[name]
        settings[name] = {"value": value, "origin": origin}
    minlen = max(settings["minlen"]["value"], MIN_LENGTH_FLOOR)
    credit = sum(max(settings[name]["value"], 0) for name in CREDITS)
    required_classes = sum(1 for name in CREDITS if settings[name]["value"] < 0)
    shortest = max(minlen - credit, MIN_LENGTH_FLOOR, sum(-min(settings[n]["value"], 0) for n in CREDITS))
    settings["shortest_password"] = shortest
    settings["classes_required"] = max(settings["minclass"]["value"], required_classes)
    if use.rule.module == "pam_pwquality.so":
        enforcing, origin = _number(use.options, "enforcing", 1)
        settings["enforcing"] = {"value": enforcing, "origin": origin}
        if enforcing == 0:
            problems.append(f"{origin}: enforcing=0 only warns about a weak password")
    settings["problems"] = problems
    return settings


def _bypasses(rules: list[PamLine], at: int) -> list[PamLine]:
    """Rules before ``rules[at]`` whose outcome can skip it: ``sufficient``, an action ``done``, or a
    jump (``success=N``...) landing past it. A password changed through such a rule is never checked."""
    found = []
    for i, rule in enumerate(rules[:at]):
        if rule.control == "sufficient":
            found.append(rule)
        elif rule.control.startswith("["):
            actions = [item.partition("=")[2] for item in rule.control.strip("[]").split()]
            if "done" in actions or any(a.isdigit() and i + int(a) >= at for a in actions):
                found.append(rule)
    return found


def _quality_of_stack(stack: Stack, min_length: int, min_classes: int) -> dict[str, Any]:
    found: dict[str, Any] = {"stack": stack.path}
    if not stack.uses:
        return {**found, "problem": "no pam_pwquality.so or pam_cracklib.so in the password stack"}
    use = stack.uses[0]
    settings = quality_settings(use)
    problems = list(settings.pop("problems"))
    found.update(module=use.rule.module, line=use.rule.origin, rule=use.rule.text(), **settings)
    if use.installed is False:
        problems.append(f"{use.rule.module} is not installed in the root: the rule "
                        + ("is skipped" if use.rule.optional_module else "fails every password change"))
    at = stack.rules.index(use.rule)
    for before in _bypasses(stack.rules, at):
        problems.append(f"{before.origin}: {before.text()} can end the stack or jump past the checker")
    unix = next((i for i, rule in enumerate(stack.rules) if rule.module == "pam_unix.so"), None)
    after_unix = unix is not None and at > unix
    if after_unix:
        problems.append(f"after pam_unix.so ({stack.rules[unix].origin}): the password is set before it is checked")
    elif not _fatal(use.rule):
        # pam_unix with use_authtok sets only the password the checker handed on: a rejected one
        # never reaches it, whatever the checker's control says (libpam, run by the scenario suite)
        if unix is not None and "use_authtok" in stack.rules[unix].args:
            found["control_note"] = (f"control {use.rule.control!r} does not stop the stack, but pam_unix.so "
                                     f"({stack.rules[unix].origin}) uses only the password the checker passed on")
        else:
            problems.append(f"control {use.rule.control!r}: a rejected password does not stop the change")
    if settings["shortest_password"] < min_length:
        problems.append(f"accepts {settings['shortest_password']}-character passwords (policy: at least {min_length})")
    if settings["classes_required"] < min_classes:
        problems.append(f"demands {settings['classes_required']} character classes (policy: at least {min_classes})")
    if problems:
        found["problems"] = problems
    return found


@check("password_complexity", facts=("pam_password_quality",), params=QUALITY_PARAMS)
def password_complexity(pam: PamFacts, *, min_length: int, min_classes: int) -> Outcome:
    """Every password stack checks new passwords with pam_pwquality or pam_cracklib, before
    pam_unix sets them, with a failure that stops the change, at least ``min_length`` characters
    and ``min_classes`` character classes."""
    stacks = [_quality_of_stack(stack, min_length, min_classes) for stack in pam.stacks]
    evidence: dict[str, Any] = {"stacks": stacks, "required": {"min_length": min_length, "min_classes": min_classes}}
    if pam.missing:
        evidence["missing"] = pam.missing
    if not stacks:
        return unverified("no password stack file could be read", **evidence)
    bad = any("problem" in s or "problems" in s for s in stacks)
    return failed(**evidence) if bad else passed(**evidence)


LOCKOUT_PARAMS: Mapping[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["max_deny", "min_unlock_seconds"],
    "properties": {"max_deny": {"type": "integer", "minimum": 1},
                   "min_unlock_seconds": {"type": "integer", "minimum": 0}},
}


def _lockout_settings(use: ModuleUse) -> dict[str, Any]:
    """deny and unlock_time of one line; ``unlock_time=never`` or 0 (faillock), or no unlock_time
    (pam_tally2), leave the account locked until an administrator unlocks it."""
    faillock = use.rule.module == "pam_faillock.so"
    deny, deny_at = _number(use.options, "deny", FAILLOCK_DEFAULTS["deny"] if faillock else 0)
    raw = use.options.get("unlock_time")
    if raw is not None and raw.value == "never" and faillock:
        unlock, unlock_at = 0, raw.origin
    else:
        unlock, unlock_at = _number(use.options, "unlock_time", FAILLOCK_DEFAULTS["unlock_time"] if faillock else 0)
    return {"line": use.rule.origin, "rule": use.rule.text(), "deny": {"value": deny, "origin": deny_at},
            "unlock_time": {"value": unlock, "origin": unlock_at, **({"meaning": "until an administrator unlocks"}
                                                                      if unlock == 0 else {})}}


def _lockout_of_stack(stack: Stack, max_deny: int, min_unlock: int) -> dict[str, Any]:
    found: dict[str, Any] = {"stack": stack.path}
    faillock = [use for use in stack.uses if use.rule.module == "pam_faillock.so"]
    tally = [use for use in stack.uses if use.rule.module == "pam_tally2.so"]
    uses = faillock or tally
    if not uses:
        return {**found, "problem": "no pam_faillock.so or pam_tally2.so in the auth stack"}
    problems: list[str] = []
    if faillock:
        counting = [u for u in faillock if "authfail" in u.rule.args]
        refusing = [u for u in faillock if "preauth" in u.rule.args or "authsucc" in u.rule.args]
        if not counting:
            problems.append("no 'pam_faillock.so authfail' rule: failures are never counted")
        if not refusing:
            problems.append("no 'pam_faillock.so preauth' (or authsucc) rule: a locked account still logs in")
        for use in refusing:
            if "preauth" in use.rule.args:
                at = stack.rules.index(use.rule)
                problems += [f"{before.origin}: {before.text()} can end the stack or jump past the preauth rule "
                             f"({use.rule.origin}): a locked account logs in through it"
                             for before in _bypasses(stack.rules, at)]
        uses = counting + [u for u in refusing if u not in counting]
    lines = [_lockout_settings(use) for use in uses]
    found.update(module=uses[0].rule.module, rules=lines)
    for use, settings in zip(uses, lines, strict=False):
        if use.installed is False:
            problems.append(f"{use.rule.origin}: {use.rule.module} is not installed in the root "
                            "(pam_tally2 was removed in Linux-PAM 1.5)" if use.rule.module == "pam_tally2.so" else
                            f"{use.rule.origin}: {use.rule.module} is not installed in the root")
        deny, unlock = settings["deny"], settings["unlock_time"]
        if deny["value"] is None or unlock["value"] is None:
            problems.append(f"{use.rule.origin}: deny or unlock_time is not a number")
            continue
        if deny["value"] <= 0 or deny["value"] > max_deny:
            problems.append(f"{deny['origin']}: deny={deny['value']} "
                            + ("never locks" if deny["value"] <= 0 else f"(policy: at most {max_deny})"))
        if 0 < unlock["value"] < min_unlock:
            problems.append(f"{unlock['origin']}: unlock_time={unlock['value']} s (policy: at least {min_unlock} s)")
    if problems:
        found["problems"] = problems
    return found


@check("login_lockout", facts=("pam_lockout",), params=LOCKOUT_PARAMS)
def login_lockout(pam: PamFacts, *, max_deny: int, min_unlock_seconds: int) -> Outcome:
    """Every auth stack locks an account after at most ``max_deny`` failed logins (pam_faillock
    counting with authfail and refusing with preauth/authsucc, or pam_tally2) for at least
    ``min_unlock_seconds``, or until an administrator unlocks it."""
    stacks = [_lockout_of_stack(stack, max_deny, min_unlock_seconds) for stack in pam.stacks]
    evidence: dict[str, Any] = {"stacks": stacks,
                                "required": {"max_deny": max_deny, "min_unlock_seconds": min_unlock_seconds}}
    if pam.missing:
        evidence["missing"] = pam.missing
    if not stacks:
        return unverified("no auth stack file could be read", **evidence)
    bad = any("problem" in s or "problems" in s for s in stacks)
    return failed(**evidence) if bad else passed(**evidence)
