"""Article 9(2) controls (NS09-IPV6-001..004): on crafted roots (``check --root``), on crafted
/proc files read as the live system would read them, and as the pure functions they are, fed
with the facts a live system gives. Nothing here queries a name server or opens a socket."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from nanbu_secops.checks.ipv6 import ipv6_default_route, ipv6_global_address, ipv6_resolver, ipv6_service_listeners
from nanbu_secops.cli import main
from nanbu_secops.collect import CollectError
from nanbu_secops.collect import ipv6 as collect_ipv6
from nanbu_secops.collect.ipv6 import (
    Address,
    Addresses,
    DefaultRoute,
    DefaultRoutes,
    Lookup,
    getaddrinfo_aaaa,
    parse_if_inet6,
    parse_ipv6_default_routes,
)
from nanbu_secops.collect.network import Listener, Listening, Resolver, Resolvers
from nanbu_secops.policy import load_policies
from nanbu_secops.report.labels import article_label
from nanbu_secops.results import Status
from tests.roots import AS_OF, make_root

PROJECT = Path(__file__).resolve().parents[1]
POLICY = PROJECT / "policies" / "article9.yml"
IDS = ("NS09-IPV6-001", "NS09-IPV6-002", "NS09-IPV6-003", "NS09-IPV6-004")


def check_root(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, dict[str, Any]]:
    main(["check", "--root", str(root), "--as-of", AS_OF.isoformat(), "--format", "json", "--lang", "en",
          "--only", "9(2)", *extra])
    return {r["control"]: r for r in json.loads(capsys.readouterr().out)["results"]}


def policy_with(tmp_path: Path, **variables: str) -> Path:
    """article9.yml with variables replaced: ``name="yaml value"``."""
    text = POLICY.read_text(encoding="utf-8")
    for name, value in variables.items():
        start = text.index(f"  {name}: ")
        end = text.index("\n", start)
        text = text[:start] + f"  {name}: {value}" + text[end:]
    path = tmp_path / "a9.yml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the policy ----------------------------------------------------------------------------------

def test_policy_controls_and_article_label():
    [policy] = load_policies(POLICY).policies
    assert policy.id == "nanbu-a09"
    assert [(c.id, c.article, c.check) for c in policy.controls] == [
        ("NS09-IPV6-001", "9(2)", "ipv6_global_address"), ("NS09-IPV6-002", "9(2)", "ipv6_default_route"),
        ("NS09-IPV6-003", "9(2)", "ipv6_resolver"), ("NS09-IPV6-004", "9(2)", "ipv6_service_listeners")]
    params = {c.id: c.params for c in policy.controls}
    assert params["NS09-IPV6-001"] == {"accept_ula": False}
    assert params["NS09-IPV6-003"] == {"probe_name": ""}
    assert params["NS09-IPV6-004"] == {"ports": [80, 443]}
    assert policy.controls[3].title.en == "The unit's service ports (80, 443) listen on IPv6, not only on IPv4"
    assert article_label("9(2)", "zh") == "第九条第（二）项" and article_label("9(2)", "en") == "Article 9(2)"
    # the thresholds `nanbu-secops ipv6 check` reads are here too
    assert {"ipv6_success_rate", "ipv6_link_ratio", "ipv6_similarity", "ipv6_mobile_clients"} <= policy.variables.keys()


@pytest.mark.parametrize("name, value", [("ipv6_service_ports", '["443/sctp"]'), ("ipv6_accept_ula", '"yes"'),
                                         ("ipv6_probe_name", "[a]")])
def test_bad_variables_are_refused(tmp_path, name, value):
    assert main(["policy", "validate", str(policy_with(tmp_path, **{name: value}))]) == 2


# --- crafted roots -------------------------------------------------------------------------------

def test_compliant_root(tmp_path, capsys):
    found = check_root(make_root(tmp_path), capsys)
    assert {c: r["status"] for c, r in found.items()} == {
        "NS09-IPV6-001": "skip", "NS09-IPV6-002": "skip", "NS09-IPV6-003": "pass", "NS09-IPV6-004": "skip"}
    for control in ("NS09-IPV6-001", "NS09-IPV6-002", "NS09-IPV6-004"):
        assert "live" in found[control]["evidence"]["reason"]
    assert found["NS09-IPV6-003"]["evidence"]["ipv6_resolvers"] == ["fd12::53"]
    assert found["NS09-IPV6-003"]["article"] == "9(2)"


@pytest.mark.parametrize("changes, status, ipv6", [
    ({"etc/resolv.conf": "nameserver 10.20.0.53\n"}, "fail", []),
    ({"etc/resolv.conf": "nameserver 2408:8000::8\nnameserver 10.20.0.53\n"}, "pass", ["2408:8000::8"]),
    ({"etc/resolv.conf": "nameserver fe80::1%eth0\n"}, "pass", ["fe80::1"]),  # a router's RDNSS
    # a local cache on loopback says nothing of where it forwards; an IPv4-mapped address is IPv4
    ({"etc/resolv.conf": "nameserver ::1\nnameserver ::ffff:10.20.0.53\n"}, "fail", []),
    ({"etc/resolv.conf": None}, "fail", []),
    # systemd-resolved's stub: its upstreams count
    ({"etc/resolv.conf": "nameserver 127.0.0.53\n", "etc/systemd/resolved.conf": "[Resolve]\nDNS=[fd12::53]:53\n"},
     "pass", ["fd12::53"]),
    ({"etc/resolv.conf": "nameserver 127.0.0.53\n", "etc/systemd/resolved.conf": "[Resolve]\nDNS=10.20.0.53\n"},
     "fail", []),
])
def test_resolvers_on_a_root(tmp_path, capsys, changes, status, ipv6):
    found = check_root(make_root(tmp_path, changes), capsys)["NS09-IPV6-003"]
    assert found["status"] == status
    assert found["evidence"].get("ipv6_resolvers", []) == ipv6
    if status == "fail":
        assert found["evidence"]["problem"].startswith("no name server with an IPv6 address")


def test_resolver_evidence_names_family_and_origin(tmp_path, capsys):
    found = check_root(make_root(tmp_path, {"etc/resolv.conf": "# x\nnameserver 10.20.0.53\n"}), capsys)["NS09-IPV6-003"]
    assert found["evidence"]["resolvers"] == [{"address": "10.20.0.53", "origin": "/etc/resolv.conf:2", "family": "ipv4"}]


def test_probe_name_is_never_asked_for_a_root(tmp_path, capsys, monkeypatch):
    def no_lookup(name: str) -> list[str]:
        raise AssertionError(f"looked up {name} for a --root tree")

    monkeypatch.setattr(collect_ipv6, "getaddrinfo_aaaa", no_lookup)
    policy = policy_with(tmp_path, ipv6_probe_name="portal.nanbu.example")
    ipv4_only = make_root(tmp_path / "v4", {"etc/resolv.conf": "nameserver 10.20.0.53\n"})
    found = check_root(ipv4_only, capsys, "--policy", str(policy))["NS09-IPV6-003"]
    # the lookup could still pass on the live system: not a finding, but not all clear either
    assert found["status"] == "skip" and "live" in found["evidence"]["reason"]
    assert "portal.nanbu.example" in found["evidence"]["reason"]
    found = check_root(make_root(tmp_path / "v6"), capsys, "--policy", str(policy))["NS09-IPV6-003"]
    assert found["status"] == "pass"
    assert found["evidence"]["probe"] == "AAAA of portal.nanbu.example: not asked (offline)"


# --- crafted /proc files, read as on the live system ---------------------------------------------

IF_INET6 = """\
00000000000000000000000000000001 01 80 10 80       lo
fd6e616e627500000000000000000011 02 40 00 80     eth0
fe800000000000000000000000000011 02 40 20 80     eth0
"""
GLOBAL = "240e0388000000000000000000000011 02 40 00 80     eth0\n"
GLOBAL_TENTATIVE = "240e0388000000000000000000000012 03 40 00 40    wlan0\n"
GLOBAL_DADFAILED = "240e0388000000000000000000000013 03 40 00 c8    wlan0\n"
GLOBAL_DEPRECATED = "240e0388000000000000000000000014 03 40 00 21    wlan0\n"

ROUTE_HEADER = (  # what a host without a default route shows: connected routes, local table, null route
    "fd6e616e627500000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 "
    "00000100 00000001 00000000 00000001     eth0\n"
    "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 "
    "00000100 00000001 00000000 00000001     eth0\n"
    "00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 "
    "00000000 00000002 00000000 80200001       lo\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 "
    "ffffffff 00000001 00000000 00200200       lo\n")
DEFAULT_VIA = ("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
               "fe800000000000000000000000000001 00000400 00000001 00000000 00450003     eth0\n")
DEFAULT_DEV = ("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
               "00000000000000000000000000000000 00000064 00000001 00000000 00000001    wwan0\n")
UNREACHABLE = ("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
               "00000000000000000000000000000000 00000400 00000001 00000000 00000201       lo\n")


def test_if_inet6_is_parsed():
    assert parse_if_inet6(IF_INET6 + GLOBAL_TENTATIVE + GLOBAL_DADFAILED + GLOBAL_DEPRECATED) == [
        Address("::1", 128, "lo", "host", "loopback", True),
        Address("fd6e:616e:6275::11", 64, "eth0", "global", "ula", True),
        Address("fe80::11", 64, "eth0", "link", "link-local", True),
        Address("240e:388::12", 64, "wlan0", "global", "global", False, "tentative"),
        Address("240e:388::13", 64, "wlan0", "global", "global", False, "dadfailed"),
        Address("240e:388::14", 64, "wlan0", "global", "global", True, "deprecated")]


def test_default_routes_are_parsed():
    assert parse_ipv6_default_routes(ROUTE_HEADER) == []  # the kernel's null route on lo is no route out
    assert parse_ipv6_default_routes(ROUTE_HEADER + UNREACHABLE) == []  # `ip -6 route add unreachable default`
    assert parse_ipv6_default_routes(ROUTE_HEADER + DEFAULT_VIA + DEFAULT_DEV) == [
        DefaultRoute("", "wwan0", 100), DefaultRoute("fe80::1", "eth0", 1024)]


def live_check(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
               if_inet6: str | None, routes: str | None, *extra: str) -> dict[str, dict[str, Any]]:
    """NS09-IPV6-001/002 of the live system, with /proc/net's two files replaced by these texts."""
    proc = tmp_path / "proc"
    (proc / "conf" / "eth0").mkdir(parents=True)
    (proc / "conf" / "eth0" / "disable_ipv6").write_text("0\n")
    for name, text in (("if_inet6", if_inet6), ("ipv6_route", routes)):
        if text is not None:
            (proc / name).write_text(text)
    monkeypatch.setattr(collect_ipv6, "IF_INET6", str(proc / "if_inet6"))
    monkeypatch.setattr(collect_ipv6, "IPV6_ROUTE", str(proc / "ipv6_route"))
    monkeypatch.setattr(collect_ipv6, "IPV6_CONF", str(proc / "conf"))
    main(["check", "--format", "json", "--lang", "en", "--only", "NS09-IPV6-001,NS09-IPV6-002", *extra])
    return {r["control"]: r for r in json.loads(capsys.readouterr().out)["results"]}


