"""Durable file writes shared by the register, the escrow and the key folder, and their folders.

A crash (or SIGKILL) at any point must leave either the old file or the new one, never half
of one: write a temporary file in the same folder, fsync it, rename it over the target, then
fsync the folder so the rename itself survives a power cut.

The controller's folders (escrow, results, register) are trusted for what is in them, so a
folder that its group or everyone may write into is refused: anyone could plant a result that
ingest would count, or swap a register or an escrow entry.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from nanbu_secops.errors import InputError

OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


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


def require_private_dir(folder: Path, what: str) -> None:
    """Refuse (InputError naming it) ``folder`` when its group or everyone may write into it."""
    try:
        mode = os.stat(folder).st_mode
    except OSError as exc:
        raise InputError(f"{what}: {exc.strerror}", folder) from None
    if not stat.S_ISDIR(mode):
        raise InputError(f"{what}: not a folder", folder)
    if mode & OTHERS_WRITE:
        raise InputError(f"{what}: writable by its group or by everyone (mode {stat.S_IMODE(mode):04o}), so "
                         "anyone could plant or swap files in it; refused (chmod go-w it)", folder)


def require_private_tree(folder: Path, what: str) -> None:
    """:func:`require_private_dir` for ``folder`` and every folder under it (a link to a folder is
    checked, not descended into)."""
    require_private_dir(folder, what)
    for parent, subfolders, _ in os.walk(folder):
        for name in subfolders:
            require_private_dir(Path(parent, name), what)


def make_private_dir(folder: Path, mode: int, what: str) -> None:
    """Create ``folder`` (its parent must exist) with exactly ``mode`` when missing; then refuse it
    as :func:`require_private_dir` does."""
    try:
        folder.mkdir(mode=mode)
    except FileExistsError:
        pass
    except OSError as exc:
        raise InputError(f"{what}: cannot create: {exc.strerror}", folder) from None
    else:
        os.chmod(folder, mode)  # exactly, whatever the umask
        fsync_dir(folder.parent)
    require_private_dir(folder, what)


def unwritable(target: Path, *, folder: bool = False) -> str | None:
    """Why output cannot go to ``target`` (a file, or with ``folder`` a folder made if missing), or None.

    Checked before any long work by creating, writing one byte to and removing a temporary file
    where the output would go: the one test that catches /proc, read-only mounts, full disks and
    permissions alike. An existing target that is not a regular file (``/dev/full``, a folder) is
    refused rather than replaced by the rename that writes output.
    """
    if folder:
        if os.path.lexists(target) and not target.is_dir():
            return "exists and is not a folder"
        where = target
        while not where.exists():
            where = where.parent
        if not where.is_dir():
            return f"{where} is not a folder"
    else:
        if target.is_dir():
            return "is a folder, a file is wanted"
        if target.exists() and not target.is_file():
            return "exists and is not a regular file"
        where = target.parent
        if not where.is_dir():
            return "folder does not exist" if not os.path.lexists(where) else f"{where} is not a folder"
    try:
        fd, probe = tempfile.mkstemp(dir=where, prefix=".nanbu-secops-write-check.")
    except OSError as exc:
        return f"cannot write here: {exc.strerror or exc}"
    try:
        os.write(fd, b"\0")
        os.fsync(fd)
    except OSError as exc:
        return f"cannot write here: {exc.strerror or exc}"
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)
    return None
