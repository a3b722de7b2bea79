"""The test world of the IPv6 readiness checks (article 9(2)), built on the SSH lab.

Use it in a test module with::

    from tests.ipv6lab import ipv6_lab  # noqa: F401  (the session fixture; needs `lab`)

    def test_something(ipv6_lab):
        site = ipv6_lab.sites["www.nanbu.test"]   # Site(name, ipv4, ipv6, netns, role)
        resolver = ipv6_lab.resolver              # "--resolver" value: the bridge's IPv6 address

What the fixture builds (and always takes down again, even when a step fails):

* **Site addresses.** Every site in :data:`SITES` gets one extra IPv4 and (unless it has no
  AAAA) one extra IPv6 address on ``eth0`` inside a lab host's network namespace (sites are
  spread over h01, h02, h03...). They are taken from the lab's own networks at host number
  100 and up (``169.254.77.100``, ``fd6e:616e:6275::100``...; another ``NSLAB_ID`` gives other
  networks), so they never clash with the hosts (.11..) or the bridge (.1). The root namespace
  reaches them over the lab bridge; nothing is routed anywhere else.
* **A real unbound** in the root namespace, on port 53 of the bridge's IPv4 and IPv6 addresses
  only (never 127.0.0.1), answering only clients on the lab networks, serving the static zones
  below. It refuses every name outside them (``local-zone: "." refuse``) and has nowhere to
  forward to, so no query ever leaves the machine.
* **A test CA** (``cryptography``): ``world.ca_file``; ``world.cert(name)`` → (cert, key) paths
  of a server certificate whose only SAN is ``name`` (made on first use, so any name works).

Zones (``world.zones``):

* ``nanbu.test``: NS ``ns1.nanbu.test`` (A = bridge IPv4, AAAA = bridge IPv6: answers DNS over
  IPv6) and ``ns2.nanbu.test`` (A only); a "partial" zone.
* ``v6dns.test``: its only NS ``ns.v6dns.test`` has AAAA and answers over IPv6; "ready".
* ``lame6.test``: its only NS ``ns.lame6.test`` has an AAAA where nothing answers DNS.
* ``web.test`` and ``xn--6krs64l.test`` (南部.test): NS ``ns.web.test`` (A and AAAA, answers over
  IPv6); the real web servers' sites (``*.web.test`` in :data:`SITES`, more names in
  :data:`WEB_NAMES`; ``parity.web.test`` shares ``www.web.test``'s namespace, :data:`SAME_HOST`).

Names: every site (A → ``site.ipv4``, AAAA → ``site.ipv6`` when not None); the aliases in
:data:`ALIASES` (CNAMEs); ``missing.nanbu.test`` (and anything else absent) is NXDOMAIN.

For the HTTP(S) side, ``world.sites`` and the certificates are all that is needed: serve a
site inside ``site.netns`` on ``site.ipv4`` / ``site.ipv6`` with ``world.cert(site.name)``;
``role`` says what the site is for, and ``badcert6.nanbu.test`` is meant to show
``world.cert(world.wrong_name)`` over IPv6. The simplest way is in this process::

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self): ...

    with serve(world, "www.nanbu.test", Hello, 6) as server:   # HTTPS on [site.ipv6]:443
        ...  # server.url == "https://www.nanbu.test/"

:func:`serve` binds its socket inside the site's namespace (:func:`netns_listener`) and runs
``http.server`` threads here, so a handler is any Python class and needs no subprocess.
:func:`spawn_web` runs ``tests/ipv6web.py`` (the HTTP tests' server, one ``--site`` kind per
process) inside the site's namespace with ``ip netns exec``, on the site's addresses and with its
certificate. Servers of either kind still running at the world's teardown are stopped then.

Outside pytest: ``with ipv6_world(lab) as world: ...`` does the same for a running ``Lab``.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import http.server
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.lab import PROJECT_ROOT, Lab

__all__ = ["ALIASES", "BIG_TXT", "BIG_TXT_COUNT", "SAME_HOST", "SITES", "WEB_NAMES", "Server", "Site", "WRONG_NAME",
           "WebProcess", "World", "ipv6_lab", "ipv6_world", "netns_listener", "serve", "spawn_web"]

UNBOUND = "/usr/sbin/unbound"
#: The name on the certificate that ``badcert6.nanbu.test`` shows over IPv6.
WRONG_NAME = "wrong-name.nanbu.test"

#: name → (has AAAA, role). Order matters: a site's place gives its addresses (.100 + index).
SITES: dict[str, tuple[bool, str]] = {
    "www.nanbu.test": (True, "the portal: same content over IPv4 and IPv6"),
    "good.nanbu.test": (True, "a fully IPv6-ready site"),
    "v4only.nanbu.test": (False, "no AAAA record"),
    "dead6.nanbu.test": (True, "AAAA address configured but nothing listens on it"),
    "diff.nanbu.test": (True, "different content over IPv6"),
    "badcert6.nanbu.test": (True, f"certificate for {WRONG_NAME} over IPv6"),
    "slow.nanbu.test": (True, "accepts connections and never answers"),
    "loop.nanbu.test": (True, "redirect loop"),
    "huge.nanbu.test": (True, "huge and non-HTML pages"),
    "api.nanbu.test": (True, "mobile API endpoint with AAAA"),
    "api2.nanbu.test": (False, "mobile API endpoint without AAAA"),
    "www.v6dns.test": (True, "in v6dns.test, whose every name server answers over IPv6"),
    "www.lame6.test": (True, "in lame6.test, whose name server does not answer over IPv6"),
    # the real web servers' sites (tests/webservers.py), in web.test, whose name server answers over IPv6
    "www.web.test": (True, "real web servers: name-based virtual hosts, the same over IPv4 and IPv6"),
    "parity.web.test": (True, "real web servers: its IPv6 address serves other virtual hosts than its IPv4 one"),
    "v4only.web.test": (False, "real web servers: no AAAA record"),
}
#: site → the site whose network namespace it shares (one web server process serves both).
SAME_HOST: dict[str, str] = {"parity.web.test": "www.web.test"}
#: More names of the real web servers' sites: name → the site whose addresses it has (A and AAAA).
WEB_NAMES: dict[str, str] = {
    "old.web.test": "www.web.test", "chain.web.test": "www.web.test", "plain.web.test": "www.web.test",
    "legacy.web.test": "www.web.test",
    "xn--6krs64l.test": "www.web.test",  # 南部.test, a zone of its own
    "v6404.web.test": "parity.web.test", "v4cert.web.test": "parity.web.test",
}
#: CNAMEs: alias → target (one inside the zone, one into another zone).
ALIASES: dict[str, str] = {
    "alias.nanbu.test": "www.nanbu.test",
    "cdn.nanbu.test": "www.v6dns.test",
}
#: A name with BIG_TXT_COUNT TXT records, too many for one UDP answer (truncated → TCP).
BIG_TXT = "big.nanbu.test"
BIG_TXT_COUNT = 40
_FIRST_HOST_NUMBER = 100  # site i gets .100+i and ::100+i (same digits, as the lab does)
_NODNS_HOST_NUMBER = 99  # an address (in h01) where nothing listens: unreachable resolver, lame NS
_TTL = 300


@dataclass(frozen=True)
class Site:
    """One test site: ``ipv6`` is None when the name has no AAAA (and no IPv6 address exists)."""

    name: str
    ipv4: str
    ipv6: str | None
    netns: str
    role: str = ""


@dataclass
class World:
    """Everything the IPv6 tests need; built by :func:`ipv6_world`."""

    lab: Lab
    workdir: Path
    sites: dict[str, Site]
    #: ``--resolver`` value of the lab unbound: the bridge's IPv6 address (port 53).
    resolver: str
    #: The same unbound over IPv4.
    resolver_v4: str
    #: A lab address (IPv4, port 53) where nothing listens: DNS queries there time out.
    unreachable_resolver: str
    #: The same address's IPv6 twin (the AAAA of ``ns.lame6.test``).
    unreachable_v6: str
    #: zone → its name servers.
    zones: dict[str, list[str]]
    ca_file: Path
    ca_key_file: Path
    unbound_conf: Path
    unbound_log: Path
    ipv4_net: ipaddress.IPv4Network
    ipv6_net: ipaddress.IPv6Network
    aliases: dict[str, str] = field(default_factory=lambda: dict(ALIASES))
    missing: str = "missing.nanbu.test"
    wrong_name: str = WRONG_NAME
    _ca: _CA | None = field(default=None, repr=False)
    _servers: list[Server | WebProcess] = field(default_factory=list, repr=False)

    def cert(self, name: str) -> tuple[Path, Path]:
        """(certificate, key) PEM paths for a server certificate whose SAN is ``name``,
        signed by the test CA (``ca_file``). Made on first use; thread-safe."""
        assert self._ca is not None
        return self._ca.issue(name, self.workdir / "certs")

    def is_lab_address(self, address: str) -> bool:
        """True for addresses on the lab networks (bridge, hosts, sites)."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return ip in self.ipv4_net or ip in self.ipv6_net