def test_live_ula_only_host_without_default_route_fails(tmp_path, capsys, monkeypatch):
    found = live_check(tmp_path, capsys, monkeypatch, IF_INET6, ROUTE_HEADER)
    address, route = found["NS09-IPV6-001"], found["NS09-IPV6-002"]
    assert address["status"] == "fail"
    assert address["evidence"]["addresses"] == [
        {"address": "fd6e:616e:6275::11/64", "interface": "eth0", "kind": "ula"},
        {"address": "fe80::11/64", "interface": "eth0", "kind": "link-local"}]
    assert "set ipv6_accept_ula: true" in address["evidence"]["problem"]
    assert route["status"] == "fail" and route["evidence"]["default_routes"] == []


def test_live_ula_accepted_by_the_unit(tmp_path, capsys, monkeypatch):
    policy = policy_with(tmp_path, ipv6_accept_ula="true")
    found = live_check(tmp_path, capsys, monkeypatch, IF_INET6, ROUTE_HEADER + DEFAULT_VIA, "--policy", str(policy))
    assert found["NS09-IPV6-001"]["status"] == "pass"
    assert found["NS09-IPV6-001"]["evidence"]["ready"] == ["fd6e:616e:6275::11 (eth0)"]
    assert found["NS09-IPV6-002"]["status"] == "pass"
    assert found["NS09-IPV6-002"]["evidence"]["default_routes"] == [
        {"gateway": "fe80::1", "interface": "eth0", "metric": 1024, "source": "/proc/net/ipv6_route"}]


