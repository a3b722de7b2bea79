"""Keys for sealing and signing: age recipients and identities, Ed25519 signing keys in OpenSSH
format, and OpenSSH allowed-signers files as the list of whom we trust.

Every file here is in a format the standard tools read (``age``, ``age-keygen``, ``ssh-keygen``),
so an office can check what we produce with tools it already trusts.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from nanbu_secops.bundle import agefile, sshsig
from nanbu_secops.errors import InputError
from nanbu_secops.fileutil import atomic_write
from nanbu_secops.timeutil import now, rfc3339

KEY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}$")


# ---------------------------------------------------------------- age recipients and identities

def parse_recipients(values: Iterable[str], source: str = "--recipient") -> list[Any]:
    """age X25519 (``age1...``) or SSH (``ssh-ed25519 ...``, ``ssh-rsa ...``) public keys."""
    recipients: list[Any] = []
    for number, raw in enumerate(values, 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            if text.startswith("age1"):
                recipients.append(pyrage.x25519.Recipient.from_str(text))
            elif text.startswith(("ssh-ed25519 ", "ssh-rsa ")):
                recipients.append(pyrage.ssh.Recipient.from_str(text))
            else:
                raise pyrage.RecipientError("not an age1… or ssh- public key")
        except pyrage.RecipientError:
            raise InputError(_not_a_recipient(text), source, number if source != "--recipient" else None) from None
    return recipients


def _is_secret(text: str) -> bool:
    """Whether ``text`` looks like a private key (age or OpenSSH/PEM) rather than a public one or a file name."""
    return "SECRET-KEY" in text.upper() or "PRIVATE KEY" in text.upper()


def _not_a_recipient(text: str) -> str:
    """Why ``text`` is refused as a recipient, without ever quoting it: it may be a secret key given by mistake."""
    if _is_secret(text):
        return ("not an age recipient: this is a private key (not shown); give the public recipient "
                "(age1…, the .recipient file) instead")
    return "not an age recipient (age1… or ssh-… public key); the value is not shown"


def read_recipient_file(path: Path) -> list[Any]:
    """One recipient per line, ``#`` comments allowed (the format of ``age -R``)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read recipients: {getattr(exc, 'strerror', None) or exc}", path) from None
    return parse_recipients(lines, str(path))


def recipient_args(values: Sequence[str]) -> list[Any]:
    """Bundle ``--recipient`` values: each an ``age1…`` key or a file of them (``NAME.recipient``).

    Bundles are written by :mod:`agefile`, which speaks the X25519 recipient type only; SSH keys,
    which the escrow accepts, are refused here with the reason, before any work."""
    found: list[Any] = []
    for value in values:
        if _is_secret(value):  # never named as a file that cannot be read: that would print it
            raise InputError(_not_a_recipient(value), "--recipient")
        if value.strip().startswith(("age1", "ssh-")):
            found += parse_recipients([value])
            source = "--recipient"
        else:
            found += read_recipient_file(Path(value))
            source = value
        if any(not isinstance(r, pyrage.x25519.Recipient) for r in found):
            raise InputError("bundles are encrypted to age X25519 recipients (age1…, made by `keys new`), "
                             "not SSH keys", source)
        try:
            for recipient in found:
                agefile.check_recipient(agefile.x25519_key(recipient))
        except agefile.RecipientKeyError as exc:
            raise InputError(str(exc), source) from None
    if not found:
        raise InputError("--recipient: give at least one age1… key or .recipient file")
    return found


def private_key_files(sign_key: Path) -> list[Path]:
    """The signing key and the private key files kept beside it (``*_ed25519``, ``*.agekey``):
    what ``--include`` must never pack, whatever folder an operator names."""
    folder = sign_key.parent
    found = [sign_key, *folder.glob("*_ed25519"), *folder.glob("*.agekey")] if folder.is_dir() else [sign_key]
    return [path for path in found if path.is_file()]