# ------------------------------------------------------------------------------- the CA


class _CA:
    """A root CA (EC P-256) that issues server certificates, one per name, cached."""

    def __init__(self, folder: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._lock = threading.Lock()
        self._issued: dict[str, tuple[Path, Path]] = {}
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Nanbu Secops Test CA"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nanbu-secops tests")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        self.cert_file = folder / "ca.pem"
        self.key_file = folder / "ca.key"
        self.cert_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
        os.chmod(self.key_file, 0o600)

    def issue(self, name: str, folder: Path) -> tuple[Path, Path]:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        with self._lock:
            if name in self._issued:
                return self._issued[name]
            key = ec.generate_private_key(ec.SECP256R1())
            now = dt.datetime.now(dt.UTC)
            cert = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(self.cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
                .sign(self.key, hashes.SHA256())
            )
            folder.mkdir(parents=True, exist_ok=True)
            cert_file, key_file = folder / f"{name}.pem", folder / f"{name}.key"
            cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
            os.chmod(key_file, 0o600)
            self._issued[name] = (cert_file, key_file)
            return cert_file, key_file


# ------------------------------------------------------------------------------ unbound


def _zone_records(world_sites: dict[str, Site], bridge4: str, bridge6: str, nodns4: str, nodns6: str) -> dict[str, list[str]]:
    """zone → its local-data lines (SOA, NS, glue, sites, aliases)."""
    def soa(zone: str, primary: str) -> str:
        return f"{zone}. {_TTL} IN SOA {primary}. hostmaster.{zone}. 2026112901 3600 600 86400 {_TTL}"

    zones: dict[str, list[str]] = {
        "nanbu.test": [
            soa("nanbu.test", "ns1.nanbu.test"),
            f"nanbu.test. {_TTL} IN NS ns1.nanbu.test.",
            f"nanbu.test. {_TTL} IN NS ns2.nanbu.test.",
            f"ns1.nanbu.test. {_TTL} IN A {bridge4}",
            f"ns1.nanbu.test. {_TTL} IN AAAA {bridge6}",
            f"ns2.nanbu.test. {_TTL} IN A {bridge4}",
        ],
        "v6dns.test": [
            soa("v6dns.test", "ns.v6dns.test"),
            f"v6dns.test. {_TTL} IN NS ns.v6dns.test.",
            f"ns.v6dns.test. {_TTL} IN A {bridge4}",
            f"ns.v6dns.test. {_TTL} IN AAAA {bridge6}",
        ],
        "lame6.test": [
            soa("lame6.test", "ns.lame6.test"),
            f"lame6.test. {_TTL} IN NS ns.lame6.test.",
            f"ns.lame6.test. {_TTL} IN A {nodns4}",
            f"ns.lame6.test. {_TTL} IN AAAA {nodns6}",
        ],
        "web.test": [
            soa("web.test", "ns.web.test"),
            f"web.test. {_TTL} IN NS ns.web.test.",
            f"ns.web.test. {_TTL} IN A {bridge4}",
            f"ns.web.test. {_TTL} IN AAAA {bridge6}",
        ],
        "xn--6krs64l.test": [
            soa("xn--6krs64l.test", "ns.web.test"),
            f"xn--6krs64l.test. {_TTL} IN NS ns.web.test.",
        ],
    }

    def zone_of(name: str) -> str:
        return next(z for z in zones if name == z or name.endswith("." + z))

    for site in world_sites.values():
        zone = zone_of(site.name)
        zones[zone].append(f"{site.name}. {_TTL} IN A {site.ipv4}")
        if site.ipv6:
            zones[zone].append(f"{site.name}. {_TTL} IN AAAA {site.ipv6}")
    for name, owner in WEB_NAMES.items():
        site = world_sites[owner]
        zones[zone_of(name)].append(f"{name}. {_TTL} IN A {site.ipv4}")
        if site.ipv6:
            zones[zone_of(name)].append(f"{name}. {_TTL} IN AAAA {site.ipv6}")
    for alias, target in ALIASES.items():
        zone = next(z for z in zones if alias.endswith("." + z))
        zones[zone].append(f"{alias}. {_TTL} IN CNAME {target}.")
    # an answer too big for UDP (EDNS 1232 bytes): the client must retry over TCP
    filler = "x" * 60
    zones["nanbu.test"] += [f'{BIG_TXT}. {_TTL} IN TXT "record {i:02d} {filler}"' for i in range(BIG_TXT_COUNT)]
    return zones


