"""Streaming age encryption and decryption, so a bundle of any size passes through bounded memory.

Both directions use :mod:`agefile` (the age format over `cryptography`'s primitives, which
release the GIL). Writing runs on two threads beside the one that reads and hashes the evidence:

    packing:   this thread (files → SHA-256 → tar → 1 MiB blocks) → thread: ChaCha20-Poly1305
               into reused buffers → thread: SHA-256 of the ciphertext, for the outer signature
               → the bundle file

Reading runs in a forked child process at the end of an OS pipe, so the ciphertext's SHA-256
and the decryption use one core while this process parses the tar and hashes the files on the
other:

    checking:  child: the bundle file → SHA-256 of the ciphertext → age decrypt → pipe
               → this process (tar → checks)

Children run only the age and hashing steps and report back a digest or an error text over a
result pipe; they never return into the caller's code (``os._exit``).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from nanbu_secops.bundle import agefile

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
    with contextlib.suppress(OSError):  # keep the default size: slower, still correct
        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, CHUNK)
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
    """The ciphertext source: the bundle file, hashed (SHA-256) as age reads it. Each read fills
    one reused buffer (a fresh 1 MiB object per read would fault in its pages every time), so
    what it returns is valid until the next read."""

    def __init__(self, source: BinaryIO):
        self.source, self.hash = source, hashlib.sha256()
        self._buffer = memoryview(bytearray(agefile.READ))

    def read(self, n: int) -> memoryview:
        got = self.source.readinto(self._buffer[:min(n, len(self._buffer))])
        data = self._buffer[:got or 0]
        self.hash.update(data)
        return data


@dataclass
class Sealed:
    """What :func:`encrypting` knows once the block ends: the ciphertext's SHA-256 and size."""

    digest: bytes = b""
    size: int = 0


_END = object()
_SEALED_BLOCK = CHUNK // agefile.CHUNK * agefile.SEALED  # a 1 MiB block once sealed: 16 chunks and their tags
_DEPTH = 4  # blocks in flight per queue: memory stays at a few MiB whatever the bundle size


class _Stage(threading.Thread):
    """A worker between two queues. After a failure it keeps draining its input, so the
    producer never blocks on a full queue, and passes the end marker on."""

    def __init__(self, name: str, work: Callable[[Any], Any], inbox: queue.Queue[Any], outbox: queue.Queue[Any] | None):
        super().__init__(name=name, daemon=True)
        self.work, self.inbox, self.outbox = work, inbox, outbox
        self.error: BaseException | None = None

    def run(self) -> None:
        while (item := self.inbox.get()) is not _END:
            if self.error is not None:
                continue
            try:
                result = self.work(item)
                if self.outbox is not None:
                    self.outbox.put(result)
            except BaseException as exc:  # reported by the producer, which raises
                self.error = exc
        if self.outbox is not None:
            self.outbox.put(_END)


