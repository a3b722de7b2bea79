"""Prove a new credential by logging in with it over SSH (paramiko), as its holder will.

The server's host key is checked against a known_hosts file *before* any credential is sent:
a password offered to an impostor would be a leaked password. Nothing here runs a command on
the host; a successful authentication is the whole proof.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko


@dataclass(frozen=True)
class Login:
    ok: bool
    reason: str


def _known(known_hosts: Path, names: list[str], key: paramiko.PKey) -> bool:
    hosts = paramiko.HostKeys()
    hosts.load(str(known_hosts))
    return any(hosts.check(name, key) for name in names)


def login(address: str, port: int, user: str, *, known_hosts: Path, password: str | None = None,
          key_file: Path | None = None, host_key_alias: str | None = None, timeout: float = 15.0) -> Login:
    """Authenticate as ``user`` with ``password`` or the private key in ``key_file``."""
    if (password is None) == (key_file is None):
        raise ValueError("give exactly one of password and key_file")
    names = [address if port == 22 else f"[{address}]:{port}"]
    if host_key_alias:
        names.insert(0, host_key_alias if port == 22 else f"[{host_key_alias}]:{port}")
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        return Login(False, f"cannot connect to {address} port {port}: {exc.strerror or exc}")
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = transport.auth_timeout = timeout
        transport.start_client(timeout=timeout)
        if not _known(known_hosts, names, transport.get_remote_server_key()):
            return Login(False, f"host key of {names[0]} is not in {known_hosts}: credential not sent")
        if password is not None:
            transport.auth_password(user, password)
        else:
            transport.auth_publickey(user, paramiko.PKey.from_path(key_file))
        if transport.is_authenticated():
            return Login(True, "login succeeded")
        return Login(False, "authentication did not complete")
    except paramiko.BadAuthenticationType as exc:
        return Login(False, f"sshd does not accept this method (allowed: {', '.join(exc.allowed_types)})")
    except paramiko.AuthenticationException:
        return Login(False, "authentication failed")
    except (paramiko.SSHException, OSError, EOFError) as exc:
        return Login(False, f"SSH error: {exc}")
    finally:
        transport.close()
