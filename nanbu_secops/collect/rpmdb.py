"""Installed packages from the rpm database (``rpmdb.sqlite``, rpm 4.16 and later: openEuler,
Kylin Server V10, Rocky/RHEL 8+), read offline from a root without rpm itself.

Each row of its ``Packages`` table is an rpm header blob: two big-endian 32-bit counts (index
entries, data bytes), the index entries (tag, type, offset, count; 16 bytes each), then the data.
The database may hold recent changes only in its write-ahead log, so both files are copied to a
private folder and opened there (the root itself may be read-only, and sqlite writes beside a WAL).
The Berkeley DB format of older systems (CentOS 7's ``/var/lib/rpm/Packages``) is not read.
"""

from __future__ import annotations

import shutil
import sqlite3
import struct
import tempfile
from pathlib import Path

from nanbu_secops.collect.rootfs import RootFS

PATHS = ("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite")
BERKELEY_DB = "/var/lib/rpm/Packages"
NAME, VERSION, RELEASE = 1000, 1001, 1002  # rpmtag.h
_STRING = 6
_MAX_ENTRIES = 65536


def header_strings(blob: bytes, tags: tuple[int, ...]) -> dict[int, str]:
    """The string values of ``tags`` in one header blob; ValueError when the blob is malformed."""
    if len(blob) < 8:
        raise ValueError("header shorter than its counts")
    entries, size = struct.unpack(">II", blob[:8])
    start = 8 + 16 * entries
    if entries > _MAX_ENTRIES or start + size > len(blob):
        raise ValueError("header counts exceed the blob")
    data = blob[start:start + size]
    found: dict[int, str] = {}
    for i in range(entries):
        tag, kind, offset, _count = struct.unpack(">IIII", blob[8 + 16 * i:24 + 16 * i])
        if tag in tags and kind == _STRING:
            end = data.find(b"\0", offset)
            if offset >= len(data) or end < 0:
                raise ValueError(f"tag {tag} points outside the data")
            found[tag] = data[offset:end].decode("utf-8", errors="replace")
    return found


def installed(fs: RootFS) -> tuple[dict[str, str], str] | None:
    """({name: ``VERSION-RELEASE``}, the database's path) of every package in the first rpm
    database found, or None when the root has none that opens. A malformed header is skipped."""
    for path in PATHS:
        real = fs.resolve(path)
        if not real.is_file():
            continue
        with tempfile.TemporaryDirectory(prefix="nanbu-rpmdb-") as folder:
            copy = Path(folder) / "rpmdb.sqlite"
            shutil.copyfile(real, copy)
            wal = real.with_name(real.name + "-wal")
            if wal.is_file():
                shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
            try:
                db = sqlite3.connect(copy)
                try:
                    rows = db.execute("SELECT blob FROM Packages").fetchall()
                finally:
                    db.close()
            except sqlite3.Error:
                continue
        packages: dict[str, str] = {}
        for (blob,) in rows:
            try:
                tags = header_strings(bytes(blob), (NAME, VERSION, RELEASE))
            except (ValueError, TypeError):
                continue
            if NAME in tags and VERSION in tags:
                packages[tags[NAME]] = f"{tags[VERSION]}-{tags.get(RELEASE, '')}".rstrip("-")
        return packages, path
    return None


def package_version(fs: RootFS, name: str) -> tuple[str, str] | None:
    """(``VERSION-RELEASE``, the database's path) of installed package ``name``, or None."""
    found = installed(fs)
    if found is None or name not in found[0]:
        return None
    return found[0][name], found[1]
