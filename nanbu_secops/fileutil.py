"""Durable file writes shared by the register, the escrow and the key folder.

A crash (or SIGKILL) at any point must leave either the old file or the new one, never half
of one: write a temporary file in the same folder, fsync it, rename it over the target, then
fsync the folder so the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in ``folder`` durable."""
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def atomic_write(target: Path, data: bytes, mode: int = 0o600, *, exclusive: bool = False) -> None:
    """Replace ``target`` with ``data`` atomically and durably; ``mode`` is set before any byte is written.

    ``exclusive``: refuse to replace an existing file (FileExistsError), for files that are
    written once and never overwritten, such as escrowed secrets.
    """
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        if exclusive:
            os.link(tmp, target)  # fails if target exists; rename would silently replace it
            os.unlink(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)