def read_identities(path: Path) -> list[Any]:
    """An age identity file (``AGE-SECRET-KEY-1…`` lines, as ``age-keygen`` writes) or an
    unencrypted OpenSSH private key."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read identity: {exc.strerror}", path) from None
    try:
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
            return [pyrage.ssh.Identity.from_buffer(data)]
        keys = [line.strip() for line in data.decode("utf-8").splitlines() if line.strip().startswith("AGE-SECRET-KEY-")]
        if keys:
            return [pyrage.x25519.Identity.from_str(key) for key in keys]
    except (pyrage.IdentityError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"not a usable identity: {exc}", path) from None
    raise InputError("no AGE-SECRET-KEY line or OpenSSH private key in it", path)


# ----------------------------------------------------------------------------- signing keys

@dataclass(frozen=True)
class SignKey:
    """A private Ed25519 key and the principal it signs as (the name in allowed-signers files)."""

    key: ed25519.Ed25519PrivateKey
    principal: str

    @property
    def blob(self) -> bytes:
        return sshsig.public_blob(self.key.public_key())

    @property
    def fingerprint(self) -> str:
        return sshsig.fingerprint(self.blob)


def load_sign_key(path: Path, principal: str | None = None) -> SignKey:
    """An unencrypted OpenSSH Ed25519 private key. The principal is ``principal`` if given,
    else the comment of ``PATH.pub``, else the file name without ``_ed25519``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read signing key: {exc.strerror}", path) from None
    try:
        key = serialization.load_ssh_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"not an unencrypted OpenSSH private key: {exc}", path) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise InputError("the signing key must be Ed25519 (make one with `nanbu-secops keys new`)", path)
    if principal is None:
        pub = path.with_name(path.name + ".pub")
        parts = pub.read_text(encoding="utf-8").split() if pub.is_file() else []
        principal = parts[2] if len(parts) >= 3 else path.name.removesuffix("_ed25519")
    return SignKey(key, principal)


def new_keys(name: str, out: Path, *, sign_only: bool = False) -> list[Path]:
    """``keys new``: an age identity and recipient, an Ed25519 signing key pair and its
    allowed-signers line, all named after ``name``; with ``sign_only`` the signing files alone
    (a terminal signs what it collects and never opens a bundle). Existing files are never
    overwritten."""
    if not KEY_NAME.match(name):
        raise InputError(f"not a usable key name (letters, digits, . _ @ -): {name!r}")
    out.mkdir(parents=True, exist_ok=True)
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    signing = ed25519.Ed25519PrivateKey.generate()
    private = signing.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption())
    public = sshsig.openssh_public(sshsig.public_blob(signing.public_key()))
    files = [] if sign_only else [
        (out / f"{name}.agekey", f"# created: {rfc3339(now())}\n# public key: {recipient}\n{identity}\n".encode(), 0o600),
        (out / f"{name}.recipient", f"{recipient}\n".encode(), 0o644)]
    files += [
        (out / f"{name}_ed25519", private, 0o600),
        (out / f"{name}_ed25519.pub", f"{public} {name}\n".encode(), 0o644),
        (out / f"{name}.allowed_signers", f'{name} namespaces="{sshsig.NAMESPACE}" {public}\n'.encode(), 0o644),
    ]
    clash = [str(path) for path, _, _ in files if path.exists()]
    if clash:
        raise InputError(f"will not overwrite existing key files: {', '.join(clash)}")
    for path, data, mode in files:
        atomic_write(path, data, mode, exclusive=True)
    return [path for path, _, _ in files]


# ------------------------------------------------------------------------------ trust
#
# An allowed-signers line grants trust exactly as ``ssh-keygen -Y verify`` reads it (the tests run
# ssh-keygen beside this code over a matrix of lines): the principals field and ``namespaces`` are
# OpenSSH pattern lists (``*``, ``?``, ``!``; case-sensitive), ``valid-after`` and ``valid-before``
# bound the time of checking, and lines are tried in order until one allows the signature. What
# this code cannot honour (``cert-authority``: our signatures never carry certificates; any other
# option) is refused with the line's number, so trust is never wider than ssh-keygen's.

@dataclass(frozen=True)
class Signer:
    """One allowed-signers line: the principals (a pattern list) that may sign with this key, and when and where."""

    principals: str
    key_blob: bytes
    namespaces: str | None
    valid_after: float | None
    valid_before: float | None
    source: str

    def allows(self, key_blob: bytes, namespace: str, when: float) -> bool:
        """Whether this line lets ``key_blob`` sign in ``namespace`` at ``when`` (whoever the principal)."""
        if self.key_blob != key_blob:
            return False
        if self.namespaces is not None and match_pattern_list(namespace, self.namespaces) != 1:
            return False
        if self.valid_after is not None and when < self.valid_after:
            return False
        return not (self.valid_before is not None and when > self.valid_before)


def _match_pattern(text: str, pattern: str) -> bool:
    """OpenSSH's match_pattern: ``*`` any run, ``?`` any one character, everything else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def match_pattern_list(text: str, patterns: str) -> int:
    """OpenSSH's match_pattern_list: -1 when a ``!`` pattern matches, 1 when a plain one does, else 0."""
    positive = 0
    for sub in patterns.split(","):
        negated = sub.startswith("!")
        if _match_pattern(text, sub[1:] if negated else sub):
            if negated:
                return -1
            positive = 1
    return positive


_TIME = re.compile(r"(\d{8}|\d{12}|\d{14})([Zz]?)")