def test_live_global_address_and_device_route_pass(tmp_path, capsys, monkeypatch):
    found = live_check(tmp_path, capsys, monkeypatch, IF_INET6 + GLOBAL, ROUTE_HEADER + DEFAULT_DEV)
    assert found["NS09-IPV6-001"]["status"] == "pass"
    assert found["NS09-IPV6-001"]["evidence"]["ready"] == ["240e:388::11 (eth0)"]
    assert found["NS09-IPV6-002"]["evidence"]["default_routes"] == [
        {"gateway": "(none: out of the device)", "interface": "wwan0", "metric": 100, "source": "/proc/net/ipv6_route"}]


def test_live_kernel_without_ipv6(tmp_path, capsys, monkeypatch):
    found = live_check(tmp_path, capsys, monkeypatch, None, None)
    for control in ("NS09-IPV6-001", "NS09-IPV6-002"):
        assert found[control]["status"] == "fail"
        assert found[control]["evidence"]["problem"].startswith("IPv6 is off in the kernel")


# --- NS09-IPV6-001 as a function ------------------------------------------------------------------

def addresses(*lines: str, disabled: tuple[str, ...] = ()) -> Addresses:
    return Addresses(True, True, parse_if_inet6("".join(lines)), list(disabled))


@pytest.mark.parametrize("facts, accept_ula, status, problem", [
    (addresses(IF_INET6, GLOBAL), False, Status.PASS, None),
    (addresses(IF_INET6), False, Status.FAIL, "only unique local"),
    (addresses(IF_INET6), True, Status.PASS, None),
    (addresses(IF_INET6.splitlines(keepends=True)[2]), True, Status.FAIL, "only link-local (fe80::/10) or other"),
    (addresses(IF_INET6, GLOBAL_TENTATIVE), False, Status.FAIL, "not usable yet"),  # ULA too, but the global one is pending
    (addresses(IF_INET6.splitlines(keepends=True)[0]), False, Status.FAIL, "no IPv6 address on any interface"),
    (addresses(GLOBAL_TENTATIVE, GLOBAL_DADFAILED), False, Status.FAIL, "not usable yet"),
    (addresses(GLOBAL_DEPRECATED), False, Status.PASS, None),  # deprecated still works, it is just not preferred
    # a global address on loopback is not the terminal's connectivity
    (addresses("240e0388000000000000000000000099 01 80 00 80       lo\n"), False, Status.FAIL, "no IPv6 address"),
])
def test_global_address(facts, accept_ula, status, problem):
    outcome = ipv6_global_address(facts, accept_ula=accept_ula)
    assert outcome.status == status
    if problem:
        assert problem in outcome.evidence["problem"]


