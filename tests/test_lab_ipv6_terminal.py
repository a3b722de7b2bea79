"""Article 9(2) on a real lab host: the agent, run over SSH inside h02, against what is really there.

A lab host has IPv4, a unique local address of the lab's prefix (fd6e:…) and a link-local one,
no IPv6 default route and no listener but sshd; each test changes one thing inside the host
(an address, a route, a name server, a listener), sees the result flip, and undoes it. The host
is its own network namespace: nothing made here touches this machine, and no traffic leaves the
lab. The global address added is a documentation one (2001:db8::/32), the default routes point
at a lab address no host has, and the only name server asked is a one-name server started on
the host itself.
"""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[1]
AGENT = PROJECT / ".venv" / "bin" / "nanbu-secops"
POLICY = PROJECT / "policies" / "article9.yml"
HOST = "h02"
HOST_POLICY = "/tmp/nanbu-a09.yml"  # the host's /tmp is its own tmpfs
GLOBAL = "2001:db8:6e62::12"
SERVICE_PORT = 8097
PROBE_NAME = "portal.nanbu.test"

# A one-name DNS server: AAAA for NAME, an empty answer (NODATA) for any other question.
DNS_SERVER = r'''
import socket, struct, sys
address, port, name, answer = sys.argv[1], int(sys.argv[2]), sys.argv[3].lower().rstrip("."), sys.argv[4]
server = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM)
server.bind((address, port))
while True:
    data, peer = server.recvfrom(512)
    end, labels = 12, []
    while data[end]:
        labels.append(data[end + 1:end + 1 + data[end]].decode("ascii", "replace"))
        end += 1 + data[end]
    qtype = struct.unpack("!H", data[end + 1:end + 3])[0]
    record = b""
    if ".".join(labels).lower() == name and qtype == 28:
        record = b"\xc0\x0c" + struct.pack("!HHIH", 28, 1, 60, 16) + socket.inet_pton(socket.AF_INET6, answer)
    header = struct.pack("!HHHHHH", struct.unpack("!H", data[:2])[0], 0x8180, 1, 1 if record else 0, 0, 0)
    server.sendto(header + data[12:end + 5] + record, peer)
'''


@pytest.fixture(scope="module")
def v6_lab(lab):
    """h02 fresh from a copy of this machine, and fresh again afterwards."""
    lab.reset_host(HOST)
    yield lab
    lab.reset_host(HOST)


def use_policy(lab, **variables: str) -> None:
    """The shipped article9.yml with variables replaced (``name="yaml value"``), into the host."""
    text = POLICY.read_text(encoding="utf-8")
    for name, value in variables.items():
        start = text.index(f"  {name}: ")
        text = text[:start] + f"  {name}: {value}" + text[text.index("\n", start):]
    lab.ssh(HOST, f"cat > {HOST_POLICY}", input=text)


def agent(lab, control: str) -> dict[str, Any]:
    """One control's result as the agent reports it inside the host, with the host's policy file."""
    done = lab.ssh(HOST, f"{AGENT} check --policy {HOST_POLICY} --only {control} --format json --lang en", check=False)
    assert done.returncode in (0, 1), done.stderr
    [result] = json.loads(done.stdout)["results"]
    assert done.returncode == (0 if result["status"] in ("pass", "skip") else 1)
    return result


def unused_lab_address(lab) -> str:
    """An address of the lab's IPv6 prefix that no host has (hosts ::11.., the bridge ::1, the IPv6
    tests' sites ::99 and ::100..): nothing is ever forwarded to it."""
    return str(ipaddress.ip_network(lab.ipv6_net)[0x6E09])


def wait_port(lab, port: int, proto: str, listening: bool) -> None:
    for _ in range(100):
        if bool(lab.ssh(HOST, f"ss -Hn{proto}l 'sport = :{port}'").stdout.strip()) == listening:
            return
        time.sleep(0.1)
    raise AssertionError(f"port {port}/{proto} {'never opened' if listening else 'still open'}")


def start(lab, command: str, port: int, proto: str = "t") -> int:
    """Start ``command`` (it listens on ``port``) in a session of its own; returns its pid."""
    lab.ssh(HOST, f"setsid -f {command} >/dev/null 2>&1 </dev/null")
    wait_port(lab, port, proto, True)
    users = lab.ssh(HOST, f"ss -Hnp{proto}l 'sport = :{port}'").stdout
    return int(users.split("pid=", 1)[1].split(",", 1)[0])


