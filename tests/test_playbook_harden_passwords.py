"""playbooks/harden_passwords.yml against the SSH lab (h01..h03).

h01 and h02 are prepared differently and targeted; h03 is prepared but never targeted.
The expected numbers are read from policies/article26.yml, like the playbook does.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.playbook_output import output, recap

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = ROOT / "playbooks" / "harden_passwords.yml"
POLICY = ROOT / "policies" / "article26.yml"
HOSTS = ("h01", "h02", "h03")
TARGET = "target=h01,h02"

# Throwaway lab passwords; they only exist inside the lab's overlay hosts.
PASSWORDS = {
    "h01": {"alice": "lab-only-Alice-1", "bob": "lab-only-Bob-1", "olddave": "lab-only-Dave-1",
            "ursula": "lab-only-Ursula-1", "svcreport": "lab-only-Svc-1", "gina": "lab-only-Gina-1"},
    "h02": {"hank": "lab-only-Hank-1"},
    "h03": {"ivy": "lab-only-Ivy-1"},
}
SETUP = {
    "h01": [
        # interactive, with a password; no home directory on purpose (must not be created)
        "useradd -M -d /home/alice -s /bin/bash alice",
        "useradd -m -s /bin/sh bob",
        # interactive, password last changed long ago: gets the maximum, must change at next login
        "useradd -m -s /bin/bash olddave",
        # same, but with an inactivity period: the maximum would lock it, so it is withheld
        "useradd -m -s /bin/bash ursula",
        # system account with nologin, and a regular UID with /bin/false: not interactive
        "useradd -r -s /usr/sbin/nologin svcreport",
        "useradd -m -s /bin/false gina",
        # interactive but no usable password (key-only): left alone
        "useradd -m -s /bin/bash carol",
    ],
    "h02": ["useradd -m -s /bin/bash hank"],
    "h03": ["useradd -m -s /bin/bash ivy"],
}
LOGIN_DEFS_EDITS = {
    # a second, later PASS_MAX_DAYS: the last one is the one shadow-utils uses
    "h01": r"printf 'PASS_MAX_DAYS\t365\n' >> /etc/login.defs",
    # the active PASS_WARN_AGE commented out
    "h02": r"sed -i 's/^PASS_WARN_AGE/#PASS_WARN_AGE/' /etc/login.defs",
}


@pytest.fixture(scope="module")
def policy() -> dict:
    return yaml.safe_load(POLICY.read_text(encoding="utf-8"))["variables"]


@dataclass(frozen=True)
class Snapshot:
    login_defs: str
    passwd_sha: str
    shadow_sha: str
    shadow: dict[str, list[str]]  # name -> shadow fields 3..9 (hash left out)
    fixed_sha: str  # sha256 of shadow fields 1,2,3,7,8,9: name, hash, last change, inactive, expire
    homes: str


def snapshot(lab, name: str) -> Snapshot:
    out = lab.ssh(name, "cat /etc/login.defs").stdout
    sums = lab.ssh(name, "sha256sum /etc/passwd /etc/shadow").stdout.split()
    ageing = lab.ssh(name, "cut -d: -f1,3-9 /etc/shadow").stdout
    fixed = lab.ssh(name, "cut -d: -f1,2,3,7,8,9 /etc/shadow | sha256sum").stdout.split()[0]
    homes = lab.ssh(name, "ls -1 /home").stdout
    shadow = {line.split(":")[0]: line.split(":")[1:] for line in ageing.splitlines() if line}
    return Snapshot(out, sums[0], sums[2], shadow, fixed, homes)


def snapshots(lab) -> dict[str, Snapshot]:
    return {name: snapshot(lab, name) for name in HOSTS}


def effective(login_defs: str, key: str) -> str | None:
    """The value shadow-utils uses: the last active line of the key."""
    value = None
    for raw in login_defs.splitlines():
        fields = raw.split()
        if fields and fields[0] == key:
            value = fields[1] if len(fields) > 1 else ""
    return value


def ageing(snap: Snapshot, user: str) -> tuple[str, str, str]:
    """Shadow fields 4-6 (min, max, warn)."""
    fields = snap.shadow[user]  # fields 3..9 -> index 0 is field 3
    return fields[1], fields[2], fields[3]


def run(lab, *args: str) -> subprocess.CompletedProcess:
    result = lab.ansible_playbook(PLAYBOOK, *args)
    assert result.returncode == 0, output(result)
    return result


# --- fixtures that follow the lab through the scenario, one step each --------------------

@pytest.fixture(scope="module")
def prepared(lab):
    for name in HOSTS:
        lab.reset_host(name)
    for name in HOSTS:
        for command in SETUP[name]:
            lab.ssh(name, command)
        lines = "".join(f"{user}:{pw}\n" for user, pw in PASSWORDS[name].items())
        lab.ssh(name, "chpasswd", input=lines)
    lab.ssh("h01", "chage -d 2020-01-01 olddave && chage -d 2020-01-01 -I 30 ursula")
    for name, command in LOGIN_DEFS_EDITS.items():
        lab.ssh(name, command)
    yield lab
    for name in HOSTS:
        lab.reset_host(name)


@pytest.fixture(scope="module")
def check_run(prepared):
    before = snapshots(prepared)
    result = run(prepared, "--check", "--diff", "-e", TARGET)
    return before, result, snapshots(prepared)


@pytest.fixture(scope="module")
def real_run(check_run, prepared):
    before = snapshots(prepared)
    result = run(prepared, "-e", TARGET)
    return before, result, snapshots(prepared)


@pytest.fixture(scope="module")
def second_run(real_run, prepared):
    before = snapshots(prepared)
    result = run(prepared, "-e", TARGET)
    return before, result, snapshots(prepared)


# --- tests ---------------------------------------------------------------------------------

def test_syntax_check():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "--syntax-check", str(PLAYBOOK),
         "-i", "localhost,"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lab_prepared_as_intended(prepared):
    snap = snapshot(prepared, "h01")
    assert effective(snap.login_defs, "PASS_MAX_DAYS") == "365"
    assert prepared.ssh("h01", "passwd -S carol").stdout.split()[1] == "L"  # no usable password
    assert prepared.ssh("h01", "passwd -S alice").stdout.split()[1] == "P"
    assert snap.shadow["olddave"][0] == "18262"  # 2020-01-01
    assert effective(snapshot(prepared, "h02").login_defs, "PASS_WARN_AGE") is None


def test_check_mode_shows_diff_and_changes_nothing(check_run, policy):
    before, result, after = check_run
    text = output(result)
    assert "-PASS_MAX_DAYS\t365" in text  # h01: the last (effective) duplicate is the one rewritten
    assert f"+PASS_MAX_DAYS\t{policy['pass_max_days']}" in text
    assert f"+PASS_MIN_DAYS\t{policy['pass_min_days']}" in text
    assert "overridden by a later PASS_MAX_DAYS line" in text  # h01: the stale first copy
    assert "-#PASS_WARN_AGE" in text  # h02: the commented-out key becomes active
    assert f"+PASS_WARN_AGE\t{policy['pass_warn_age']}" in text
    flat = " ".join(text.split())  # the YAML callback may wrap long messages
    assert f"alice (max 99999 -> {policy['pass_max_days']}, min 0 -> {policy['pass_min_days']})" in flat
    assert "carol: no usable password" in flat
    assert "must be changed at the next login: olddave." in flat
    assert "ursula: maximum not set, it would lock the account" in flat
    counts = recap(result)
    assert set(counts) == {"h01", "h02"}
    assert counts["h01"]["changed"] > 0 and counts["h02"]["changed"] > 0
    assert after == before  # login.defs, passwd, shadow, /home: identical on all three hosts


def test_real_run_applies_policy_on_targets(real_run, policy):
    before, result, after = real_run
    want = (str(policy["pass_min_days"]), str(policy["pass_max_days"]), str(policy["pass_warn_age"]))
    counts = recap(result)
    assert set(counts) == {"h01", "h02"}, output(result)
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in counts.values())

    for name in ("h01", "h02"):
        defs = after[name].login_defs
        assert effective(defs, "PASS_MAX_DAYS") == want[1]
        assert effective(defs, "PASS_MIN_DAYS") == want[0]
        assert effective(defs, "PASS_WARN_AGE") == want[2]
        # passwords, last-change dates, inactivity and expiry untouched for every account
        assert after[name].fixed_sha == before[name].fixed_sha
        assert after[name].passwd_sha == before[name].passwd_sha
        assert after[name].homes == before[name].homes  # no home directory created
        assert set(after[name].shadow) == set(before[name].shadow)

    h01, h02 = after["h01"], after["h02"]
    assert ageing(h01, "alice") == want
    assert ageing(h01, "bob") == want
    assert ageing(h02, "hank") == want
    # password older than the maximum: aged like the others (must change it at next login) ...
    assert ageing(h01, "olddave") == want
    # ... unless the maximum would put it past its inactivity period: min/warn only, not locked
    assert ageing(h01, "ursula") == (want[0], ageing(before["h01"], "ursula")[1], want[2])
    # not interactive, key-only, or the account the lab logs in with (root): untouched
    for user in ("svcreport", "gina", "carol", "root", "nobody", "daemon"):
        assert ageing(h01, user) == ageing(before["h01"], user), user
    assert ageing(h02, "root") == ageing(before["h02"], "root")
    # h01: one active PASS_MAX_DAYS line left; the overridden one is a comment now
    assert [line for line in h01.login_defs.splitlines() if line.split()[:1] == ["PASS_MAX_DAYS"]] == [
        f"PASS_MAX_DAYS\t{want[1]}"]
    assert any(line.startswith("#PASS_MAX_DAYS\t99999") for line in h01.login_defs.splitlines())
    # h02: the commented-out key is active now, with no commented copy left
    assert f"PASS_WARN_AGE\t{want[2]}" in h02.login_defs.splitlines()
    assert not any(re.match(r"\s*#\s*PASS_WARN_AGE\s+\d", line) for line in h02.login_defs.splitlines())

    assert after["h03"] == before["h03"]  # not targeted: nothing changed


def test_real_run_can_be_verified_with_testinfra(real_run, prepared, policy):
    host = prepared.testinfra("h01")
    assert not host.file("/home/alice").exists
    assert host.user("svcreport").shell == "/usr/sbin/nologin"
    defs = host.file("/etc/login.defs").content_string
    assert effective(defs, "PASS_MAX_DAYS") == str(policy["pass_max_days"])


def test_second_run_changes_nothing(second_run):
    before, result, after = second_run
    counts = recap(result)
    assert set(counts) == {"h01", "h02"}, output(result)
    for name, c in counts.items():
        assert c["changed"] == 0, (name, output(result))
        assert c["failed"] == 0 and c["unreachable"] == 0
    assert after == before


def test_example_inventory_parses_with_unit_metadata():
    """inventory/hosts.yml: units -> unit groups, article 25 metadata, documentation addresses only."""
    import ipaddress
    import json

    exe = Path(sys.executable).with_name("ansible-inventory")
    result = subprocess.run([str(exe), "-i", str(ROOT / "inventory" / "hosts.yml"), "--list"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    inv = json.loads(result.stdout)
    hostvars = inv["_meta"]["hostvars"]
    units = [g for g in inv if g.startswith("u_")]
    assert {"u_shengzhong", "u_county_health"} <= set(units)
    docs = [ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/32")]
    for group in units:
        assert inv[group]["hosts"], group
        for host in inv[group]["hosts"]:
            hv = hostvars[host]
            assert hv["ansible_python_interpreter"] == "/usr/bin/python3"
            assert any(ipaddress.ip_address(hv["ansible_host"]) in net for net in docs), host
            unit = hv["unit"]
            assert unit["code"] == group
            assert unit["name"] and unit["office"]
            for person in ("leader", "account_manager"):
                assert unit[person]["name"] and unit[person]["phone"], (host, person)
