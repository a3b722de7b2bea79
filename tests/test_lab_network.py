"""Article 5 on a real lab host: the agent, run over SSH inside h01, against what is really there.

A lab host is its own network namespace, so nft rules, routes and listeners made here never touch
this machine. No traffic leaves the lab: the host has no default route except the one the gateway
test adds for a moment towards an unused lab address, and chronyd runs only with ``-x`` (no clock
control) and, as asserted before it starts, with the lab bridge as its only server.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[1]
AGENT = PROJECT / ".venv" / "bin" / "nanbu-secops"
PLAYBOOK = PROJECT / "playbooks" / "harden_terminals.yml"
HOST = "h01"
LISTEN_PORT = 8099


@pytest.fixture(scope="module")
def net_lab(lab):
    """h01 fresh from a copy of this machine, and fresh again afterwards."""
    lab.reset_host(HOST)
    yield lab
    lab.reset_host(HOST)


def agent(lab, control: str, env: str = "") -> dict[str, Any]:
    """One control's result as the agent reports it inside the host."""
    done = lab.ssh(HOST, f"{env} {AGENT} check --only {control} --format json --lang en", check=False)
    assert done.returncode in (0, 1), done.stderr
    [result] = json.loads(done.stdout)["results"]
    return result


def playbook(lab, *args: str) -> subprocess.CompletedProcess[str]:
    done = lab.ansible_playbook(PLAYBOOK, "-e", f"target={HOST}", "-e", f"nanbu_agent={AGENT}", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def changed(done: subprocess.CompletedProcess[str]) -> int:
    return int(re.search(rf"^{HOST}\s*:.*\bchanged=(\d+)", done.stdout, re.M).group(1))


def fresh_ssh(lab) -> subprocess.CompletedProcess[str]:
    """A new SSH connection (not the shared control master), as the next operator would open."""
    return subprocess.run(["ssh", "-F", str(lab.ssh_config), "-o", "ControlMaster=no", "-o", "ControlPath=none",
                           HOST, "echo ok"], capture_output=True, text=True, timeout=30)


def start_listener(lab) -> int:
    """A web server on all addresses of the host, as an operator might leave one; returns its pid."""
    # setsid -f forks off a new session holding none of the SSH channel, so ssh returns at once
    lab.ssh(HOST, f"setsid -f python3 -m http.server -d /tmp {LISTEN_PORT} >/dev/null 2>&1 </dev/null")
    for _ in range(100):
        pids = lab.ssh(HOST, f"pgrep -f 'http.server -d /tmp {LISTEN_PORT}'", check=False).stdout.split()
        listening = lab.ssh(HOST, f"ss -Htln 'sport = :{LISTEN_PORT}'", check=False).stdout.strip()
        if pids and listening:
            return int(pids[0])
        time.sleep(0.1)
    raise AssertionError("the listener did not start")


def reachable(lab, port: int) -> bool:
    """Can this machine open a TCP connection to the host's port (through its firewall)?"""
    try:
        socket.create_connection((lab.hosts[HOST].ipv4, port), timeout=2).close()
    except OSError:
        return False
    return True


def test_listening_port_outside_the_allow_list(net_lab):
    lab = net_lab
    assert agent(lab, "NS05-PORT-001")["status"] == "pass"  # only sshd (22/tcp) listens
    pid = start_listener(lab)
    found = agent(lab, "NS05-PORT-001")
    assert found["status"] == "fail"
    assert {(s["port"], s["process"], s["pid"], s["user"]) for s in found["evidence"]["not_allowed"]} == {
        (LISTEN_PORT, "python3", pid, "root")}
    lab.ssh(HOST, f"kill {pid}")
    for _ in range(50):
        if not lab.ssh(HOST, f"ss -Htln 'sport = :{LISTEN_PORT}'").stdout.strip():
            break
        time.sleep(0.1)
    assert agent(lab, "NS05-PORT-001")["status"] == "pass"


def test_firewall_playbook_denies_by_default_and_keeps_ssh(net_lab):
    lab = net_lab
    host = lab.hosts[HOST]
    found = agent(lab, "NS05-FW-001")
    assert found["status"] == "fail"
    assert found["evidence"]["problem"] == "no firewall is active"
    pid = start_listener(lab)
    assert reachable(lab, LISTEN_PORT)

    # check mode: reports what it would do, changes nothing on the host
    preview = playbook(lab, "-e", "nanbu_harden_firewall=true", "--check", "--diff")
    assert "policy drop" in preview.stdout  # the diff of /etc/nftables.conf
    assert not (host.upper / "etc" / "nftables.conf").exists()
    assert lab.ssh(HOST, "nft list ruleset").stdout.strip() == ""

    first = playbook(lab, "-e", "nanbu_harden_firewall=true")
    assert changed(first) >= 2  # the file written and the ruleset loaded
    found = agent(lab, "NS05-FW-001")
    assert found["status"] == "pass", found
    assert found["evidence"]["protecting"] == "nftables"
    assert found["evidence"]["mode"] == "live: rules loaded in the kernel"

    # SSH still works on a new connection; the listener is now behind the firewall
    assert fresh_ssh(lab).stdout.strip() == "ok"
    assert not reachable(lab, LISTEN_PORT)
    assert lab.ssh(HOST, "nft -c -f /etc/nftables.conf && echo valid").stdout.strip() == "valid"

    again = playbook(lab, "-e", "nanbu_harden_firewall=true")
    assert changed(again) == 0, again.stdout
    lab.ssh(HOST, f"kill {pid}")


def test_firewall_is_left_alone_unless_opted_in(net_lab):
    lab = net_lab
    lab.ssh(HOST, "nft flush ruleset")
    playbook(lab)  # without nanbu_harden_firewall=true: the (unloaded) ruleset is not loaded
    assert lab.ssh(HOST, "nft list ruleset").stdout.strip() == ""
    assert agent(lab, "NS05-FW-001")["status"] == "fail"


def test_time_sync_configured_by_playbook_and_running(net_lab):
    lab = net_lab
    found = agent(lab, "NS05-TIME-001")
    assert found["status"] == "fail"  # chrony configured (copy of this machine) but not running
    chrony = next(d for d in found["evidence"]["daemons"] if d["daemon"] == "chrony")
    assert chrony["running"] == "no"

    servers = json.dumps({"nanbu_ntp_servers": [lab.bridge_ipv4]})
    playbook(lab, "-e", servers)
    again = playbook(lab, "-e", servers)
    assert changed(again) == 0, again.stdout

    chrony = next(d for d in agent(lab, "NS05-TIME-001")["evidence"]["daemons"] if d["daemon"] == "chrony")
    # chronyd may only run against lab addresses: the playbook left the bridge as the only source
    assert [s["server"] for s in chrony["servers"]] == [lab.bridge_ipv4]
    assert ipaddress.ip_address(lab.bridge_ipv4) in ipaddress.ip_network(lab.ipv4_net)

    lab.ssh(HOST, "chronyd -x -f /etc/chrony/chrony.conf")  # -x: never touches the clock
    pid = int(lab.ssh(HOST, "pgrep -x chronyd").stdout.split()[0])
    found = agent(lab, "NS05-TIME-001")
    assert found["status"] == "pass", found
    assert found["evidence"]["synchronised_by"] == "chrony"
    chrony = next(d for d in found["evidence"]["daemons"] if d["daemon"] == "chrony")
    assert chrony["running"] == f"yes (pid {pid})"
    lab.ssh(HOST, f"kill {pid}")


def test_resolvers(net_lab):
    lab = net_lab
    lab.ssh(HOST, "printf '# unit DNS\\nnameserver 10.20.0.53\\nnameserver 8.8.8.8\\n' > /etc/resolv.conf")
    found = agent(lab, "NS05-DNS-001")
    assert found["status"] == "fail"
    assert found["evidence"]["not_approved"] == [{"address": "8.8.8.8", "origin": "/etc/resolv.conf:3"}]
    lab.ssh(HOST, "sed -i '/8.8.8.8/d' /etc/resolv.conf")
    assert agent(lab, "NS05-DNS-001")["status"] == "pass"


def test_default_gateway(net_lab):
    lab = net_lab
    found = agent(lab, "NS05-GW-001")
    assert (found["status"], found["evidence"]["default_gateways"]) == ("pass", [])  # the lab has no default route
    unused = str(ipaddress.ip_network(lab.ipv4_net)[99])  # no lab host has it: nothing is forwarded
    lab.ssh(HOST, f"ip route add default via {unused} dev eth0")
    try:
        found = agent(lab, "NS05-GW-001")
    finally:
        lab.ssh(HOST, "ip route del default")
    assert found["status"] == "fail"
    assert found["evidence"]["not_approved"] == [{"gateway": unused, "interface": "eth0", "source": "/proc/net/route"}]
    assert agent(lab, "NS05-GW-001")["status"] == "pass"


def test_proxies_in_files_and_in_the_agents_environment(net_lab):
    lab = net_lab
    secret = "S3cret-Proxy-Pw"
    lab.ssh(HOST, f"echo 'Acquire::http::Proxy \"http://ops:{secret}@10.9.9.9:3142\";' > /etc/apt/apt.conf.d/95proxy")
    done = lab.ssh(HOST, f"{AGENT} check --only NS05-PROXY-001 --format json", check=False)
    assert secret not in done.stdout + done.stderr
    [found] = json.loads(done.stdout)["results"]
    assert found["status"] == "fail"
    assert found["evidence"]["not_approved"] == [{"setting": "Acquire::http::Proxy", "value": "http://***@10.9.9.9:3142",
                                                  "origin": "/etc/apt/apt.conf.d/95proxy:1"}]
    lab.ssh(HOST, "rm /etc/apt/apt.conf.d/95proxy")
    assert agent(lab, "NS05-PROXY-001")["status"] == "pass"

    done = lab.ssh(HOST, f"https_proxy=http://ops:{secret}@10.9.9.9:3128 {AGENT} check --only NS05-PROXY-001 "
                         "--format json", check=False)
    assert secret not in done.stdout + done.stderr
    [found] = json.loads(done.stdout)["results"]
    assert found["status"] == "fail"
    [setting] = found["evidence"]["not_approved"]
    assert (setting["setting"], setting["value"]) == ("https_proxy", "http://***@10.9.9.9:3128")
    assert setting["origin"].startswith("environment of the agent (pid ")