def _unbound_conf(workdir: Path, lab: Lab, zones: dict[str, list[str]]) -> str:
    lines = [
        "server:",
        "  verbosity: 1",
        f'  directory: "{workdir}"',
        '  chroot: ""',
        '  username: ""',
        "  do-daemonize: no",
        "  use-syslog: no",
        '  logfile: ""',
        f'  pidfile: "{workdir}/unbound.pid"',
        "  log-queries: yes",
        "  num-threads: 1",
        "  interface-automatic: no",
        f"  interface: {lab.bridge_ipv4}",
        f"  interface: {lab.bridge_ipv6}",
        "  port: 53",
        "  do-ip4: yes",
        "  do-ip6: yes",
        "  do-udp: yes",
        "  do-tcp: yes",
        '  module-config: "iterator"',  # no validator: no trust anchor, nothing to fetch
        "  access-control: 0.0.0.0/0 refuse",
        "  access-control: ::/0 refuse",
        f"  access-control: {lab.ipv4_net} allow_snoop",
        f"  access-control: {lab.ipv6_net} allow_snoop",
        # answer only from the zones below; never recurse to the root (nothing leaves)
        '  local-zone: "." refuse',
    ]
    for zone, records in zones.items():
        lines.append(f'  local-zone: "{zone}." static')
        lines += [f"  local-data: '{record}'" for record in records]
    lines += ["", "remote-control:", "  control-enable: no", ""]
    return "\n".join(lines)