class Sink:
    """Where the tar is written: plaintext in, cut into 1 MiB blocks for the sealing thread.

    The last block is held back until more data arrives or :meth:`close` says it is the end,
    because age flags the final chunk. The threads start with the first block, not before: the
    snapshot's process pool and the decrypting child are forked before any data flows, and a
    process forked while threads run could inherit a lock one of them holds."""

    def __init__(self, out_fd: int, recipients: Sequence[bytes]):
        self.sealed = Sealed()
        self._out_fd = out_fd
        head, self._sealer = agefile.start(recipients)
        self._digest = hashlib.sha256(head)
        try:
            write_all(out_fd, head)
        except OSError as exc:
            raise BundleEncryptError(f"writing the bundle failed: {exc}") from exc
        self.sealed.size = len(head)
        self._plain: queue.Queue[Any] = queue.Queue(_DEPTH)
        self._cipher: queue.Queue[Any] = queue.Queue(_DEPTH)
        self._stages = [_Stage("age-seal", self._seal, self._plain, self._cipher),
                        _Stage("age-store", self._store, self._cipher, None)]
        self._started = False
        self._spare: collections.deque[bytearray] = collections.deque()
        self._spare_out: collections.deque[bytearray] = collections.deque()
        self._block, self._fill = bytearray(CHUNK), 0
        self._full: bytearray | None = None

    def _seal(self, item: tuple[bytearray | memoryview, bool]) -> tuple[bytearray, memoryview]:
        block, final = item
        out = self._spare_out.popleft() if self._spare_out else bytearray(_SEALED_BLOCK)
        sealed = self._sealer.seal_into(block, final, out)
        if isinstance(block, bytearray):  # reused: fresh 1 MiB buffers cost a page fault per 4 KiB
            self._spare.append(block)
        return out, sealed

    def _store(self, item: tuple[bytearray, memoryview]) -> None:
        out, sealed = item
        with sealed:
            self._digest.update(sealed)
            self.sealed.size += len(sealed)
            write_all(self._out_fd, sealed)
        self._spare_out.append(out)

    def _send(self, block: bytearray | memoryview, final: bool) -> None:
        if not self._started:
            self._started = True
            for stage in self._stages:
                stage.start()
        for stage in self._stages:
            if stage.error is not None:
                raise BundleEncryptError(f"writing the bundle failed: {stage.error}") from stage.error
        self._plain.put((block, final))

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        while view:
            if self._full is not None:  # more data: the held block was not the last
                self._send(self._full, final=False)
                self._full = None
            n = min(len(view), CHUNK - self._fill)
            self._block[self._fill:self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == CHUNK:
                spare = self._spare.popleft() if self._spare else bytearray(CHUNK)
                self._full, self._block, self._fill = self._block, spare, 0

    def close(self) -> None:
        """Seal the final chunk, wait for the threads; raise BundleEncryptError if one failed."""
        try:
            if self._full is not None and self._fill:
                self._send(self._full, final=False)
                self._full = None
            self._send(self._full if self._full is not None else memoryview(self._block)[:self._fill], final=True)
        finally:
            self.abandon()
        for stage in self._stages:
            if stage.error is not None:
                raise BundleEncryptError(f"writing the bundle failed: {stage.error}") from stage.error
        self.sealed.digest = self._digest.digest()

    def abandon(self) -> None:
        """Stop the threads without sealing (the caller failed; the file will be removed)."""
        if self._started:
            self._plain.put(_END)
            for stage in self._stages:
                stage.join()
            self._started = False


@contextmanager
def encrypting(out: BinaryIO, recipients: Sequence[Any]) -> Iterator[Sink]:
    """Yield a :class:`Sink` to write the plaintext into; on a normal exit its ``sealed`` holds
    the ciphertext's SHA-256 and size. ``out`` must be an empty file opened for writing."""
    try:
        keys = [agefile.x25519_key(r) for r in recipients]
    except agefile.RecipientKeyError as exc:
        raise BundleEncryptError(f"bundles are encrypted to age X25519 recipients only: {exc}") from None
    sink = Sink(out.fileno(), keys)
    try:
        yield sink
    except BaseException:
        sink.abandon()
        raise
    sink.close()


class Plaintext:
    """A decrypting reader. Reading to the end is not enough to trust the stream: :meth:`finish`
    says whether age authenticated all of it, and gives the ciphertext's SHA-256."""

    def __init__(self, path: str | os.PathLike[str] | BinaryIO, identities: Sequence[Any]):
        if isinstance(path, (str, os.PathLike)):
            source = open(path, "rb")  # noqa: SIM115 (opened here, so a missing file fails in the caller; closed below)
        else:  # an open bundle read again from its start: the same file as the pass before
            source = os.fdopen(os.dup(path.fileno()), "rb")
            source.seek(0)
        plain_read, plain_write = _pipe()

        def decrypt() -> bytes:
            reader = _HashingReader(source)
            agefile.decrypt_stream(reader.read, lambda plain: write_all(plain_write, plain), identities)
            os.close(plain_write)
            return reader.hash.digest()  # of the whole file: decrypt_stream reads to its end

        self._child = _fork(decrypt, keep=(plain_write, source.fileno()))
        source.close()
        os.close(plain_write)
        self.stream = open(plain_read, "rb", buffering=CHUNK)  # noqa: SIM115 (closed by close())
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
def decrypting(path: str | os.PathLike[str] | BinaryIO, identities: Sequence[Any]) -> Iterator[Plaintext]:
    """Decrypt the bundle at ``path``, or the open bundle ``path`` from its first byte."""
    plain = Plaintext(path, identities)
    try:
        yield plain
    finally:
        plain.close()
