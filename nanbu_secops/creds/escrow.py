"""The escrow: every new secret, encrypted to the unit account manager, before any host changes.

Layout, one folder per host and account::

    <escrow>/<host>/<account>/<stamp>-<kind>.age   the secret, age-encrypted (written once)
    <escrow>/<host>/<account>/<stamp>-<kind>.log   what happened to it, one JSON line per event

The ``.age`` file holds the secret and is never rewritten; the ``.log`` is plain text and holds
no secret: states, times, reasons and, for passwords, the crypt salt of the new hash (random,
unique to this rotation, and useless for guessing the password). The salt is what lets a later
run tell which escrowed password a host really has after a run was killed or a host vanished.

States, in the order they can happen::

    escrowed     the secret is safe here; the host has not been told yet
    applied      the host was told to use it (not yet proven)
    verified     a login with it worked: this is the credential now
    rolled-back  the login failed and the host got its previous credential back
    not-applied  a later run found the host still on an earlier credential
    found-in-use a later run found the host using this one, never verified

An entry whose last state is ``escrowed`` or ``applied`` is *unconfirmed*: the account's
credential is this one or its predecessor, both known; the next run settles it. Nothing here ever leaves
an account with a credential that is not known to someone.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage

from nanbu_secops import timeutil
from nanbu_secops.creds.generate import hash_salt
from nanbu_secops.errors import InputError
from nanbu_secops.fileutil import atomic_write, fsync_dir, require_private_dir, require_private_tree

KINDS = ("password", "ssh-key")
STATES = ("escrowed", "applied", "verified", "rolled-back", "not-applied", "found-in-use")
SETTLED = frozenset({"verified", "rolled-back", "not-applied", "found-in-use"})
DIR_MODE, FILE_MODE = 0o700, 0o600
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}\$?$")
_ENTRY = re.compile(r"^(?P<stamp>\d{8}T\d{6}\.\d{6}[+-]\d{4})-(?P<kind>password|ssh-key)\.age$")


def safe_name(value: str, what: str) -> str:
    """A host or account name usable as one path component (no '/', no '..', no control chars)."""
    if not _NAME.match(value) or value in (".", ".."):
        raise InputError(f"{what}: not a valid name: {value!r}")
    return value


# ---------------------------------------------------------------------------- entries

@dataclass(frozen=True)
class Entry:
    """One escrowed secret and its history."""

    path: Path  # the .age file
    host: str
    account: str
    kind: str
    stamp: str
    events: tuple[dict[str, Any], ...]

    @property
    def log(self) -> Path:
        return self.path.with_suffix(".log")

    @property
    def state(self) -> str:
        return self.events[-1]["state"] if self.events else "escrowed"

    @property
    def settled(self) -> bool:
        return self.state in SETTLED

    @property
    def salt(self) -> str:
        return next((e["salt"] for e in self.events if e.get("salt")), "")

    def as_json(self) -> dict[str, Any]:
        last = self.events[-1] if self.events else {}
        return {"host": self.host, "account": self.account, "kind": self.kind, "entry": str(self.path),
                "created": self.events[0]["time"] if self.events else None, "state": self.state,
                "since": last.get("time"), "detail": last.get("detail", ""), "settled": self.settled}


def _mkdirs(folder: Path, top: Path) -> None:
    """Create ``folder`` and its parents up to ``top`` as 0700, fsyncing each new entry."""
    missing = [p for p in [folder, *folder.parents] if not p.exists() and (p == top or top in p.parents)]
    for path in reversed(missing):
        path.mkdir(mode=DIR_MODE)
        fsync_dir(path.parent)


def _append_event(log: Path, event: dict[str, Any]) -> None:
    """One JSON line, fsync'ed: the log survives a kill right after this returns."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        os.write(fd, (json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_events(log: Path) -> tuple[dict[str, Any], ...]:
    events = []
    try:
        lines = log.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return ()
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line from a crash mid-write; the earlier ones stand
        if isinstance(event, dict) and event.get("state") in STATES:
            events.append(event)
    return tuple(events)


