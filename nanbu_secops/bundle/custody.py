"""The chain of custody: who held a bundle, what they did with it, and when.

``custody.jsonl`` holds one event per line. Each event names its action, actor (principal and
key fingerprint), time (+08:00) and bundle id, carries ``prev`` — the SHA-256 of the previous
line, or of ``manifest.json`` for the first event, which ties the chain to the content — and its
own SSHSIG signature over the event without ``sig`` in canonical JSON, so it can be checked with
``ssh-keygen -Y verify`` too. A line removed, reordered or edited breaks a ``prev`` link or a
signature. Dropping the last line is caught twice over: the chain must end with an event that
seals a file (collected, packaged, forwarded), and that event's signer must be whoever signed
the encrypted file (see :mod:`nanbu_secops.bundle.package`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from nanbu_secops.bundle import sshsig
from nanbu_secops.bundle.keys import SignKey
from nanbu_secops.bundle.manifest import canonical
from nanbu_secops.timeutil import now, rfc3339

ACTIONS = ("collected", "packaged", "received", "reviewed", "forwarded")
ACTIONS_ZH = {"collected": "采集", "packaged": "打包", "received": "接收", "reviewed": "审阅", "forwarded": "转发"}
SEALING = ("collected", "packaged", "forwarded")  # actions that end with a newly signed file


class CustodyError(Exception):
    """The chain does not hold; the message names the line and the reason."""


@dataclass(frozen=True)
class Event:
    line: bytes          # the line as stored, without its newline
    fields: dict[str, Any]
    key_blob: bytes      # the key that signed it

    @property
    def principal(self) -> str:
        return str(self.fields.get("by", ""))


def new_event(previous_line: bytes | None, manifest: bytes, *, seq: int, action: str, key: SignKey,
              bundle_id: str, note: str = "", extra: dict[str, Any] | None = None) -> bytes:
    """One signed custody line (no newline)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown custody action {action!r}")
    fields: dict[str, Any] = {
        "seq": seq, "action": action, "at": rfc3339(now()), "by": key.principal, "key": key.fingerprint,
        "bundle": bundle_id, "prev": hashlib.sha256(previous_line if previous_line is not None else manifest).hexdigest(),
        "note": note, **(extra or {}),
    }
    fields["sig"] = sshsig.sign(key.key, canonical(fields))
    return canonical(fields)


def append(chain: bytes, manifest: bytes, *, action: str, key: SignKey, bundle_id: str, note: str = "",
           extra: dict[str, Any] | None = None) -> bytes:
    """The chain with one more event."""
    lines = chain.splitlines()
    line = new_event(lines[-1] if lines else None, manifest, seq=len(lines), action=action, key=key,
                     bundle_id=bundle_id, note=note, extra=extra)
    return chain + line + b"\n"


def verify(chain: bytes, manifest: bytes, bundle_id: str) -> list[Event]:
    """Check every link and signature; return the events in order or raise CustodyError."""
    if not chain.endswith(b"\n"):
        raise CustodyError("custody.jsonl does not end with a newline (cut short?)")
    events: list[Event] = []
    previous: bytes | None = None
    for number, line in enumerate(chain[:-1].split(b"\n"), 1):
        try:
            fields = json.loads(line.decode("utf-8"))
            if not isinstance(fields, dict) or canonical(fields) != line:
                raise ValueError("not canonical JSON")
        except (UnicodeDecodeError, ValueError) as exc:
            raise CustodyError(f"custody line {number}: malformed ({exc})") from None
        if fields.get("seq") != number - 1:
            raise CustodyError(f"custody line {number}: seq is {fields.get('seq')!r}, expected {number - 1} (removed or reordered)")
        expected = hashlib.sha256(previous if previous is not None else manifest).hexdigest()
        if fields.get("prev") != expected:
            raise CustodyError(f"custody line {number}: prev does not match the "
                               f"{'previous line' if previous is not None else 'manifest'} (removed, reordered or edited)")
        if fields.get("bundle") != bundle_id:
            raise CustodyError(f"custody line {number}: belongs to bundle {fields.get('bundle')!r}")
        if fields.get("action") not in ACTIONS:
            raise CustodyError(f"custody line {number}: unknown action {fields.get('action')!r}")
        signature = fields.pop("sig", None)
        try:
            parsed = sshsig.verify(str(signature), canonical(fields))
        except sshsig.SignatureError as exc:
            raise CustodyError(f"custody line {number}: signature: {exc}") from None
        if parsed.fingerprint != fields.get("key"):
            raise CustodyError(f"custody line {number}: signed by {parsed.fingerprint}, not the key it names")
        fields["sig"] = signature
        events.append(Event(line, fields, parsed.key_blob))
        previous = line
    if not events:
        raise CustodyError("custody.jsonl is empty")
    if events[-1].fields["action"] not in SEALING:
        raise CustodyError(f"the chain ends with {events[-1].fields['action']!r}, not with an event sealing the file "
                           f"({', '.join(SEALING)}): an event removed?")
    return events
