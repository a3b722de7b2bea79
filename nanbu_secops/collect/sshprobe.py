"""What an SSH server offers on the wire: its banner and the algorithm lists of its KEXINIT.

This is the outside view of a login terminal (article 26), for ``nanbu-secops ssh-probe``: it
needs no account and works on servers the agent cannot run on. It is a function the command
calls, not a registered collector, because it talks to other hosts rather than the target.

paramiko's ``Packetizer`` does the SSH framing: the probe sends its identification string, reads
the server's, then reads the server's first binary packet, which is its SSH_MSG_KEXINIT (a server
sends it without waiting for ours, RFC 4253 section 7.1) and is still unencrypted. The name-lists
are read with ``paramiko.Message``. The probe never negotiates, so a server that offers only
algorithms paramiko refuses (e.g. only diffie-hellman-group1-sha1) is still fully reported.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

import paramiko
from paramiko.common import MSG_KEXINIT

from nanbu_secops.errors import InputError

DEFAULT_PORT = 22
CLIENT_ID = "SSH-2.0-nanbu_secops_probe"
MAX_PRE_BANNER_LINES = 100  # RFC 4253 4.2: a server may send other lines before its identification
# KEXINIT entries that are protocol flags, not algorithms (RFC 8308 ext-info; OpenSSH strict kex).
KEX_MARKERS = ("ext-info-", "kex-strict-")


@dataclass(frozen=True)
class Endpoint:
    """A host and port as given on the command line."""

    text: str
    host: str
    port: int


@dataclass
class Probe:
    """What one server offered; ``error`` says why nothing (or not everything) could be read."""

    endpoint: Endpoint
    banner: str | None = None
    algorithms: dict[str, list[str]] = field(default_factory=dict)  # kex, hostkey, ciphers, macs
    strict_kex: bool = False
    error: str | None = None


def parse_endpoint(text: str) -> Endpoint:
    """``HOST``, ``HOST:PORT``, ``[IPv6]``, ``[IPv6]:PORT`` or a bare IPv6 address; bad input is an InputError."""
    spec = text.strip()
    port_text = ""
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InputError(f"{text!r}: write an IPv6 address as [ADDRESS] or [ADDRESS]:PORT")
        port_text = rest[1:] if rest else ""
        if rest == ":":
            raise InputError(f"{text!r}: port is missing after ':'")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InputError(f"{text!r}: {host!r} is not an IPv6 address") from None
    elif spec.count(":") > 1:
        host = spec  # a bare IPv6 address: no port can be told apart from it
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InputError(f"{text!r}: not an IPv6 address; write [ADDRESS]:PORT to give a port") from None
    else:
        host, sep, port_text = spec.partition(":")
        if sep and not port_text:
            raise InputError(f"{text!r}: port is missing after ':'")
    if not host:
        raise InputError(f"{text!r}: host is missing")
    port = DEFAULT_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InputError(f"{text!r}: port must be a number from 1 to 65535, not {port_text!r}")
        port = int(port_text)
    return Endpoint(text, host, port)


def _read_kexinit(message: paramiko.Message) -> tuple[dict[str, list[str]], bool]:
    """The server's offer from a KEXINIT body (RFC 4253 7.1), ciphers and MACs of both directions merged."""
    message.get_bytes(16)  # cookie
    kex, hostkey = message.get_list(), message.get_list()
    ciphers = message.get_list() + message.get_list()
    macs = message.get_list() + message.get_list()
    algorithms = [name for name in kex if not name.startswith(KEX_MARKERS)]
    strict = "kex-strict-s-v00@openssh.com" in kex
    return {"kex": algorithms, "hostkey": hostkey, "ciphers": list(dict.fromkeys(ciphers)),
            "macs": list(dict.fromkeys(macs))}, strict


def probe(endpoint: Endpoint, timeout: float) -> Probe:
    """Connect, read the banner and KEXINIT, disconnect. Network failures end up in ``error``."""
    result = Probe(endpoint)
    where = f"{endpoint.host} port {endpoint.port}"
    try:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except socket.gaierror as exc:
        result.error = f"cannot resolve {endpoint.host}: {exc.strerror or exc}"
        return result
    except OSError as exc:
        result.error = f"cannot connect to {where}: {exc.strerror or exc or 'timed out'}"
        return result
    packetizer = paramiko.Packetizer(sock)
    try:
        packetizer.write_all(f"{CLIENT_ID}\r\n".encode("ascii"))
        packetizer.start_handshake(timeout)
        for _ in range(MAX_PRE_BANNER_LINES):
            line = packetizer.readline(timeout)
            if line.startswith("SSH-"):
                result.banner = line
                break
        else:
            result.error = f"{where} sent no SSH identification string"
            return result
        if not result.banner.startswith(("SSH-2.0-", "SSH-1.99-")):
            result.error = f"{where} does not speak SSH 2 ({result.banner})"
            return result
        kind, message = packetizer.read_message()
        if kind != MSG_KEXINIT:
            result.error = f"{where} sent message type {kind} instead of KEXINIT"
            return result
        result.algorithms, result.strict_kex = _read_kexinit(message)
    except (EOFError, OSError, paramiko.SSHException) as exc:
        result.error = f"{where} closed or stalled the SSH handshake ({type(exc).__name__}: {exc or 'timed out'})"
    finally:
        packetizer.close()
        sock.close()
    return result