def _absolute_time(text: str) -> float:
    """``YYYYMMDD[HHMM[SS]][Z]``: the system's local time unless it ends in Z, as ssh-keygen reads it."""
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"not a time in YYYYMMDD[HHMM[SS]][Z] form: {text!r}")
    digits = match.group(1).ljust(14, "0")
    moment = dt.datetime.strptime(digits, "%Y%m%d%H%M%S")
    return (moment.replace(tzinfo=dt.UTC) if match.group(2) else moment).timestamp()


def _options(text: str) -> dict[str, str | None]:
    """``namespaces="a,b",valid-after="…"`` → mapping (``cert-authority`` → None); ValueError on anything else.

    The grammar is ssh-keygen's: option names in any case, values only in double quotes,
    options separated by single commas."""
    found: dict[str, str | None] = {}
    at = 0
    while True:
        match = re.compile(r'([A-Za-z-]+)(?:="([^"\\]*)")?').match(text, at)
        if match is None or not match.group(0):
            raise ValueError(f"cannot read the options at {text[at:at + 20]!r}")
        name, value = match.group(1).lower(), match.group(2)
        if name in found:
            raise ValueError(f"{name} given twice")
        if (name == "cert-authority") != (value is None) or name not in ("cert-authority", "namespaces",
                                                                             "valid-after", "valid-before"):
            raise ValueError(f"unsupported option {match.group(0)[:40]!r} (supported: namespaces=\"…\", "
                             f"valid-after=\"…\", valid-before=\"…\"; values in double quotes)")
        found[name] = value
        at = match.end()
        if at == len(text):
            return found
        if text[at] != "," or at + 1 == len(text):
            raise ValueError(f"cannot read the options at {text[at:at + 20]!r}")
        at += 1


def _split_options(line: str) -> tuple[str, str]:
    """Split a leading options field (which may contain quoted spaces) from the rest of a line."""
    quoted, at = False, 0
    while at < len(line):
        if line[at] == '"':
            quoted = not quoted
        elif line[at] in " \t" and not quoted:
            break
        at += 1
    return line[:at], line[at:].strip()


def read_trust(paths: Sequence[Path]) -> list[Signer]:
    """Read allowed-signers files (``principals [options] ssh-ed25519 AAAA… [comment]``).

    Certificate-authority lines, options we do not honour and key types other than Ed25519 are
    refused as input errors rather than skipped, so an office never believes a key is trusted
    when it is not.
    """
    signers: list[Signer] = []
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read allowed signers: {getattr(exc, 'strerror', None) or exc}", path) from None
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            signers.append(_signer(line, f"{path}:{number}", path, number))
    return signers


def _signer(line: str, source: str, path: Path, number: int) -> Signer:
    principals, rest = _split_options(line)
    options: dict[str, str | None] = {}
    if not rest.startswith("ssh-"):
        field, rest = _split_options(rest)
        try:
            options = _options(field)
            after = _absolute_time(options["valid-after"] or "") if "valid-after" in options else None
            before = _absolute_time(options["valid-before"] or "") if "valid-before" in options else None
        except ValueError as exc:
            raise InputError(f"allowed-signers options: {exc}", path, number) from None
    else:
        after = before = None
    if "cert-authority" in options:
        raise InputError("cert-authority lines are not supported (bundles are signed with plain keys, "
                         "never certificates); list the signers' keys", path, number)
    parts = rest.split()
    if len(parts) < 2 or parts[0] != "ssh-ed25519":
        raise InputError("expected `principals [options] ssh-ed25519 AAAA…`", path, number)
    try:
        blob = base64.b64decode(parts[1], validate=True)
        sshsig.ed25519_key(blob)
    except (ValueError, sshsig.SignatureError) as exc:
        raise InputError(f"not an ssh-ed25519 public key: {exc}", path, number) from None
    return Signer(principals, blob, options.get("namespaces"), after, before, source)


def _when(moment: dt.datetime | None) -> float:
    return (moment if moment is not None else now()).timestamp()


def trusts(signers: Sequence[Signer], key_blob: bytes, principal: str, namespace: str = sshsig.NAMESPACE,
           at: dt.datetime | None = None) -> bool:
    """Whether ``principal`` may sign with ``key_blob`` in ``namespace`` at ``at`` (default: now),
    as ``ssh-keygen -Y verify -I principal -n namespace`` decides: some line whose principal
    patterns match and whose key, namespaces and times allow it."""
    when = _when(at)
    return any(match_pattern_list(principal, s.principals) == 1 and s.allows(key_blob, namespace, when)
               for s in signers)


def trusted_lines(signers: Sequence[Signer], key_blob: bytes, namespace: str = sshsig.NAMESPACE,
                  at: dt.datetime | None = None) -> list[Signer]:
    """The lines that let ``key_blob`` sign in ``namespace`` at ``at`` whatever the principal
    (the outer signature names none; the manifest's principal is checked with :func:`trusts`)."""
    when = _when(at)
    return [s for s in signers if s.allows(key_blob, namespace, when)]
