"""The measuring parts of ``ipv6 check`` (nanbu_secops.ipv6.http, links, crawl) against real
HTTPS servers (tests/ipv6web.py) on 127.0.0.1 and ::1, with a test CA, so TLS, SNI and hostname
checks are the real ones. Names like ``portal.test`` are mapped to the loopback addresses by the
test's own ``resolve``; nothing leaves the machine."""

from __future__ import annotations

import datetime
import ipaddress
import json
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nanbu_secops.ipv6 import crawl, http, links
from tests.lab import PROJECT_ROOT

V4, V6 = "127.0.0.1", "::1"
BOTH = {4: [V4], 6: [V6]}
IDN = "南部.test"
DNS = {"portal.test": BOTH, "plain.test": BOTH, "close.test": BOTH, "gzip.test": BOTH,
       "different.test": BOTH, "redirect.test": BOTH,
       "badredirect.test": BOTH, "slow.test": BOTH, "loop.test": BOTH, "huge.test": BOTH, "wrong.test": BOTH,
       IDN.encode("idna").decode(): BOTH, "v4only.test": {4: [V4]}, "dead6.test": {6: [V6]}}
SITE_NAMES = [name for name in DNS if name != "wrong.test"]
MiB = 1024 * 1024


def resolve(host: str, family: int) -> list[str]:
    return DNS.get(host, {}).get(family, [])


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _write_cert(folder: Path, stem: str, names: list[str], ca_key: ec.EllipticCurvePrivateKey,
                ca_cert: x509.Certificate) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in (V4, V6)]
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@dataclass
class World:
    ca_file: str
    ports: dict[str, int]  # site name -> port (the same on 127.0.0.1 and ::1)
    dead_port: int  # nothing listens there

    def url(self, site: str, path: str = "/", host: str | None = None) -> str:
        return f"https://{host or site}:{self.ports[site]}{path}"

    def fetch(self, url: str, family: int, **kw: object) -> http.Probe:
        return http.fetch(url, family, resolve, ca_file=self.ca_file, **kw)  # type: ignore[arg-type]


