"""A badly configured sshd on a real lab host: the agent sees NS26-SSH-001..005 fail, ``ssh-probe``
sees the weak algorithms on the wire, playbooks/harden_terminals.yml fixes all of it (a second run
changes nothing), and then the agent and the probe agree that it is fixed.

A lab host's sshd is PID 1 of its namespace and reads its configuration when it starts, so the bad
drop-in is loaded by restarting the host on its upper dir (``stop_host``/``start_host``); the playbook
itself reloads sshd with SIGHUP, as it does wherever systemd is not PID 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nanbu_secops.cli import main
from tests.playbook_output import recap

PROJECT = Path(__file__).resolve().parents[1]
AGENT = PROJECT / ".venv" / "bin" / "nanbu-secops"
PLAYBOOK = PROJECT / "playbooks" / "harden_terminals.yml"
HOST = "h02"
CONTROLS = ("NS26-SSH-001", "NS26-SSH-002", "NS26-SSH-003", "NS26-SSH-004", "NS26-SSH-005")
BAD = """\
PermitRootLogin yes
PasswordAuthentication yes
MaxAuthTries 8
ClientAliveInterval 0
Ciphers +aes128-cbc,3des-cbc
MACs +hmac-md5
KexAlgorithms +diffie-hellman-group14-sha1
HostKeyAlgorithms +ssh-rsa
"""


def agent(lab) -> dict[str, dict[str, Any]]:
    done = lab.ssh(HOST, f"{AGENT} check --format json --only {','.join(CONTROLS)}", check=False)
    assert done.returncode in (0, 1), done.stderr
    return {r["control"]: r for r in json.loads(done.stdout)["results"]}


def probe(capsys: pytest.CaptureFixture[str], address: str) -> tuple[int, dict[str, Any]]:
    code = main(["ssh-probe", "--format", "json", "--timeout", "10", address])
    return code, json.loads(capsys.readouterr().out)["hosts"][0]


def test_harden_terminals_fixes_sshd_and_the_agent_and_probe_see_it(lab, capsys):
    lab.reset_host(HOST)
    try:
        host = lab.hosts[HOST]
        lab.ssh(HOST, "cat > /etc/ssh/sshd_config.d/10-bad.conf", input=BAD)
        lab.stop_host(HOST)
        lab.start_host(HOST)  # sshd (PID 1) starts again with the bad drop-in

        before = agent(lab)
        assert {c: before[c]["status"] for c in CONTROLS} == dict.fromkeys(CONTROLS, "fail")
        assert before["NS26-SSH-005"]["evidence"]["source"] == "sshd -T"
        weak = before["NS26-SSH-005"]["evidence"]["weak"]
        assert {"aes128-cbc", "3des-cbc"} <= set(weak["ciphers"]["algorithms"])
        assert "hmac-md5" in weak["macs"]["algorithms"] and "ssh-rsa" in weak["hostkeyalgorithms"]["algorithms"]
        code, wire = probe(capsys, f"[{host.ipv6}]:22")
        assert code == 1 and "3des-cbc" in wire["weak"]["ciphers"]
        assert wire["weak"]["kex"] == ["diffie-hellman-group14-sha1"]

        # --check --diff shows the drop-in and changes nothing
        dry = lab.ansible_playbook(PLAYBOOK, "-e", f"target={HOST}", "-e", f"nanbu_agent={AGENT}", "--check", "--diff")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "00-nanbu-secops.conf" in dry.stdout and "+PasswordAuthentication no" in dry.stdout
        assert lab.ssh(HOST, "test -e /etc/ssh/sshd_config.d/00-nanbu-secops.conf", check=False).returncode == 1

        done = lab.ansible_playbook(PLAYBOOK, "-e", f"target={HOST}", "-e", f"nanbu_agent={AGENT}")
        assert done.returncode == 0, done.stdout + done.stderr
        assert recap(done)[HOST]["changed"] >= 1 and recap(done)[HOST]["failed"] == 0

        after = agent(lab)
        assert {c: after[c]["status"] for c in CONTROLS} == dict.fromkeys(CONTROLS, "pass"), after
        assert after["NS26-SSH-004"]["evidence"]["timeout_seconds"] == 900
        # sshd -T of OpenSSH 9.2 prints prohibit-password by its old name
        assert after["NS26-SSH-001"]["evidence"]["permitrootlogin"]["value"] in ("prohibit-password", "without-password")
        code, wire = probe(capsys, host.ipv4)  # the reloaded daemon offers only strong algorithms
        assert code == 0 and wire["weak"] == {} and "aes256-gcm@openssh.com" in wire["algorithms"]["ciphers"]
        assert lab.ssh(HOST, "true").returncode == 0  # key login as root still works

        again = lab.ansible_playbook(PLAYBOOK, "-e", f"target={HOST}", "-e", f"nanbu_agent={AGENT}")
        assert again.returncode == 0, again.stdout + again.stderr
        assert recap(again)[HOST]["changed"] == 0, again.stdout
    finally:
        lab.reset_host(HOST)


def test_a_configuration_sshd_rejects_is_rolled_back(lab):
    """A main config that sshd -t refuses once the drop-in is in place: the drop-in is removed again."""
    lab.reset_host(HOST)
    try:
        # valid alone, but "Include" first then a Match block without criteria makes sshd -t fail
        lab.ssh(HOST, "printf 'Match\\n' >> /etc/ssh/sshd_config")
        done = lab.ansible_playbook(PLAYBOOK, "-e", f"target={HOST}", "-e", f"nanbu_agent={AGENT}")
        assert done.returncode != 0
        assert "rolled back" in done.stdout
        assert lab.ssh(HOST, "test -e /etc/ssh/sshd_config.d/00-nanbu-secops.conf", check=False).returncode == 1
        assert lab.ssh(HOST, "true").returncode == 0
    finally:
        lab.reset_host(HOST)