def deposit(escrow: Path, host: str, account: str, kind: str, secret: bytes, recipients: Sequence[Any],
            *, new_hash: str = "", public_key: str = "") -> Entry:
    """Encrypt ``secret`` to ``recipients`` and store it durably; only then may a host change.

    The ciphertext is written exclusively (never over another file) and fsync'ed together with
    its folder before the ``escrowed`` event is logged and before this returns.
    """
    if kind not in KINDS:
        raise ValueError(kind)
    if not recipients:
        raise InputError("no escrow recipient: give the unit account manager's age public key")
    if not escrow.is_dir():
        raise InputError("escrow folder does not exist", escrow)
    folder = escrow / safe_name(host, "host") / safe_name(account, "account")
    require_private_dir(escrow, "escrow folder")  # others able to write there could swap an entry or its log
    _mkdirs(folder, escrow)
    for path in (folder.parent, folder):
        require_private_dir(path, "escrow folder")
    moment = timeutil.now()
    payload = {"version": 1, "host": host, "account": account, "kind": kind,
               "created": moment.isoformat(timespec="microseconds"), "secret": secret.decode("utf-8")}
    if public_key:
        payload["public_key"] = public_key
    sealed = pyrage.encrypt(json.dumps(payload, ensure_ascii=False).encode("utf-8"), list(recipients))
    while True:
        stamp = moment.strftime("%Y%m%dT%H%M%S.%f%z")
        path = folder / f"{stamp}-{kind}.age"
        try:
            atomic_write(path, sealed, FILE_MODE, exclusive=True)
            break
        except FileExistsError:  # two rotations in the same microsecond: take the next one
            moment = timeutil.now()
    event: dict[str, Any] = {"state": "escrowed", "time": timeutil.rfc3339(timeutil.now())}
    if new_hash:
        event["salt"] = hash_salt(new_hash)
    if public_key:
        event["public_key"] = public_key
    _append_event(path.with_suffix(".log"), event)
    return load(path)


def load(path: Path) -> Entry:
    """Read an entry's name and history (not its secret)."""
    match = _ENTRY.match(path.name)
    if not match:
        raise InputError("not an escrow entry (<stamp>-<kind>.age)", path)
    return Entry(path=path, host=path.parent.parent.name, account=path.parent.name, kind=match["kind"],
                 stamp=match["stamp"], events=_read_events(path.with_suffix(".log")))


def mark(entry: Entry, state: str, detail: str = "") -> Entry:
    """Record what happened to an entry's secret."""
    if state not in STATES or state == "escrowed":
        raise InputError(f"unknown state {state!r}; one of {', '.join(STATES[1:])}")
    event = {"state": state, "time": timeutil.rfc3339(timeutil.now())}
    if detail:
        event["detail"] = detail
    _append_event(entry.log, event)
    return load(entry.path)


def entries(escrow: Path, host: str | None = None, account: str | None = None) -> Iterator[Entry]:
    """All entries, oldest first within each host and account."""
    if not escrow.is_dir():
        raise InputError("escrow folder does not exist", escrow)
    require_private_tree(escrow, "escrow folder")  # a log line planted by others would fake a state
    hosts = [escrow / safe_name(host, "host")] if host else sorted(p for p in escrow.iterdir() if p.is_dir())
    for host_dir in hosts:
        accounts = [host_dir / safe_name(account, "account")] if account else sorted(
            p for p in host_dir.iterdir() if p.is_dir()) if host_dir.is_dir() else []
        for account_dir in accounts:
            if account_dir.is_dir():
                for path in sorted(account_dir.glob("*.age")):
                    if _ENTRY.match(path.name):
                        yield load(path)


def reconcile(escrow: Path, host: str, account: str, current_hash: str) -> list[Entry]:
    """Settle unconfirmed password entries against the hash the host has now.

    The crypt salt in each entry's log says whether the host uses that entry's password
    (``found-in-use``) or kept an earlier one (``not-applied``). Returns the entries changed.
    """
    salt = hash_salt(current_hash)
    changed = []
    for entry in entries(escrow, host, account):
        if entry.kind != "password" or entry.settled:
            continue
        if entry.salt and entry.salt == salt:
            changed.append(mark(entry, "found-in-use", "the host uses this password; it was never verified"))
        else:
            changed.append(mark(entry, "not-applied", "the host was found on another password"))
    return changed


def open_entry(path: Path, identities: Sequence[Any]) -> dict[str, Any]:
    """Decrypt an entry with the account manager's identity: its payload, secret included."""
    entry = load(path)
    try:
        plain = pyrage.decrypt(path.read_bytes(), list(identities))
    except pyrage.DecryptError as exc:
        raise InputError(f"cannot decrypt with this identity: {exc}", path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path) from None
    payload = json.loads(plain)
    if (payload.get("host"), payload.get("account"), payload.get("kind")) != (entry.host, entry.account, entry.kind):
        raise InputError("the entry's contents do not match its place in the escrow (moved or renamed?)", path)
    return payload
