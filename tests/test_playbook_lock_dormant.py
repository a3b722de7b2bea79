"""playbooks/lock_dormant.yml and playbooks/unlock_account.yml against the SSH lab (h01, h02 only).

Two kinds of tests:

* Guard tests (marked ``# STAND-IN``): the agent on the lab host is a tiny
  shell script, installed under /usr/local/bin inside the lab host only, that prints a fixed
  ``nanbu-secops check --only NS26-ACCT-010 --format json`` report. They pin the playbook's own
  behaviour (what it skips, check mode, idempotence, agent failures) with verdicts the real
  agent would never give (root listed as dormant, an exempted account listed as dormant, a name
  that does not exist...).
* REAL-AGENT test (``test_real_agent_*``): the project's own agent (.venv/bin/nanbu-secops,
  visible read-only at the same path inside the lab hosts) judges crafted wtmp/lastlog records.
  It covers the whole flow: the agent's verdict, check mode, locking, idempotence.

Every account, password and record below exists only inside the lab hosts' overlays.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nanbu_secops.accounts import register as reg
from nanbu_secops.timeutil import COUNTY_TZ
from tests.playbook_output import flat, output, recap

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "playbooks" / "lock_dormant.yml"
UNLOCK = ROOT / "playbooks" / "unlock_account.yml"
POLICY = ROOT / "policies" / "article26.yml"
AGENT = ROOT / ".venv" / "bin" / "nanbu-secops"
CONTROL = "NS26-ACCT-010"
HOSTS = ("h01", "h02")  # h03 belongs to other tests
STANDIN = "/usr/local/bin/nanbu-standin-agent"  # STAND-IN: exists only inside the lab hosts
STANDIN_ARGS = "/tmp/nanbu-standin.args"
AS_OF = "2026-08-28"

# Throwaway lab passwords; they only exist inside the lab's overlay hosts.
PASSWORDS = {
    "h01": {"alice": "lab-only-Alice-1", "bob": "lab-only-Bob-1", "carol": "lab-only-Carol-1",
            "dave": "lab-only-Dave-1", "erin": "lab-only-Erin-1", "svcbackup": "lab-only-Backup-1",
            "toor": "lab-only-Toor-1"},
    "h02": {"hank": "lab-only-Hank-1", "bob": "lab-only-Bob-2"},
}
SETUP = {
    "h01": [
        "useradd -m -s /bin/bash alice",    # active: not in the verdict
        "useradd -m -s /bin/bash bob",      # dormant, logged in months ago; also has an SSH key
        "useradd -m -s /bin/bash carol",    # dormant, already locked and expired
        "useradd -M -s /bin/bash dave",     # dormant, never logged in, no home (must not be created)
        "useradd -m -s /bin/bash erin",     # dormant, locked by hand but not expired
        "useradd -m -s /bin/bash kim",      # dormant, no password at all ("!"): key-only
        "useradd -m -s /bin/bash svcbackup",   # exempted (and, wrongly, also listed as dormant)
        "useradd -o -u 0 -g 0 -M -s /bin/bash toor",  # a second UID 0, listed as dormant
    ],
    "h02": [
        "useradd -m -s /bin/bash hank",     # dormant on h02, but h02's agent reports an error
        "useradd -m -s /bin/bash bob",      # another bob, for the unlock tests
    ],
}
AFTER_PASSWORDS = {
    "h01": ["usermod -L -e 2020-01-01 carol", "usermod -L erin"],
    "h02": ["usermod -L -e 1970-01-02 bob"],
}


def dormant(account: str, last: str | None, source: str = "wtmp") -> dict:
    return {"account": account, "last_login": last, "source": source if last else "never",
            "terminal": "192.0.2.10" if last else None}


# What the real agent prints for --only NS26-ACCT-010, with a verdict made up for the test.
H01_VERDICT = {
    "status": "fail",
    "evidence": {
        "cut": "2026-05-28", "months": 3,
        "dormant": [dormant("bob", "2026-05-01T09:30:00"), dormant("carol", "2025-12-01T08:00:00", "lastlog"),
                    dormant("dave", None), dormant("erin", "2026-01-05T10:00:00"), dormant("kim", None),
                    dormant("root", "2026-01-01T00:00:00"), dormant("toor", None),
                    dormant("svcbackup", None), dormant("ghost", None)],
        "exempted": [{"account": "svcbackup", "owner": "张伟 (信息股)", "expires": "2027-03-31"}],
        "checked": ["alice", "bob", "carol", "dave", "erin", "kim", "svcbackup"],
        "unverifiable": ["olduser"],
    },
}
H02_ERROR = {"status": "error", "evidence": {"error": "logins: no login records on this terminal (wtmp, lastlog, lastlog2)"}}
H02_FINE = {"status": "fail", "evidence": {"cut": "2026-05-28", "months": 3, "dormant": [dormant("hank", None)],
                                           "exempted": [], "checked": ["hank"]}}


# --- helpers ---------------------------------------------------------------------------------

def report(host: str, verdict: dict) -> dict:
    """A whole `nanbu-secops check --format json` report holding one NS26-ACCT-010 result."""
    result = {"control": CONTROL, "article": "26", "title": "stand-in", "severity": "high",
              "remediation": "stand-in", **verdict}
    summary = {s: int(result["status"] == s) for s in ("pass", "fail", "error", "skip")}
    return {"host": host, "generated": "2026-08-28T09:00:00+08:00", "policy_version": "nanbu-a26@stand-in",
            "as_of": AS_OF, "root": "/", "lang": "zh", "tool": {"name": "nanbu-secops", "version": "stand-in"},
            "summary": summary, "results": [result]}


def install_standin(lab, host: str, *, stdout: str = "", stderr: str = "", rc: int = 1, path: str = STANDIN) -> None:
    """STAND-IN agent: a shell script inside the lab host printing a fixed answer."""
    script = (
        "#!/bin/sh\n"
        "# STAND-IN for `nanbu-secops check --only NS26-ACCT-010 --format json` (lab tests only)\n"
        f"printf '%s\\n' \"$*\" >> {STANDIN_ARGS}\n"
        f"cat <<'__STDOUT__'\n{stdout}\n__STDOUT__\n"
        f"cat >&2 <<'__STDERR__'\n{stderr}\n__STDERR__\n"
        f"exit {rc}\n"
    )
    lab.ssh(host, f"cat > {path} && chmod 755 {path}", input=script)


def install_verdict(lab, host: str, verdict: dict, rc: int | None = None, path: str = STANDIN) -> None:
    code = rc if rc is not None else (1 if verdict["status"] in ("fail", "error") else 0)
    install_standin(lab, host, stdout=json.dumps(report(host, verdict), ensure_ascii=False, indent=2), rc=code,
                    path=path)


def lock(lab, *args: str, agent: str = STANDIN) -> subprocess.CompletedProcess:
    return lab.ansible_playbook(LOCK, "-e", f"nanbu_agent={agent}", *args)


def unlock(lab, *args: str) -> subprocess.CompletedProcess:
    return lab.ansible_playbook(UNLOCK, *args)


def state(lab, host: str) -> dict[str, str]:
    """Everything the playbooks could change: passwd, shadow (by hash), the list of homes."""
    out = lab.ssh(host, "sha256sum /etc/passwd /etc/shadow /etc/group; ls -1a /home; cut -d: -f1,3-9 /etc/shadow").stdout
    return {"all": out}


def status(lab, host: str, user: str) -> str:
    """passwd -S: L (locked), P (usable password), NP (no password)."""
    return lab.ssh(host, f"passwd -S {user}").stdout.split()[1]


def expires(lab, host: str, user: str) -> dt.date | None:
    """'Account expires' of chage -l; None for never."""
    out = lab.ssh(host, f"LC_ALL=C chage -l {user}").stdout
    value = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Account expires"))
    return None if value == "never" else dt.datetime.strptime(value, "%b %d, %Y").date()


def shadow_expire_field(lab, host: str, user: str) -> str:
    return lab.ssh(host, f"getent shadow {user} | cut -d: -f8").stdout.strip()


def ssh_as(lab, host: str, user: str) -> subprocess.CompletedProcess:
    """A real key login as ``user`` (no shared master connection, so it really authenticates)."""
    return subprocess.run(["ssh", "-F", str(lab.ssh_config), "-o", "ControlMaster=no", "-o", "ControlPath=none",
                           "-o", "LogLevel=INFO", "-l", user, host, "true"], capture_output=True, text=True, timeout=60)


def today(lab, host: str) -> dt.date:
    return dt.date.fromisoformat(lab.ssh(host, "date -u +%F").stdout.strip())


# --- the stand-in scenario, one module-scoped step after the other ---------------------------

@pytest.fixture(scope="module")
def prepared(lab):
    for host in HOSTS:
        lab.reset_host(host)
    for host in HOSTS:
        lab.ssh(host, " && ".join(SETUP[host]))
        lab.ssh(host, "chpasswd", input="".join(f"{u}:{p}\n" for u, p in PASSWORDS[host].items()))
        for command in AFTER_PASSWORDS[host]:
            lab.ssh(host, command)
    # bob may log in with the lab's client key: after locking, the expiry must stop that too
    lab.ssh("h01", "install -d -o bob -g bob -m 700 /home/bob/.ssh && "
                   "install -o bob -g bob -m 600 /root/.ssh/authorized_keys /home/bob/.ssh/authorized_keys")
    install_verdict(lab, "h01", H01_VERDICT)   # STAND-IN
    install_verdict(lab, "h02", H02_ERROR)     # STAND-IN: the agent cannot read the login records
    yield lab
    for host in HOSTS:
        lab.reset_host(host)


@pytest.fixture(scope="module")
def check_run(prepared):
    before = {h: state(prepared, h) for h in HOSTS}
    result = lock(prepared, "--check", "--diff", "-e", "target=h01,h02", "-e", f"as_of={AS_OF}")
    return before, result, {h: state(prepared, h) for h in HOSTS}


@pytest.fixture(scope="module")
def dry_run(check_run, prepared):
    before = {h: state(prepared, h) for h in HOSTS}
    result = lock(prepared, "-e", "target=h01", "-e", "nanbu_lock_dry_run=true")
    return before, result, {h: state(prepared, h) for h in HOSTS}


@pytest.fixture(scope="module")
def real_run(dry_run, prepared):
    before = {h: state(prepared, h) for h in HOSTS}
    result = lock(prepared, "-e", "target=h01,h02")  # no as_of: the agent gets no --as-of
    return before, result, {h: state(prepared, h) for h in HOSTS}


@pytest.fixture(scope="module")
def second_run(real_run, prepared):
    before = {h: state(prepared, h) for h in HOSTS}
    result = lock(prepared, "-e", "target=h01")
    return before, result, {h: state(prepared, h) for h in HOSTS}


def test_syntax_check():
    for playbook in (LOCK, UNLOCK):
        result = subprocess.run(
            [str(Path(sys.executable).with_name("ansible-playbook")), "--syntax-check", str(playbook), "-i", "localhost,"],
            cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def test_lab_prepared_as_intended(prepared):  # STAND-IN scenario
    lab = prepared
    for user in ("alice", "bob", "dave", "svcbackup", "toor"):
        assert status(lab, "h01", user) == "P", user
        assert expires(lab, "h01", user) is None, user
    assert status(lab, "h01", "carol") == "L" and expires(lab, "h01", "carol") == dt.date(2020, 1, 1)
    assert status(lab, "h01", "erin") == "L" and expires(lab, "h01", "erin") is None
    assert status(lab, "h01", "kim") == "L"  # never had a password
    assert ssh_as(lab, "h01", "bob").returncode == 0
    assert lab.ssh("h01", "getent passwd ghost", check=False).returncode == 2


def test_check_mode_lists_what_would_be_locked_and_changes_nothing(check_run):  # STAND-IN
    before, result, after = check_run
    text = flat(result)
    assert after == before, "check mode changed a host"
    counts = recap(result)
    assert counts["h01"]["failed"] == 0 and counts["h01"]["changed"] > 0, text
    assert "Dormant accounts that would be locked (dry run)" in text
    assert "bob: last login 2026-05-01T09:30:00 (wtmp); lock password, expire account" in text
    assert "dave: never logged in; lock password, expire account" in text
    assert "erin: last login 2026-01-05T10:00:00 (wtmp); expire account" in text
    assert "carol: last login 2025-12-01T08:00:00 (lastlog); already locked and expired" in text
    assert "would lock: bob, dave, erin, kim; already locked and expired: carol" in text
    assert "Summary: accounts that would be locked, per host (dry run)" in text
    # h02: the agent reported an error: the host fails, nothing planned
    assert counts["h02"]["failed"] == 1
    assert "The agent could not tell who is dormant: logins: no login records" in text
    assert "Nothing was locked on h02" in text


def test_agent_is_called_with_the_control_and_as_of(check_run, prepared):  # STAND-IN
    calls = prepared.ssh("h01", f"cat {STANDIN_ARGS}").stdout.splitlines()
    assert calls[0] == f"check --only {CONTROL} --format json --as-of {AS_OF}"


def test_dry_run_variable_changes_nothing(dry_run):  # STAND-IN
    before, result, after = dry_run
    assert result.returncode == 0, output(result)
    assert after == before
    assert "would lock: bob, dave, erin, kim" in flat(result)
    assert recap(result)["h01"]["changed"] > 0  # honest: it would change


def test_real_run_locks_and_expires_the_dormant(real_run, prepared):  # STAND-IN
    lab = prepared
    before, result, after = real_run
    counts = recap(result)
    text = flat(result)
    assert counts["h01"]["failed"] == 0 and counts["h01"]["changed"] > 0, text
    day = today(lab, "h01")
    for user in ("bob", "dave", "erin"):
        assert status(lab, "h01", user) == "L", user
        when = expires(lab, "h01", user)
        assert when is not None and when < day, (user, when)
        assert shadow_expire_field(lab, "h01", user) == "1", user  # 1970-01-02, never the ambiguous 0
    assert status(lab, "h01", "kim") == "L" and expires(lab, "h01", "kim") == dt.date(1970, 1, 2)
    # already locked and expired: left exactly as it was (its own expiry date kept)
    assert expires(lab, "h01", "carol") == dt.date(2020, 1, 1)
    assert "locked: bob, dave, erin, kim; already locked and expired: carol" in text
    assert "Summary: accounts locked, per host" in text
    # the agent got no --as-of when none was given
    assert prepared.ssh("h01", f"tail -n 1 {STANDIN_ARGS}").stdout.strip() == f"check --only {CONTROL} --format json"


def test_locked_account_cannot_log_in_with_its_key(real_run, prepared):  # STAND-IN
    refused = ssh_as(prepared, "h01", "bob")
    # The same key logged in before the run (test_lab_prepared_as_intended). Now the key is still
    # accepted, and PAM's account stage refuses bob because the playbook expired the account.
    assert refused.returncode == 255, refused
    assert refused.stderr.startswith("Your account has expired; please contact your system administrator."), refused.stderr
    assert prepared.ssh("h01", "true", check=False).returncode == 0  # the host itself answers logins


def test_active_root_uid0_exempted_and_unknown_accounts_untouched(real_run, prepared):  # STAND-IN
    lab = prepared
    _, result, _ = real_run
    text = flat(result)
    for user in ("alice", "svcbackup", "toor", "root"):
        assert expires(lab, "h01", user) is None, user
    for user in ("alice", "svcbackup", "toor"):
        assert status(lab, "h01", user) == "P", user
    assert lab.ssh("h01", "getent shadow root | cut -d: -f2").stdout.strip()[:1] not in ("!",)
    assert "root: UID 0 (root accounts are never locked by this playbook)" in text
    assert "toor: UID 0" in text
    assert "svcbackup: exempted" in text
    assert "ghost: no such local account (it is not created)" in text
    assert lab.ssh("h01", "getent passwd ghost", check=False).returncode == 2  # not created
    assert "olduser" in text and "not locked" in text  # unverifiable: reported, left alone
    assert not lab.testinfra("h01").file("/home/dave").exists  # no home directory created


def test_agent_error_fails_the_host_and_locks_nothing(real_run, prepared):  # STAND-IN
    before, result, after = real_run
    counts = recap(result)
    assert counts["h02"]["failed"] == 1 and counts["h02"]["changed"] == 0
    assert after["h02"] == before["h02"]
    assert status(prepared, "h02", "hank") == "P"
    assert result.returncode != 0  # a failed host makes the run fail


def test_second_run_changes_nothing(second_run):  # STAND-IN
    before, result, after = second_run
    counts = recap(result)
    assert result.returncode == 0, output(result)
    assert counts["h01"]["changed"] == 0, output(result)
    assert after == before
    assert "locked: none; already locked and expired: bob, carol, dave, erin, kim" in flat(result)


@pytest.mark.parametrize("case", ["exit2", "garbage", "no_result", "missing_agent", "unknown_status"])
def test_agent_failures_fail_the_host(second_run, prepared, case):  # STAND-IN
    lab = prepared
    agent = STANDIN
    if case == "exit2":
        install_standin(lab, "h02", stderr="nanbu-secops: error: /etc/nanbu-secops/exemptions.yml:4: expires: not a date",
                        rc=2)
        want = "exited with 2: nanbu-secops: error: /etc/nanbu-secops/exemptions.yml:4: expires: not a date"
    elif case == "garbage":
        install_standin(lab, "h02", stdout="Traceback (most recent call last):", rc=1)
        want = "did not print a JSON report"
    elif case == "no_result":
        empty = report("h02", H02_FINE)
        empty["results"] = []
        install_standin(lab, "h02", stdout=json.dumps(empty), rc=0)
        want = f"The agent's report has no result for {CONTROL}"
    elif case == "unknown_status":
        install_verdict(lab, "h02", {**H02_FINE, "status": "maybe"}, rc=1)
        want = "Unknown status maybe"
    else:
        agent = "/nonexistent/nanbu-secops"
        want = "/nonexistent/nanbu-secops exited with"
    before = state(lab, "h02")
    result = lock(lab, "-e", "target=h02", agent=agent)
    assert recap(result)["h02"]["failed"] == 1, output(result)
    assert want in flat(result), flat(result)
    assert "Nothing was locked on h02" in flat(result)
    assert state(lab, "h02") == before
    assert status(lab, "h02", "hank") == "P"


def test_the_connecting_account_is_never_locked(second_run, prepared):  # STAND-IN
    """Log in as a non-root admin (become via su): even when the agent lists that account."""
    lab = prepared
    agent = "/usr/local/bin/nanbu-standin-ops"
    lab.ssh("h02", "useradd -m -s /bin/bash opsadmin && "
                   "install -d -o opsadmin -g opsadmin -m 700 /home/opsadmin/.ssh && "
                   "install -o opsadmin -g opsadmin -m 600 /root/.ssh/authorized_keys /home/opsadmin/.ssh/")
    lab.ssh("h02", "chpasswd", input="root:lab-only-Root-2\nopsadmin:lab-only-Ops-2\n")
    install_verdict(lab, "h02", {"status": "fail", "evidence": {
        "cut": "2026-05-28", "months": 3, "exempted": [], "checked": ["opsadmin", "hank"],
        "dormant": [dormant("opsadmin", "2026-01-01T08:00:00"), dormant("hank", None)]}}, path=agent)
    result = lock(lab, "-e", "target=h02", "-e", "ansible_user=opsadmin", "-e", "ansible_become_method=su",
                  "-e", "ansible_become_password=lab-only-Root-2", agent=agent)
    text = flat(result)
    assert result.returncode == 0, output(result)
    assert "opsadmin: the account Ansible connects as" in text
    assert status(lab, "h02", "opsadmin") == "P" and expires(lab, "h02", "opsadmin") is None
    assert status(lab, "h02", "hank") == "L"  # the rest of the verdict is acted on
    assert "locked: hank" in text


# --- unlock ------------------------------------------------------------------------------------
# These start from the state the STAND-IN runs above left (bob, kim... locked and expired on h01);
# unlock_account.yml itself does not call the agent.

@pytest.fixture(scope="module")
def explanation(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("explanations") / "情况说明-bob-h01.txt"
    path.write_text("关于恢复 bob 账号的书面情况说明：本人借调期满返岗，申请恢复使用。\n（单位盖章）\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def registers(tmp_path_factory, explanation) -> dict[str, Path]:
    """empty: nothing recorded yet; wrong_host: bob on h03 and as a platform account, not on h01;
    good: bob (and others) on h01; tampered: good with one character of an entry changed."""
    base = tmp_path_factory.mktemp("registers")
    now = dt.datetime(2026, 11, 28, 10, 0, tzinfo=COUNTY_TZ)
    paths = {}
    for name in ("empty", "wrong_host", "good", "tampered"):
        (base / name).mkdir()
        paths[name] = base / name / "reinstatements.jsonl"
    reg.append(paths["wrong_host"], account="bob", host="h03", unit="u_shengzhong", approved_by="王主任",
               explanation=explanation, now=now)
    reg.append(paths["wrong_host"], account="bob", host=None, unit="u_shengzhong", approved_by="王主任",
               explanation=explanation, now=now)  # a platform account entry is not a terminal's
    for name in ("good", "tampered"):
        reg.append(paths[name], account="alice", host="h01", approved_by="王主任", explanation=explanation, now=now)
        reg.append(paths[name], account="bob", host="h01", unit="u_shengzhong", approved_by="王主任",
                   explanation=explanation, now=now)
        for extra in ("root", "ghost"):
            reg.append(paths[name], account=extra, host="h01", approved_by="王主任", explanation=explanation, now=now)
    lines = paths["tampered"].read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0] = lines[0].replace("王主任", "王主仼")  # one character of approved_by, hash left as it was
    paths["tampered"].write_text("".join(lines), encoding="utf-8")
    assert reg.verify(paths["good"]).ok and not reg.verify(paths["tampered"]).ok
    return paths


def test_unlock_refused_without_a_register_entry(second_run, prepared, registers):
    lab = prepared
    for name in ("empty", "wrong_host"):
        register = registers[name]
        result = unlock(lab, "-e", "target=h01", "-e", "account=bob", "-e", f"register={register}")
        assert recap(result)["h01"]["failed"] == 1, output(result)
        assert (f"no reinstatement entry for bob on h01 in {register}: record the unit's written explanation "
                "with `nanbu-secops accounts reinstate` first") in flat(result)
        assert status(lab, "h01", "bob") == "L" and expires(lab, "h01", "bob") is not None
    # the default register (registers/reinstatements.jsonl in the project) does not exist here
    result = unlock(lab, "-e", "target=h01", "-e", "account=bob")
    assert recap(result)["h01"]["failed"] == 1
    assert "no reinstatement entry for bob on h01 in" in flat(result)


def test_unlock_refused_with_a_tampered_register(second_run, prepared, registers):
    lab = prepared
    before = state(lab, "h01")
    result = unlock(lab, "-e", "target=h01", "-e", "account=bob", "-e", f"nanbu_register={registers['tampered']}")
    text = flat(result)
    assert recap(result)["h01"]["failed"] == 1, text
    assert "fails verification" in text and "第 1 行：哈希不符（条目被修改）" in text     # the agent speaks Chinese by default
    assert state(lab, "h01") == before


def test_unlock_refuses_root_and_unknown_accounts(second_run, prepared, registers):
    lab = prepared
    for account, want in (("root", "has UID 0"), ("ghost", "there is no account ghost on h01")):
        result = unlock(lab, "-e", "target=h01", "-e", f"account={account}", "-e", f"register={registers['good']}")
        assert recap(result)["h01"]["failed"] == 1, output(result)
        assert want in flat(result)
    assert lab.ssh("h01", "getent passwd ghost", check=False).returncode == 2
    result = unlock(lab, "-e", "target=h01", "-e", json.dumps({"account": "bob;rm -rf /"}),
                    "-e", f"register={registers['good']}")
    assert recap(result)["h01"]["failed"] == 1 and "give the account to reopen" in flat(result), output(result)
    result = unlock(lab, "-e", "target=h01", "-e", f"register={registers['good']}")  # no account at all
    assert recap(result)["h01"]["failed"] == 1 and "give the account to reopen" in flat(result), output(result)


@pytest.fixture(scope="module")
def unlock_runs(second_run, prepared, registers):
    lab = prepared
    good = f"register={registers['good']}"
    before = state(lab, "h01")
    check = unlock(lab, "--check", "-e", "target=h01", "-e", "account=bob", "-e", good)
    after_check = state(lab, "h01")
    real = unlock(lab, "-e", "target=h01,h02", "-e", "account=bob", "-e", good)
    again = unlock(lab, "-e", "target=h01", "-e", "account=bob", "-e", good)
    return before, check, after_check, real, again


def test_unlock_check_mode_changes_nothing(unlock_runs):
    before, check, after_check, _, _ = unlock_runs
    assert check.returncode == 0, output(check)
    assert after_check == before
    assert recap(check)["h01"]["changed"] == 1
    assert "bob on h01: would be reopened" in flat(check)


def test_unlock_with_an_entry_reopens_the_account(unlock_runs, prepared):
    lab = prepared
    _, _, _, real, _ = unlock_runs
    counts = recap(real)
    text = flat(real)
    assert counts["h01"]["failed"] == 0 and counts["h01"]["changed"] == 1, text
    assert "register entry 2 of 2026-11-28T10:00:00+08:00, approved by 王主任, unit u_shengzhong" in text
    assert "Now: password locked, account expiry 1970-01-02" in text
    assert status(lab, "h01", "bob") == "P"
    assert expires(lab, "h01", "bob") is None
    assert shadow_expire_field(lab, "h01", "bob") == ""
    assert ssh_as(lab, "h01", "bob").returncode == 0  # the key works again
    # the entry names h01 only: bob on h02 stays locked, and that host fails with the reason
    assert counts["h02"]["failed"] == 1
    assert "no reinstatement entry for bob on h02" in text
    assert status(lab, "h02", "bob") == "L"
    # the others stay as they were
    assert status(lab, "h01", "dave") == "L"


def test_second_unlock_changes_nothing(unlock_runs):
    _, _, _, _, again = unlock_runs
    assert again.returncode == 0, output(again)
    assert recap(again)["h01"]["changed"] == 0
    assert "bob on h01: already open (nothing to do)" in flat(again)


def test_unlock_of_an_account_without_password_removes_only_the_expiry(unlock_runs, prepared, explanation, tmp_path):
    lab = prepared
    register = tmp_path / "reinstatements.jsonl"
    reg.append(register, account="kim", host="h01", approved_by="王主任", explanation=explanation)
    result = unlock(lab, "-e", "target=h01", "-e", "account=kim", "-e", f"register={register}")
    assert result.returncode == 0, output(result)
    assert "kim has no password behind its lock" in flat(result)
    assert expires(lab, "h01", "kim") is None
    assert lab.ssh("h01", "getent shadow kim | cut -d: -f2").stdout.strip().startswith("!")


# --- the real agent ----------------------------------------------------------------------------

REAL_AS_OF = dt.date(2026, 11, 28)  # cut: 2026-08-28

WRITE_LOGINS = r"""
import datetime as dt, pwd, struct, sys, zoneinfo
tz = zoneinfo.ZoneInfo("Asia/Shanghai")
UTMP = struct.Struct("<h2xi32s4s32s256shhiii16s20s")
LASTLOG = struct.Struct("<i32s256s")
def epoch(text):
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=tz).timestamp())
wtmp = {"alice": "2026-11-01T09:00:00", "bob": "2026-05-01T09:30:00", "svcbackup": "2026-01-01T02:00:00"}
lastlog = {"lastlogger": "2026-04-01T08:00:00", "alice": "2026-11-01T09:00:00"}
with open("/var/log/wtmp", "ab") as f:
    for i, (user, when) in enumerate(sorted(wtmp.items(), key=lambda kv: kv[1])):
        t = epoch(when)
        line = f"pts/{i}".encode()
        addr = bytes([192, 0, 2, 10]) + bytes(12)
        f.write(UTMP.pack(7, 1000 + i, line, b"ts/" + str(i).encode(), user.encode(), b"192.0.2.10", 0, 0, 0, t, 0, addr, b""))
        f.write(UTMP.pack(8, 1000 + i, line, b"ts/" + str(i).encode(), b"", b"", 0, 0, 0, t + 600, 0, bytes(16), b""))
