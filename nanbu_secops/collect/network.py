"""Where a terminal's traffic goes (article 5): resolvers, default gateways, proxies, listeners.

Resolvers and proxies are configuration files, readable under any root. Default gateways and
listening sockets exist only in a running kernel, so for a ``--root`` tree that is not the live
system those facts come back with ``live=False`` and the checks skip them.

Proxy settings may carry credentials (``http://user:password@proxy:3128``). They are masked here,
when the fact is gathered, so no password reaches a check, a report or a log (articles 11, 15).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from nanbu_secops.collect import CollectError, Target, collector, systemd

# --- resolvers -----------------------------------------------------------------------------

RESOLV_CONF = "/etc/resolv.conf"
RESOLVED_CONF = "/etc/systemd/resolved.conf"
RESOLVED_UPSTREAM = "/run/systemd/resolve/resolv.conf"  # written by systemd-resolved at run time
RESOLVED_STUBS = frozenset({ipaddress.ip_address("127.0.0.53"), ipaddress.ip_address("127.0.0.54")})


@dataclass(frozen=True)
class Resolver:
    address: str  # as written (an address, or what could not be read as one)
    origin: str  # file:line
    via: str = ""  # "systemd-resolved" when reached through its local stub


@dataclass(frozen=True)
class Resolvers:
    resolvers: list[Resolver]
    notes: list[str] = field(default_factory=list)


def resolved_address(value: str) -> str:
    """The address of a resolved.conf DNS= entry (``1.2.3.4:53``, ``[::1]:53%eth0#name``...)."""
    value = value.split("#", 1)[0]
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:  # IPv4 with a port
        value = value.split(":", 1)[0]
    return value.split("%", 1)[0]


def _nameservers(text: str, where: str, via: str = "") -> list[Resolver]:
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split()
        if len(words) >= 2 and words[0] == "nameserver":
            found.append(Resolver(words[1].split("%", 1)[0], f"{where}:{number}", via))
    return found


def _resolved_servers(target: Target) -> list[Resolver]:
    """DNS= of resolved.conf and its drop-ins (an empty ``DNS=`` resets the list, as in systemd)."""
    fs = target.fs
    servers = [Resolver(resolved_address(value), origin, "systemd-resolved")
               for value, origin in systemd.list_setting(fs, systemd.config_files(fs, RESOLVED_CONF), "Resolve", "DNS")]
    if target.live and fs.exists(RESOLVED_UPSTREAM):  # also what DHCP handed to systemd-resolved
        seen = {s.address for s in servers}
        servers += [s for s in _nameservers(fs.read_text(RESOLVED_UPSTREAM), RESOLVED_UPSTREAM, "systemd-resolved")
                    if s.address not in seen]
    return servers


@collector("resolvers", reads=("/etc/resolv.conf", "systemd-resolved DNS="))
def collect_resolvers(target: Target) -> Resolvers:
    """The name servers the C library asks, and systemd-resolved's upstreams behind its stub."""
    fs = target.fs
    if not fs.exists(RESOLV_CONF):
        return Resolvers([], [f"{RESOLV_CONF} does not exist: the C library then asks 127.0.0.1"])
    direct = _nameservers(fs.read_text(RESOLV_CONF), RESOLV_CONF)
    resolvers: list[Resolver] = []
    notes: list[str] = []
    followed = False
    for server in direct:
        try:
            stub = ipaddress.ip_address(server.address) in RESOLVED_STUBS
        except ValueError:
            stub = False
        if not stub:
            resolvers.append(server)
            continue
        if followed:  # 127.0.0.53 and 127.0.0.54 lead to the same upstreams
            continue
        followed = True
        upstream = _resolved_servers(target)
        resolvers += upstream
        if not upstream:
            notes.append(f"{server.origin}: systemd-resolved stub {server.address} with no DNS= in {RESOLVED_CONF}"
                         + ("" if target.live else " (servers learnt by DHCP are known only on the live system)"))
    if not direct:
        notes.append(f"{RESOLV_CONF} has no nameserver line: the C library then asks 127.0.0.1")
    return Resolvers(resolvers, notes)


# --- default gateways ----------------------------------------------------------------------

@dataclass(frozen=True)
class Gateway:
    address: str
    interface: str
    source: str


@dataclass(frozen=True)
class Routes:
    live: bool
    gateways: list[Gateway] = field(default_factory=list)


def parse_proc_route(text: str) -> list[Gateway]:
    """IPv4 default routes with a gateway from /proc/net/route (little-endian hex fields)."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
            gateway = ipaddress.IPv4Address(int(fields[2], 16).to_bytes(4, "little"))
            if int(gateway):
                found.append(Gateway(str(gateway), fields[0], "/proc/net/route"))
    return found


def parse_proc_ipv6_route(text: str) -> list[Gateway]:
    """IPv6 default routes with a next hop from /proc/net/ipv6_route."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 10 and fields[0] == "0" * 32 and fields[1] == "00":
            hop = ipaddress.IPv6Address(bytes.fromhex(fields[4]))
            if int(hop):
                found.append(Gateway(str(hop), fields[9], "/proc/net/ipv6_route"))
    return found


@collector("routes", reads=("/proc/net/route and ipv6_route (live)",))
def collect_routes(target: Target) -> Routes:
    """Default gateways of the running kernel; none can be known for a tree that is not live."""
    if not target.live:
        return Routes(live=False)
    gateways = parse_proc_route(Path("/proc/net/route").read_text())
    v6 = Path("/proc/net/ipv6_route")
    if v6.exists():  # absent when IPv6 is disabled
        gateways += parse_proc_ipv6_route(v6.read_text())
    return Routes(True, gateways)


# --- proxies -------------------------------------------------------------------------------

PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "rsync_proxy"})
ENVIRONMENT_FILES = ("/etc/environment", "/etc/profile", "/etc/bash.bashrc")
PROFILE_GLOB = "/etc/profile.d/*.sh"
APT_FILES = ("/etc/apt/apt.conf",)
APT_GLOB = "/etc/apt/apt.conf.d/*"
# apt values meaning "no proxy" rather than a proxy
APT_NO_PROXY = frozenset({"direct", "false", ""})


