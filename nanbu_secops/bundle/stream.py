"""Streaming age encryption and decryption, so a bundle of any size passes through bounded memory.

pyrage (the Rust age implementation) reads from and writes to Python file objects. We put it on
a thread at one end of an OS pipe: the tar stream is written into (or read out of) the other end
while age works, which also lets hashing on one side overlap encryption on the other on a
two-core terminal. The ciphertext is hashed as it is written or read, for the outer signature,
so the encrypted file is never read twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO

import pyrage

CHUNK = 1 << 20
_F_SETPIPE_SZ = 1031


class BundleDecryptError(Exception):
    """The age layer failed: wrong identity, or ciphertext damaged or cut short."""


class _Pipe:
    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        try:
            fcntl.fcntl(self.write_fd, _F_SETPIPE_SZ, CHUNK)
        except OSError:
            pass  # keep the default size: slower, still correct


class HashingWriter:
    """The ciphertext sink: the output file, hashed (SHA-256) on the way."""

    def __init__(self, out: BinaryIO):
        self.out, self.hash, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


class HashingReader:
    """The ciphertext source: the input file, hashed (SHA-256) as age reads it."""

    def __init__(self, source: BinaryIO):
        self.source, self.hash, self.size = source, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        n = self.source.readinto(buffer)
        self.hash.update(memoryview(buffer)[:n])
        self.size += n
        return n


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextmanager
def encrypting(out: BinaryIO, recipients: Sequence[Any]) -> Iterator[tuple[int, HashingWriter]]:
    """Yield (fd to write plaintext into, the ciphertext sink); age encrypts to ``recipients``
    into ``out`` as the plaintext arrives. Leaving the block finishes the age stream."""
    pipe = _Pipe()
    sink = HashingWriter(out)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with open(pipe.read_fd, "rb", buffering=CHUNK) as plaintext:
                pyrage.encrypt_io(plaintext, sink, list(recipients))
        except BaseException as exc:  # surfaced to the caller below
            failure.append(exc)

    worker = threading.Thread(target=run, name="age-encrypt", daemon=True)
    worker.start()
    try:
        yield pipe.write_fd, sink
    except BrokenPipeError:
        os.close(pipe.write_fd)
        worker.join()
        raise failure[0] if failure else BrokenPipeError("age stopped reading") from None
    except BaseException:
        os.close(pipe.write_fd)
        worker.join()
        raise
    os.close(pipe.write_fd)
    worker.join()
    if failure:
        raise failure[0]


class Plaintext:
    """A decrypting reader. Reading to the end is not enough to trust the stream:
    :meth:`finish` says whether age authenticated all of it."""

    def __init__(self, source: BinaryIO, identities: Sequence[Any]):
        self.ciphertext = HashingReader(source)
        pipe = _Pipe()
        self._failure: list[BaseException] = []
        self._closed = False
        self.stream = open(pipe.read_fd, "rb", buffering=CHUNK)
        write_fd = pipe.write_fd

        def run() -> None:
            try:
                with open(write_fd, "wb", buffering=0) as plain:
                    pyrage.decrypt_io(self.ciphertext, plain, list(identities))
            except BaseException as exc:
                if not self._closed:
                    self._failure.append(exc)

        self._worker = threading.Thread(target=run, name="age-decrypt", daemon=True)
        self._worker.start()

    def close(self) -> None:
        """Stop early: the worker sees a broken pipe and ends."""
        self._closed = True
        self.stream.close()
        self._worker.join()

    def finish(self) -> None:
        """Drain what is left, wait for age, and raise BundleDecryptError if it failed."""
        while self.stream.read(CHUNK):
            pass
        self.stream.close()
        self._worker.join()
        if self._failure:
            raise BundleDecryptError(str(self._failure[0]) or type(self._failure[0]).__name__)


@contextmanager
def decrypting(path: str | os.PathLike[str], identities: Sequence[Any]) -> Iterator[Plaintext]:
    with open(path, "rb") as source:
        plain = Plaintext(source, identities)
        try:
            yield plain
        finally:
            if not plain.stream.closed:
                plain.close()
