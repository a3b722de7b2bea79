"""Article 5 controls on crafted roots (``check --root``), and the live-only checks as the pure
functions they are, fed with the facts a live system would give."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nanbu_secops.checks.network import gateways_approved, listening_ports, parse_ports
from nanbu_secops.cli import main
from nanbu_secops.collect.network import Gateway, Listener, Listening, Routes, parse_proc_ipv6_route, parse_proc_route
from nanbu_secops.results import Status
from tests.roots import AS_OF, CHRONY_CONF, NFTABLES_CONF, make_root

PROJECT = Path(__file__).resolve().parents[1]


def check_root(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, dict[str, Any]]:
    main(["check", "--root", str(root), "--as-of", AS_OF.isoformat(), "--format", "json", "--only", "5", *extra])
    return {r["control"]: r for r in json.loads(capsys.readouterr().out)["results"]}


def result(tmp_path: Path, capsys: pytest.CaptureFixture[str], control: str,
           changes: dict[str, str | None] | None = None) -> dict[str, Any]:
    return check_root(make_root(tmp_path, changes), capsys)[control]


def test_compliant_root(tmp_path, capsys):
    found = check_root(make_root(tmp_path), capsys)
    assert {c: r["status"] for c, r in found.items()} == {
        "NS05-FW-001": "pass", "NS05-PORT-001": "skip", "NS05-TIME-001": "pass", "NS05-DNS-001": "pass",
        "NS05-GW-001": "skip", "NS05-PROXY-001": "pass"}
    assert "live" in found["NS05-PORT-001"]["evidence"]["reason"]
    assert "live" in found["NS05-GW-001"]["evidence"]["reason"]
    firewall = found["NS05-FW-001"]["evidence"]
    assert firewall["protecting"] == "nftables"
    assert firewall["mode"].startswith("offline")
    assert firewall["firewalls"][0]["how"] == (
        "offline: enabled at boot by /etc/systemd/system/sysinit.target.wants/nftables.service")
    assert firewall["firewalls"][0]["default_deny"]["ipv6"] == (
        "chain inet filter input: policy drop (/etc/nftables.conf:5)")


# --- NS05-FW-001 firewall --------------------------------------------------------------------

ENABLE_LINK = "etc/systemd/system/sysinit.target.wants/nftables.service"


@pytest.mark.parametrize("changes, status, problem", [
    ({"etc/nftables.conf": NFTABLES_CONF.replace("policy drop", "policy accept")}, "fail",
     "no active firewall denies inbound traffic by default for ipv4 and ipv6"),
    ({ENABLE_LINK: None}, "fail", "no firewall is active"),  # configured but not started at boot
    ({"etc/nftables.conf": None, "usr/sbin/nft": None, ENABLE_LINK: None}, "fail",
     "no host firewall (nftables, iptables, ufw, firewalld) is installed"),
    # an ip (IPv4-only) table leaves IPv6 open
    ({"etc/nftables.conf": NFTABLES_CONF.replace("table inet filter", "table ip filter")}, "fail",
     "no active firewall denies inbound traffic by default for ipv6"),
    # a final catch-all drop rule denies by default as well as a policy does
    ({"etc/nftables.conf": NFTABLES_CONF.replace("policy drop", "policy accept").replace(
        "tcp dport 22 accept\n", "tcp dport { 22, 2222 } accept\n        counter drop\n")}, "pass", None),
    # ...but a drop that matches something is not a catch-all
    ({"etc/nftables.conf": NFTABLES_CONF.replace("policy drop", "policy accept").replace(
        "tcp dport 22 accept\n", "ip saddr { 10.0.0.1 } drop\n")}, "fail",
     "no active firewall denies inbound traffic by default for ipv4 and ipv6"),
    # rules pulled in with include count; the chain's policy is in the included file
    ({"etc/nftables.conf": 'flush ruleset\ninclude "/etc/nftables.d/*.nft"\n',
      "etc/nftables.d/10-input.nft": NFTABLES_CONF}, "pass", None),
    # a chain on the output hook does not protect the input
    ({"etc/nftables.conf": NFTABLES_CONF.replace("hook input", "hook output")}, "fail",
     "no active firewall denies inbound traffic by default for ipv4 and ipv6"),
])
def test_nftables(tmp_path, capsys, changes, status, problem):
    found = result(tmp_path, capsys, "NS05-FW-001", changes)
    assert found["status"] == status
    assert found["evidence"].get("problem") == problem


def test_nftables_masked_unit_is_not_active(tmp_path, capsys):
    root = make_root(tmp_path)
    (root / "etc/systemd/system/nftables.service").symlink_to("/dev/null")
    found = check_root(root, capsys)["NS05-FW-001"]
    assert (found["status"], found["evidence"]["problem"]) == ("fail", "no firewall is active")


def test_nftables_included_file_line_is_the_origin(tmp_path, capsys):
    found = result(tmp_path, capsys, "NS05-FW-001", {
        "etc/nftables.conf": 'flush ruleset\ninclude "/etc/nftables.d/*.nft"\n',
        "etc/nftables.d/10-input.nft": NFTABLES_CONF})
    assert found["evidence"]["firewalls"][0]["default_deny"]["ipv4"].endswith("(/etc/nftables.d/10-input.nft:5)")


IPTABLES_V4 = """\
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp --dport 22 -j ACCEPT
COMMIT
"""
NO_NFT = {"etc/nftables.conf": None, "usr/sbin/nft": None, ENABLE_LINK: None}
NETFILTER_LINK = "etc/systemd/system/multi-user.target.wants/netfilter-persistent.service"


@pytest.mark.parametrize("changes, status", [
    ({"etc/iptables/rules.v4": IPTABLES_V4, "etc/iptables/rules.v6": IPTABLES_V4, NETFILTER_LINK: ""}, "pass"),
    ({"etc/iptables/rules.v4": IPTABLES_V4, "etc/iptables/rules.v6": IPTABLES_V4}, "fail"),  # not enabled
    ({"etc/iptables/rules.v4": IPTABLES_V4, NETFILTER_LINK: ""}, "fail"),  # IPv6 has no rules
    ({"etc/iptables/rules.v4": IPTABLES_V4.replace(":INPUT DROP", ":INPUT ACCEPT"),
      "etc/iptables/rules.v6": IPTABLES_V4, NETFILTER_LINK: ""}, "fail"),
    ({"etc/iptables/rules.v4": IPTABLES_V4.replace(":INPUT DROP", ":INPUT ACCEPT").replace(
        "COMMIT", "-A INPUT -j REJECT --reject-with icmp-host-prohibited\nCOMMIT"),
      "etc/iptables/rules.v6": IPTABLES_V4, NETFILTER_LINK: ""}, "pass"),
])
def test_iptables(tmp_path, capsys, changes, status):
    assert result(tmp_path, capsys, "NS05-FW-001", {**NO_NFT, **changes})["status"] == status


UFW_LINK = "etc/systemd/system/multi-user.target.wants/ufw.service"


@pytest.mark.parametrize("enabled, policy, ipv6, link, status", [
    ("yes", "DROP", "yes", "", "pass"),
    ("yes", "REJECT", "yes", "", "pass"),
    ("no", "DROP", "yes", "", "fail"),
    ("yes", "ACCEPT", "yes", "", "fail"),
    ("yes", "DROP", "no", "", "fail"),  # IPv6 left unfiltered
    ("yes", "DROP", "yes", None, "fail"),  # ufw.service not started at boot
])
def test_ufw(tmp_path, capsys, enabled, policy, ipv6, link, status):
    found = result(tmp_path, capsys, "NS05-FW-001", {
        **NO_NFT, "etc/ufw/ufw.conf": f"# ufw.conf\nENABLED={enabled}\nLOGLEVEL=low\n",
        "etc/default/ufw": f'IPV6={ipv6}\nDEFAULT_INPUT_POLICY="{policy}"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\n',
        UFW_LINK: link})
    assert found["status"] == status
    assert found["evidence"]["firewalls"][0]["name"] == "ufw"


@pytest.mark.parametrize("zone_target, status", [(None, "pass"), ("DROP", "pass"), ("ACCEPT", "fail")])
def test_firewalld(tmp_path, capsys, zone_target, status):
    attr = f' target="{zone_target}"' if zone_target else ""
    found = result(tmp_path, capsys, "NS05-FW-001", {
        **NO_NFT, "etc/firewalld/firewalld.conf": "DefaultZone=work\n",
        "etc/firewalld/zones/work.xml": f'<?xml version="1.0" encoding="utf-8"?>\n<zone{attr}><service name="ssh"/></zone>\n',
        "etc/systemd/system/multi-user.target.wants/firewalld.service": ""})
    assert found["status"] == status


TRUSTED = '<?xml version="1.0" encoding="utf-8"?>\n<zone target="ACCEPT"><short>Trusted</short></zone>\n'


@pytest.mark.parametrize("changes, status, note", [
    ({}, "pass", None),  # the shipped trusted zone binds nothing
    ({"etc/firewalld/zones/trusted.xml": TRUSTED.replace("</zone>", '<interface name="eth1"/></zone>')}, "fail",
     "interface eth1 (/etc/firewalld/zones/trusted.xml) is in zone trusted"),
    ({"etc/NetworkManager/system-connections/lan.nmconnection": "[connection]\nid=lan\nzone=trusted\n"}, "fail",
     "connection /etc/NetworkManager/system-connections/lan.nmconnection:3 is in zone trusted"),
    ({"etc/sysconfig/network-scripts/ifcfg-eth0": 'DEVICE=eth0\nZONE="trusted"\n'}, "fail",
     "interface of /etc/sysconfig/network-scripts/ifcfg-eth0:2 is in zone trusted"),
    # an /etc copy of the zone replaces the shipped one: no longer accepting
    ({"etc/sysconfig/network-scripts/ifcfg-eth0": "ZONE=trusted\n",
      "etc/firewalld/zones/trusted.xml": TRUSTED.replace('target="ACCEPT"', 'target="DROP"')}, "pass", None),
    # bound to the default zone itself: judged as the default zone
    ({"etc/firewalld/zones/public.xml": '<zone><interface name="eth0"/></zone>'}, "pass", None),
])
def test_firewalld_zone_bindings(tmp_path, capsys, changes, status, note):
    """firewalld puts an interface's or a source's traffic in the zone it is bound to; a zone whose
    target is ACCEPT then lets everything in, whatever the default zone says."""
    found = result(tmp_path, capsys, "NS05-FW-001", {
        **NO_NFT, "etc/firewalld/firewalld.conf": "DefaultZone=public\n",
        "usr/lib/firewalld/zones/public.xml": '<zone><service name="ssh"/></zone>',
        "usr/lib/firewalld/zones/trusted.xml": TRUSTED,
        "etc/systemd/system/multi-user.target.wants/firewalld.service": "", **changes})
    assert found["status"] == status
    if note:
        [firewalld] = found["evidence"]["firewalls"]
        assert any(n.startswith(note) for n in firewalld["notes"]), firewalld["notes"]


# --- NS05-PORT-001 listening ports (live only) ---------------------------------------------------

def sock(port: int, address: str = "0.0.0.0", protocol: str = "tcp", process: str = "python3") -> Listener:
    return Listener(protocol, address, port, 4242, process, "alice")


def test_ports_pass_on_allowed_and_loopback():
    outcome = listening_ports(Listening(True, [sock(22), sock(22, "::"), sock(68, protocol="udp"),
                                               sock(5432, "127.0.0.1"), sock(631, "::1"), sock(8080, "::ffff:127.0.0.1")]),
                              allowed=["22/tcp", "68/udp"])
    assert outcome.status == Status.PASS
    assert outcome.evidence["listening"] == ["22/tcp", "68/udp"]


def test_ports_fail_names_the_process():
    outcome = listening_ports(Listening(True, [sock(22), sock(8099, "::"), sock(22, protocol="udp")]),
                              allowed=[22])
    assert outcome.status == Status.FAIL
    assert outcome.evidence["not_allowed"] == [
        {"port": 8099, "protocol": "tcp", "address": "::", "process": "python3", "pid": 4242, "user": "alice"},
        {"port": 22, "protocol": "udp", "address": "0.0.0.0", "process": "python3", "pid": 4242, "user": "alice"}]


def test_port_ranges():
    assert parse_ports([22, "123/udp", "60000-61000/udp"]) == {("tcp", 22, 22), ("udp", 123, 123),
                                                               ("udp", 60000, 61000)}
    assert listening_ports(Listening(True, [sock(60001, protocol="udp")]), allowed=["60000-61000/udp"]).status == Status.PASS


def test_ports_offline_are_skipped_as_live_only():
    outcome = listening_ports(Listening(False), allowed=[22])
    assert outcome.status == Status.SKIP and "live" in outcome.evidence["reason"]


def test_bad_port_in_policy_is_refused(tmp_path):
    text = (PROJECT / "policies/article5.yml").read_text().replace(
        'allowed_listen_ports: ["22/tcp"', 'allowed_listen_ports: ["22/sctp"')
    (tmp_path / "a5.yml").write_text(text)
    assert main(["policy", "validate", str(tmp_path / "a5.yml")]) == 2


# --- NS05-TIME-001 time synchronisation ------------------------------------------------------------

CHRONY_LINK = "etc/systemd/system/multi-user.target.wants/chrony.service"


def test_time_offline_evidence(tmp_path, capsys):
    found = result(tmp_path, capsys, "NS05-TIME-001")
    assert found["status"] == "pass"
    daemon = found["evidence"]["daemons"][0]
    assert daemon["running"] == "not checked (offline)"
    assert daemon["servers"] == [{"server": "10.20.0.1", "kind": "server", "origin": "/etc/chrony/chrony.conf:2"}]


@pytest.mark.parametrize("changes, status", [
    ({CHRONY_LINK: None}, "fail"),  # configured but not started at boot
    ({"etc/chrony/chrony.conf": "# no servers\ndriftfile /var/lib/chrony/chrony.drift\n"}, "fail"),
    ({"etc/chrony/chrony.conf": None, "usr/sbin/chronyd": None, CHRONY_LINK: None}, "fail"),
    # Debian's layout: servers in a sourcedir file
    ({"etc/chrony/chrony.conf": "sourcedir /etc/chrony/sources.d\n",
      "etc/chrony/sources.d/county.sources": "server ntp.nanbu.example iburst\n"}, "pass"),
    ({"etc/chrony/chrony.conf": "! server commented.example\n; pool also.commented\n"}, "fail"),
    # systemd-timesyncd instead of chrony
    ({"etc/chrony/chrony.conf": None, "usr/sbin/chronyd": None, CHRONY_LINK: None,
      "etc/systemd/timesyncd.conf": "[Time]\nNTP=10.20.0.1\n",
      "etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service": ""}, "pass"),
    ({"etc/chrony/chrony.conf": None, "usr/sbin/chronyd": None, CHRONY_LINK: None,
      "etc/systemd/timesyncd.conf": "[Time]\n#NTP=\n",
      "etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service": ""}, "fail"),
    # ntpsec
    ({"etc/chrony/chrony.conf": None, "usr/sbin/chronyd": None, CHRONY_LINK: None,
      "etc/ntpsec/ntp.conf": "pool 10.20.0.1 iburst\n", "usr/sbin/ntpd": "",
      "etc/systemd/system/multi-user.target.wants/ntpsec.service": ""}, "pass"),
])
def test_time_sync(tmp_path, capsys, changes, status):
    assert result(tmp_path, capsys, "NS05-TIME-001", changes)["status"] == status


def test_time_servers_outside_the_approved_list_fail(tmp_path, capsys):
    policy = (PROJECT / "policies/article5.yml").read_text()
    (tmp_path / "a5.yml").write_text(policy.replace("ntp_servers: []", "ntp_servers: [ntp.nanbu.example]"))
    root = make_root(tmp_path / "root", {"etc/chrony/chrony.conf": CHRONY_CONF + "pool 2.debian.pool.ntp.org\n"})
    found = check_root(root, capsys, "--policy", str(tmp_path / "a5.yml"))["NS05-TIME-001"]
    assert found["status"] == "fail"
    assert [s["server"] for s in found["evidence"]["daemons"][0]["unapproved_servers"]] == [
        "10.20.0.1", "2.debian.pool.ntp.org"]


# --- NS05-DNS-001 resolvers ---------------------------------------------------------------------

@pytest.mark.parametrize("changes, status, outside", [
    ({"etc/resolv.conf": "nameserver 8.8.8.8\nnameserver 10.20.0.53\n"}, "fail", ["8.8.8.8"]),
    ({"etc/resolv.conf": "nameserver fd12::53\nsearch nanbu.example\n"}, "pass", []),
    # systemd-resolved's stub: the upstreams in resolved.conf are what counts
    ({"etc/resolv.conf": "nameserver 127.0.0.53\noptions edns0\n",
      "etc/systemd/resolved.conf": "[Resolve]\nDNS=10.20.0.53 114.114.114.114#dns.example\n"}, "fail",
     ["114.114.114.114"]),
    ({"etc/resolv.conf": "nameserver 127.0.0.53\n",
      "etc/systemd/resolved.conf": "[Resolve]\nDNS=8.8.8.8\n",
      "etc/systemd/resolved.conf.d/county.conf": "[Resolve]\nDNS=\nDNS=10.20.0.53:53\n"}, "pass", []),
])
def test_resolvers(tmp_path, capsys, changes, status, outside):
    found = result(tmp_path, capsys, "NS05-DNS-001", changes)
    assert found["status"] == status
    assert [r["address"] for r in found["evidence"].get("not_approved", [])] == outside


def test_resolver_evidence_names_file_and_line(tmp_path, capsys):
    found = result(tmp_path, capsys, "NS05-DNS-001", {"etc/resolv.conf": "# x\nnameserver 1.1.1.1\n"})
    assert found["evidence"]["not_approved"] == [{"address": "1.1.1.1", "origin": "/etc/resolv.conf:2"}]


def test_empty_resolver_list_cannot_be_judged(tmp_path, capsys):
    policy = (PROJECT / "policies/article5.yml").read_text()
    start = policy.index("approved_resolvers: [")
    end = policy.index("\n", start)
    (tmp_path / "a5.yml").write_text(policy[:start] + "approved_resolvers: []" + policy[end:])
    found = check_root(make_root(tmp_path / "root"), capsys, "--policy", str(tmp_path / "a5.yml"))["NS05-DNS-001"]
    assert found["status"] == "error"
    assert "approved_resolvers is empty" in found["evidence"]["error"]


# --- NS05-GW-001 default gateways (live only) --------------------------------------------------------

PROC_ROUTE = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
              "eth0\t00000000\t0114A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
              "eth0\t0014A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
PROC_IPV6_ROUTE = ("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
                   "fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n"
                   "fd120000000000000000000000000000 40 00000000000000000000000000000000 00 "
                   "00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n")


def test_proc_routes_are_parsed():
    assert parse_proc_route(PROC_ROUTE) == [Gateway("192.168.20.1", "eth0", "/proc/net/route")]
    assert parse_proc_ipv6_route(PROC_IPV6_ROUTE) == [Gateway("fe80::1", "eth0", "/proc/net/ipv6_route")]


@pytest.mark.parametrize("gateways, approved, status", [
    (["192.168.20.1", "fe80::1"], ["192.168.20.1", "fe80::/10"], Status.PASS),
    (["192.168.43.1"], ["192.168.20.0/24"], Status.FAIL),  # e.g. a phone's hotspot
    ([], ["192.168.20.1"], Status.PASS),
    (["192.168.20.1"], [], Status.ERROR),
])
def test_gateways(gateways, approved, status):
    outcome = gateways_approved(Routes(True, [Gateway(g, "eth0", "/proc/net/route") for g in gateways]), approved=approved)
    assert outcome.status == status
    if status == Status.FAIL:
        assert outcome.evidence["not_approved"] == [{"gateway": "192.168.43.1", "interface": "eth0",
                                                     "source": "/proc/net/route"}]


def test_gateways_offline_are_skipped_as_live_only():
    outcome = gateways_approved(Routes(False), approved=["10.0.0.1"])
    assert outcome.status == Status.SKIP and "live" in outcome.evidence["reason"]


# --- NS05-PROXY-001 proxies ----------------------------------------------------------------------

@pytest.mark.parametrize("changes, outside", [
    ({"etc/environment": 'PATH="/usr/bin"\nhttp_proxy="http://bob:Secr3t!@proxy.example:3128/"\n'},
     [{"setting": "http_proxy", "value": "http://***@proxy.example:3128/", "origin": "/etc/environment:2"}]),
    ({"etc/profile.d/proxy.sh": "# proxy\nexport HTTPS_PROXY=10.9.9.9:8080 no_proxy=localhost\n"},
     [{"setting": "HTTPS_PROXY", "value": "10.9.9.9:8080", "origin": "/etc/profile.d/proxy.sh:2"}]),
    ({"etc/apt/apt.conf.d/95proxy": '// apt\nAcquire::http::Proxy "http://u:p@10.9.9.9:3142";\n'},
     [{"setting": "Acquire::http::Proxy", "value": "http://***@10.9.9.9:3142", "origin": "/etc/apt/apt.conf.d/95proxy:2"}]),
    ({"etc/apt/apt.conf": 'Acquire {\n  https { Proxy "http://10.9.9.9:3142"; };\n};\n'},
     [{"setting": "Acquire::https::Proxy", "value": "http://10.9.9.9:3142", "origin": "/etc/apt/apt.conf:2"}]),
    ({"etc/apt/apt.conf.d/95proxy": 'Acquire::http::Proxy "DIRECT";\n',
      "etc/profile.d/x.sh": "# export http_proxy=http://old:1\n"}, []),
])
def test_proxies(tmp_path, capsys, changes, outside):
    found = result(tmp_path, capsys, "NS05-PROXY-001", changes)
    assert found["status"] == ("fail" if outside else "pass")
    assert found["evidence"].get("not_approved", []) == outside
    assert "Secr3t" not in json.dumps(found) and "u:p@" not in json.dumps(found)


def test_approved_proxy_passes(tmp_path, capsys):
    policy = (PROJECT / "policies/article5.yml").read_text()
    (tmp_path / "a5.yml").write_text(policy.replace("approved_proxies: []",
                                                    'approved_proxies: ["http://proxy.example:3128", "10.9.9.9"]'))
    root = make_root(tmp_path / "root", {
        "etc/environment": "http_proxy=http://bob:pw@proxy.example:3128\nftp_proxy=http://10.9.9.9:21\n",
        "etc/profile.d/p.sh": "export https_proxy=http://proxy.example:8443\n"})
    found = check_root(root, capsys, "--policy", str(tmp_path / "a5.yml"))["NS05-PROXY-001"]
    assert found["status"] == "fail"
    assert [p["value"] for p in found["evidence"]["not_approved"]] == ["http://proxy.example:8443"]


def test_unreadable_firewall_config_is_an_error_not_a_pass_or_fail(tmp_path, capsys):
    found = result(tmp_path, capsys, "NS05-FW-001", {
        **NO_NFT, "etc/firewalld/firewalld.conf": "DefaultZone=work\n",
        "etc/firewalld/zones/work.xml": "<zone target='DROP'>",  # truncated XML
        "etc/systemd/system/multi-user.target.wants/firewalld.service": ""})
    assert found["status"] == "error"
    assert "work.xml: not valid XML" in found["evidence"]["error"]


def test_one_readable_protecting_firewall_is_enough(tmp_path, capsys):
    found = result(tmp_path, capsys, "NS05-FW-001", {
        "etc/firewalld/firewalld.conf": "DefaultZone=work\n", "etc/firewalld/zones/work.xml": "<zone"})
    assert found["status"] == "pass"
