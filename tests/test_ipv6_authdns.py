"""``ipv6 check``'s DNS side against a real authoritative server: NSD serves the zones below from
its own zone files, and a second real unbound, recursive, reaches them through stub zones, so
every answer comes from NSD through real recursion (CNAME chains across zones included), as an
operator's resolver would get it. Started by this module, inside a lab host's namespace (NSD)
and on the lab bridge (unbound, port 5353), and always stopped and removed again.

Zones (NSD, on a lab address of its own, IPv4 and IPv6; "good" is the lab site good.nanbu.test,
served over plain HTTP here):

- ``cdnchain.test``: NS ns1.cdnchain.test (A and AAAA: NSD). ``www6`` → CNAME ``edge6`` → CNAME
  ``www.cdn6.test`` (A and AAAA of good); ``www4`` → ``edge4`` → ``www.cdn4.test`` (A only).
- ``cdn6.test``, ``cdn4.test``: the "CDN" zones, NS ns1.cdnchain.test.
- ``nsv4.test``: NS ns1.cdnchain.test and ns2.nsv4.test, which has no AAAA.
- ``lame.test``: NS ns1.cdnchain.test, dead.lame.test (an AAAA where nothing answers) and
  lame.lame.test (an AAAA where a DNS server answers, the lab's first unbound, but it does not
  serve the zone: NXDOMAIN, from its built-in local zone test.).

Verdicts, worked out by hand: www6.cdnchain.test ready; www4.cdnchain.test not-ready (no AAAA at
the end of the chain); www.nsv4.test partial (ns2 has no IPv6 address); www.lame.test partial
(dead and lame do not answer over IPv6).
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nanbu_secops.ipv6 import assess, dns
from tests.ipv6lab import World, _die_with_parent, _ip, spawn_web, stop_process

NSD, UNBOUND = "/usr/sbin/nsd", "/usr/sbin/unbound"
NSD_HOST_NUMBER = 97  # .97 and ::97 on the lab networks: below the IPv6 world's (.99, .100 and up)
RECURSOR_PORT = 5353  # the second unbound, on the bridge beside the world's (port 53)
TTL = 300


@dataclass
class Auth:
    world: World
    resolver: str  # "--resolver" value of the recursive unbound: [bridge IPv6]:5353
    nsd4: str
    nsd6: str
    good4: str
    good6: str


def _zones(nsd4: str, nsd6: str, good4: str, good6: str, dead4: str, dead6: str, lame4: str,
           lame6: str) -> dict[str, list[str]]:
    def head(zone: str, *ns: str) -> list[str]:
        return [f"@ {TTL} IN SOA ns1.cdnchain.test. hostmaster.{zone}. 2026120501 3600 600 86400 {TTL}",
                *(f"@ {TTL} IN NS {name}." for name in ns)]

    return {
        "cdnchain.test": [*head("cdnchain.test", "ns1.cdnchain.test"), f"ns1 IN A {nsd4}", f"ns1 IN AAAA {nsd6}",
                          "www6 IN CNAME edge6", "edge6 IN CNAME www.cdn6.test.",
                          "www4 IN CNAME edge4", "edge4 IN CNAME www.cdn4.test."],
        "cdn6.test": [*head("cdn6.test", "ns1.cdnchain.test"), f"www IN A {good4}", f"www IN AAAA {good6}"],
        "cdn4.test": [*head("cdn4.test", "ns1.cdnchain.test"), f"www IN A {good4}"],
        "nsv4.test": [*head("nsv4.test", "ns1.cdnchain.test", "ns2.nsv4.test"), f"ns2 IN A {nsd4}",
                      f"www IN A {good4}", f"www IN AAAA {good6}"],
        "lame.test": [*head("lame.test", "ns1.cdnchain.test", "dead.lame.test", "lame.lame.test"),
                      f"dead IN A {dead4}", f"dead IN AAAA {dead6}", f"lame IN A {lame4}", f"lame IN AAAA {lame6}",
                      f"www IN A {good4}", f"www IN AAAA {good6}"],
    }


def _nsd_conf(work: Path, nsd4: str, nsd6: str, zones: list[str]) -> str:
    lines = ["server:", f"  ip-address: {nsd4}", f"  ip-address: {nsd6}", "  port: 53", "  server-count: 1",
             f'  zonesdir: "{work}"', f'  pidfile: "{work}/nsd.pid"', f'  logfile: "{work}/nsd.log"',
             '  database: ""', f'  zonelistfile: "{work}/zone.list"', f'  xfrdfile: "{work}/xfrd.state"',
             f'  xfrdir: "{work}"', '  username: ""', '  chroot: ""', "  verbosity: 1", "  hide-version: yes",
             "remote-control:", "  control-enable: no"]
    for zone in zones:
        lines += ["zone:", f"  name: {zone}", f"  zonefile: {zone}.zone"]
    return "\n".join(lines) + "\n"


def _unbound_conf(work: Path, world: World, nsd4: str, nsd6: str, zones: list[str]) -> str:
    lab = world.lab
    lines = ["server:", "  verbosity: 1", f'  directory: "{work}"', '  chroot: ""', '  username: ""',
             "  do-daemonize: no", "  use-syslog: no", '  logfile: ""', f'  pidfile: "{work}/unbound.pid"',
             "  num-threads: 1", "  interface-automatic: no", f"  interface: {lab.bridge_ipv4}@{RECURSOR_PORT}",
             f"  interface: {lab.bridge_ipv6}@{RECURSOR_PORT}", "  do-ip4: yes", "  do-ip6: yes",
             '  module-config: "iterator"', "  access-control: 0.0.0.0/0 refuse", "  access-control: ::/0 refuse",
             f"  access-control: {lab.ipv4_net} allow", f"  access-control: {lab.ipv6_net} allow",
             '  local-zone: "test." nodefault',  # unbound answers test. itself unless told not to (RFC 6761)
             '  local-zone: "." refuse']  # only the stub zones below are resolved; nothing leaves
    for zone in zones:
        lines += [f'  local-zone: "{zone}." transparent']
    lines += ["remote-control:", "  control-enable: no"]
    for zone in zones:
        lines += ["stub-zone:", f'  name: "{zone}."', f"  stub-addr: {nsd4}", f"  stub-addr: {nsd6}",
                  "  stub-prime: no"]
    return "\n".join(lines) + "\n"


def _answers(server: str, port: int, name: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15) -> None:
    """Wait until ``server:port`` answers ``name`` SOA, or fail with the log."""
    import dns.message
    import dns.query

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with rc={proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(Exception):
            if dns.query.udp(dns.message.make_query(name, "SOA"), server, port=port, timeout=0.3).answer:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server}:{port} did not answer {name} SOA: {log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def auth(ipv6_lab: World) -> Iterator[Auth]:
    world = ipv6_lab
    v4, v6 = world.ipv4_net, world.ipv6_net
    nsd4, nsd6 = str(v4[NSD_HOST_NUMBER]), str(v6[int(str(NSD_HOST_NUMBER), 16)])
    netns = next(iter(world.lab.hosts.values())).netns
    good = world.sites["good.nanbu.test"]
    assert good.ipv6
    work = Path(tempfile.mkdtemp(prefix="nsauthdns-"))
    added = [f"{nsd4}/{v4.prefixlen}", f"{nsd6}/{v6.prefixlen}"]
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        _ip(netns, [f"addr replace {a} dev eth0" + (" nodad" if ":" in a else "") for a in added])
        zones = _zones(nsd4, nsd6, good.ipv4, good.ipv6, world.unreachable_resolver, world.unreachable_v6,
                       world.lab.bridge_ipv4, world.lab.bridge_ipv6)
        for zone, records in zones.items():
            path = work / f"{zone}.zone"
            path.write_text(f"$ORIGIN {zone}.\n$TTL {TTL}\n" + "\n".join(records) + "\n")
            checked = subprocess.run(["nsd-checkzone", zone, str(path)], capture_output=True, text=True, timeout=30)
            assert checked.returncode == 0, checked.stdout + checked.stderr
        (work / "nsd.conf").write_text(_nsd_conf(work, nsd4, nsd6, list(zones)))
        (work / "unbound.conf").write_text(_unbound_conf(work, world, nsd4, nsd6, list(zones)))
        for command, conf in ((["nsd-checkconf"], "nsd.conf"), (["unbound-checkconf"], "unbound.conf")):
            checked = subprocess.run([*command, str(work / conf)], capture_output=True, text=True, timeout=30)
            assert checked.returncode == 0, checked.stdout + checked.stderr
        for name, cmd in (("nsd", ["ip", "netns", "exec", netns, NSD, "-d", "-c", str(work / "nsd.conf")]),
                          ("unbound", [UNBOUND, "-d", "-c", str(work / "unbound.conf")])):
            log = open(work / f"{name}.out", "wb")  # noqa: SIM115 (the server's output; closed at teardown)
            logs.append(log)
            procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True, preexec_fn=_die_with_parent))
        for address in (nsd4, nsd6):
            _answers(address, 53, "cdnchain.test.", procs[0], work / "nsd.log")
        _answers(world.lab.bridge_ipv4, RECURSOR_PORT, "cdnchain.test.", procs[1], work / "unbound.out")
        web = spawn_web(world, good, "plain", port=80, tls=False)
        try:
            yield Auth(world, f"[{world.lab.bridge_ipv6}]:{RECURSOR_PORT}", nsd4, nsd6, good.ipv4, good.ipv6)
        finally:
            web.stop()
    finally:
        for proc in procs:
            stop_process(proc)
        for log in logs:
            log.close()
        _ip(netns, [f"addr del {a} dev eth0" for a in added], check=False)
        shutil.rmtree(work, ignore_errors=True)


def _check(auth: Auth, target: str) -> dict[str, Any]:
    resolver = dns.Resolver(dns.parse_resolver(auth.resolver), timeout=3.0)
    return assess.assess(target, resolver, assess.Settings(probes=2, depth=0, timeout=5.0))


def test_answers_come_from_nsd_through_recursion(auth: Auth) -> None:
    resolver = dns.Resolver(dns.parse_resolver(auth.resolver), timeout=3.0)
    assert resolver.query("ns1.cdnchain.test", "AAAA").records == [auth.nsd6]
    # the chain crosses from cdnchain.test to cdn6.test: the recursive unbound follows it
    assert resolver.query("www6.cdnchain.test", "AAAA").records == [auth.good6]
    assert resolver.query("www4.cdnchain.test", "A").records == [auth.good4]
    assert resolver.query("www4.cdnchain.test", "AAAA").records == []
    with pytest.raises(dns.NameMissing):
        resolver.query("nothing.cdnchain.test", "A")


def test_cname_chain_to_a_cdn_with_aaaa_is_ready(auth: Auth) -> None:
    result = _check(auth, "http://www6.cdnchain.test/")
    assert (result["verdict"], result["reason"]) == ("ready", None), result
    assert result["dns"]["aaaa"] == [auth.good6] and result["dns"]["zone"] == "cdnchain.test"
    assert [(ns["name"], ns["answers_v6"]) for ns in result["dns"]["ns"]] == [("ns1.cdnchain.test", True)]


def test_cname_chain_to_a_cdn_without_aaaa_is_not_ready(auth: Auth) -> None:
    result = _check(auth, "http://www4.cdnchain.test/")
    assert (result["verdict"], result["reason"]) == ("not-ready", "no AAAA record"), result
    assert (result["dns"]["a"], result["dns"]["aaaa"]) == ([auth.good4], [])
    assert result["v4"]["ok"] is True


def test_name_server_without_aaaa(auth: Auth) -> None:
    result = _check(auth, "http://www.nsv4.test/")
    assert result["verdict"] == "partial", result
    assert result["reason"] == "name server ns2.nsv4.test has no IPv6 address"
    servers = {ns["name"]: ns for ns in result["dns"]["ns"]}
    assert (servers["ns1.cdnchain.test"]["answers_v6"], servers["ns2.nsv4.test"]["answers_v6"]) == (True, None)
    assert servers["ns2.nsv4.test"]["a"] == [auth.nsd4] and servers["ns2.nsv4.test"]["detail"] == "no AAAA record"


def test_unreachable_and_lame_name_servers_over_ipv6(auth: Auth) -> None:
    result = _check(auth, "http://www.lame.test/")
    assert result["verdict"] == "partial", result
    assert result["reason"] == ("name server dead.lame.test does not answer over IPv6; "
                                "name server lame.lame.test does not answer over IPv6")
    servers = {ns["name"]: ns for ns in result["dns"]["ns"]}
    assert servers["ns1.cdnchain.test"]["answers_v6"] is True
    world = auth.world
    assert servers["dead.lame.test"]["detail"] == f"[{world.unreachable_v6}]:53: no answer within 2 s"
    assert servers["lame.lame.test"]["detail"] == f"[{world.lab.bridge_ipv6}]:53: answered NXDOMAIN"
    assert ipaddress.ip_address(servers["lame.lame.test"]["aaaa"][0]) == ipaddress.ip_address(world.lab.bridge_ipv6)
