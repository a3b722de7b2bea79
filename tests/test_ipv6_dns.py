"""nanbu_secops.ipv6.dns against a real unbound serving the lab's test zones (tests/ipv6lab.py).

Every query is sent to lab addresses only: the resolver under test is the lab unbound (which
refuses names outside its zones and has nowhere to forward), name-server probes go to the
addresses the lab zones publish, and `test_nothing_leaves_the_lab` records every socket
destination of a full run with an audit hook to prove it.
"""

from __future__ import annotations

import concurrent.futures
import http.server
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from dns import resolver as dnspython_resolver

from nanbu_secops.ipv6 import dns
from tests.ipv6lab import BIG_TXT, BIG_TXT_COUNT, SITES, World, serve, spawn_web

# ------------------------------------------------------------------ resolver addresses


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1", ("127.0.0.1", 53)),
    ("::1", ("::1", 53)),
    ("[::1]:5353", ("::1", 5353)),
    ("[::1]", ("::1", 53)),
    ("169.254.77.1:5353", ("169.254.77.1", 5353)),
    (" 10.0.0.1 ", ("10.0.0.1", 53)),
    ("FD6E:616E:6275::1", ("fd6e:616e:6275::1", 53)),
    ("[fd6e:616e:6275::1]:53", ("fd6e:616e:6275::1", 53)),
])
def test_parse_resolver(text: str, expected: tuple[str, int]) -> None:
    assert dns.parse_resolver(text) == expected


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("dns.example", "not an IP address"),
    ("1.2.3.4:0", "port must be a number from 1 to 65535"),
    ("1.2.3.4:65536", "port must be a number"),
    ("1.2.3.4:dns", "port must be a number"),
    ("[::1]:", "port must be a number"),
    ("[::1", "missing ']'"),
    ("[::1]5353", "expected ':PORT'"),
    ("[1.2.3.4]:53", "not an IPv6 address"),
    ("999.1.1.1", "not an IP address"),
    ("host:53", "not an IPv4 address"),
])
def test_parse_resolver_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        dns.parse_resolver(text)


def test_format_server() -> None:
    assert dns.format_server(("1.2.3.4", 53)) == "1.2.3.4:53"
    assert dns.format_server(("::1", 5353)) == "[::1]:5353"


def test_system_resolver_reads_resolv_conf_without_querying() -> None:
    system = dns.Resolver(timeout=1.0)
    assert system.server is None
    assert system.describe().startswith("system resolver (")


def test_system_resolver_without_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_config(*args: object, **kwargs: object) -> None:
        raise dnspython_resolver.NoResolverConfiguration("no nameservers")

    monkeypatch.setattr(dnspython_resolver, "Resolver", no_config)
    system = dns.Resolver()
    with pytest.raises(dns.ResolverUnreachable, match=r"^system resolver \(none configured\) unreachable: no nameservers"):
        system.query("www.nanbu.test", "A")
    facts = dns.inspect("www.nanbu.test", system)
    assert facts.error is not None and facts.error.startswith("system resolver (none configured) unreachable")


def test_malformed_names_are_value_errors() -> None:
    resolver = dns.Resolver(("127.0.0.1", 9), timeout=0.1)  # never asked: the name is checked first
    for bad in ("", ".", "a..b", "x" * 64 + ".test"):
        with pytest.raises(ValueError):
            resolver.query(bad, "A")


# ------------------------------------------------------------------------ the lab world


@pytest.fixture(scope="module")
def world(ipv6_lab: World) -> World:  # noqa: F811
    return ipv6_lab


@pytest.fixture(scope="module")
def resolver(world: World) -> dns.Resolver:
    """The lab unbound, asked over IPv6 (the address an operator would give as --resolver)."""
    return dns.Resolver(dns.parse_resolver(world.resolver), timeout=2.0)


@pytest.mark.parametrize("name", sorted(SITES))
def test_a_and_aaaa_of_every_site(world: World, resolver: dns.Resolver, name: str) -> None:
    site = world.sites[name]
    a = resolver.query(name, "A")
    aaaa = resolver.query(name, "AAAA")
    assert a.records == [site.ipv4]
    assert aaaa.records == ([site.ipv6] if site.ipv6 else [])
    assert world.is_lab_address(site.ipv4) and (site.ipv6 is None or world.is_lab_address(site.ipv6))
    assert 0 <= a.ms < 2000 and 0 <= aaaa.ms < 2000


