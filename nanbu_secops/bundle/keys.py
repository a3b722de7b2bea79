"""Keys for sealing and signing: age recipients and identities, Ed25519 signing keys in OpenSSH
format, and OpenSSH allowed-signers files as the list of whom we trust.

Every file here is in a format the standard tools read (``age``, ``age-keygen``, ``ssh-keygen``),
so an office can check what we produce with tools it already trusts.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from nanbu_secops.bundle import sshsig
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
        except pyrage.RecipientError as exc:
            raise InputError(f"not an age recipient ({exc}): {text[:40]!r}", source,
                             number if source != "--recipient" else None) from None
    return recipients


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
        if value.strip().startswith(("age1", "ssh-")):
            found += parse_recipients([value])
            source = "--recipient"
        else:
            found += read_recipient_file(Path(value))
            source = value
        if any(not isinstance(r, pyrage.x25519.Recipient) for r in found):
            raise InputError("bundles are encrypted to age X25519 recipients (age1…, made by `keys new`), "
                             "not SSH keys", source)
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

@dataclass(frozen=True)
class Signer:
    """One allowed-signers line: principals that may sign with this key, in these namespaces."""

    principals: tuple[str, ...]
    key_blob: bytes
    namespaces: tuple[str, ...] | None
    source: str

    def allows(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces


def _options(text: str) -> dict[str, str]:
    """``namespaces="a,b",valid-after=…`` → mapping; quoted values may hold commas."""
    found: dict[str, str] = {}
    for match in re.finditer(r'([A-Za-z-]+)(?:="([^"]*)"|=([^,]*))?(?:,|$)', text):
        if match.group(0):
            found[match.group(1).lower()] = match.group(2) if match.group(2) is not None else (match.group(3) or "")
    return found


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

    Certificate-authority lines and key types other than Ed25519 are refused as input errors
    rather than skipped, so an office never believes a key is trusted when it is not.
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
            principals, rest = _split_options(line)
            options: dict[str, str] = {}
            if not rest.startswith("ssh-"):
                field, rest = _split_options(rest)
                options = _options(field)
            parts = rest.split()
            if "cert-authority" in options:
                raise InputError("cert-authority lines are not supported; list the signers' keys", path, number)
            if len(parts) < 2 or parts[0] != "ssh-ed25519":
                raise InputError("expected `principals [options] ssh-ed25519 AAAA…`", path, number)
            try:
                blob = base64.b64decode(parts[1], validate=True)
                sshsig.ed25519_key(blob)
            except (ValueError, sshsig.SignatureError) as exc:
                raise InputError(f"not an ssh-ed25519 public key: {exc}", path, number) from None
            namespaces = tuple(n.strip() for n in options["namespaces"].split(",")) if "namespaces" in options else None
            signers.append(Signer(tuple(p for p in principals.split(",") if p), blob, namespaces, f"{path}:{number}"))
    return signers


def trusted_as(signers: Sequence[Signer], key_blob: bytes, namespace: str = sshsig.NAMESPACE) -> tuple[str, ...]:
    """The principals a key may sign as in this namespace (empty: not trusted)."""
    names: list[str] = []
    for signer in signers:
        if signer.key_blob == key_blob and signer.allows(namespace):
            names += [p for p in signer.principals if p not in names]
    return tuple(names)