def _die_with_parent() -> None:
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM to a server the tests started (with ``start_new_session``), then SIGKILL to its
    process group (its workers) if needed: the one way every test server here is stopped."""
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own group: only what it started
    if proc.poll() is None:
        proc.wait(timeout=10)


def _workdir_prefix(lab: Lab) -> str:
    return f"nsipv6-{lab.bridge}-"


def _kill_stale(lab: Lab) -> None:
    """unbound processes and workdirs of a crashed run on this bridge (we hold its lab lock)."""
    marker = f" -c {tempfile.gettempdir()}/{_workdir_prefix(lab)}"
    stale = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith(f"{UNBOUND} -d") and marker in cmd:
            stale.append(int(entry))
    for pid in stale:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in stale:
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.05)
    for old in Path(tempfile.gettempdir()).glob(_workdir_prefix(lab) + "*"):
        if (old / ".nsipv6-workdir").exists():
            shutil.rmtree(old, ignore_errors=True)


def _wait_unbound(proc: subprocess.Popen[bytes], server: str, log: Path, timeout: float = 15.0) -> None:
    import dns.message
    import dns.query

    deadline = time.monotonic() + timeout
    query = dns.message.make_query("nanbu.test.", "SOA")
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"unbound exited with rc={proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            answer = dns.query.udp(query, server, timeout=0.3)
            if answer.answer:
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"unbound did not answer on {server}:53 within {timeout:g}s:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)


def _ip(netns: str, batch: list[str], check: bool = True) -> None:
    if not batch:
        return
    done = subprocess.run(["ip", "-n", netns, "-force", "-batch", "-"], input="\n".join(batch) + "\n",
                          capture_output=True, text=True, timeout=30)
    if check and done.returncode:
        raise RuntimeError(f"ip -n {netns} -batch failed: {done.stderr.strip()}\n" + "\n".join(batch))


# ------------------------------------------------------------------------------ servers

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def netns_listener(netns: str, address: str, port: int, *, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket bound (and listening, for TCP) on ``address:port`` inside network namespace
    ``netns``, usable from any thread of this process.

    A socket belongs to the namespace it was created in, so a short-lived thread enters the
    namespace (setns applies to the calling thread only), creates it, and ends.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            sock = socket.socket(family, kind)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, port))
                if kind == socket.SOCK_STREAM:
                    sock.listen(128)
            except BaseException:
                sock.close()
                raise
            result["sock"] = sock
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=work, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["sock"]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    tls: ssl.SSLContext | None = None
    handshake_timeout = 5.0

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:  # handshake in the request's thread: a slow client blocks no one
            request.settimeout(self.handshake_timeout)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                request.close()
                return
            request.settimeout(None)
        super().finish_request(request, client_address)


class Server:
    """One HTTP(S) server of :func:`serve`; ``url`` uses the site name (resolve it through the
    lab resolver). ``stop()`` (or leaving the ``with`` block, or the world's teardown) ends it."""

    def __init__(self, httpd: _Server, site: Site, family: int, port: int, tls: bool) -> None:
        self.httpd, self.site, self.family, self.port, self.tls = httpd, site, family, port, tls
        self.address = site.ipv4 if family == 4 else site.ipv6
        scheme = "https" if tls else "http"
        default = 443 if tls else 80
        self.url = f"{scheme}://{site.name}{'' if port == default else f':{port}'}/"
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"serve-{site.name}-v{family}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.httpd.shutdown()
            self._thread.join(timeout=10)
        self.httpd.server_close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(world: World, site: Site | str, handler_factory: Callable[..., Any], family: int, *,
          tls: bool = True, port: int | None = None, cert_name: str | None = None) -> Server:
    """Serve ``site`` on its IPv4 (``family=4``) or IPv6 (``family=6``) address, inside its
    namespace, with ``handler_factory`` (an ``http.server.BaseHTTPRequestHandler`` subclass, or
    any callable ``(request, client_address, server)``), in threads of this process.

    HTTPS (``tls=True``, port 443 by default) uses ``world.cert(cert_name or site.name)``, so
    ``cert_name=world.wrong_name`` gives the wrong-name certificate; ``tls=False`` is plain HTTP
    (port 80). Servers still running at the world's teardown are stopped then.
    """
    site = world.sites[site] if isinstance(site, str) else site
    address = site.ipv4 if family == 4 else site.ipv6
    if family not in (4, 6) or address is None:
        raise ValueError(f"{site.name} has no IPv{family} address")
    port = port if port is not None else (443 if tls else 80)
    sock = netns_listener(site.netns, address, port)
    httpd = _Server((address, port), handler_factory, bind_and_activate=False)
    httpd.socket.close()
    httpd.socket, httpd.address_family = sock, sock.family
    httpd.server_address = sock.getsockname()[:2]
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*map(str, world.cert(cert_name or site.name)))
        httpd.tls = context
    server = Server(httpd, site, family, port, tls)
    world._servers.append(server)
    return server