def test_global_address_evidence_names_disabled_interfaces():
    outcome = ipv6_global_address(addresses(IF_INET6, disabled=("wlan0",)), accept_ula=False)
    assert outcome.evidence["disable_ipv6"] == ["wlan0"]


def test_offline_facts_are_skipped_as_live_only():
    for outcome in (ipv6_global_address(Addresses(False), accept_ula=False), ipv6_default_route(DefaultRoutes(False)),
                    ipv6_service_listeners(Listening(False), ports=[443])):
        assert outcome.status == Status.SKIP and "live" in outcome.evidence["reason"]


# --- NS09-IPV6-003 with the live probe --------------------------------------------------------------

V4 = Resolvers([Resolver("10.20.0.53", "/etc/resolv.conf:1")])
V6 = Resolvers([Resolver("fd12::53", "/etc/resolv.conf:1")])


def lookup(answer: list[str] | Exception) -> Lookup:
    def resolve(name: str) -> list[str]:
        assert name == "portal.nanbu.example"
        if isinstance(answer, Exception):
            raise answer
        return answer

    return Lookup(True, resolve)


@pytest.mark.parametrize("resolvers, probe, status", [
    (V4, lookup(["2408:8000::80"]), Status.PASS),  # an IPv4 name server that returns AAAA
    (V4, lookup([]), Status.FAIL),
    (V4, lookup(CollectError("no answer for portal.nanbu.example within 20 s")), Status.ERROR),
    (V6, lookup(CollectError("no answer")), Status.PASS),  # the IPv6 name server is enough
    (V6, lookup([]), Status.PASS),
])
def test_resolver_probe(resolvers, probe, status):
    outcome = ipv6_resolver(resolvers, probe, probe_name="portal.nanbu.example")
    assert outcome.status == status
    assert outcome.evidence["probe"]["name"] == "portal.nanbu.example"


def test_no_probe_name_no_lookup():
    def never(name: str) -> list[str]:
        raise AssertionError("asked")

    assert ipv6_resolver(V4, Lookup(True, never), probe_name="").status == Status.FAIL
    assert "probe" not in ipv6_resolver(V6, Lookup(True, never), probe_name="").evidence


def fake_getaddrinfo(result: Any, delay: float = 0.0):
    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        assert family == socket.AF_INET6
        time.sleep(delay)
        if isinstance(result, Exception):
            raise result
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, 0, 0, 0)) for a in result]
    return getaddrinfo


def test_getaddrinfo_aaaa(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo(["2408:8000::80", "fe80::1%eth0", "::ffff:10.0.0.1"]))
    assert getaddrinfo_aaaa("portal.nanbu.example") == ["2408:8000::80", "fe80::1"]
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo(socket.gaierror(socket.EAI_NONAME, "Name or service not known")))
    assert getaddrinfo_aaaa("portal.nanbu.example") == []  # an answer: no such name
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo(socket.gaierror(socket.EAI_AGAIN, "Temporary failure")))
    with pytest.raises(CollectError, match="Temporary failure"):
        getaddrinfo_aaaa("portal.nanbu.example")
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo([], delay=2))
    started = time.monotonic()
    with pytest.raises(CollectError, match="no answer for portal.nanbu.example within 0.2 s"):
        getaddrinfo_aaaa("portal.nanbu.example", timeout=0.2)
    assert time.monotonic() - started < 1.5


