"""``ipv6 check`` against real web servers: nginx, Apache httpd and lighttpd (tests/webservers.py),
each started once for this module inside a lab host's namespace, serving the same virtual hosts
on lab addresses over IPv4 and IPv6, with names from the lab unbound (web.test, 南部.test) and
certificates from a test root through an intermediate. Every verdict below is worked out by hand
from the virtual hosts in :func:`sites`; the servers are the oracles of what a browser would get.

Addresses: ``www.web.test`` (A and AAAA "a4"/"a6") carries the name-based hosts that are the same
over both families: www (the default, so the IPv6-literal URL reaches it too), old (redirects to
www), chain (http → https → old → www), 南部.test, legacy (asks for HTTP/1.0 answers, which only
Apache gives), and plain HTTP ones. ``parity.web.test``
("b4"/"b6") carries the hosts whose IPv6 side differs: parity (another site over IPv6), v6404 (the
page is missing over IPv6 only), v4cert (over IPv6 a certificate for another name).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import shutil
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nanbu_secops.ipv6 import assess, dns
from nanbu_secops.ipv6 import http as probe_http
from tests.ipv6lab import World
from tests.test_cli import cli
from tests.webservers import HSTS, SERVERS, ChainCA, VHost, WebServer, running, web_folder

PROJECT = Path(__file__).resolve().parent.parent
IDN = "南部.test"
IDN_ASCII = "xn--6krs64l.test"

# The portal's homepage: five level-2 links, every one reachable over IPv6 (old.web.test by a
# redirect to www, 南部.test by its IDNA name, the literal through the default virtual host).
PORTAL_LINKS = ["/a.html", "/b.html", "https://old.web.test/", f"https://{IDN}/"]  # + the IPv6 literal
# partial.html: the same but the literal replaced by v4only.web.test (no AAAA): 4 of 5 = 80% < 85%
PARTIAL_LINKS = [*PORTAL_LINKS, "https://v4only.web.test/"]


def _page(title: str, text: str, hrefs: list[str] = []) -> bytes:  # noqa: B006 (never mutated)
    items = "".join(f'<li><a href="{h}">{h}</a></li>' for h in hrefs)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>{text}</p><ul>{items}</ul></body></html>\n").encode()


@dataclass
class Sites:
    """The served folders, the virtual hosts and the addresses, built once for the module."""

    world: World
    work: Path
    ca: ChainCA
    vhosts: list[VHost]
    netns: str
    a4: str
    a6: str
    b4: str
    b6: str
    big_html: bytes
    big_txt: bytes

    def url_literal(self, path: str = "/") -> str:
        return f"https://[{self.a6}]{path}"


@pytest.fixture(scope="module")
def sites(ipv6_lab: World) -> Iterator[Sites]:
    www, parity = ipv6_lab.sites["www.web.test"], ipv6_lab.sites["parity.web.test"]
    assert www.ipv6 and parity.ipv6 and www.netns == parity.netns
    work = web_folder()
    try:
        ca = ChainCA(work / "ca")
        roots = {name: work / name for name in ("www", "idn", "other", "missing")}
        for root in roots.values():
            root.mkdir(mode=0o755)
        news = "南部县人民政府 新闻 通知 公告 政务公开 办事服务 " * 40
        literal = f"https://[{www.ipv6}]/lit.html"
        files = {
            roots["www"] / "index.html": _page("南部县人民政府", news, [*PORTAL_LINKS, literal]),
            roots["www"] / "partial.html": _page("南部县人民政府", news, PARTIAL_LINKS),
            # one failing link per step: DNS (no AAAA), TLS name mismatch, HTTP status, TCP (nothing listens)
            roots["www"] / "why.html": _page("why", news, ["/a.html", "https://v4only.web.test/", f"https://[{parity.ipv6}]/",
                                                           "https://v6404.web.test/news.html",
                                                           f"https://[{www.ipv6}]:8443/"]),
            roots["www"] / "a.html": _page("a", "page a"), roots["www"] / "b.html": _page("b", "page b"),
            roots["www"] / "lit.html": _page("literal", "reached by address"),
            roots["www"] / "news.html": _page("news", news),
            roots["idn"] / "index.html": _page("南部", "the IDN site " + news),
            roots["other"] / "index.html": _page("Welcome", "default web server page: it works, nothing here yet"),
        }
        big_html = _page("big", "南部县 big page " * 20000)  # ~300 KB, compressed by each server
        big_txt = ("plain text line 南部县\n" * 20000).encode()  # text/plain: sent as is, with a length
        files[roots["www"] / "big.html"], files[roots["www"] / "big.txt"] = big_html, big_txt
        for path, body in files.items():
            path.write_bytes(body)
            path.chmod(0o644)
        a4, a6, b4, b6 = www.ipv4, www.ipv6, parity.ipv4, parity.ipv6
        www_cert = ca.issue("www", ["www.web.test", a4, a6])
        parity_cert = ca.issue("parity", ["parity.web.test", "v6404.web.test"])
        wrong_cert = ca.issue("wrong", ["wrong.web.test"])
        vhosts = [
            VHost(("www.web.test",), (a4, a6), 443, root=roots["www"], cert=www_cert, hsts=True),
            VHost(("old.web.test",), (a4, a6), 443, redirect="https://www.web.test", cert=ca.issue("old", ["old.web.test"])),
            VHost(("chain.web.test",), (a4, a6), 443, redirect="https://old.web.test",
                  cert=ca.issue("chain", ["chain.web.test"])),
            VHost((IDN_ASCII,), (a4, a6), 443, root=roots["idn"], cert=ca.issue("idn", [IDN_ASCII])),
            VHost(("legacy.web.test",), (a4, a6), 443, root=roots["www"], cert=ca.issue("legacy", ["legacy.web.test"]),
                  http10=True),
            VHost(("parity.web.test", "v6404.web.test"), (b4,), 443, root=roots["www"], cert=parity_cert),
            VHost(("v4cert.web.test",), (b4,), 443, root=roots["www"], cert=ca.issue("v4cert", ["v4cert.web.test"])),
            VHost(("parity.web.test",), (b6,), 443, root=roots["other"], cert=parity_cert),
            VHost(("v6404.web.test",), (b6,), 443, root=roots["missing"], cert=parity_cert),
            VHost(("v4cert.web.test",), (b6,), 443, root=roots["www"], cert=wrong_cert),
            VHost(("www.web.test",), (a4, a6), 80, redirect="https://www.web.test"),
            VHost(("chain.web.test",), (a4, a6), 80, redirect="https://chain.web.test"),
            VHost(("plain.web.test",), (a4, a6), 80, root=roots["www"]),
        ]
        yield Sites(ipv6_lab, work, ca, vhosts, www.netns, a4, a6, b4, b6, big_html, big_txt)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest, sites: Sites) -> Iterator[WebServer]:
    """Each real server once for the module (pytest groups the tests by it), always stopped."""
    with running(request.param, sites.netns, sites.vhosts, sites.work) as web:
        yield web


def _assess(sites: Sites, target: str, depth: int = 0) -> dict[str, Any]:
    settings = assess.Settings(probes=2, depth=depth, timeout=5.0, ca_file=str(sites.ca.root_file))
    resolver = dns.Resolver(dns.parse_resolver(sites.world.resolver), timeout=2.0)
    return assess.assess(target, resolver, settings)


# Each case: target, crawl depth, verdict and reason (worked out by hand, see the module docstring
# and sites()), and what the IPv6 homepage probe must show.
CASES: list[tuple[str, int, str, str | None, dict[str, Any]]] = [
    ("https://www.web.test/", 1, "ready", None, {"status": 200, "redirects": 0, "hsts": HSTS, "tls_verified": True}),
    ("https://www.web.test/partial.html", 1, "partial", "level2 IPv6 link ratio 80% below 85%", {"status": 200}),
    ("http://www.web.test/", 0, "ready", None,
     {"status": 200, "redirects": 1, "final_url": "https://www.web.test/", "hsts": HSTS}),
    ("http://chain.web.test/", 0, "ready", None, {"status": 200, "redirects": 3, "final_url": "https://www.web.test/"}),
    ("https://old.web.test/", 0, "ready", None, {"status": 200, "redirects": 1, "final_url": "https://www.web.test/"}),
    (f"https://{IDN}/", 0, "ready", None, {"status": 200, "redirects": 0, "tls_verified": True}),
    ("http://plain.web.test/", 0, "ready", None, {"status": 200, "tls_verified": None, "hsts": None}),
    ("https://www.web.test/missing.html", 0, "error",
     "HTTP status 404 over IPv4 and IPv6 alike: the page is missing, not an IPv6 fault", {"status": 404}),
    ("https://v6404.web.test/news.html", 0, "not-ready", "no successful HTTP(S) response over IPv6", {"status": 404}),
    ("https://parity.web.test/", 0, "partial", "content similarity", {"status": 200}),
    ("https://v4cert.web.test/", 0, "not-ready", "no successful HTTP(S) response over IPv6",
     {"stage": "tls", "tls_verified": False, "status": None}),
    ("https://v4only.web.test/", 0, "not-ready", "no AAAA record", {}),
]


@pytest.mark.parametrize("target,depth,verdict,reason,v6", CASES, ids=[c[0] for c in CASES])
def test_verdicts(server: WebServer, sites: Sites, target: str, depth: int, verdict: str, reason: str | None,
                  v6: dict[str, Any]) -> None:
    result = _assess(sites, target, depth)
    assert result["verdict"] == verdict, (server.kind, result["reason"], result["v6"], server.error_log())
    if reason is None:
        assert result["reason"] is None
    else:
        assert reason in result["reason"]
    assert {key: result["v6"].get(key) for key in v6} == v6, (server.kind, result["v6"])


def test_ipv6_literal_url(server: WebServer, sites: Sites) -> None:
    """No IPv4 side to compare with, so partial at best; the certificate names the address."""
    result = _assess(sites, sites.url_literal())
    assert (result["verdict"], result["reason"]) == ("partial", "no IPv4 response to compare with")
    assert (result["v6"]["ok"], result["v6"]["tls_verified"], result["v6"]["address"]) == (True, True, sites.a6)


def test_link_ratios_of_the_portal(server: WebServer, sites: Sites) -> None:
    ready = _assess(sites, "https://www.web.test/", depth=1)["links"]["level2"]
    assert (ready["total"], ready["ipv6"], ready["failing"]) == (5, 5, [])
    partial = _assess(sites, "https://www.web.test/partial.html", depth=1)["links"]["level2"]
    assert (partial["total"], partial["ipv6"], partial["ratio"]) == (5, 4, 0.8)
    assert [f["url"] for f in partial["failing"]] == ["https://v4only.web.test/"]


def _raw(sites: Sites, address: str, host: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """One request exactly as given, over TLS with SNI ``host``: status, headers (lower-case
    names), the body as sent (undecoded, chunks joined)."""
    context = ssl.create_default_context(cafile=str(sites.ca.root_file))
    with socket.create_connection((address, 443), timeout=5) as plain, context.wrap_socket(plain, server_hostname=host) as tls:
        conn = http.client.HTTPConnection(host)
        conn.sock = tls
        conn.request("GET", path, headers={"Host": host, **headers})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


@pytest.mark.parametrize("family", [4, 6])
def test_bodies_arrive_whole_whatever_the_framing(server: WebServer, sites: Sites, family: int) -> None:
    """big.html is sent gzip-compressed (chunked by nginx, with a length by the others), big.txt
    as is with Content-Length; all with ``Connection: close`` (the case of issue 15). The
    decoded bodies must be the files."""
    address = sites.a4 if family == 4 else sites.a6
    ask = {"Accept-Encoding": "gzip, deflate", "Connection": "close"}
    status, headers, raw = _raw(sites, address, "www.web.test", "/big.html", ask)
    assert (status, headers.get("content-encoding"), headers.get("connection")) == (200, "gzip", "close"), headers
    framing = "chunked" if headers.get("transfer-encoding") == "chunked" else headers.get("content-length")
    # nginx streams what it compresses (chunked); Apache and lighttpd compress the whole file first
    assert framing == ("chunked" if server.kind == "nginx" else str(len(raw))), (server.kind, headers)
    status, headers, raw = _raw(sites, address, "www.web.test", "/big.txt", ask)
    assert (status, headers.get("content-encoding"), headers.get("content-length")) == (200, None, str(len(raw)))
    resolve = assess.resolver_function(dns.Resolver(dns.parse_resolver(sites.world.resolver), timeout=2.0))
    for path, expected in (("/big.html", sites.big_html), ("/big.txt", sites.big_txt)):
        got = probe_http.fetch(f"https://www.web.test{path}", family, resolve, ca_file=str(sites.ca.root_file))
        assert (got.ok, got.error, got.truncated) == (True, None, False), (server.kind, got)
        assert got.body == expected, (server.kind, path, len(got.body), len(expected))


@pytest.mark.parametrize("family", [4, 6])
def test_an_http10_answer_is_read_whole(server: WebServer, sites: Sites, family: int) -> None:
    """legacy.web.test asks for HTTP/1.0 answers, which only Apache httpd can give (the others
    answer HTTP/1.1 regardless): an HTTP/1.0 answer has no chunks and always closes."""
    address = sites.a4 if family == 4 else sites.a6
    context = ssl.create_default_context(cafile=str(sites.ca.root_file))
    with socket.create_connection((address, 443), timeout=5) as plain, context.wrap_socket(plain, server_hostname="legacy.web.test") as tls:
        conn = http.client.HTTPConnection("legacy.web.test")
        conn.sock = tls
        conn.request("GET", "/big.html", headers={"Host": "legacy.web.test", "Accept-Encoding": "gzip"})
        response = conn.getresponse()
        response.read()
    assert (response.version, response.will_close) == ((10, True) if server.kind == "apache2" else (11, False))
    resolve = assess.resolver_function(dns.Resolver(dns.parse_resolver(sites.world.resolver), timeout=2.0))
    got = probe_http.fetch("https://legacy.web.test/big.html", family, resolve, ca_file=str(sites.ca.root_file))
    assert (got.ok, got.error, got.body == sites.big_html) == (True, None, True), (server.kind, got)


def test_keep_alive_server_answers_each_request(server: WebServer, sites: Sites) -> None:
    """Without ``Connection: close`` the server keeps the connection open (two requests on one)."""
    context = ssl.create_default_context(cafile=str(sites.ca.root_file))
    with socket.create_connection((sites.a6, 443), timeout=5) as plain, context.wrap_socket(plain, server_hostname="www.web.test") as tls:
        conn = http.client.HTTPConnection("www.web.test")
        conn.sock = tls
        statuses = []
        for path in ("/a.html", "/b.html"):
            conn.request("GET", path, headers={"Host": "www.web.test"})
            response = conn.getresponse()
            response.read()
            statuses.append((response.status, response.will_close))
    assert statuses == [(200, False), (200, False)], server.kind


def test_acceptance_portal_ready_and_partial(server: WebServer, sites: Sites) -> None:
    """The issue's acceptance, through the command (it names nginx; Apache and lighttpd must
    give the same): the portal is ready; with one level-2 link IPv4-only, partial with the
    ratio shown."""
    common = ("--resolver", sites.world.resolver, "--ca-file", str(sites.ca.root_file), "--probes", "2",
              "--timeout", "5", "--crawl-depth", "1", "--lang", "en")
    ready = cli("ipv6", "check", "https://www.web.test/", *common)
    assert ready.returncode == 0 and "ready" in ready.stdout and "5/5 (100%)" in ready.stdout, ready.stdout + ready.stderr
    partial = cli("ipv6", "check", "https://www.web.test/partial.html", *common)
    assert partial.returncode == 1 and "partial" in partial.stdout and "4/5 (80%)" in partial.stdout, partial.stdout


def _settled_requests(server: WebServer, quiet: float = 0.5) -> list[str]:
    """The request log once it has stopped growing for ``quiet`` seconds (the last requests of
    a crawl may still be logged as it returns)."""
    lines, since = server.requests(), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.1)
        now = server.requests()
        if len(now) != len(lines):
            lines, since = now, time.monotonic()
    return lines


def test_crawl_reads_each_level2_page_once(server: WebServer, sites: Sites) -> None:
    """At depth 2 a level-2 page of the portal is checked and read by one request (counted in
    the server's own request log), not one to check and another to read."""
    before = len(_settled_requests(server))
    result = _assess(sites, "https://www.web.test/", depth=2)
    assert result["verdict"] == "ready" and result["links"]["level3"]["total"] == 0, result["reason"]
    home = ("www.web.test", "GET / HTTP/1.1")
    asked = [(line.split()[1], line.split('"')[1]) for line in _settled_requests(server)[before:]]
    for path in ("/a.html", "/b.html"):
        assert asked.count(("www.web.test", f"GET {path} HTTP/1.1")) == 1, (server.kind, asked)
    # the homepage: once over IPv4, twice over IPv6 (probes=2), and once more as where old.web.test leads
    assert asked.count(home) == 4, (server.kind, asked)


def test_text_and_html_say_why(server: WebServer, sites: Sites, tmp_path: Path) -> None:
    """Each failing link with its step, and the homepage's failing step; IPv6-literal URLs
    print as they are (not eaten as console markup)."""
    common = ("--resolver", sites.world.resolver, "--ca-file", str(sites.ca.root_file), "--probes", "2",
              "--timeout", "5", "--crawl-depth", "1", "--lang", "en")
    targets = ("https://www.web.test/why.html", "https://v4cert.web.test/", sites.url_literal("/lit.html"))
    text = cli("ipv6", "check", *targets, *common)
    assert text.returncode == 1, text.stderr
    out = text.stdout
    b6, a6 = sites.b6, sites.a6
    expected = [
        "level-2 link https://v4only.web.test/: DNS: no AAAA record for v4only.web.test",
        f"level-2 link https://[{b6}]/: TLS name mismatch: certificate verification failed: IP address mismatch",
        "level-2 link https://v6404.web.test/news.html: HTTP status 404",
        f"level-2 link https://[{a6}]:8443/: TCP: cannot connect to {a6} port 8443: Connection refused",
        "homepage over IPv6 https://v4cert.web.test/: TLS name mismatch: certificate verification failed: "
        "Hostname mismatch",
    ]
    for line in expected:
        assert line in out, (server.kind, line, out)
    assert "Why — https://www.web.test/why.html:" in out and "Why — https://v4cert.web.test/:" in out
    assert f"https://[{a6}]/lit.html" in out  # the literal target's row, not "https:///lit.html"
    assert "https:///" not in out
    page = tmp_path / "why.html"
    done = cli("ipv6", "check", *targets, *common[:-2], "--format", "html", "--output", str(page))
    assert done.returncode == 1, done.stderr
    body = page.read_text()
    assert "三级链接" in body or "二级链接" in body
    assert f"二级链接 https://[{b6}]/: TLS 证书名称不符" in body and "二级链接 https://v6404.web.test/news.html: HTTP 状态码 404" in body
    assert "二级链接 https://v4only.web.test/: DNS: v4only.web.test 无 AAAA 记录" in body


def test_verdicts_reach_the_quarterly_report(server: WebServer, sites: Sites, tmp_path: Path) -> None:
    """ipv6_readiness.yml's file for a unit (ipv6/<unit>-endpoints.json, the command's JSON as is),
    through ``ingest`` into the store and out in the quarterly report with verdict, link ratio,
    why, and article 9(2)'s part of the score (policy: ready 1, partial 0.5, not-ready 0; share 0.5)."""
    if server.kind != "nginx":
        pytest.skip("the store and the report do not depend on the server; measured once, on nginx")
    results = tmp_path / "results"
    (results / "ipv6").mkdir(parents=True)
    done = cli("ipv6", "check", "https://www.web.test/", "https://www.web.test/partial.html", "https://v4cert.web.test/",
               "--resolver", sites.world.resolver, "--ca-file", str(sites.ca.root_file), "--probes", "2",
               "--timeout", "5", "--crawl-depth", "1", "--format", "json",
               "--output", str(results / "ipv6" / "u_web-endpoints.json"))
    assert done.returncode == 1, done.stderr
    generated = json.loads((results / "ipv6" / "u_web-endpoints.json").read_text())["generated"]
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text("all:\n  children:\n    u_web:\n      hosts:\n        web-term-01:\n")
    (inventory / "group_vars" / "u_web.yml").write_text(
        "unit:\n  code: u_web\n  name: 网站测试局\n  office: 办公室\n  leader: {name: 张局长, phone: '0817-1'}\n"
        "  account_manager: {name: 李科长, phone: '0817-2'}\n", encoding="utf-8")
    db = tmp_path / "fleet.db"
    loaded = cli("ingest", str(results), "--db", str(db), "--inventory", str(inventory), "--lang", "en")
    assert loaded.returncode == 0 and "1 endpoint runs (3 endpoints)" in loaded.stdout, loaded.stdout + loaded.stderr
    moment = dt.datetime.fromisoformat(generated)
    period = f"{moment.year}Q{(moment.month - 1) // 3 + 1}"
    shown = cli("report", "quarterly", "--db", str(db), "--quarter", period, "--inventory", str(inventory),
                "--policy", str(PROJECT / "policies"), "--format", "json")
    assert shown.returncode in (0, 1), shown.stderr
    [unit] = json.loads(shown.stdout)["units"]
    endpoints = unit["ipv6_endpoints"]
    assert (endpoints["ready"], endpoints["partial"], endpoints["not-ready"], endpoints["error"]) == (1, 1, 1, 0)
    targets = {t["target"]: t for t in endpoints["targets"]}
    assert targets["https://www.web.test/partial.html"]["level2"] == {"ipv6": 4, "total": 5, "ratio": 0.8}
    assert targets["https://www.web.test/partial.html"]["causes"] == [
        "二级链接 https://v4only.web.test/: DNS: v4only.web.test 无 AAAA 记录"]
    assert targets["https://v4cert.web.test/"]["causes"][0].startswith(
        "首页（IPv6） https://v4cert.web.test/: TLS 证书名称不符: 证书验证失败：主机名不符")
    # (1 + 0.5 + 0) / 3 = 0.5; no terminal reported, so the unit scores 0 (nothing verified on it),
    # but article 9(2)'s part is shown: rate 0.5 of weight 1, the only judged article → 50 points
    assert unit["ipv6_score"] == {"terminal_rate": None, "endpoint_rate": 0.5, "rate": 0.5, "weight": 1.0,
                                  "points": 50.0}
    page = tmp_path / "q.html"
    html_run = cli("report", "quarterly", "--db", str(db), "--quarter", period, "--inventory", str(inventory),
                   "--policy", str(PROJECT / "policies"), "--format", "html", "--output", str(page))
    assert html_run.returncode in (0, 1), html_run.stderr
    body = page.read_text()
    assert "4/5 (80.0%)" in body and "部分支持" in body and "就绪" in body and "未就绪" in body
    assert "二级链接 https://v4only.web.test/: DNS: v4only.web.test 无 AAAA 记录" in body
