"""``nanbu-secops check`` run over SSH on a real lab host agrees with testinfra's view of that host.

The lab host is an overlay copy of this machine with its own sshd as PID 1, so the agent sees a
running sshd there and reads its effective settings through ``sshd -T``, as on a real terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[1]
AGENT = PROJECT / ".venv" / "bin" / "nanbu-secops"
HOST = "h03"
AS_OF = dt.date(2026, 11, 28)
HASH = "$6$nanbu$V9mZ3xq7yQ3mQ7bKfM7u2k0wz0bXQ6m5nVb3rC1yXc8X2g1m7QyqH1R1u3m8o2x0Jp1m3r4t5y6u7i8o9p0a1"


@pytest.fixture(scope="module")
def badly_configured(lab):
    """h03 with a long PASS_MAX_DAYS, a stale password, a second UID 0 and root password login over SSH."""
    lab.reset_host(HOST)
    stale = (AS_OF - dt.timedelta(days=120)).isoformat()
    lab.ssh(HOST, " && ".join([
        "useradd -m -s /bin/bash alice",
        f"usermod -p {shlex.quote(HASH)} alice",
        f"chage -d {stale} -M 99999 alice",
        "useradd -o -u 0 -g 0 -M -s /bin/bash toor",
        "sed -i 's/^PASS_MAX_DAYS.*/PASS_MAX_DAYS\t180/' /etc/login.defs",
        "printf 'PermitRootLogin yes\\nPasswordAuthentication yes\\nMaxAuthTries 8\\n' > /etc/ssh/sshd_config.d/10-bad.conf",
    ]))
    yield lab
    lab.reset_host(HOST)


def agent_check(lab, *args: str) -> tuple[int, dict[str, Any]]:
    done = lab.ssh(HOST, f"{AGENT} check --format json --as-of {AS_OF} {' '.join(args)}", check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def by_control(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["control"]: r for r in report["results"]}


def test_agent_over_ssh_agrees_with_testinfra(badly_configured):
    lab = badly_configured
    code, report = agent_check(lab)
    found = by_control(report)
    host = lab.testinfra(HOST)

    assert code == 1
    assert report["host"] == host.check_output("hostname") == HOST

    # login.defs: the value the agent judged is the one testinfra reads in the file
    last = re.findall(r"^PASS_MAX_DAYS\s+(\d+)", host.file("/etc/login.defs").content_string, re.M)[-1]
    assert found["NS26-PASS-001"]["status"] == "fail"
    assert found["NS26-PASS-001"]["evidence"]["value"] == last == "180"

    # shadow: alice's password age as testinfra's chage -l shows it
    changed = host.check_output("chage -l alice | sed -n 's/^Last password change[[:space:]]*: //p'")
    age = (AS_OF - dt.datetime.strptime(changed, "%b %d, %Y").date()).days
    overdue = found["NS26-PASS-004"]["evidence"]["overdue"]
    assert found["NS26-PASS-004"]["status"] == "fail"
    assert overdue == [{"account": "alice", "last_change": (AS_OF - dt.timedelta(days=120)).isoformat(),
                        "age_days": age}]
    assert host.user("alice").password == HASH

    # UID 0: testinfra lists the same extra superuser
    uid0 = sorted(u for u in host.user().get_all_users if host.user(u).uid == 0)
    assert uid0 == ["root", "toor"]
    assert [a["account"] for a in found["NS26-ACCT-001"]["evidence"]["uid0_accounts"]] == ["toor"]

    # sshd: read from the running daemon with sshd -T, which testinfra runs the same way
    sshd_t = host.check_output("sshd -T -o HostKey=/etc/ssh/lab_host_ed25519_key | grep -E "
                               "'^(permitrootlogin|maxauthtries|passwordauthentication) '")
    effective = dict(line.split(" ", 1) for line in sshd_t.splitlines())
    root_login = found["NS26-SSH-001"]
    assert root_login["status"] == "fail"
    assert root_login["evidence"]["source"] == "sshd -T"
    assert root_login["evidence"]["permitrootlogin"]["value"] == effective["permitrootlogin"] == "yes"
    assert found["NS26-SSH-002"]["evidence"]["value"] == effective["maxauthtries"] == "8"

    # the real machine was not touched by any of this
    assert "toor" not in Path("/etc/passwd").read_text()


def test_playbook_fixes_what_it_owns_and_the_agent_sees_it(badly_configured):
    """harden_passwords.yml fixes the ageing settings; the stale password stays a finding."""
    lab = badly_configured
    done = lab.ansible_playbook(PROJECT / "playbooks" / "harden_passwords.yml", "-e", f"target={HOST}")
    assert done.returncode == 0, done.stdout + done.stderr
    _, report = agent_check(lab)
    found = by_control(report)
    assert {c: found[c]["status"] for c in ("NS26-PASS-001", "NS26-PASS-002", "NS26-PASS-003")} == {
        "NS26-PASS-001": "pass", "NS26-PASS-002": "pass", "NS26-PASS-003": "pass"}
    assert found["NS26-PASS-004"]["status"] == "fail"  # ageing set, but alice still must change her password
    assert lab.testinfra(HOST).user("alice").password_max_days == 90
