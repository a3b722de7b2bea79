"""Streaming age encryption and decryption, so a bundle of any size passes through bounded memory.

pyrage (the Rust age implementation) reads from and writes to file objects, and holds Python's
GIL while it works. Run on a thread beside our hashing, the two would take turns instead of
using both cores of a terminal, so age runs in a forked child process at the end of an OS pipe:

    packing:   this process (files → SHA-256 → tar) → pipe → child: age encrypt → pipe
               → child: SHA-256 of the ciphertext, for the outer signature → the bundle file
    checking:  child: the bundle file → SHA-256 of the ciphertext → age decrypt → pipe
               → this process (tar → checks)

Children run only the age and hashing steps and report back a digest or an error text over a
result pipe; they never return into the caller's code (``os._exit``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyrage

CHUNK = 1 << 20
_F_SETPIPE_SZ = 1031


class BundleDecryptError(Exception):
    """The age layer failed: wrong identity, or ciphertext damaged or cut short."""


class BundleEncryptError(Exception):
    """Encrypting or writing the bundle failed (disk full, a recipient refused)."""


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _pipe() -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    try:
        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, CHUNK)
    except OSError:
        pass  # keep the default size: slower, still correct
    return read_fd, write_fd


@dataclass
class _Child:
    pid: int
    result_fd: int

    def wait(self) -> tuple[bool, bytes]:
        """(succeeded, digest or error text) once the child has ended."""
        with os.fdopen(self.result_fd, "rb") as result:
            payload = result.read()
        os.waitpid(self.pid, 0)
        ok, _, body = payload.partition(b":")
        return ok == b"ok", body


def _close_all_but(keep: Sequence[int]) -> None:
    """In a child: close every inherited descriptor but stdio and ``keep``, so no pipe is held
    open by a process that does not use it (its reader would never see the end)."""
    low = 3
    for fd in sorted(set(keep)):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _fork(task: Callable[[], bytes], keep: Sequence[int]) -> _Child:
    """Run ``task`` in a child holding only the descriptors in ``keep``."""
    result_read, result_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            _close_all_but((*keep, result_write))
            payload = b"ok:" + task()
            code = 0
        except BaseException as exc:  # reported to the parent, which raises
            payload = b"error:" + (str(exc) or type(exc).__name__).encode("utf-8", "replace")
        try:
            write_all(result_write, payload)
        finally:
            os._exit(code)
    os.close(result_write)
    return _Child(pid, result_read)


class _HashingReader:
    """The ciphertext source: the bundle file, hashed (SHA-256) as age reads it."""

    def __init__(self, source: BinaryIO):
        self.source, self.hash = source, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n)
        self.hash.update(data)
        return data


@dataclass
class Sealed:
    """What :func:`encrypting` knows once the block ends: the ciphertext's SHA-256 and size."""

    digest: bytes = b""
    size: int = 0


@contextmanager
def encrypting(out: BinaryIO, recipients: Sequence[Any]) -> Iterator[tuple[int, Sealed]]:
    """Yield (fd to write the plaintext into, the result filled in on exit). ``out`` must be an
    empty file opened for writing; the children write it through its descriptor."""
    plain_read, plain_write = _pipe()
    cipher_read, cipher_write = _pipe()
    out_fd = out.fileno()

    def store() -> bytes:
        digest, size = hashlib.sha256(), 0
        with open(cipher_read, "rb", buffering=0) as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                write_all(out_fd, chunk)
                size += len(chunk)
        return digest.digest() + size.to_bytes(8, "big")

    def encrypt() -> bytes:
        with open(plain_read, "rb", buffering=CHUNK) as source, open(cipher_write, "wb", buffering=0) as sink:
            pyrage.encrypt_io(source, sink, list(recipients))
        return b""

    writer = _fork(store, keep=(cipher_read, out_fd))
    os.close(cipher_read)
    age = _fork(encrypt, keep=(plain_read, cipher_write))
    os.close(plain_read)
    os.close(cipher_write)
    sealed = Sealed()
    try:
        yield plain_write, sealed
    except BrokenPipeError:
        os.close(plain_write)
        _, problem = age.wait()
        writer.wait()
        raise BundleEncryptError(f"age stopped: {problem.decode(errors='replace')}") from None
    except BaseException:
        os.close(plain_write)
        age.wait()
        writer.wait()
        raise
    os.close(plain_write)
    encrypted, problem = age.wait()
    stored, body = writer.wait()
    if not encrypted:
        raise BundleEncryptError(f"age failed: {problem.decode(errors='replace')}")
    if not stored:
        raise BundleEncryptError(f"writing the bundle failed: {body.decode(errors='replace')}")
    sealed.digest, sealed.size = body[:32], int.from_bytes(body[32:40], "big")


class Plaintext:
    """A decrypting reader. Reading to the end is not enough to trust the stream: :meth:`finish`
    says whether age authenticated all of it, and gives the ciphertext's SHA-256."""

    def __init__(self, path: str | os.PathLike[str], identities: Sequence[Any]):
        source = open(path, "rb")  # opened here, so a missing file fails in the caller
        plain_read, plain_write = _pipe()

        def decrypt() -> bytes:
            reader = _HashingReader(source)
            with open(plain_write, "wb", buffering=0) as sink:
                pyrage.decrypt_io(reader, sink, list(identities))
            while reader.read(CHUNK):  # age may stop before the end; the signature covers it all
                pass
            return reader.hash.digest()

        self._child = _fork(decrypt, keep=(plain_write, source.fileno()))
        source.close()
        os.close(plain_write)
        self.stream = open(plain_read, "rb", buffering=CHUNK)
        self.cipher_digest = b""
        self._done = False

    def close(self) -> None:
        """Stop early: the child sees a broken pipe and ends."""
        if not self._done:
            self._done = True
            self.stream.close()
            self._child.wait()

    def finish(self) -> None:
        """Drain what is left, wait for age, and raise BundleDecryptError if it failed."""
        while self.stream.read(CHUNK):
            pass
        self._done = True
        self.stream.close()
        ok, body = self._child.wait()
        if not ok:
            raise BundleDecryptError(body.decode(errors="replace"))
        self.cipher_digest = body


@contextmanager
def decrypting(path: str | os.PathLike[str], identities: Sequence[Any]) -> Iterator[Plaintext]:
    plain = Plaintext(path, identities)
    try:
        yield plain
    finally:
        plain.close()