def test_sites_match_the_brief(world: World) -> None:
    no_aaaa = {n for n, s in world.sites.items() if s.ipv6 is None}
    assert no_aaaa == {"v4only.nanbu.test", "api2.nanbu.test", "v4only.web.test"}
    assert len({s.ipv4 for s in world.sites.values()}) == len(world.sites)  # no shared addresses
    lab_netns = {h.netns for h in world.lab.hosts.values()}
    assert {s.netns for s in world.sites.values()} <= lab_netns
    assert world.sites["parity.web.test"].netns == world.sites["www.web.test"].netns  # one web server serves both


def test_resolver_over_ipv4_gives_the_same(world: World) -> None:
    v4 = dns.Resolver(dns.parse_resolver(world.resolver_v4), timeout=2.0)
    assert v4.query("www.nanbu.test", "AAAA").records == [world.sites["www.nanbu.test"].ipv6]


def test_nodata_is_an_empty_list(resolver: dns.Resolver) -> None:
    assert resolver.query("v4only.nanbu.test", "AAAA").records == []
    assert resolver.query("www.nanbu.test", "MX").records == []


def test_missing_name_is_name_missing(resolver: dns.Resolver) -> None:
    with pytest.raises(dns.NameMissing, match="missing.nanbu.test does not exist"):
        resolver.query("missing.nanbu.test", "A")
    with pytest.raises(dns.NameMissing):
        resolver.query("missing.nanbu.test", "AAAA")


def test_names_outside_the_lab_zones_are_refused_not_resolved(resolver: dns.Resolver) -> None:
    """unbound refuses (it never recurses to the internet): a DnsError, neither NXDOMAIN nor unreachable."""
    start = time.monotonic()
    with pytest.raises(dns.DnsError, match="REFUSED") as caught:
        resolver.query("www.gov.cn", "A")
    assert type(caught.value) is dns.DnsError
    assert time.monotonic() - start < 1.0


def test_cname_is_followed(world: World, resolver: dns.Resolver) -> None:
    assert resolver.query("alias.nanbu.test", "A").records == [world.sites["www.nanbu.test"].ipv4]
    assert resolver.query("cdn.nanbu.test", "AAAA").records == [world.sites["www.v6dns.test"].ipv6]
    assert resolver.query("alias.nanbu.test", "CNAME").records == ["www.nanbu.test"]


def test_truncated_answer_is_retried_over_tcp(resolver: dns.Resolver) -> None:
    records = resolver.query(BIG_TXT, "TXT").records
    assert len(records) == BIG_TXT_COUNT
    assert all(r.startswith('"record ') for r in records)


def test_name_server_records_are_names_without_dot(resolver: dns.Resolver) -> None:
    assert resolver.query("nanbu.test", "NS").records == ["ns1.nanbu.test", "ns2.nanbu.test"]
    assert resolver.query("nanbu.test.", "NS").records == ["ns1.nanbu.test", "ns2.nanbu.test"]


@pytest.mark.parametrize("name, zone", [
    ("www.nanbu.test", "nanbu.test"),
    ("nanbu.test", "nanbu.test"),
    ("WWW.Nanbu.Test.", "nanbu.test"),
    ("ns2.nanbu.test", "nanbu.test"),
    ("a.b.c.www.nanbu.test", "nanbu.test"),  # NXDOMAIN below: the SOA in the answer names the apex
    ("alias.nanbu.test", "nanbu.test"),
    ("cdn.nanbu.test", "nanbu.test"),  # a CNAME into v6dns.test is still held by nanbu.test
    ("www.v6dns.test", "v6dns.test"),
    ("www.lame6.test", "lame6.test"),
])
def test_zone_apex_walk(resolver: dns.Resolver, name: str, zone: str) -> None:
    assert dns.zone_of(name, resolver) == zone


