"""``nanbu-secops ipv6 check`` end to end: a real unbound serving the test zones and real HTTPS
servers on lab addresses (IPv4 and IPv6), certificates from a test CA made by the tests. The
expected verdicts and ratios are worked out by hand below from the portal's links."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.ipv6lab import World, spawn_web
from tests.test_cli import cli

POLICIES = Path(__file__).resolve().parent.parent / "policies"

# The portal's pages. Level 2 = the distinct http(s) links on "/": fragments, mailto:,
# javascript: and repeats do not count, and neither does the homepage itself.
PORTAL = {
    "/": ["https://good.nanbu.test/", "https://v4only.nanbu.test/", "https://dead6.nanbu.test/",
          "https://diff.nanbu.test/", "https://badcert6.nanbu.test/", "/a.html", "/b.html",
          "#top", "mailto:office@nanbu.test", "javascript:void(0)", "https://good.nanbu.test/#news", "/a.html", "/"],
    "/a.html": ["https://good.nanbu.test/x", "https://v4only.nanbu.test/y", "/"],
    "/b.html": ["https://good.nanbu.test/x", "https://good.nanbu.test/", "/b.html#part"],
}
# level 2: good ✓, v4only ✗ (no AAAA), dead6 ✗ (nothing listens on its AAAA), diff ✓ (status only),
#          badcert6 ✗ (wrong certificate over IPv6), /a.html ✓, /b.html ✓            → 4 of 7
# level 3 (links on the portal's own level-2 pages, not already counted): good/x ✓, v4only/y ✗ → 1 of 2
LEVEL2 = (7, 4)
LEVEL3 = (2, 1)


@pytest.fixture(scope="module")
def world(ipv6_lab: World, tmp_path_factory: pytest.TempPathFactory) -> World:
    links = tmp_path_factory.mktemp("portal") / "links.json"
    links.write_text(json.dumps(PORTAL))
    servers = [
        spawn_web(ipv6_lab, "www.nanbu.test", "portal", "--links", str(links)),
        spawn_web(ipv6_lab, "good.nanbu.test", "plain"),
        spawn_web(ipv6_lab, "v4only.nanbu.test", "plain", families=(4,)),
        spawn_web(ipv6_lab, "dead6.nanbu.test", "plain", families=(4,)),
        spawn_web(ipv6_lab, "diff.nanbu.test", "different"),
        spawn_web(ipv6_lab, "badcert6.nanbu.test", "plain", families=(4,)),
        spawn_web(ipv6_lab, "badcert6.nanbu.test", "plain", families=(6,), cert_name=ipv6_lab.wrong_name),
        spawn_web(ipv6_lab, "slow.nanbu.test", "slow"),
        spawn_web(ipv6_lab, "loop.nanbu.test", "loop"),
        spawn_web(ipv6_lab, "huge.nanbu.test", "huge"),
        spawn_web(ipv6_lab, "www.v6dns.test", "plain"),
        spawn_web(ipv6_lab, "api.nanbu.test", "plain"),
        spawn_web(ipv6_lab, "api2.nanbu.test", "plain", families=(4,)),
    ]
    yield ipv6_lab
    for server in servers:
        server.stop()


def check(world: World, *targets: str, extra: tuple[str, ...] = ()) -> tuple[int, dict]:
    done = cli("ipv6", "check", *targets, "--resolver", world.resolver, "--ca-file", str(world.ca_file),
               "--probes", "3", "--timeout", "3", "--format", "json", *extra)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def by_target(doc: dict) -> dict[str, dict]:
    return {t["target"]: t for t in doc["targets"]}


def test_ready_site(world: World) -> None:
    code, doc = check(world, "www.v6dns.test", extra=("--crawl-depth", "0"))
    result = doc["targets"][0]
    assert code == 0 and result["verdict"] == "ready" and result["reason"] is None, result
    assert result["dns"]["aaaa"] == [world.sites["www.v6dns.test"].ipv6]
    assert all(ns["answers_v6"] for ns in result["dns"]["ns"])
    assert result["success_rate_v6"] == 1.0
    assert result["parity"]["status_match"] and result["parity"]["similarity"] == 1.0
    assert result["v6"]["ok"] and result["v6"]["tls_verified"] and result["v6"]["timings"]["tcp_ms"] is not None


def test_portal_link_ratios_and_name_servers(world: World) -> None:
    code, doc = check(world, "https://www.nanbu.test/", extra=("--crawl-depth", "2"))
    result = doc["targets"][0]
    assert code == 1 and result["verdict"] == "partial", result
    links = result["links"]
    assert (links["level2"]["total"], links["level2"]["ipv6"]) == LEVEL2
    assert links["level2"]["ratio"] == pytest.approx(4 / 7, abs=0.001)
    assert (links["level3"]["total"], links["level3"]["ipv6"]) == LEVEL3
    assert links["level3"]["ratio"] == 0.5
    assert "name server ns2.nanbu.test has no IPv6 address" in result["reason"]
    assert "level2 IPv6 link ratio 57% below 85%" in result["reason"]
    servers = {ns["name"]: ns for ns in result["dns"]["ns"]}
    assert servers["ns1.nanbu.test"]["answers_v6"] is True and servers["ns2.nanbu.test"]["answers_v6"] is None
    failing = {f["url"] for f in links["level2"]["failing"]}
    assert failing == {"https://v4only.nanbu.test/", "https://dead6.nanbu.test/", "https://badcert6.nanbu.test/"}


def test_not_ready_and_partial_kinds(world: World) -> None:
    code, doc = check(world, "v4only.nanbu.test", "dead6.nanbu.test", "badcert6.nanbu.test", "diff.nanbu.test",
                      "loop.nanbu.test", extra=("--crawl-depth", "0"))
    results = by_target(doc)
    assert code == 1
    assert results["v4only.nanbu.test"]["verdict"] == "not-ready"
    assert results["v4only.nanbu.test"]["reason"] == "no AAAA record"
    for name in ("dead6.nanbu.test", "badcert6.nanbu.test", "loop.nanbu.test"):
        assert results[name]["verdict"] == "not-ready", results[name]
        assert results[name]["reason"] == "no successful HTTP(S) response over IPv6"
    assert results["dead6.nanbu.test"]["v6"]["stage"] == "tcp"
    assert results["badcert6.nanbu.test"]["v6"]["stage"] == "tls"
    assert results["badcert6.nanbu.test"]["v6"]["tls_verified"] is False
    assert results["badcert6.nanbu.test"]["v4"]["ok"] is True
    assert results["loop.nanbu.test"]["v6"]["stage"] == "redirects"
    diff = results["diff.nanbu.test"]
    assert diff["verdict"] == "partial" and diff["parity"]["status_match"] is True
    assert diff["parity"]["similarity"] < 0.5 and "content similarity" in diff["reason"]


def test_slow_and_huge_sites_are_bounded(world: World) -> None:
    code, doc = check(world, "slow.nanbu.test", "huge.nanbu.test", extra=("--crawl-depth", "1"))
    results = by_target(doc)
    slow = results["slow.nanbu.test"]
    assert slow["verdict"] == "not-ready" and "timed out" in slow["v6"]["error"]
    huge = results["huge.nanbu.test"]
    assert huge["v6"]["ok"] and huge["v6"]["truncated"] and huge["parity"]["similarity"] > 0.9
    assert huge["verdict"] == "partial"  # the nanbu.test zone has ns2 without IPv6


def test_bad_targets_are_per_target_errors(world: World) -> None:
    code, doc = check(world, "missing.nanbu.test", "ftp://www.nanbu.test/", "https://exa mple/", "www.v6dns.test",
                      "https://editor:pw@www.v6dns.test/", extra=("--crawl-depth", "0"))
    results = by_target(doc)
    assert code == 1 and len(results) == 5
    assert results["https://editor:pw@www.v6dns.test/"]["verdict"] == "error"       # never fetched with them
    assert results["https://editor:pw@www.v6dns.test/"]["reason"].startswith("URL carries a user name or password")
    assert results["missing.nanbu.test"]["verdict"] == "error"
    assert results["missing.nanbu.test"]["reason"] == "name does not exist"
    assert "scheme 'ftp'" in results["ftp://www.nanbu.test/"]["reason"]
    assert results["https://exa mple/"]["verdict"] == "error"
    assert results["www.v6dns.test"]["verdict"] == "ready"  # the rest of the report is intact


def test_unreachable_resolver(world: World) -> None:
    done = cli("ipv6", "check", "www.v6dns.test", "--resolver", world.unreachable_resolver, "--timeout", "1",
               "--crawl-depth", "0", "--format", "json")
    result = json.loads(done.stdout)["targets"][0]
    assert done.returncode == 1 and result["verdict"] == "error" and "unreachable" in result["reason"]


def test_bad_arguments_exit_2(world: World) -> None:
    for args, message in ((["x.test", "--resolver", "not-an-address"], "--resolver"),
                          (["x.test", "--probes", "0"], "--probes"),
                          (["x.test", "--ca-file", "/nonexistent.pem"], "--ca-file"),
                          ([], "at least one TARGET")):
        done = cli("ipv6", "check", *args, "--lang", "en")
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
    done = cli("ipv6", "check")
    assert done.returncode == 2 and "请至少给出一个 TARGET" in done.stderr, done.stderr  # Chinese by default


def test_mobile_clients_ipv6_only(world: World, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    article9 = policies / "article9.yml"
    text = yaml.safe_load(article9.read_text())
    clients = {"南部发布": ["api.nanbu.test", "api2.nanbu.test"], "政务服务": ["api.nanbu.test"]}
    text["variables"]["ipv6_mobile_clients"] = clients
    article9.write_text(yaml.safe_dump(text, allow_unicode=True))
    code, doc = check(world, extra=("--clients", "--crawl-depth", "0", "--policy", str(policies)))
    found = {c["client"]: c for c in doc["clients"]}
    assert found["南部发布"]["ipv6_only"] is False and "api2.nanbu.test" in found["南部发布"]["reason"]
    assert found["政务服务"]["ipv6_only"] is True
    assert found["政务服务"]["dual_stack"] is False  # the zone's ns2 has no IPv6
    assert code == 1 and {t["target"] for t in doc["targets"]} == {"api.nanbu.test", "api2.nanbu.test"}


def test_html_and_text_reports(world: World, tmp_path: Path) -> None:
    page = tmp_path / "ipv6.html"
    done = cli("ipv6", "check", "www.v6dns.test", "v4only.nanbu.test", "--resolver", world.resolver, "--ca-file",
               str(world.ca_file), "--probes", "2", "--crawl-depth", "0", "--format", "html", "--output", str(page))
    assert done.returncode == 1, done.stderr
    html = page.read_text()
    assert "第九条第（二）项" in html and "就绪" in html and "未就绪" in html
    assert "http://" not in html.replace("https://", "") and "<script" not in html
    text = cli("ipv6", "check", "www.v6dns.test", "--resolver", world.resolver, "--ca-file", str(world.ca_file),
               "--probes", "2", "--crawl-depth", "0", "--lang", "en")
    assert text.returncode == 0 and "ready" in text.stdout



def test_text_names_the_failing_probe(world: World) -> None:
    """A homepage that fails one IPv6 probe in two: partial, and the text says which step failed.
    Requests in order: IPv4 (1st, ok), IPv6 probe 1 (2nd, 503), IPv6 probe 2 (3rd, ok)."""
    with spawn_web(world, "www.lame6.test", "flaky"):
        done = cli("ipv6", "check", "www.lame6.test", "--resolver", world.resolver, "--ca-file", str(world.ca_file),
                   "--probes", "2", "--timeout", "3", "--crawl-depth", "0", "--lang", "en")
    assert done.returncode == 1, done.stderr
    assert "partial" in done.stdout
    assert "homepage over IPv6, 1 of 2 probes failed: HTTP status 503" in done.stdout, done.stdout


def test_chinese_text_has_no_english_prose(world: World) -> None:
    """Reasons and causes of real partial, not-ready and error targets, rendered in Chinese (issue 19)."""
    from tests.test_i18n import english_runs

    done = cli("ipv6", "check", "www.nanbu.test", "v4only.nanbu.test", "dead6.nanbu.test", "diff.nanbu.test",
               "badcert6.nanbu.test", "nosuch.nanbu.test", "--resolver", world.resolver, "--ca-file",
               str(world.ca_file), "--probes", "2", "--timeout", "3")
    assert done.returncode == 1, done.stderr
    assert "未就绪" in done.stdout and "部分支持" in done.stdout
    assert english_runs(done.stdout) == [], done.stdout
