"""OpenSSH signatures (the SSHSIG format of ``ssh-keygen -Y sign``), so that anyone can check our
bundles with the ssh-keygen already on their machine instead of trusting this code.

The format (OpenSSH PROTOCOL.sshsig): the signer signs, with an ordinary SSH key, a small blob
holding the magic ``SSHSIG``, a namespace, a hash algorithm name and the hash of the message.
Only the wire encoding is written here; Ed25519 itself is ``cryptography``'s. We sign with
Ed25519 and SHA-256 (ssh-keygen verifies both sha256 and sha512) and verify Ed25519 only, which
is what ``keys new`` makes.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

MAGIC = b"SSHSIG"
VERSION = 1
NAMESPACE = "nanbu-secops"
BEGIN, END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"
KEY_TYPE = b"ssh-ed25519"
HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
MAX_ARMORED = 16 * 1024


class SignatureError(Exception):
    """A signature that is malformed or does not verify; the message says which."""


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise SignatureError("signature blob is truncated")
        part = self.data[self.at:self.at + n]
        self.at += n
        return part

    def string(self) -> bytes:
        (length,) = struct.unpack(">I", self.take(4))
        return self.take(length)


def public_blob(key: ed25519.Ed25519PublicKey) -> bytes:
    """The SSH wire form of a public key (what ``ssh-ed25519 AAAA…`` base64-encodes)."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _string(KEY_TYPE) + _string(raw)


def fingerprint(blob: bytes) -> str:
    """``SHA256:…`` as ssh-keygen prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def openssh_public(blob: bytes) -> str:
    """``ssh-ed25519 AAAA…`` for a wire-form public key."""
    return f"{KEY_TYPE.decode()} {base64.b64encode(blob).decode()}"


def ed25519_key(blob: bytes) -> ed25519.Ed25519PublicKey:
    """The Ed25519 key in a wire-form blob; other key types are refused."""
    reader = _Reader(blob)
    kind = reader.string()
    if kind != KEY_TYPE:
        raise SignatureError(f"unsupported key type {kind.decode(errors='replace')!r} (only ssh-ed25519)")
    raw = reader.string()
    if len(raw) != 32 or reader.at != len(blob):
        raise SignatureError("malformed ssh-ed25519 public key")
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def digest_of(chunks: Iterable[bytes], algorithm: str = "sha256") -> bytes:
    """The message hash SSHSIG signs, over a stream of chunks."""
    h = HASHES[algorithm]()
    for chunk in chunks:
        h.update(chunk)
    return h.digest()


def _signed_data(namespace: str, algorithm: str, digest: bytes) -> bytes:
    return MAGIC + _string(namespace.encode()) + _string(b"") + _string(algorithm.encode()) + _string(digest)


def sign_digest(key: ed25519.Ed25519PrivateKey, digest: bytes, namespace: str = NAMESPACE,
                algorithm: str = "sha256") -> str:
    """An armored SSHSIG over a message whose ``algorithm`` hash is ``digest``."""
    signature = key.sign(_signed_data(namespace, algorithm, digest))
    blob = (MAGIC + struct.pack(">I", VERSION) + _string(public_blob(key.public_key()))
            + _string(namespace.encode()) + _string(b"") + _string(algorithm.encode())
            + _string(_string(KEY_TYPE) + _string(signature)))
    text = base64.b64encode(blob).decode()
    lines = [text[i:i + 70] for i in range(0, len(text), 70)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


def sign(key: ed25519.Ed25519PrivateKey, message: bytes, namespace: str = NAMESPACE) -> str:
    return sign_digest(key, hashlib.sha256(message).digest(), namespace)


@dataclass(frozen=True)
class Parsed:
    """An armored signature taken apart: who signed, under which namespace and hash."""

    key_blob: bytes
    namespace: str
    algorithm: str
    signature: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key_blob)


def parse(armored: str | bytes) -> Parsed:
    """Take an armored SSHSIG apart; anything malformed raises SignatureError."""
    if isinstance(armored, bytes):
        if len(armored) > MAX_ARMORED:
            raise SignatureError("signature file is too large")
        try:
            armored = armored.decode("ascii")
        except UnicodeDecodeError:
            raise SignatureError("signature is not ASCII armor") from None
    lines = [line.strip() for line in armored.strip().splitlines()]
    if len(lines) < 3 or lines[0] != BEGIN or lines[-1] != END:
        raise SignatureError("not an armored SSH signature")
    try:
        blob = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        raise SignatureError("signature armor is not base64") from None
    reader = _Reader(blob)
    if reader.take(6) != MAGIC or struct.unpack(">I", reader.take(4))[0] != VERSION:
        raise SignatureError("not an SSHSIG version 1 signature")
    key_blob = reader.string()
    namespace = reader.string().decode(errors="replace")
    reader.string()  # reserved
    algorithm = reader.string().decode(errors="replace")
    sig = _Reader(reader.string())
    if reader.at != len(blob):
        raise SignatureError("trailing bytes after the signature")
    if sig.string() != KEY_TYPE:
        raise SignatureError("signature is not ssh-ed25519")
    signature = sig.string()
    if sig.at != len(sig.data):
        raise SignatureError("trailing bytes after the Ed25519 signature")
    if len(signature) != 64:
        raise SignatureError(f"an Ed25519 signature is 64 bytes, not {len(signature)}")
    if algorithm not in HASHES:
        raise SignatureError(f"unsupported hash algorithm {algorithm!r}")
    return Parsed(key_blob, namespace, algorithm, signature)


def verify_digest(parsed: Parsed, digest: bytes, namespace: str = NAMESPACE) -> None:
    """Raise SignatureError unless ``parsed`` signs a message with this ``algorithm`` digest."""
    if parsed.namespace != namespace:
        raise SignatureError(f"namespace is {parsed.namespace!r}, not {namespace!r}")
    try:
        ed25519_key(parsed.key_blob).verify(parsed.signature, _signed_data(namespace, parsed.algorithm, digest))
    except InvalidSignature:
        raise SignatureError("signature does not match the content") from None


def verify(armored: str | bytes, message: bytes, namespace: str = NAMESPACE) -> Parsed:
    """Check a signature over a message held in memory; return who signed."""
    parsed = parse(armored)
    verify_digest(parsed, HASHES[parsed.algorithm](message).digest(), namespace)
    return parsed