def stop(lab, pid: int, port: int, proto: str = "t") -> None:
    lab.ssh(HOST, f"kill {pid}")
    wait_port(lab, port, proto, False)


@pytest.fixture()
def shipped(v6_lab):
    use_policy(v6_lab)
    return v6_lab


def test_ula_only_host_has_no_global_address(shipped):
    lab = shipped
    found = agent(lab, "NS09-IPV6-001")
    assert found["status"] == "fail"
    host_ula = lab.hosts[HOST].ipv6
    assert {(a["address"], a["kind"]) for a in found["evidence"]["addresses"]} >= {(f"{host_ula}/64", "ula")}
    # (the IPv6 tests' session fixture may have added site addresses of the lab's ULA prefix too)
    assert {a["kind"] for a in found["evidence"]["addresses"]} == {"ula", "link-local"}
    assert "ipv6_accept_ula" in found["evidence"]["problem"]

    use_policy(lab, ipv6_accept_ula="true")  # a unit whose network is IPv6 inside only
    found = agent(lab, "NS09-IPV6-001")
    assert found["status"] == "pass"
    assert f"{host_ula} (eth0)" in found["evidence"]["ready"]


def test_global_address_flips_the_result(shipped):
    lab = shipped
    lab.ssh(HOST, f"ip -6 addr add {GLOBAL}/64 dev eth0 nodad")
    try:
        found = agent(lab, "NS09-IPV6-001")
    finally:
        lab.ssh(HOST, f"ip -6 addr del {GLOBAL}/64 dev eth0")
    assert found["status"] == "pass", found
    assert found["evidence"]["ready"] == [f"{GLOBAL} (eth0)"]
    assert agent(lab, "NS09-IPV6-001")["status"] == "fail"


def test_default_route(shipped):
    lab = shipped
    found = agent(lab, "NS09-IPV6-002")
    assert (found["status"], found["evidence"]["default_routes"]) == ("fail", [])  # the lab has none
    unused = unused_lab_address(lab)
    lab.ssh(HOST, "ip -6 route add unreachable default metric 4000")  # a reject route is no way out
    try:
        assert agent(lab, "NS09-IPV6-002")["status"] == "fail"
        lab.ssh(HOST, f"ip -6 route add default via {unused} dev eth0 metric 1024")
        found = agent(lab, "NS09-IPV6-002")
        lab.ssh(HOST, f"ip -6 route del default via {unused} dev eth0 metric 1024")
        lab.ssh(HOST, "ip -6 route add default dev eth0 metric 2000")  # out of the device, no next hop
        out_of_device = agent(lab, "NS09-IPV6-002")
    finally:
        lab.ssh(HOST, "while ip -6 route del default 2>/dev/null; do :; done; "
                      "ip -6 route del unreachable default metric 4000 2>/dev/null; true")
    assert found["status"] == "pass", found
    assert found["evidence"]["default_routes"] == [
        {"gateway": unused, "interface": "eth0", "metric": 1024, "source": "/proc/net/ipv6_route"}]
    assert out_of_device["status"] == "pass", out_of_device
    assert out_of_device["evidence"]["default_routes"] == [
        {"gateway": "(none: out of the device)", "interface": "eth0", "metric": 2000, "source": "/proc/net/ipv6_route"}]
    assert lab.ssh(HOST, "ip -6 route show default; ip -6 route show table all type unreachable default").stdout == ""
    assert agent(lab, "NS09-IPV6-002")["status"] == "fail"


@pytest.fixture()
def name_server(shipped):
    """The one-name server on the host's IPv4 address, as the only name server; stopped afterwards."""
    lab = shipped
    host = lab.hosts[HOST]
    lab.ssh(HOST, "cat > /tmp/dns.py", input=DNS_SERVER)
    pid = start(lab, f"python3 /tmp/dns.py {host.ipv4} 53 {PROBE_NAME} {unused_lab_address(lab)}", 53, "u")
    lab.ssh(HOST, f"printf '# unit DNS\\nnameserver {host.ipv4}\\noptions timeout:1 attempts:1\\n' > /etc/resolv.conf")
    yield lab, pid
    lab.ssh(HOST, f"kill {pid} 2>/dev/null; true")


