"""The controller's side of one rotation step, as ``playbooks/rotate_credentials.yml`` calls it.

Each function escrows first and returns what the playbook needs next. Secrets leave this
module only in the return value of :func:`prepare_password` (the playbook holds it under
``no_log`` to set and verify it) and in files the escrow or the key folder own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nanbu_secops.creds import escrow, keys
from nanbu_secops.creds.generate import SHA512, HashMethod, check_alphabet, make_hash, new_password, new_ssh_key
from nanbu_secops.errors import InputError

#: Policy variables (policies/article26.yml) that shape new passwords.
POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["rotation_password_length", "rotation_password_alphabet", "rotation_password_classes"],
    "properties": {
        "rotation_password_length": {"type": "integer", "minimum": 12, "maximum": 128},
        "rotation_password_alphabet": {"type": "string", "minLength": 16},
        "rotation_password_classes": {"type": "integer", "minimum": 1, "maximum": 4},
    },
}


@dataclass(frozen=True)
class PasswordRules:
    length: int
    alphabet: str
    classes: int

    @classmethod
    def from_variables(cls, variables: dict[str, Any]) -> PasswordRules:
        try:
            alphabet = check_alphabet(variables["rotation_password_alphabet"])
        except ValueError as exc:
            raise InputError(f"rotation_password_alphabet: {exc}") from None
        return cls(variables["rotation_password_length"], alphabet, variables["rotation_password_classes"])


def prepare_password(escrow_dir: Path, host: str, account: str, recipients: Sequence[Any],
                     rules: PasswordRules, current_hash: str | None = None,
                     method: HashMethod = SHA512) -> dict[str, Any]:
    """A new password, escrowed; returns the entry, its crypt hash made with ``method`` (what
    the terminal's own ``passwd`` would write, see creds/hashmethod.py) and the secret.

    With ``current_hash`` (what the host has now), entries an interrupted run left unconfirmed
    are settled first, so the history says which password the host really had.
    """
    if current_hash is not None and current_hash.startswith(("!", "*")):
        # The host-side module refuses this too; refusing here as well means nothing is even escrowed.
        raise InputError(f"{account}@{host} is locked or has no password ({current_hash[:1]}): "
                         "rotation never unlocks an account (only unlock_account.yml does)")
    settled = escrow.reconcile(escrow_dir, host, account, current_hash) if current_hash is not None else []
    try:
        secret = new_password(rules.length, rules.alphabet, rules.classes)
    except ValueError as exc:
        raise InputError(f"rotation password rules: {exc}") from None
    hashed = make_hash(secret, method)
    entry = escrow.deposit(escrow_dir, host, account, "password", secret.encode("utf-8"), recipients,
                           new_hash=hashed)
    return {"entry": str(entry.path), "hash": hashed, "secret": secret, "settled": [e.as_json() for e in settled],
            "method": {"name": method.name, "cost": method.count, "source": method.source}}


def prepare_key(escrow_dir: Path, key_dir: Path, host: str, account: str,
                recipients: Sequence[Any]) -> dict[str, Any]:
    """A new operations key: escrowed, then stored beside the current one (not yet current).

    Earlier key entries that never became current are settled here as ``not-applied``: this
    run removes their public keys from the host (``retired_public_keys``).
    """
    previous = keys.current(key_dir, host)
    previous_public = keys.public_key(previous) if previous else ""
    for old in escrow.entries(escrow_dir, host, account):
        if old.kind == "ssh-key" and not old.settled:
            in_use = bool(previous_public) and old.events[0].get("public_key") == previous_public
            escrow.mark(old, "found-in-use" if in_use else "not-applied",
                        "it is the current key" if in_use else "never became the current key; removed from the host")
    comment = f"nanbu-secops:{host}:{account}"
    private, public = new_ssh_key(comment)
    entry = escrow.deposit(escrow_dir, host, account, "ssh-key", private, recipients, public_key=public)
    path = keys.store(key_dir, host, entry.stamp, private, public)
    keep = (path, previous) if previous else (path,)
    return {"entry": str(entry.path), "key": str(path), "public_key": public,
            "previous_public_key": previous_public, "retired_public_keys": keys.retired(key_dir, host, keep)}


def status(escrow_dir: Path, hosts: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The latest entry per host, account and kind, plus every unconfirmed older one."""
    rows: list[dict[str, Any]] = []
    for host in hosts or sorted(p.name for p in escrow_dir.iterdir() if p.is_dir()):
        found = list(escrow.entries(escrow_dir, host)) if (escrow_dir / host).is_dir() else []
        if not found:
            rows.append({"host": host, "account": None, "kind": None, "entry": None, "state": "no-entry",
                         "settled": False, "created": None, "since": None,
                         "detail": "no rotation has been escrowed for this host"})
            continue
        latest: dict[tuple[str, str], escrow.Entry] = {}
        for entry in found:
            latest[(entry.account, entry.kind)] = entry
        for entry in found:
            if entry is latest[(entry.account, entry.kind)] or not entry.settled:
                rows.append({**entry.as_json(), "latest": entry is latest[(entry.account, entry.kind)]})
    return rows
