"""NS26-TERM-001..003 on a real lab host: the agent run over SSH sees what was done there, and
harden_terminals.yml fixes root's PATH (idempotent, --check changes nothing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.playbook_output import recap

PROJECT = Path(__file__).resolve().parents[1]
AGENT = PROJECT / ".venv" / "bin" / "nanbu-secops"
HOST = "h03"


@pytest.fixture(scope="module")
def host(lab):
    """A pristine h03 for this module, pristine again afterwards (tests/test_lab_check.py uses it too)."""
    lab.reset_host(HOST)
    yield lab
    lab.reset_host(HOST)


def control(lab, control_id: str) -> dict[str, Any]:
    done = lab.ssh(HOST, f"{AGENT} check --only {control_id} --format json --lang en", check=False)
    assert done.returncode in (0, 1), done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["control"] == control_id
    assert done.returncode == (1 if result["status"] == "fail" else 0)
    return result


def test_nopasswd_sudo_for_a_person(host):
    lab = host
    assert control(lab, "NS26-TERM-002")["status"] == "pass"
    lab.ssh(HOST, "useradd -m -s /bin/bash dana && printf '# ops\\ndana ALL=(ALL) NOPASSWD: ALL\\n' "
                  "> /etc/sudoers.d/50-dana && chmod 0440 /etc/sudoers.d/50-dana && visudo -cq")
    assert lab.ssh(HOST, "sudo -l -U dana").stdout.count("NOPASSWD") == 1  # sudo itself agrees
    result = control(lab, "NS26-TERM-002")
    assert result["status"] == "fail"
    assert [(r["origin"], r["accounts"]) for r in result["evidence"]["nopasswd_rules"]] == [
        ("/etc/sudoers.d/50-dana:2", ["dana"])]
    lab.ssh(HOST, "rm /etc/sudoers.d/50-dana")
    assert control(lab, "NS26-TERM-002")["status"] == "pass"


def test_world_writable_path_directory_is_fixed_by_the_playbook(host):
    lab = host
    playbook = PROJECT / "playbooks" / "harden_terminals.yml"
    assert control(lab, "NS26-TERM-003")["status"] == "pass"
    lab.ssh(HOST, "chmod 0777 /usr/local/sbin")
    result = control(lab, "NS26-TERM-003")
    assert result["status"] == "fail"
    unsafe = {(u["source"], u["entry"], u["mode"]) for u in result["evidence"]["unsafe"]}
    assert ("sudo secure_path", "/usr/local/sbin", "0777") in unsafe
    assert ("ENV_SUPATH", "/usr/local/sbin", "0777") in unsafe

    preview = lab.ansible_playbook(playbook, "-e", f"target={HOST}", "-e", f"nanbu_agent={AGENT}", "--check", "--diff")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert "/usr/local/sbin" in preview.stdout
    assert lab.ssh(HOST, "stat -c %a /usr/local/sbin").stdout.strip() == "777"  # --check changed nothing

    first = lab.ansible_playbook(playbook, "-e", f"target={HOST}", "-e", f"nanbu_agent={AGENT}")
    assert first.returncode == 0, first.stdout + first.stderr
    assert lab.ssh(HOST, "stat -c %a /usr/local/sbin").stdout.strip() == "775"  # o-w; the group is root's
    assert control(lab, "NS26-TERM-003")["status"] == "pass"
    second = lab.ansible_playbook(playbook, "-e", f"target={HOST}", "-e", f"nanbu_agent={AGENT}")
    assert second.returncode == 0, second.stdout + second.stderr
    assert recap(second)[HOST]["changed"] == 0, second.stdout


def test_environment_path_directory_group_writable(host):
    lab = host
    lab.ssh(HOST, "mkdir -p /opt/tools && chgrp users /opt/tools && chmod 0775 /opt/tools "
                  "&& printf 'PATH=\"/usr/bin:/opt/tools\"\\n' >> /etc/environment")
    result = control(lab, "NS26-TERM-003")
    assert result["status"] == "fail"
    assert [(u["source"], u["entry"], u["problems"]) for u in result["evidence"]["unsafe"]] == [
        ("/etc/environment", "/opt/tools", [f"group-writable by gid {result['evidence']['unsafe'][0]['gid']}"])]
    done = lab.ansible_playbook(PROJECT / "playbooks" / "harden_terminals.yml", "-e", f"target={HOST}", "-e", f"nanbu_agent={AGENT}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert lab.ssh(HOST, "stat -c %a /opt/tools").stdout.strip() == "755"
    assert control(lab, "NS26-TERM-003")["status"] == "pass"


def test_running_remote_control_process(host):
    lab = host
    assert control(lab, "NS26-TERM-001")["status"] == "pass"
    lab.ssh(HOST, "cp /bin/sleep /tmp/x11vnc && (setsid nohup /tmp/x11vnc 600 >/dev/null 2>&1 </dev/null &)")
    pid = int(lab.ssh(HOST, "pgrep -x x11vnc").stdout.split()[0])
    result = control(lab, "NS26-TERM-001")
    assert result["status"] == "fail"
    assert result["evidence"]["running"] == "checked"
    (found,) = result["evidence"]["found"]
    assert found["product"] == "VNC server" and found["installed"] == []
    assert [(p["pid"], p["exe"]) for p in found["running"]] == [(pid, "/tmp/x11vnc")]
    lab.ssh(HOST, f"kill {pid} && while kill -0 {pid} 2>/dev/null; do sleep 0.1; done")
    assert control(lab, "NS26-TERM-001")["status"] == "pass"


def test_installed_remote_control_package(host):
    lab = host
    lab.ssh(HOST, "printf '\\nPackage: rustdesk\\nStatus: install ok installed\\nVersion: 1.3.2\\n' "
                  ">> /var/lib/dpkg/status")
    assert lab.ssh(HOST, "dpkg-query -W -f '${Status}' rustdesk").stdout == "install ok installed"
    result = control(lab, "NS26-TERM-001")
    assert result["status"] == "fail"
    (found,) = result["evidence"]["found"]
    assert found["product"] == "RustDesk" and found["running"] == []
    assert [(i["package"], i["version"]) for i in found["installed"]] == [("rustdesk", "1.3.2")]
    assert found["installed"][0]["origin"].startswith("/var/lib/dpkg/status:")
