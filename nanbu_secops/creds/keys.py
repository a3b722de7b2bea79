"""The controller's folder of operations keys: the key Ansible uses for each host.

Layout::

    <key-dir>/<host>/id_ed25519-<stamp>        private key, 0600
    <key-dir>/<host>/id_ed25519-<stamp>.pub
    <key-dir>/<host>/current -> id_ed25519-<stamp>

The inventory points ``ansible_ssh_private_key_file`` at ``current``. A rotation writes a new
key beside the old one, and only after a login with it worked is ``current`` switched (one
atomic rename), so at every moment ``current`` names a key the host accepts.
"""

from __future__ import annotations

import os
from pathlib import Path

from nanbu_secops.creds.escrow import DIR_MODE, FILE_MODE, safe_name
from nanbu_secops.errors import InputError
from nanbu_secops.fileutil import atomic_write, fsync_dir

CURRENT = "current"
PREFIX = "id_ed25519-"


def host_dir(key_dir: Path, host: str) -> Path:
    if not key_dir.is_dir():
        raise InputError("key folder does not exist", key_dir)
    folder = key_dir / safe_name(host, "host")
    if not folder.is_dir():
        folder.mkdir(mode=DIR_MODE)
        fsync_dir(key_dir)
    return folder


def current(key_dir: Path, host: str) -> Path | None:
    """The private key Ansible uses for ``host`` now, if the folder manages one."""
    link = host_dir(key_dir, host) / CURRENT
    return link.resolve() if link.is_symlink() and link.resolve().is_file() else None


def public_key(private: Path) -> str:
    return Path(f"{private}.pub").read_text(encoding="utf-8").strip()


def store(key_dir: Path, host: str, stamp: str, private: bytes, public: str) -> Path:
    """Write a new key pair (not yet current); returns the private key's path."""
    path = host_dir(key_dir, host) / f"{PREFIX}{stamp}"
    atomic_write(path, private, FILE_MODE, exclusive=True)
    atomic_write(Path(f"{path}.pub"), f"{public}\n".encode(), 0o644, exclusive=True)
    return path


def activate(key_dir: Path, host: str, private: Path) -> None:
    """Make ``private`` the current key: a new symlink renamed over the old one."""
    folder = host_dir(key_dir, host)
    if private.parent.resolve() != folder.resolve() or not private.name.startswith(PREFIX) or not private.is_file():
        raise InputError("not a key of this host's key folder", private)
    tmp = folder / f".{CURRENT}.{os.getpid()}"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(private.name)
    os.replace(tmp, folder / CURRENT)
    fsync_dir(folder)


def retired(key_dir: Path, host: str, keep: tuple[Path, ...]) -> list[str]:
    """Public keys of the folder's keys other than ``keep``: a host must not accept them any more
    (left authorized by a run that was killed, or replaced by a rotation)."""
    folder = host_dir(key_dir, host)
    kept = {p.resolve() for p in keep}
    return [public_key(p) for p in sorted(folder.glob(f"{PREFIX}*")) if not p.name.endswith(".pub")
            and p.resolve() not in kept and Path(f"{p}.pub").is_file()]