class WebProcess:
    """A ``python -m tests.ipv6web`` server running inside a site's namespace (:func:`spawn_web`)."""

    def __init__(self, proc: subprocess.Popen[str], site: Site, port: int, url: str, command: list[str]) -> None:
        self.proc, self.site, self.port, self.url, self.command = proc, site, port, url, command

    def stop(self) -> None:
        stop_process(self.proc)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> WebProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn_web(world: World, site: Site | str, kind: str, *extra: str, families: tuple[int, ...] = (4, 6),
              port: int = 443, tls: bool = True, cert_name: str | None = None, timeout: float = 20.0) -> WebProcess:
    """Run ``tests/ipv6web.py --site KIND`` for ``site`` inside its namespace, on its addresses of
    ``families`` (a family the site has no address for is skipped), with the site's certificate
    (``cert_name=world.wrong_name`` for the wrong one; ``tls=False``: plain HTTP). ``extra`` goes
    to ipv6web as is (``--links FILE``, ``--to URL``). Waits for its ``ready PORT`` line; stopped
    by ``stop()``, the ``with`` block, or the world's teardown at the latest.

    For badcert6: ``spawn_web(world, s, "plain", families=(4,))`` and
    ``spawn_web(world, s, "plain", families=(6,), cert_name=world.wrong_name)``.
    """
    site = world.sites[site] if isinstance(site, str) else site
    binds = [a for f, a in ((4, site.ipv4), (6, site.ipv6)) if f in families and a]
    if not binds:
        raise ValueError(f"{site.name} has no address of families {families}")
    cmd = ["ip", "netns", "exec", site.netns, sys.executable, "-m", "tests.ipv6web", "--port", str(port),
           "--site", kind, "--name", site.name]
    for address in binds:
        cmd += ["--bind", address]
    if tls:
        cert, key = world.cert(cert_name or site.name)
        cmd += ["--cert", str(cert), "--key", str(key)]
    cmd += list(extra)
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=_die_with_parent)
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(timeout)
    line = first[0] if first else ""
    if not line.startswith("ready "):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise RuntimeError(f"{' '.join(cmd)} did not get ready within {timeout:g}s: {line!r} {err[-2000:]}")
    got = int(line.split()[1])
    default = 443 if tls else 80
    url = f"{'https' if tls else 'http'}://{site.name}{'' if got == default else f':{got}'}/"
    web = WebProcess(proc, site, got, url, cmd)
    world._servers.append(web)
    return web


