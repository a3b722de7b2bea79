"""Read files of a target as that target sees them.

A mounted disk image or chroot has absolute symlinks (``/etc/localtime -> /usr/share/...``)
that must resolve inside the image, never on the auditing machine. :class:`RootFS` resolves
every path component itself, as a chroot would, so nothing outside the root is ever read.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path, PurePosixPath

MAX_SYMLINKS = 40  # as the kernel's ELOOP limit


class RootFS:
    """A filesystem tree audited as if it were mounted at ``/``."""

    def __init__(self, root: str | Path):
        self.root = Path(os.path.abspath(root))

    @property
    def live(self) -> bool:
        """The tree is this machine's own root."""
        return self.root == Path("/")

    def resolve(self, path: str) -> Path:
        """Map a path inside the target to a real path, resolving symlinks within the root."""
        parts = [p for p in PurePosixPath(path).parts if p != "/"]
        resolved: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = self.root.joinpath(*resolved, part)
            if candidate.is_symlink():
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise OSError(40, "Too many levels of symbolic links", path)
                link = PurePosixPath(os.readlink(candidate))
                if link.is_absolute():
                    resolved = []
                parts = [p for p in link.parts if p != "/"] + parts
                continue
            resolved.append(part)
        return self.root.joinpath(*resolved)

    def exists(self, path: str) -> bool:
        return self.resolve(path).exists()

    def read_text(self, path: str) -> str:
        """The file's text; undecodable bytes are kept (surrogateescape) rather than fatal."""
        return self.resolve(path).read_text(encoding="utf-8", errors="surrogateescape")

    def glob(self, pattern: str) -> list[str]:
        """Target paths matching a glob(3)-style absolute pattern, sorted as glob(3) does.

        A name just listed from its resolved folder, and not a symlink, exists: only literal
        parts and symlinks are resolved again (a check globs thousands of installed files)."""
        matches = [""]
        listed: set[str] = set()
        for part in (p for p in PurePosixPath(pattern).parts if p != "/"):
            nxt: list[str] = []
            listed = set()
            for base in matches:
                if not any(ch in part for ch in "*?["):
                    nxt.append(f"{base}/{part}")
                    continue
                try:
                    with os.scandir(self.resolve(base or "/")) as found:
                        entries = sorted((entry.name, _is_link(entry)) for entry in found)
                except OSError:
                    continue
                for name, link in entries:
                    if fnmatch.fnmatchcase(name, part) and (part.startswith(".") or not name.startswith(".")):
                        nxt.append(f"{base}/{name}")
                        if not link:
                            listed.add(nxt[-1])
            matches = nxt
        return [m for m in matches if m in listed or self.exists(m)]


def _is_link(entry: os.DirEntry[str]) -> bool:
    """Whether a listed entry is a symlink; one that cannot be told is treated as one (resolved)."""
    try:
        return entry.is_symlink()
    except OSError:
        return True