def _start(folder: Path, site: str, args: list[str], processes: list[subprocess.Popen[str]]) -> int:
    """Start one tests.ipv6web and wait for its ``ready PORT`` line."""
    process = subprocess.Popen([sys.executable, "-m", "tests.ipv6web", "--bind", V4, "--bind", V6, "--port", "0",
                                *args], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    processes.append(process)
    ready, _, _ = select.select([process.stdout], [], [], 15)
    line = process.stdout.readline() if ready else ""  # type: ignore[union-attr]
    if not line.startswith("ready "):
        raise RuntimeError(f"ipv6web {site} did not start: {line!r} {process.stderr.read() if process.poll() is not None else ''}")  # type: ignore[union-attr]
    return int(line.split()[1])


def _stop_all(processes: list[subprocess.Popen[str]]) -> None:
    """SIGTERM, then SIGKILL for one that does not end; pipes closed."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _free_port() -> int:
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind((V6, 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("ipv6web")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    ca_cert = (x509.CertificateBuilder().subject_name(_name("nanbu test CA")).issuer_name(_name("nanbu test CA"))
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert, key = _write_cert(folder, "sites", SITE_NAMES, ca_key, ca_cert)
    wrong_cert, wrong_key = _write_cert(folder, "wrong", ["someone-else.test"], ca_key, ca_cert)
    tls = ["--cert", cert, "--key", key]
    processes: list[subprocess.Popen[str]] = []
    try:
        ports = {"plain.test": _start(folder, "plain", [*tls, "--site", "plain", "--name", "plain.test"], processes)}
        ports["wrong.test"] = _start(folder, "wrong", ["--cert", wrong_cert, "--key", wrong_key, "--site", "plain"], processes)
        for kind in ("slow", "loop", "huge", "different", "close", "gzip"):
            ports[f"{kind}.test"] = _start(folder, kind, [*tls, "--site", kind], processes)
        plain = f"https://plain.test:{ports['plain.test']}"
        ports["redirect.test"] = _start(folder, "redirect", [*tls, "--site", "redirect", "--to", f"{plain}/"], processes)
        ports["badredirect.test"] = _start(folder, "badredirect", [*tls, "--site", "redirect", "--to", "mailto:x@y.test"],
                                           processes)
        dead = _free_port()
        pages = {
            "/": ["/a.html", "/b.html", "/missing.html", f"{plain}/", f"https://v4only.test:{ports['plain.test']}/",
                  "mailto:office@portal.test", "#top", "/a.html#news", "/", "javascript:void(0)"],
            "/a.html": ["/", "/b.html", "/c.html", f"https://dead6.test:{dead}/", f"{plain}/other"],
            "/b.html": ["c.html", "/d.html", f"https://different.test:{ports['different.test']}/", f"{plain}/third"],
            "/c.html": ["/level4.html"],
        }
        (folder / "links.json").write_text(json.dumps(pages))
        ports["portal.test"] = _start(folder, "portal", [*tls, "--site", "portal", "--name", "portal.test",
                                                          "--links", str(folder / "links.json")], processes)
        yield World(str(ca_file), ports, dead)
    finally:
        _stop_all(processes)


def test_fetch_over_ipv4_and_ipv6_with_timings(world: World) -> None:
    for family, address in ((4, V4), (6, V6)):
        probe = world.fetch(world.url("plain.test"), family)
        assert (probe.ok, probe.status, probe.address, probe.family) == (True, 200, address, family), probe
        assert probe.tls_verified is True and probe.error is None and probe.stage is None
        assert b"plain.test" in probe.body and probe.content_type.startswith("text/html")
        assert probe.final_url == world.url("plain.test") and probe.redirects == 0 and not probe.truncated
        assert all(probe.timings[k] is not None and probe.timings[k] >= 0
                   for k in ("dns_ms", "tcp_ms", "tls_ms", "first_byte_ms", "total_ms"))
        assert probe.timings["total_ms"] >= probe.timings["tls_ms"]
        doc = probe.as_json()
        assert "body" not in doc and json.loads(json.dumps(doc))["status"] == 200


@pytest.mark.parametrize("path", ["/", "/http10", "/chunked"])
def test_server_that_closes_the_connection(world: World, path: str) -> None:
    """Issue 15: when the response will close, http.client closes the socket it was handed; the
    body must still be read in full and the fetch succeed (not "Bad file descriptor")."""
    for family in (4, 6):
        for max_body in (2 * MiB, 0):
            probe = world.fetch(world.url("close.test", path), family, max_body=max_body)
            assert (probe.ok, probe.status, probe.error, probe.stage) == (True, 200, None, None), probe
            assert (b"closing after this response" in probe.body, probe.truncated) == (max_body > 0, max_body == 0)


def test_gzip_and_deflate_bodies_are_decoded_and_bounded(world: World) -> None:
    """A visitor's browser decodes the body, so links and parity are judged on the decoded page;
    a compression bomb stays within max_body and a garbled body is an HTTP-stage failure."""
    pages = {path: world.fetch(world.url("gzip.test", path), 6) for path in ("/", "/deflate", "/rawdeflate")}
    for path, probe in pages.items():
        assert probe.ok and probe.body.startswith(b"<!doctype html>") and b"compressed" in probe.body, path
    assert pages["/"].body == pages["/deflate"].body == pages["/rawdeflate"].body
    started = time.monotonic()
    bomb = world.fetch(world.url("gzip.test", "/bomb"), 4, max_body=MiB)
    assert (bomb.ok, bomb.truncated, len(bomb.body), set(bomb.body)) == (True, True, MiB, {0})
    assert time.monotonic() - started < 3
    corrupt = world.fetch(world.url("gzip.test", "/corrupt"), 6)
    assert (corrupt.ok, corrupt.status, corrupt.stage) == (False, 200, "http") and "malformed gzip body" in corrupt.error


def test_ip_literals_are_used_without_resolving(world: World) -> None:
    def no_dns(host: str, family: int) -> list[str]:
        raise AssertionError(f"resolved {host}")

    port = world.ports["plain.test"]
    for url, family in ((f"https://127.0.0.1:{port}/", 4), (f"https://[::1]:{port}/", 6)):
        probe = http.fetch(url, family, no_dns, ca_file=world.ca_file)
        assert probe.ok and probe.tls_verified, probe
    wrong_family = http.fetch(f"https://127.0.0.1:{port}/", 6, no_dns, ca_file=world.ca_file)
    assert (wrong_family.ok, wrong_family.stage) == (False, "dns")


def test_missing_record_fails_at_dns(world: World) -> None:
    probe = world.fetch(f"https://v4only.test:{world.ports['plain.test']}/", 6)
    assert (probe.ok, probe.stage, probe.status, probe.address) == (False, "dns", None, None)
    assert "AAAA" in probe.error


def test_resolver_answer_of_the_wrong_family_is_refused(world: World) -> None:
    probe = http.fetch(world.url("plain.test"), 6, lambda host, family: [V4], ca_file=world.ca_file)
    assert (probe.ok, probe.stage) == (False, "dns") and "not an IPv6 address" in probe.error


def test_refused_port_fails_at_tcp(world: World) -> None:
    probe = world.fetch(f"https://dead6.test:{world.dead_port}/", 6)
    assert (probe.ok, probe.stage, probe.address, probe.tls_verified) == (False, "tcp", V6, None)
    assert "refused" in probe.error.lower()


def test_wrong_name_certificate_fails_at_tls(world: World) -> None:
    for family in (4, 6):
        probe = world.fetch(world.url("wrong.test"), family)
        assert (probe.ok, probe.stage, probe.tls_verified, probe.status) == (False, "tls", False, None), probe
        assert "certificate" in probe.error and probe.timings["tcp_ms"] is not None


def test_unknown_ca_fails_at_tls(world: World) -> None:
    probe = http.fetch(world.url("plain.test"), 6, resolve)  # the system CAs do not know the test CA
    assert (probe.ok, probe.stage, probe.tls_verified) == (False, "tls", False)


def test_silent_server_times_out(world: World) -> None:
    started = time.monotonic()
    probe = world.fetch(world.url("slow.test"), 6, timeout=1.0)
    elapsed = time.monotonic() - started
    assert (probe.ok, probe.stage, probe.error, probe.tls_verified) == (False, "http", "timed out", True)
    assert 0.9 <= elapsed < 2.0


def test_redirect_followed_over_the_same_family(world: World) -> None:
    probe = world.fetch(world.url("redirect.test", "/old"), 6)
    assert (probe.ok, probe.status, probe.redirects, probe.address) == (True, 200, 1, V6), probe
    assert probe.final_url == world.url("plain.test") and b"plain.test" in probe.body


def test_redirect_to_something_else_than_http_fails(world: World) -> None:
    probe = world.fetch(world.url("badredirect.test"), 4)
    assert (probe.ok, probe.stage, probe.status) == (False, "redirects", 301) and "mailto:" in probe.error


def test_non_ascii_host_and_path(world: World) -> None:
    """The host goes to DNS, SNI and Host as IDNA; the path percent-encoded, as browsers send them."""
    probe = world.fetch(world.url("plain.test", "/新闻/1.html?q=南部&x=%20", host=IDN), 6)
    assert probe.ok and probe.tls_verified, probe


def test_redirect_loop_stops_at_the_limit(world: World) -> None:
    probe = world.fetch(world.url("loop.test", "/again"), 4)
    assert (probe.ok, probe.stage, probe.redirects, probe.status) == (False, "redirects", 5, 302)
    assert "5 redirects" in probe.error
    assert world.fetch(world.url("loop.test"), 4, max_redirects=1).redirects == 1


def test_huge_page_is_cut_at_max_body(world: World) -> None:
    started = time.monotonic()
    probe = world.fetch(world.url("huge.test"), 6, max_body=2 * MiB)
    assert time.monotonic() - started < 3
    assert (probe.ok, probe.truncated, len(probe.body)) == (True, True, 2 * MiB)
    binary = world.fetch(world.url("huge.test", "/bin"), 4, max_body=2 * MiB)
    assert (binary.ok, binary.truncated, len(binary.body), binary.content_type) == \
        (True, False, MiB, "application/octet-stream")
    assert http.similarity(binary.body, binary.body, binary.content_type, binary.content_type) == 1.0
    assert http.similarity(binary.body, binary.body[:-1], binary.content_type, binary.content_type) == 0.0


def test_probe_many_repeats(world: World) -> None:
    probes = http.probe_many(world.url("plain.test"), 6, resolve, 3, ca_file=world.ca_file)
    assert [p.ok for p in probes] == [True, True, True]


def test_similarity_of_v4_and_v6_pages(world: World) -> None:
    same = [world.fetch(world.url("plain.test"), family) for family in (4, 6)]
    assert http.similarity(same[0].body, same[1].body, same[0].content_type, same[1].content_type) == 1.0
    differ = [world.fetch(world.url("different.test"), family) for family in (4, 6)]
    assert differ[0].ok and differ[1].ok
    assert http.similarity(differ[0].body, differ[1].body, differ[0].content_type, differ[1].content_type) < 0.3


def test_similarity_compares_visible_text() -> None:
    page = "<html><head><title>南部县人民政府</title><script>var t={};</script></head><body>BODY</body></html>"
    news = " ".join(f"通知 notice {i} 关于开展网络安全检查的通知" for i in range(200))
    a = page.replace("BODY", news + " updated 10:00").encode()
    b = page.replace("var t={}", "var t=42").replace("BODY", news + " updated 10:01").encode()
    assert http.similarity(a, a, "text/html", "text/html") == 1.0
    assert 0.99 < http.similarity(a, b, "text/html", "text/html") < 1.0  # a clock and a script changed
    styled = a.replace(b"<head>", b"<head><style>body{color:red}</style><!-- build 7 -->")
    assert http.similarity(a, styled, "text/html", "text/html") == 1.0
    other = page.replace("BODY", "It works! default server page").encode()
    assert http.similarity(a, other, "text/html", "text/html") < 0.1
    gbk = a.decode().encode("gb18030")
    assert http.similarity(a, gbk, "text/html; charset=utf-8", "text/html; charset=GB2312") == 1.0
    assert http.similarity(b'{"a": 1, "t": 5}', b'{"a": 1, "t": 6}', "application/json", "application/json") > 0.5
    assert http.similarity(b"", b"", None, None) == 1.0


def test_similarity_of_2_mib_pages_is_fast() -> None:
    words = ["网站", "集约化", "平台", "管理", "portal", "service", "notice", "open", "government", "information"]
    a = "".join(f"<div><a href='/p{i}.html'>{words[i % len(words)]} {i} {words[(i * 7) % len(words)]}</a></div><script>x={i}</script>\n"
                for i in range(40000)).encode()
    b = a.replace(b"</a>", b" new</a>", 5000)
    assert len(a) > 2 * MiB
    started = time.process_time()  # CPU time: other processes on the machine do not count
    score = http.similarity(a, b, "text/html", "text/html")
    assert time.process_time() - started < 0.2
    assert 0.5 < score < 1.0


def test_extract_links() -> None:
    page = b"""<html><head><base href="/news/"></head><body>
    <a href="2024/1.html#top">one</a> <A HREF="2024/1.html">one again</A> <a href="#main">skip</a>
    <a href="mailto:office@nanbu.gov.cn">mail</a> <a href="JavaScript:void(0)">js</a> <a href="tel:0817-1">tel</a>
    <a href="data:text/html,hi">data</a> <a href="">empty</a> <a>no href</a> <a href="ftp://files.test/x">ftp</a>
    <map><area href="//cdn.test/map?x=1#f"></map> <a href="/about.html">about</a>
    <a href="http://[::1">broken</a> <a href="http://host.test:port/">bad port</a>
    <a href="https://other.test/Path?q=1">other</a> <a href="  /about.html  ">about, spaced</a>
    <div <a href="/after-garbage.html"> <p><a href='/unclosed.html'>unclosed"""
    assert links.extract(page, "https://www.nanbu.test/index.html", "text/html; charset=utf-8") == [
        "https://www.nanbu.test/news/2024/1.html", "https://cdn.test/map?x=1", "https://www.nanbu.test/about.html",
        "https://other.test/Path?q=1", "https://www.nanbu.test/unclosed.html"]
    assert links.extract(b"<a href='x.html'>x</a>", "https://w.test/dir/page", "text/html") == ["https://w.test/dir/x.html"]
    assert links.extract(b"<a href='x.html'>x</a>", "https://w.test/", "application/pdf") == []
    assert links.extract(b"<a href='x.html'>x</a>", "https://w.test/", None) == []


def test_extract_links_of_a_huge_malformed_page() -> None:
    page = b"<html><body>" + b"".join(b"<div class=x><a href='/p%d.html'>p</a><<b>&&#xZZ;<!x>\n" % (i % 1000)
                                      for i in range(60000))
    started = time.process_time()
    found = links.extract(page, "https://w.test/", "text/html")
    assert time.process_time() - started < 2
    assert found == [f"https://w.test/p{i}.html" for i in range(1000)]


def _portal_crawl(world: World, depth: int, limit: int = 2000) -> tuple[crawl.Crawl, list[int]]:
    home = world.fetch(world.url("portal.test"), 6)
    assert home.ok, home

    calls: list[int] = []
    checker = crawl.link_checker(lambda host: resolve(host, 6), resolve, ca_file=world.ca_file, timeout=5)
    found = crawl.crawl(home.final_url, home.body, home.content_type, depth, checker,
                        concurrency=4, progress=calls.append, limit=limit)
    return found, calls


def test_crawl_ratios_by_level(world: World) -> None:
    found, calls = _portal_crawl(world, depth=2)
    portal, plain = world.url("portal.test", ""), world.url("plain.test", "")
    level2, level3 = found.levels["level2"], found.levels["level3"]
    # level 2: a, b, missing (404), plain, v4only (no AAAA); "/", "#top", mailto, javascript and the
    # repeated /a.html#news do not count
    assert [link.url for link in level2.links] == [
        f"{portal}/a.html", f"{portal}/b.html", f"{portal}/missing.html", f"{plain}/",
        f"https://v4only.test:{world.ports['plain.test']}/"]
    assert (level2.total, level2.ipv6, level2.ratio) == (5, 3, 3 / 5)
    # level 3, from a.html and b.html (missing.html cannot be read; plain.test is another host):
    # c (ok), dead6 (refused), plain/other (ok), d (404), different (ok), plain/third (ok);
    # "/" and b.html were counted before, c.html once, and c.html's own link is level 4
    assert [link.url for link in level3.links] == [
        f"{portal}/c.html", f"https://dead6.test:{world.dead_port}/", f"{plain}/other", f"{portal}/d.html",
        world.url("different.test"), f"{plain}/third"]
    assert (level3.total, level3.ipv6, level3.ratio) == (6, 4, 4 / 6)
    assert level3.unfetched == [f"{portal}/missing.html"]
    assert len(calls) == 11 and set(calls) == {1}
    doc = found.as_json()
    assert doc["level2"] | {"failing": None} == {"total": 5, "ipv6": 3, "ratio": 0.6, "found": 5, "capped": False,
                                                  "failing": None}
    failing = {item["url"]: item for item in doc["level2"]["failing"]}
    assert failing[f"{portal}/missing.html"]["status_v6"] == 404
    assert failing[f"https://v4only.test:{world.ports['plain.test']}/"]["has_aaaa"] is False
    assert doc["level3"]["ratio"] == 0.667 and doc["level3"]["unfetched_pages"] == [f"{portal}/missing.html"]
    assert "refused" in {i["url"]: i for i in doc["level3"]["failing"]}[f"https://dead6.test:{world.dead_port}/"]["error"].lower()


def test_crawl_depth_and_limit(world: World) -> None:
    assert list(_portal_crawl(world, depth=1)[0].levels) == ["level2"]
    assert _portal_crawl(world, depth=0)[0].levels == {}
    capped, calls = _portal_crawl(world, depth=1, limit=2)
    level2 = capped.levels["level2"]
    assert (level2.total, level2.found, level2.capped, len(calls)) == (2, 5, True, 2)
    assert capped.as_json()["level2"]["capped"] is True


def test_link_checker_caches_per_url(world: World) -> None:
    asked: list[str] = []

    def aaaa(host: str) -> list[str]:
        asked.append(host)
        return resolve(host, 6)

    check = crawl.link_checker(aaaa, resolve, ca_file=world.ca_file)
    first = check(world.url("plain.test", "/x"))
    assert check(world.url("plain.test", "/x")) is first and first.ok and first.status_v6 == 200
    assert check(world.url("plain.test", "/y")).ok and asked == ["plain.test"]


def test_server_stops_on_sigterm(tmp_path: Path) -> None:
    processes: list[subprocess.Popen[str]] = []
    try:
        port = _start(tmp_path, "plain", ["--site", "plain"], processes)
        assert http.fetch(f"http://[::1]:{port}/", 6, resolve).ok
        processes[0].send_signal(signal.SIGTERM)
        _, errors = processes[0].communicate(timeout=5)
        assert (processes[0].returncode, errors) == (0, "")
    finally:
        _stop_all(processes)