# --- NS09-IPV6-004 as a function ------------------------------------------------------------------

def sock(port: int, address: str, protocol: str = "tcp", process: str = "nginx", pid: int = 4242) -> Listener:
    return Listener(protocol, address, port, pid, process, "www-data")


def test_ipv4_only_service_fails_and_names_the_process():
    outcome = ipv6_service_listeners(Listening(True, [sock(80, "0.0.0.0"), sock(80, "::"), sock(443, "0.0.0.0"),
                                                      sock(443, "::ffff:10.0.0.5", pid=4343), sock(22, "0.0.0.0")]),
                                     ports=[80, 443])
    assert outcome.status == Status.FAIL
    assert outcome.evidence["ipv4_only"] == ["443/tcp"]
    assert outcome.evidence["ports"] == [
        {"port": "80/tcp", "result": "ipv6 and ipv4",
         "listeners": [{"address": "0.0.0.0", "process": "nginx", "pid": 4242, "user": "www-data"},
                       {"address": "::", "process": "nginx", "pid": 4242, "user": "www-data"}]},
        {"port": "443/tcp", "result": "ipv4 only",
         "listeners": [{"address": "0.0.0.0", "process": "nginx", "pid": 4242, "user": "www-data"},
                       {"address": "::ffff:10.0.0.5", "process": "nginx", "pid": 4343, "user": "www-data"}]}]


@pytest.mark.parametrize("listeners, status, results", [
    ([sock(443, "::")], Status.PASS, ["not listening: nothing to serve", "ipv6"]),
    ([sock(80, "2408:8000::80"), sock(443, "fd12::80")], Status.PASS, ["ipv6", "ipv6"]),  # specific addresses
    ([], Status.PASS, ["not listening: nothing to serve"] * 2),
    ([sock(80, "127.0.0.1"), sock(80, "::1")], Status.PASS,
     ["loopback or link-local only: not served to the network", "not listening: nothing to serve"]),
    ([sock(80, "10.0.0.5"), sock(80, "fe80::1%eth0")], Status.FAIL, ["ipv4 only", "not listening: nothing to serve"]),
    ([sock(80, "0.0.0.0"), sock(80, "::1")], Status.FAIL, ["ipv4 only", "not listening: nothing to serve"]),
    ([sock(443, "::", protocol="udp")], Status.PASS, ["not listening: nothing to serve"] * 2),  # 443 means TCP
])
def test_service_listeners(listeners, status, results):
    outcome = ipv6_service_listeners(Listening(True, listeners), ports=[80, 443])
    assert outcome.status == status
    assert [p["result"] for p in outcome.evidence["ports"]] == results
    if all(r.startswith(("not listening", "loopback")) for r in results):
        assert outcome.evidence["note"].startswith("none of the service ports is served to the network")


def test_service_port_ranges_and_udp():
    outcome = ipv6_service_listeners(Listening(True, [sock(8001, "0.0.0.0"), sock(8003, "::"), sock(443, "0.0.0.0", "udp")]),
                                     ports=["8000-8010", "443/udp"])
    assert outcome.status == Status.FAIL
    assert [(p["port"], p["result"]) for p in outcome.evidence["ports"]] == [
        ("8001/tcp", "ipv4 only"), ("8003/tcp", "ipv6"), ("443/udp", "ipv4 only")]
    assert outcome.evidence["ipv4_only"] == ["8001/tcp", "443/udp"]


def test_no_service_ports():
    outcome = ipv6_service_listeners(Listening(True, [sock(80, "0.0.0.0")]), ports=[])
    assert outcome.status == Status.PASS and "nothing to check" in outcome.evidence["note"]


def test_default_route_function():
    assert ipv6_default_route(DefaultRoutes(True, True, [])).status == Status.FAIL
    assert ipv6_default_route(DefaultRoutes(True, False)).evidence["problem"].startswith("IPv6 is off")
    assert ipv6_default_route(DefaultRoutes(True, True, [DefaultRoute("fe80::1", "eth0", 1024)])).status == Status.PASS


def test_only_article_selects_the_four_controls(tmp_path, capsys):
    assert list(check_root(make_root(tmp_path), capsys)) == list(IDS)