# ------------------------------------------------------------------------------ the world


@contextlib.contextmanager
def ipv6_world(lab: Lab) -> Iterator[World]:
    """Build the IPv6 test world on a running lab; everything is removed on exit or failure."""
    if not Path(UNBOUND).exists():
        raise RuntimeError(f"{UNBOUND} is missing: run `bash scripts/setup.sh --test` (Debian package unbound)")
    _kill_stale(lab)
    workdir = Path(tempfile.mkdtemp(prefix=_workdir_prefix(lab)))
    (workdir / ".nsipv6-workdir").touch()
    v4, v6 = ipaddress.IPv4Network(lab.ipv4_net), ipaddress.IPv6Network(lab.ipv6_net)
    hosts = list(lab.hosts.values())

    def addr6(number: int) -> str:
        return str(v6[int(str(number), 16)])  # ::100 for .100, as the lab does for its hosts

    sites: dict[str, Site] = {}
    for i, (name, (has_aaaa, role)) in enumerate(SITES.items()):
        number = _FIRST_HOST_NUMBER + i
        netns = sites[SAME_HOST[name]].netns if name in SAME_HOST else hosts[i % len(hosts)].netns
        sites[name] = Site(name, str(v4[number]), addr6(number) if has_aaaa else None, netns, role)
    nodns4, nodns6 = str(v4[_NODNS_HOST_NUMBER]), addr6(_NODNS_HOST_NUMBER)
    p4, p6 = v4.prefixlen, v6.prefixlen
    added: dict[str, list[str]] = {}  # netns → addresses with prefix, for removal
    added.setdefault(hosts[0].netns, []).extend([f"{nodns4}/{p4}", f"{nodns6}/{p6}"])
    for site in sites.values():
        added.setdefault(site.netns, []).append(f"{site.ipv4}/{p4}")
        if site.ipv6:
            added[site.netns].append(f"{site.ipv6}/{p6}")
    proc: subprocess.Popen[bytes] | None = None
    log_file = None
    world: World | None = None
    try:
        for netns, addrs in added.items():
            _ip(netns, [f"addr replace {a} dev eth0" + (" nodad" if ":" in a else "") for a in addrs])
        zones = _zone_records(sites, lab.bridge_ipv4, lab.bridge_ipv6, nodns4, nodns6)
        conf = workdir / "unbound.conf"
        conf.write_text(_unbound_conf(workdir, lab, zones))
        check = subprocess.run(["unbound-checkconf", str(conf)], capture_output=True, text=True, timeout=30)
        if check.returncode:
            raise RuntimeError(f"unbound-checkconf {conf}: {check.stdout}{check.stderr}")
        log = workdir / "unbound.log"
        log_file = open(log, "ab")  # noqa: SIM115 (unbound's output for its whole life; closed at teardown)
        proc = subprocess.Popen([UNBOUND, "-d", "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
        _wait_unbound(proc, lab.bridge_ipv4, log)
        ca = _CA(workdir / "ca")
        world = World(
            lab=lab, workdir=workdir, sites=sites, resolver=lab.bridge_ipv6, resolver_v4=lab.bridge_ipv4,
            unreachable_resolver=nodns4, unreachable_v6=nodns6,
            zones={"nanbu.test": ["ns1.nanbu.test", "ns2.nanbu.test"], "v6dns.test": ["ns.v6dns.test"],
                   "lame6.test": ["ns.lame6.test"], "web.test": ["ns.web.test"], "xn--6krs64l.test": ["ns.web.test"]},
            ca_file=ca.cert_file, ca_key_file=ca.key_file, unbound_conf=conf, unbound_log=log,
            ipv4_net=v4, ipv6_net=v6, _ca=ca,
        )
        for name in sites:
            world.cert(name)
        world.cert(WRONG_NAME)
        yield world
    finally:
        if world is not None:
            for server in world._servers:
                with contextlib.suppress(Exception):
                    server.stop()
        if proc is not None:
            stop_process(proc)
        if log_file is not None:
            log_file.close()
        for netns, addrs in added.items():
            _ip(netns, [f"addr del {a} dev eth0" for a in addrs], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def ipv6_lab(lab: Lab) -> Iterator[World]:
    """The IPv6 test world (see the module docstring), once per session, always torn down."""
    with ipv6_world(lab) as world:
        yield world
