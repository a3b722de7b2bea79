"""Build ClamAV signature databases of any age for tests: unsigned ``.cud`` containers.

A ``.cud`` is a 512-byte header (``ClamAV-VDB:<time>:<version>:<sigs>:<flevel>:<md5>:<dsig>:
<builder>:<stime>``, padded with spaces) followed by a gzip'd tar of ``<name>.info`` and the
signature files. clamscan and clamd load it without a signature check (it is what ClamAV's own
incremental updates leave behind), and its build time ``stime`` is what makes a database old or
new, so a test can make a 10-day-old database. Signed ``.cvd`` files cannot be forged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import tarfile
from pathlib import Path

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE = "Nanbu-Test.EICAR"


def eicar_hdb() -> str:
    """An MD5 signature (``.hdb`` line ``md5:size:name``) for the EICAR test file."""
    return f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:{EICAR_SIGNATURE}\n"


def header(built: dt.datetime, version: int, sigs: int) -> bytes:
    stamp = built.strftime("%d %b %Y %H-%M %z")
    text = f"ClamAV-VDB:{stamp}:{version}:{sigs}:90:X:X:nanbu-tests:{int(built.timestamp())}"
    return text.encode("ascii").ljust(512, b" ")


def write_cud(folder: Path, built: dt.datetime, version: int = 27000, *, name: str = "daily",
              signatures: dict[str, str] | None = None) -> Path:
    """Write ``<folder>/<name>.cud`` holding ``signatures`` (file name -> text; default: EICAR)."""
    files = signatures or {f"{name}.hdb": eicar_hdb()}
    sigs = sum(len(text.splitlines()) for text in files.values())
    head = header(built, version, sigs)
    info = head.rstrip().decode() + "\n" + "".join(
        f"{fname}:{len(text.encode())}:{hashlib.sha256(text.encode()).hexdigest()}\n" for fname, text in files.items())
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as tar:
        for fname, text in {f"{name}.info": info, **files}.items():
            data = text.encode()
            member = tarfile.TarInfo(fname)
            member.size = len(data)
            member.mtime = int(built.timestamp())
            tar.addfile(member, io.BytesIO(data))
    path = folder / f"{name}.cud"
    path.write_bytes(head + payload.getvalue())
    return path