with open("/var/log/lastlog", "r+b") as f:
    for user, when in lastlog.items():
        uid = pwd.getpwnam(user).pw_uid
        f.seek(uid * LASTLOG.size)
        f.write(LASTLOG.pack(epoch(when), b"pts/9", b"192.0.2.10"))
"""

EXEMPTIONS = """exemptions:
  - account: svcbackup
    controls: [NS26-ACCT-010]
    owner: 张伟 (信息股)
    reason: 夜间备份服务账号
    expires: 2027-03-31
"""


@pytest.fixture(scope="module")
def real_agent_host(lab):
    host = "h01"
    lab.reset_host(host)
    users = ("alice", "bob", "dave", "lastlogger", "svcbackup", "newbie")
    lab.ssh(host, " && ".join(f"useradd -m -s /bin/bash {u}" for u in users))
    lab.ssh(host, "chpasswd", input="".join(f"{u}:lab-only-{u}-9\n" for u in users))
    old = " && ".join(f"chage -d 2025-01-01 {u}" for u in users if u != "newbie")  # created long ago
    lab.ssh(host, old)
    lab.ssh(host, "python3 -", input=WRITE_LOGINS)
    lab.ssh(host, "mkdir -p /etc/nanbu-secops && cat > /etc/nanbu-secops/exemptions.yml", input=EXEMPTIONS)
    yield lab, host
    lab.reset_host(host)


def agent_verdict(lab, host: str) -> dict:
    done = lab.ssh(host, f"{AGENT} check --only {CONTROL} --format json --as-of {REAL_AS_OF}", check=False)
    assert done.returncode in (0, 1), done.stderr
    return next(r for r in json.loads(done.stdout)["results"] if r["control"] == CONTROL)


def test_real_agent_decides_and_the_playbook_locks(real_agent_host):
    lab, host = real_agent_host
    verdict = agent_verdict(lab, host)
    assert verdict["status"] == "fail", verdict
    dormant = {d["account"] for d in verdict["evidence"]["dormant"]}
    assert {"bob", "dave", "lastlogger"} <= dormant, verdict
    assert not dormant & {"alice", "newbie", "svcbackup", "root"}, verdict
    assert "svcbackup" in {e["account"] for e in verdict["evidence"]["exempted"]}

    args = ("-e", f"target={host}", "-e", f"as_of={REAL_AS_OF}")
    before = state(lab, host)
    check = lock(lab, "--check", "--diff", *args, agent=str(AGENT))
    assert check.returncode == 0, output(check)
    assert state(lab, host) == before
    would = re.search(r"would lock: ([^;]*);", flat(check))
    assert would and set(would[1].split(", ")) == dormant, flat(check)

    real = lock(lab, *args, agent=str(AGENT))
    assert real.returncode == 0, output(real)
    assert recap(real)[host]["changed"] > 0
    day = today(lab, host)
    for user in sorted(dormant):
        assert status(lab, host, user) == "L", user
        assert expires(lab, host, user) < day, user
    for user in ("alice", "newbie", "svcbackup"):
        assert status(lab, host, user) == "P" and expires(lab, host, user) is None, user
    assert expires(lab, host, "root") is None

    # the agent now sees them as disabled: nothing left to lock, nothing changes
    assert not {d["account"] for d in agent_verdict(lab, host)["evidence"]["dormant"]}
    again = lock(lab, *args, agent=str(AGENT))
    assert again.returncode == 0, output(again)
    assert recap(again)[host]["changed"] == 0
    assert state(lab, host) != before  # sanity: the first run did change the host


def test_a_reopened_account_keeps_its_grace_days(real_agent_host, explanation, tmp_path):
    """bob, locked above, is reopened on a register entry of 2026-11-27: lock_dormant.yml given that
    register leaves him open through 2026-12-11 (14 days) although the agent still lists him, locks
    him on 2026-12-12, and grants nothing on a register that fails verification."""
    lab, host = real_agent_host
    register = tmp_path / "reinstatements.jsonl"
    reg.append(register, account="bob", host=host, unit="u_shengzhong", approved_by="王主任",
               explanation=explanation, now=dt.datetime(2026, 11, 27, 16, 0, tzinfo=COUNTY_TZ))
    reopen = ("-e", f"target={host}", "-e", "account=bob", "-e", f"nanbu_register={register}")
    done = unlock(lab, *reopen)
    assert done.returncode == 0 and status(lab, host, "bob") == "P", output(done)
    assert "bob" in {d["account"] for d in agent_verdict(lab, host)["evidence"]["dormant"]}

    def run(as_of: str, reg_path: Path = register) -> subprocess.CompletedProcess:
        return lock(lab, "-e", f"target={host}", "-e", f"as_of={as_of}", "-e", f"nanbu_register={reg_path}",
                    agent=str(AGENT))

    for as_of in ("2026-11-28", "2026-12-11"):
        kept = run(as_of)
        assert kept.returncode == 0 and recap(kept)[host]["changed"] == 0, output(kept)
        assert ("bob: reopened 2026-11-27 (register entry 1, approved by 王主任): left open for its holder to log in, "
                "up to 14 days after") in flat(kept)
        assert status(lab, host, "bob") == "P" and expires(lab, host, "bob") is None
    late = run("2026-12-12")
    assert late.returncode == 0 and "bob: reopened" not in flat(late), output(late)
    assert status(lab, host, "bob") == "L" and expires(lab, host, "bob") is not None

    assert unlock(lab, *reopen).returncode == 0 and status(lab, host, "bob") == "P"
    tampered = tmp_path / "tampered" / register.name
    tampered.parent.mkdir()
    shutil.copy2(register, tampered)
    shutil.copy2(reg.head_path(register), reg.head_path(tampered))
    tampered.write_text(tampered.read_text(encoding="utf-8").replace("王主任", "王主仼"), encoding="utf-8")
    refused = run("2026-11-28", tampered)
    assert refused.returncode == 0, output(refused)
    assert "could not be read or fails verification, so no reopened account is spared" in flat(refused)
    assert status(lab, host, "bob") == "L"