@dataclass(frozen=True)
class Proxy:
    """A proxy setting; ``value`` is masked, so it is safe to show."""

    setting: str  # the variable or apt option
    value: str
    host: str
    port: int | None
    origin: str


@dataclass(frozen=True)
class Proxies:
    live: bool
    proxies: list[Proxy]


def split_proxy(value: str) -> tuple[str, str, int | None]:
    """(masked value, host, port) of a proxy URL or ``host:port``; user:password becomes ``***``."""
    text = value.strip()
    parts = urlsplit(text if "://" in text else f"//{text}")
    netloc = parts.netloc
    masked = text
    if "@" in netloc:
        masked_netloc = "***@" + netloc.rsplit("@", 1)[1]
        masked = text.replace(netloc, masked_netloc, 1)
    try:
        port = parts.port
    except ValueError:
        port = None
    return masked, (parts.hostname or "").lower(), port


def _shell_proxies(text: str, where: str) -> list[Proxy]:
    """``[export] http_proxy=...`` assignments (any case) in /etc/environment or a profile script."""
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            words = shlex.split(raw, comments=True)
        except ValueError:  # unbalanced quote: read the words as they stand
            words = raw.split("#", 1)[0].split()
        for word in words:
            name, sign, value = word.rstrip(";").partition("=")
            if sign and name.lower() in PROXY_VARIABLES and value:
                masked, host, port = split_proxy(value)
                found.append(Proxy(name, masked, host, port, f"{where}:{number}"))
    return found


_APT_TOKEN = re.compile(r'\s*(?:(//[^\n]*|#[^\n]*)|("(?:[^"\\]|\\.)*")|([{};])|([^\s{};"]+))')


