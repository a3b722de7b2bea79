"""New secrets: passwords from the policy's alphabet, their crypt(3) hashes, and SSH keys."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import secrets
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

#: Characters that are easy to misread or mistype when an account manager reads an opened
#: escrow aloud or copies it from paper: 0/O/o, 1/l/I/|, quotes, backslash and space.
AMBIGUOUS = frozenset("0Oo1lI|`'\"\\ ")


def check_alphabet(alphabet: str) -> str:
    """The alphabet with duplicates removed; raises ValueError when it is unusable."""
    unique = "".join(dict.fromkeys(alphabet))
    bad = sorted(set(unique) & AMBIGUOUS)
    if bad:
        raise ValueError(f"alphabet contains ambiguous characters: {''.join(bad)!r}")
    if len(unique) < 16:
        raise ValueError(f"alphabet has {len(unique)} distinct characters, at least 16 are needed")
    return unique


def new_password(length: int, alphabet: str, classes: int = 3) -> str:
    """A uniformly random password (``secrets``) with characters from at least ``classes`` of
    lower case, upper case, digits and others, as pam_pwquality-style rules expect; redraws
    rather than patching characters in, so the distribution stays uniform over valid passwords."""
    alphabet = check_alphabet(alphabet)
    available = sum(any(test(c) for c in alphabet) for test in _CLASSES)
    if length < 8 or classes > available:
        raise ValueError(f"cannot make a {length}-character password from {classes} character classes")
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if sum(any(test(c) for c in candidate) for test in _CLASSES) >= classes:
            return candidate


_CLASSES = (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())


SALT_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # crypt(3)'s alphabet


@functools.cache
def _libcrypt() -> Callable[[bytes, bytes], bytes | None]:
    """crypt(3) of the system's libcrypt (libxcrypt), which also checks /etc/shadow at login.

    Python's own ``crypt`` module was this same call; it is deprecated since 3.11 and gone in
    3.13, so the library is called directly. One thread calls it (its result buffer is static)."""
    name = ctypes.util.find_library("crypt")
    if name is None:
        raise RuntimeError("libcrypt not found (Debian: libcrypt1): SHA-512 crypt hashes cannot be made")
    function = ctypes.CDLL(name).crypt
    function.argtypes, function.restype = [ctypes.c_char_p, ctypes.c_char_p], ctypes.c_char_p
    return function


def crypt_hash(secret: str, setting: str) -> str:
    """crypt(3): ``setting`` is ``$6$SALT`` or a whole hash (to check a secret against it)."""
    result = _libcrypt()(secret.encode("utf-8"), setting.encode("ascii"))
    if not result or result.startswith(b"*"):
        raise ValueError(f"libcrypt refused the setting {setting[:3]}…")
    return result.decode("ascii")


def sha512_crypt(secret: str) -> str:
    """SHA-512 crypt(3) hash (``$6$salt$...``) as /etc/shadow stores it, with a fresh random salt."""
    hashed = crypt_hash(secret, "$6$" + "".join(secrets.choice(SALT_CHARS) for _ in range(16)))
    if not hashed.startswith("$6$"):
        raise ValueError("libcrypt does not make SHA-512 hashes")
    return hashed


def hash_salt(hashed: str) -> str:
    """The salt part of a crypt(3) hash: unique per rotation and says nothing about the secret,
    so it can sit in plain files and still tell which escrowed secret a host has."""
    parts = hashed.split("$")
    return "$".join(parts[:-1]) if len(parts) >= 4 and parts[0] == "" else ""


def new_ssh_key(comment: str) -> tuple[bytes, str]:
    """A new Ed25519 key: (OpenSSH private key file contents, ``ssh-ed25519 AAAA... comment``)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} {comment}"
