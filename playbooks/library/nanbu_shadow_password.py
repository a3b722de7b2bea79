#!/usr/bin/python3
"""Ansible module of nanbu-secops: read an account's lock state, and set its password hash
only when that leaves the lock state as it was (article 26: a locked account reopens only
through unlock_account.yml and the reinstatement register).

Its secret options are declared ``no_log`` in the argument spec, so Ansible censors them in
every output, -vvv included, whether or not the task remembers ``no_log``.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: nanbu_shadow_password
short_description: Read an account's lock state; set its password hash without unlocking it
description:
  - C(state=query) reports whether the account's password may be rotated, and the terminal's
    PAM password configuration and login.defs, from which the controller picks the hash method
    the terminal's own passwd would use. It never returns a hash.
  - C(state=set) writes a new crypt hash with C(chpasswd -e) (the hash goes on standard input, not
    on a command line), only when the account's current hash is still C(expected) and the account
    is neither locked, nor without a password, nor expired.
options:
  name: {description: the account, type: str, required: true}
  state: {description: query or set, type: str, choices: [query, set], default: query}
  password: {description: the new crypt hash, type: str, no_log: true}
  expected: {description: the crypt hash the account must have now, type: str, no_log: true}
"""

RETURN = r"""
exists: {description: the account has a shadow entry, type: bool}
status: {description: "usable, locked, no-password, expired or missing", type: str}
reason: {description: why the password may not be rotated (empty when usable), type: str}
pam_path: {description: the PAM file holding the password stack, type: str}
pam_text: {description: its text (null when absent), type: str}
login_defs: {description: /etc/login.defs (null when absent), type: str}
"""

#: Files holding the password stack that passwd(1) uses: Debian family, then Red Hat family.
PAM_FILES = ("/etc/pam.d/common-password", "/etc/pam.d/system-auth")
#: What a crypt(3) hash looks like: ``$id$...`` (no field separator, no lock prefix) or 13-character DES.
HASH = re.compile(r"^(\$[A-Za-z0-9./$=,+-]+|[A-Za-z0-9./]{13})$")


def shadow_entry(module: AnsibleModule, name: str) -> list[str] | None:
    """The account's shadow fields through NSS (``getent``), or None when there is none."""
    done = subprocess.run(["getent", "shadow", name], capture_output=True, text=True, check=False)
    if done.returncode == 2:
        return None
    if done.returncode != 0:
        module.fail_json(msg=f"getent shadow {name} failed with exit code {done.returncode}")
    fields = done.stdout.rstrip("\n").split(":")
    return fields + [""] * (9 - len(fields))


def _day(field: str) -> int | None:
    return int(field) if field.strip().lstrip("-").isdigit() else None


def lock_state(fields: list[str], today: int) -> tuple[str, str]:
    """(status, reason): whether a new password would change who can log in.

    Locked (``!`` prefix, as passwd -l, usermod -L and lock_dormant.yml write it), no password
    (``*``, or anything else that is not a crypt hash: key-only and system accounts; ``!!`` counts as locked),
    an expired account (shadow field 8 on or before today, as pam_unix judges it), an inactive
    one (password older than maximum + inactive days) and one whose change is forced at the next
    login (last change 0) are left alone: setting a hash would unlock, give a password, or revive
    them. An empty hash (no password needed) is usable: a password makes it stricter."""
    hashed, last, maximum, inactive, expire = fields[1], _day(fields[2]), _day(fields[4]), _day(fields[6]), _day(fields[7])
    if hashed.startswith("!"):
        return "locked", "locked (its password field starts with !): only unlock_account.yml reopens it"
    if hashed and not HASH.match(hashed):
        return "no-password", (f"no password ({hashed[:3]} is not a crypt hash: a key-only or system account); "
                               "giving it one would open a way in")
    if expire is not None and expire >= 0 and today >= expire:
        return "expired", f"account expired (shadow expire day {expire}, today {today})"
    if last is not None and maximum is not None and inactive is not None and last > 0 and maximum >= 0 \
            and inactive >= 0 and today > last + maximum + inactive:
        return "expired", (f"account inactive: password older than maximum {maximum} + inactive {inactive} days "
                           f"(last change day {last}, today {today})")
    if last == 0:
        return "expired", "password expired by an administrator (change forced at next login)"
    return "usable", ""


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["query", "set"], "default": "query"},
            "password": {"type": "str", "no_log": True},
            "expected": {"type": "str", "no_log": True},
        },
        required_if=[("state", "set", ("password", "expected"))],
        supports_check_mode=True,
    )
    name = module.params["name"]
    today = int(time.time() // 86400)
    fields = shadow_entry(module, name)
    status, reason = ("missing", "no such account in /etc/shadow") if fields is None else lock_state(fields, today)
    if module.params["state"] == "query":
        pam_path = next((p for p in PAM_FILES if os.path.exists(p)), PAM_FILES[0])
        module.exit_json(changed=False, exists=fields is not None, status=status, reason=reason, pam_path=pam_path,
                         pam_text=read(pam_path), login_defs=read("/etc/login.defs"))
    new, expected = module.params["password"], module.params["expected"]
    if status != "usable":
        module.fail_json(msg=f"{name}: not changed: {reason}", status=status, reason=reason)
    if fields[1] == new:
        module.exit_json(changed=False, status=status, reason="")  # already in place (a rollback of a change not made)
    if fields[1] != expected:
        module.fail_json(msg=f"{name}: not changed: its password changed since it was read", status=status)
    if not HASH.match(new) or new.startswith(("!", "*")):
        module.fail_json(msg=f"{name}: not changed: the new value is not a crypt hash", status=status)
    if not module.check_mode:
        done = subprocess.run(["chpasswd", "-e"], input=f"{name}:{new}\n", capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            module.fail_json(msg=f"{name}: chpasswd -e failed: {done.stderr.strip()}", status=status)
        after = shadow_entry(module, name)
        if after is None or after[1] != new:
            module.fail_json(msg=f"{name}: chpasswd -e reported success but the hash is not in place", status=status)
    module.exit_json(changed=True, status=status, reason="")


if __name__ == "__main__":
    main()
