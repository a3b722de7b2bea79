"""New secrets: passwords from the policy's alphabet, their crypt(3) hashes, and SSH keys."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class HashMethod:
    """How a terminal hashes a new password: libxcrypt's setting prefix and cost (0: libxcrypt's
    default for that method), and where that choice was read, for the run's evidence."""

    name: str  # "yescrypt", "sha512", ...
    prefix: str  # "$y$", "$6$", ...
    count: int
    source: str


#: crypt_gensalt's output and crypt_rn's ``struct crypt_data`` sizes (libxcrypt's crypt.h:
#: CRYPT_GENSALT_OUTPUT_SIZE, and the four fields plus ``internal`` of struct crypt_data).
_GENSALT_SIZE = 192
_CRYPT_DATA_SIZE = 384 + 384 + 512 + 767 + 1 + 30720


@dataclass(frozen=True)
class _Libcrypt:
    gensalt_rn: Any
    crypt_rn: Any


@functools.cache
def _libcrypt() -> _Libcrypt:
    """The system's libcrypt (libxcrypt), the library that also checks /etc/shadow at login.

    Its reentrant calls are used: ``crypt_gensalt_rn`` draws the salt from the kernel's random
    source and encodes the cost as the method expects, ``crypt_rn`` keeps its state in a buffer of
    the caller's, so threads do not share a static result (Python's ``crypt`` module, gone in 3.13,
    called the static ``crypt``)."""
    name = ctypes.util.find_library("crypt")
    if name is None:
        raise RuntimeError("libcrypt not found (Debian: libcrypt1): password hashes cannot be made")
    library = ctypes.CDLL(name)
    gensalt = library.crypt_gensalt_rn
    gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    gensalt.restype = ctypes.c_char_p
    crypt_rn = library.crypt_rn
    crypt_rn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    crypt_rn.restype = ctypes.c_char_p
    return _Libcrypt(gensalt, crypt_rn)


def check_secret(secret: str) -> str:
    """The secret, unless it holds a control character: a newline or NUL would be cut or
    misread by chpasswd, a terminal or a form, so the account could not be logged into as escrowed."""
    bad = sorted({f"U+{ord(c):04X}" for c in secret if unicodedata.category(c) == "Cc"})
    if bad:
        raise ValueError(f"the secret contains control characters ({', '.join(bad)})")
    return secret


def crypt_hash(secret: str, setting: str) -> str:
    """crypt_rn(3): ``setting`` is a salt from :func:`new_setting` or a whole hash (to check a
    secret against it: the result equals the hash exactly when the secret is right)."""
    data = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)
    result = _libcrypt().crypt_rn(check_secret(secret).encode("utf-8"), setting.encode("ascii"), data, len(data))
    if not result or result.startswith(b"*"):
        raise ValueError(f"libcrypt refused the setting {setting[:3]}…")
    return result.decode("ascii")


def new_setting(method: HashMethod) -> str:
    """A fresh setting (method, cost, random salt) from crypt_gensalt_rn(3)."""
    output = ctypes.create_string_buffer(_GENSALT_SIZE)
    result = _libcrypt().gensalt_rn(method.prefix.encode("ascii"), method.count, None, 0, output, len(output))
    if not result or result.startswith(b"*"):
        raise ValueError(f"libcrypt cannot make {method.name} hashes with cost {method.count}")
    return result.decode("ascii")


def make_hash(secret: str, method: HashMethod) -> str:
    """The crypt hash /etc/shadow stores for ``secret``, made the way ``method`` says."""
    hashed = crypt_hash(secret, new_setting(method))
    if not hashed.startswith(method.prefix):
        raise ValueError(f"libcrypt did not make a {method.name} hash")
    return hashed


#: SHA-512 at libxcrypt's default cost: what the tests and the lab use as a known old password.
SHA512 = HashMethod("sha512", "$6$", 0, "built-in")


def sha512_crypt(secret: str) -> str:
    """SHA-512 crypt(3) hash (``$6$salt$...``) with a fresh random salt."""
    return make_hash(secret, SHA512)


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