def test_inspect_portal(world: World, resolver: dns.Resolver) -> None:
    facts = dns.inspect("www.nanbu.test", resolver, probe_timeout=1.0)
    site = world.sites["www.nanbu.test"]
    assert facts.error is None
    assert (facts.name, facts.a, facts.aaaa, facts.zone) == ("www.nanbu.test", [site.ipv4], [site.ipv6], "nanbu.test")
    assert facts.a_ms is not None and facts.aaaa_ms is not None
    ns1, ns2 = facts.ns
    assert (ns1.name, ns1.a, ns1.aaaa, ns1.answers_v6) == ("ns1.nanbu.test", [world.lab.bridge_ipv4],
                                                             [world.lab.bridge_ipv6], True)
    assert ns1.detail.startswith(f"[{world.lab.bridge_ipv6}]:53: answered in ")
    assert (ns2.name, ns2.a, ns2.aaaa, ns2.answers_v6, ns2.detail) == ("ns2.nanbu.test", [world.lab.bridge_ipv4], [],
                                                                         None, "no AAAA record")
    doc = facts.as_json()
    assert set(doc) == {"a", "aaaa", "ns", "zone", "a_ms", "aaaa_ms"}
    assert doc["ns"][0] == {"name": "ns1.nanbu.test", "a": [world.lab.bridge_ipv4], "aaaa": [world.lab.bridge_ipv6],
                            "answers_v6": True, "detail": ns1.detail}
    assert doc["ns"][1]["answers_v6"] is None


def test_inspect_v4_only_name(world: World, resolver: dns.Resolver) -> None:
    facts = dns.inspect("v4only.nanbu.test", resolver, probe_timeout=1.0)
    assert facts.error is None and facts.a == [world.sites["v4only.nanbu.test"].ipv4] and facts.aaaa == []
    assert facts.zone == "nanbu.test" and [s.name for s in facts.ns] == ["ns1.nanbu.test", "ns2.nanbu.test"]


def test_inspect_zone_whose_name_servers_all_answer_over_ipv6(resolver: dns.Resolver) -> None:
    facts = dns.inspect("www.v6dns.test", resolver, probe_timeout=1.0)
    assert facts.error is None and facts.zone == "v6dns.test"
    assert [(s.name, s.answers_v6) for s in facts.ns] == [("ns.v6dns.test", True)]


def test_inspect_name_server_that_does_not_answer_over_ipv6(world: World, resolver: dns.Resolver) -> None:
    start = time.monotonic()
    facts = dns.inspect("www.lame6.test", resolver, probe_timeout=0.3)
    assert time.monotonic() - start < 3.0
    [server] = facts.ns
    assert facts.error is None
    assert (server.name, server.aaaa, server.answers_v6) == ("ns.lame6.test", [world.unreachable_v6], False)
    assert server.detail == f"[{world.unreachable_v6}]:53: no answer within 0.3 s"


def test_probe_of_a_server_without_the_zone(world: World) -> None:
    """The lab unbound is reachable over IPv6 but refuses a zone it does not serve: not an answer."""
    ok, detail = dns.probe_v6("gov.cn", world.lab.bridge_ipv6, timeout=1.0)
    assert not ok and detail == f"[{world.lab.bridge_ipv6}]:53: answered REFUSED"


def test_inspect_missing_name(resolver: dns.Resolver) -> None:
    facts = dns.inspect("missing.nanbu.test", resolver)
    assert facts.error == "name does not exist"
    assert facts.a == [] and facts.aaaa == [] and facts.ns == [] and facts.zone is None


def test_inspect_malformed_name(resolver: dns.Resolver) -> None:
    facts = dns.inspect("bad..nanbu.test", resolver)
    assert facts.error is not None and "malformed DNS name" in facts.error


def test_unreachable_resolver(world: World) -> None:
    dead = dns.Resolver(dns.parse_resolver(world.unreachable_resolver), timeout=0.3)
    start = time.monotonic()
    with pytest.raises(dns.ResolverUnreachable,
                       match=rf"^resolver {world.unreachable_resolver}:53 unreachable: no answer within 0.3 s$"):
        dead.query("www.nanbu.test", "A")
    facts = dns.inspect("www.nanbu.test", dead)
    assert facts.error == f"resolver {world.unreachable_resolver}:53 unreachable: no answer within 0.3 s"
    assert facts.a == [] and facts.ns == []
    assert time.monotonic() - start < 2.0


def test_unreachable_resolver_over_ipv6(world: World) -> None:
    dead = dns.Resolver(dns.parse_resolver(f"[{world.unreachable_v6}]:53"), timeout=0.3)
    facts = dns.inspect("www.nanbu.test", dead)
    assert facts.error == f"resolver [{world.unreachable_v6}]:53 unreachable: no answer within 0.3 s"