def test_resolver_with_an_ipv6_address(name_server):
    lab, _ = name_server
    found = agent(lab, "NS09-IPV6-003")
    assert found["status"] == "fail"
    assert found["evidence"]["resolvers"] == [
        {"address": lab.hosts[HOST].ipv4, "origin": "/etc/resolv.conf:2", "family": "ipv4"}]
    lab.ssh(HOST, f"echo 'nameserver {lab.bridge_ipv6}' >> /etc/resolv.conf")
    found = agent(lab, "NS09-IPV6-003")
    lab.ssh(HOST, "sed -i '/nameserver .*:/d' /etc/resolv.conf")
    assert found["status"] == "pass"
    assert found["evidence"]["ipv6_resolvers"] == [lab.bridge_ipv6]
    assert "probe" not in found["evidence"]  # ipv6_probe_name is empty: nothing was asked


def test_resolver_returning_aaaa(name_server):
    lab, pid = name_server
    use_policy(lab, ipv6_probe_name=PROBE_NAME)
    found = agent(lab, "NS09-IPV6-003")
    assert found["status"] == "pass", found  # an IPv4 name server, but it returns AAAA
    assert found["evidence"]["probe"] == {"name": PROBE_NAME, "aaaa": [unused_lab_address(lab)]}

    use_policy(lab, ipv6_probe_name="no-aaaa.nanbu.test")
    found = agent(lab, "NS09-IPV6-003")
    assert found["status"] == "fail"
    assert found["evidence"]["probe"] == {"name": "no-aaaa.nanbu.test", "aaaa": []}

    stop(lab, pid, 53, "u")  # the name server is gone: the question cannot be settled
    found = agent(lab, "NS09-IPV6-003")
    assert found["status"] == "error"
    assert found["evidence"]["error"].startswith("AAAA lookup of no-aaaa.nanbu.test:")


def test_service_listening_on_ipv4_only(shipped):
    lab = shipped
    use_policy(lab, ipv6_service_ports=f"[{SERVICE_PORT}]")
    found = agent(lab, "NS09-IPV6-004")
    assert found["status"] == "pass"
    assert found["evidence"]["ports"] == [{"port": f"{SERVICE_PORT}/tcp", "listeners": [],
                                           "result": "not listening: nothing to serve"}]

    pid = start(lab, f"python3 -m http.server --bind 0.0.0.0 -d /tmp {SERVICE_PORT}", SERVICE_PORT)
    try:
        found = agent(lab, "NS09-IPV6-004")
    finally:
        stop(lab, pid, SERVICE_PORT)
    assert found["status"] == "fail"
    assert found["evidence"]["ipv4_only"] == [f"{SERVICE_PORT}/tcp"]
    assert found["evidence"]["ports"] == [{"port": f"{SERVICE_PORT}/tcp", "result": "ipv4 only", "listeners": [
        {"address": "0.0.0.0", "process": "python3", "pid": pid, "user": "root"}]}]

    pid = start(lab, f"python3 -m http.server --bind :: -d /tmp {SERVICE_PORT}", SERVICE_PORT)
    try:
        found = agent(lab, "NS09-IPV6-004")
    finally:
        stop(lab, pid, SERVICE_PORT)
    assert found["status"] == "pass", found
    assert found["evidence"]["ports"] == [{"port": f"{SERVICE_PORT}/tcp", "result": "ipv6", "listeners": [
        {"address": "::", "process": "python3", "pid": pid, "user": "root"}]}]


def test_whole_article_through_the_shipped_policies(shipped):
    """`check --only 9(2)` with every shipped policy file, as the playbook runs it."""
    lab = shipped
    lab.ssh(HOST, "printf 'nameserver 10.20.0.53\\n' > /etc/resolv.conf")  # not this machine's (copied in)
    done = lab.ssh(HOST, f"{AGENT} check --policy {PROJECT / 'policies'} --only '9(2)' --format json", check=False)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert [(r["control"], r["status"]) for r in report["results"]] == [
        ("NS09-IPV6-001", "fail"), ("NS09-IPV6-002", "fail"), ("NS09-IPV6-003", "fail"), ("NS09-IPV6-004", "pass")]
    assert report["results"][0]["title"].startswith("终端具备全局 IPv6 地址")