def _apt_proxies(text: str, where: str) -> list[Proxy]:
    """``Acquire::<scheme>::Proxy[::host] "value";`` in flat or nested (``Acquire { http {...} }``) form."""
    found = []
    scope: list[str] = []
    pushed: list[int] = []  # how many names each open brace added to the scope
    name: list[str] = []
    pos = 0
    while pos < len(text):
        m = _APT_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        comment, quoted, brace, word = m.groups()
        if comment:
            continue
        if word:
            name = word.split("::")
        elif brace == "{":
            scope += name
            pushed.append(len(name))
            name = []
        elif brace == "}" and pushed:
            del scope[len(scope) - pushed.pop():]
        elif quoted is not None and name:
            key = [k.lower() for k in scope + name]
            if len(key) >= 3 and key[0] == "acquire" and key[2] == "proxy" and key[1] in ("http", "https", "ftp"):
                value = quoted[1:-1]
                if value.lower() not in APT_NO_PROXY:
                    masked, host, port = split_proxy(value)
                    line = text.count("\n", 0, m.start(2)) + 1
                    found.append(Proxy("::".join(scope + name), masked, host, port, f"{where}:{line}"))
            name = []
    return found


@collector("proxies", reads=("/etc/environment", "/etc/profile.d/*.sh", "apt.conf(.d)", "the agent's environment (live)"))
def collect_proxies(target: Target) -> Proxies:
    """System-wide proxy settings for shells and apt, and on the live system the agent's own."""
    fs = target.fs
    proxies: list[Proxy] = []
    for path in [*ENVIRONMENT_FILES, *fs.glob(PROFILE_GLOB)]:
        if fs.exists(path) and fs.resolve(path).is_file():
            proxies += _shell_proxies(fs.read_text(path), path)
    for path in [*APT_FILES, *fs.glob(APT_GLOB)]:
        if fs.exists(path) and fs.resolve(path).is_file():
            proxies += _apt_proxies(fs.read_text(path), path)
    if target.live:
        for name, value in sorted(os.environ.items()):
            if name.lower() in PROXY_VARIABLES and value:
                masked, host, port = split_proxy(value)
                proxies.append(Proxy(name, masked, host, port, f"environment of the agent (pid {os.getpid()})"))
    return Proxies(target.live, proxies)


# --- listening sockets ---------------------------------------------------------------------

@dataclass(frozen=True)
class Listener:
    protocol: str  # "tcp" or "udp"
    address: str
    port: int
    pid: int | None
    process: str
    user: str


@dataclass(frozen=True)
class Listening:
    live: bool
    listeners: list[Listener] = field(default_factory=list)


def _owner(pid: int | None) -> tuple[str, str]:
    import psutil

    if not pid:
        return "?", "?"
    try:
        proc = psutil.Process(pid)
        return proc.name(), proc.username()
    except psutil.Error:
        return "?", "?"


@collector("listening", reads=("listening sockets with process and user (live)",))
def collect_listening(target: Target) -> Listening:
    """TCP sockets in LISTEN and unconnected bound UDP sockets, with their owning process."""
    if not target.live:
        return Listening(live=False)
    import psutil

    try:
        sockets = psutil.net_connections(kind="inet")
    except psutil.AccessDenied as exc:
        raise CollectError(f"listing sockets needs root: {exc}") from None
    listeners = set()
    for conn in sockets:
        tcp = conn.type == socket.SOCK_STREAM
        if (tcp and conn.status != psutil.CONN_LISTEN) or (not tcp and conn.raddr) or not conn.laddr:
            continue
        name, user = _owner(conn.pid)
        listeners.add(Listener("tcp" if tcp else "udp", conn.laddr.ip, conn.laddr.port, conn.pid, name, user))
    return Listening(True, sorted(listeners, key=lambda x: (x.protocol, x.port, x.address, x.pid or 0)))