def test_resolver_is_thread_safe(world: World, resolver: dns.Resolver) -> None:
    names = sorted(SITES) * 3 + ["missing.nanbu.test"] * 3
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda n: dns.inspect(n, resolver, probe_timeout=0.3), names))
    for name, facts in zip(names, results, strict=True):
        if name == "missing.nanbu.test":
            assert facts.error == "name does not exist"
            continue
        site = world.sites[name]
        assert facts.error is None, facts.error
        assert facts.a == [site.ipv4] and facts.aaaa == ([site.ipv6] if site.ipv6 else [])
        assert facts.zone == name.split(".", 1)[1]


# --------------------------------------------------------------------- nothing leaves

_recording: list[tuple[str, str]] | None = None
_record_lock = threading.Lock()
_hook_installed = False


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _recording is None or event not in ("socket.connect", "socket.sendto"):
        return
    sock, address = args[0], args[1]
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        with _record_lock:
            _recording.append((event, str(address[0])))  # type: ignore[index]


@pytest.fixture
def destinations() -> Iterator[list[tuple[str, str]]]:
    """Every (event, address) a socket in this process connects or sends to while the test runs."""
    global _recording, _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)  # process-wide and permanent: inert while _recording is None
        _hook_installed = True
    _recording = []
    try:
        yield _recording
    finally:
        _recording = None


def test_nothing_leaves_the_lab(world: World, resolver: dns.Resolver, destinations: list[tuple[str, str]]) -> None:
    for name in [*sorted(SITES), "missing.nanbu.test", "www.gov.cn"]:
        dns.inspect(name, resolver, probe_timeout=0.3)
    resolver.query(BIG_TXT, "TXT")  # truncated over UDP: TCP too
    dns.inspect("www.nanbu.test", dns.Resolver(dns.parse_resolver(world.unreachable_resolver), timeout=0.2))
    assert destinations, "the audit hook saw no traffic at all"
    assert {event for event, _ in destinations} == {"socket.sendto", "socket.connect"}  # UDP, and TCP for BIG_TXT
    outside = sorted({addr for _, addr in destinations if not world.is_lab_address(addr)})
    assert outside == []
    assert {addr for _, addr in destinations} <= {world.lab.bridge_ipv6, world.unreachable_v6, world.unreachable_resolver}


# ------------------------------------------------------------ the HTTPS hook (tests/ipv6lab.serve)


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = f"hello from {self.server.server_address[0]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _get(world: World, name: str, address: str, port: int = 443) -> str:
    """GET / over HTTPS at ``address`` with SNI and verification for ``name`` (the test CA)."""
    context = ssl.create_default_context(cafile=str(world.ca_file))
    with socket.create_connection((address, port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=name) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    return data.decode()


def test_serve_https_in_the_site_namespace(world: World) -> None:
    site = world.sites["good.nanbu.test"]
    with serve(world, site, _Hello, 6) as v6, serve(world, site.name, _Hello, 4) as v4:
        assert v6.url == v4.url == "https://good.nanbu.test/"
        assert _get(world, site.name, site.ipv6).endswith(f"hello from {site.ipv6}")
        assert _get(world, site.name, site.ipv4).endswith(f"hello from {site.ipv4}")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((site.ipv4, 443), timeout=2)


def test_serve_wrong_certificate(world: World) -> None:
    site = world.sites["badcert6.nanbu.test"]
    with serve(world, site, _Hello, 6, cert_name=world.wrong_name), pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _get(world, site.name, site.ipv6)


def test_serve_refuses_a_site_without_ipv6(world: World) -> None:
    with pytest.raises(ValueError, match="v4only.nanbu.test has no IPv6 address"):
        serve(world, "v4only.nanbu.test", _Hello, 6)


def test_spawn_web_serves_a_site_from_its_namespace(world: World) -> None:
    site = world.sites["www.nanbu.test"]
    with spawn_web(world, site, "plain") as web:
        assert web.url == "https://www.nanbu.test/" and web.port == 443
        for address in (site.ipv4, site.ipv6):
            reply = _get(world, site.name, address)
            assert reply.startswith("HTTP/1.") and " 200 " in reply.splitlines()[0] and site.name in reply
    assert web.proc.poll() is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((site.ipv6, 443), timeout=2)
