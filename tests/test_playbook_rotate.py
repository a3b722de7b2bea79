"""playbooks/rotate_credentials.yml on real lab hosts, with the faults the issue names.

Zero lock-outs is the bar: after every run, killed or not, each account's password is either
the one it had or one the escrow holds, the account manager can open every escrowed secret,
and ``creds status`` tells which. Secrets never appear in the run's output or in the escrow's
plain files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyrage
import pytest

from nanbu_secops.creds import escrow
from nanbu_secops.creds.generate import crypt_hash, make_hash, sha512_crypt
from nanbu_secops.creds.hashmethod import terminal_method
from tests.conftest import own_lab
from tests.lab import PROJECT_ROOT, Lab
from tests.playbook_output import flat, recap

PLAYBOOK = PROJECT_ROOT / "playbooks" / "rotate_credentials.yml"
CLI = Path(sys.executable).with_name("nanbu-secops")
ACCOUNT = "clerk"
OLD_PASSWORD = "Old-clerk-pass-2026"
HOSTS = ["r01", "r02", "r03"]


@pytest.fixture(scope="module")
def rlab() -> Iterator[Lab]:
    """Three hosts of their own, so that stopping one mid-run disturbs no other test."""
    with own_lab(HOSTS, offset=5, prefix="nsrot-") as lab:
        yield lab


@pytest.fixture
def site(rlab: Lab, tmp_path: Path) -> dict[str, Any]:
    """Fresh hosts with account ``clerk`` (known old password), an escrow and a manager's age key."""
    old_hash = sha512_crypt(OLD_PASSWORD)
    for name in HOSTS:
        rlab.reset_host(name)
        rlab.ssh(name, f"useradd -m -s /bin/bash {ACCOUNT} && chpasswd -e", input=f"{ACCOUNT}:{old_hash}\n")
    identity = pyrage.x25519.Identity.generate()
    (tmp_path / "manager.agekey").write_text(f"{identity}\n")
    (tmp_path / "escrow").mkdir(mode=0o700)
    extra = {"nanbu_escrow_dir": str(tmp_path / "escrow"), "nanbu_escrow_recipients": [str(identity.to_public())],
             "nanbu_rotate_accounts": [ACCOUNT], "nanbu_known_hosts": str(rlab.known_hosts), "nanbu_cli": str(CLI)}
    (tmp_path / "vars.json").write_text(json.dumps(extra))
    return {"dir": tmp_path, "escrow": tmp_path / "escrow", "identity": identity, "old_hash": old_hash,
            "vars": tmp_path / "vars.json", "outputs": []}


def run(rlab: Lab, site: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    done = rlab.ansible_playbook(PLAYBOOK, "-e", f"@{site['vars']}", *args)
    site["outputs"].append(done.stdout + done.stderr)
    return done


def shadow_hash(rlab: Lab, host: str, account: str = ACCOUNT) -> str:
    return rlab.ssh(host, f"getent shadow {account}").stdout.split(":")[1]


def entries(site: dict[str, Any], host: str, kind: str = "password") -> list[escrow.Entry]:
    return [e for e in escrow.entries(site["escrow"], host) if e.kind == kind]


def opened(site: dict[str, Any], entry: escrow.Entry) -> str:
    return escrow.open_entry(entry.path, [site["identity"]])["secret"]


def can_login(rlab: Lab, host: str, password: str) -> bool:
    done = subprocess.run([str(CLI), "creds", "verify", "--address", rlab.hosts[host].ipv4, "--user", ACCOUNT,
                           "--known-hosts", str(rlab.known_hosts), "--password-stdin"],
                          input=password + "\n", capture_output=True, text=True, timeout=60)
    return done.returncode == 0


def status(site: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    done = subprocess.run([str(CLI), "creds", "status", "--escrow", str(site["escrow"]), "--format", "json"],
                          capture_output=True, text=True, timeout=60)
    return done.returncode, json.loads(done.stdout)["rotations"]


def password_is_known(rlab: Lab, site: dict[str, Any], host: str) -> str:
    """'old' or the escrow entry whose password the host has; anything else is a lock-out."""
    current = shadow_hash(rlab, host)
    if current == site["old_hash"]:
        return "old"
    for entry in entries(site, host):
        secret = opened(site, entry)
        if crypt_hash(secret, current) == current:
            return entry.path.name
    raise AssertionError(f"{host}: {ACCOUNT} has a password nobody knows: {current}")


def assert_no_secret_leaked(site: dict[str, Any]) -> None:
    secrets = [opened(site, e) for e in escrow.entries(site["escrow"])]
    assert secrets
    for output in site["outputs"]:
        for secret in secrets:
            assert secret not in output
        assert "$6$" not in output and "$y$" not in output  # neither the new hashes nor the old one
        assert site["old_hash"] not in output
    for path in site["escrow"].rglob("*"):
        if path.is_file() and path.suffix != ".age":
            text = path.read_text()
            for secret in secrets:
                assert secret not in text, path
        if path.is_file():
            assert path.stat().st_mode & 0o077 == 0, path  # 0600 files, 0700 folders
    assert all(opened(site, e).encode() not in e.path.read_bytes() for e in escrow.entries(site["escrow"]))


def test_rotation_escrows_sets_and_verifies(rlab, site):
    done = run(rlab, site, "-vvv")
    assert done.returncode == 0, done.stdout[-3000:]
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in recap(done.stdout).values())
    for host in HOSTS:
        [entry] = entries(site, host)
        assert [e["state"] for e in entry.events] == ["escrowed", "applied", "verified"]
        secret = opened(site, entry)
        assert len(secret) == 20 and not set(secret) & set("0Oo1lI|")
        current = shadow_hash(rlab, host)
        assert current != site["old_hash"] and current.rsplit("$", 2)[0] == passwd_setting(rlab, host)
        assert escrow.load(entry.path).salt == current.rsplit("$", 1)[0]
        assert can_login(rlab, host, secret) and not can_login(rlab, host, OLD_PASSWORD)
    # The reference age implementation opens the escrow too.
    key = site["dir"] / "manager.agekey"
    [entry] = entries(site, "r01")
    clear = subprocess.run(["age", "-d", "-i", str(key), str(entry.path)], capture_output=True, check=True).stdout
    assert json.loads(clear)["secret"] == opened(site, entry)
    code, rows = status(site)
    assert code == 0 and {(r["host"], r["state"]) for r in rows} == {(h, "verified") for h in HOSTS}
    assert_no_secret_leaked(site)


def passwd_setting(rlab: Lab, host: str) -> str:
    """Method and cost of the hash the host's own PAM stack writes (chpasswd without -e goes
    through pam_unix like passwd): the oracle for the rotated hash's kind."""
    rlab.ssh(host, "useradd nsprobe && chpasswd", input="nsprobe:Probe-pass-2026\n")
    try:
        return shadow_hash(rlab, host, "nsprobe").rsplit("$", 2)[0]
    finally:
        rlab.ssh(host, "userdel nsprobe")


@pytest.mark.parametrize("pam_options, login_defs", [
    ("obscure yescrypt", "ENCRYPT_METHOD SHA512\n"),  # Debian 12 as installed
    ("obscure sha512 rounds=10000", ""),
    ("obscure sha512 rounds=500", ""),  # too few: libxcrypt's default
    ("obscure yescrypt rounds=8", ""),
    ("obscure", "ENCRYPT_METHOD SHA512\nSHA_CRYPT_MIN_ROUNDS 6000\nSHA_CRYPT_MAX_ROUNDS 20000\n"),
    ("obscure", "ENCRYPT_METHOD YESCRYPT\n"),
])
def test_hash_method_matches_the_terminals_own_pam(rlab, pam_options, login_defs):
    """The terminal's own pam_unix (chpasswd without -e, as passwd) is the oracle for the method
    and cost creds/hashmethod.py reads from the same two files."""
    rlab.reset_host("r01")
    try:
        pam = (f"password [success=1 default=ignore] pam_unix.so {pam_options}\n"
               "password requisite pam_deny.so\npassword required pam_permit.so\n")
        rlab.ssh("r01", "cat > /etc/pam.d/common-password", input=pam)
        rlab.ssh("r01", "sed -i -E '/^(ENCRYPT_METHOD|SHA_CRYPT_M..._ROUNDS|YESCRYPT_COST_FACTOR)/d' /etc/login.defs "
                        "&& cat >> /etc/login.defs", input=login_defs)
        defs = rlab.ssh("r01", "cat /etc/login.defs").stdout
        ours = make_hash("Probe-pass-2026", terminal_method("/etc/pam.d/common-password", pam, defs))
        assert ours.rsplit("$", 2)[0] == passwd_setting(rlab, "r01")
    finally:
        rlab.reset_host("r01")


@pytest.mark.parametrize("prepare, status, why", [
    (f"usermod -L {ACCOUNT}", "locked", "locked (its password field starts with !)"),
    (f"usermod -p '*' {ACCOUNT}", "no-password", "no password (* is not a crypt hash"),
    (f"usermod -e 1 {ACCOUNT}", "expired", "account expired (shadow expire day 1"),
])
def test_rotation_never_unlocks(rlab, site, prepare, status, why):
    """A locked, a key-only and an expired account: nothing changes, and the run says why."""
    rlab.ssh("r01", prepare)
    rlab.ssh("r01", f"mkdir -p /home/{ACCOUNT}/.ssh && cat > /home/{ACCOUNT}/.ssh/authorized_keys",
             input=Path(f"{rlab.client_key}.pub").read_text())
    before = {h: rlab.ssh(h, f"getent shadow {ACCOUNT}").stdout for h in HOSTS}
    done = run(rlab, site, "-vvv")
    assert done.returncode == 0, done.stdout[-3000:]
    assert {h: rlab.ssh(h, f"getent shadow {ACCOUNT}").stdout for h in HOSTS}["r01"] == before["r01"]
    assert entries(site, "r01") == []  # nothing escrowed: nothing was going to be set
    text = flat(done)
    assert f"r01: {ACCOUNT} (password) skipped: {why}" in text, text[-3000:]
    assert all(entries(site, h)[0].state == "verified" for h in ("r02", "r03"))  # the others still rotate
    if status == "locked":
        assert not can_login(rlab, "r01", OLD_PASSWORD)
    assert_no_secret_leaked(site)


def test_set_refuses_a_locked_account_even_when_asked_directly(rlab, site):
    """The module itself, not only the playbook's flow, refuses: a hash set over a lock would unlock."""
    rlab.ssh("r01", f"usermod -L {ACCOUNT}")
    locked = shadow_hash(rlab, "r01")
    exe = Path(sys.executable).with_name("ansible")
    home = rlab.workdir / "ansible"
    done = subprocess.run([str(exe), "r01", "-i", str(rlab.inventory), "-b", "-m", "nanbu_shadow_password",
                           "-M", str(PROJECT_ROOT / "playbooks" / "library"), "-a",
                           json.dumps({"name": ACCOUNT, "state": "set", "password": sha512_crypt("New-pass-2026"),
                                       "expected": locked})],
                          env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOME": str(home),
                               "ANSIBLE_LOCAL_TEMP": str(home / "tmp"), "ANSIBLE_SSH_CONTROL_PATH_DIR": str(home / "cp")},
                          capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "not changed: locked" in done.stdout and "$6$" not in done.stdout
    assert shadow_hash(rlab, "r01") == locked


def test_check_mode_changes_nothing(rlab, site):
    done = run(rlab, site, "--check", "--diff")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "a new password would be escrowed" in done.stdout
    assert list(escrow.entries(site["escrow"])) == []
    assert all(shadow_hash(rlab, h) == site["old_hash"] for h in HOSTS)


def test_host_refusing_password_logins_is_rolled_back_and_reported(rlab, site):
    rlab.ssh("r02", "printf 'PasswordAuthentication no\\nKbdInteractiveAuthentication no\\n' "
                    "> /etc/ssh/sshd_config.d/00-no-passwords.conf && kill -HUP 1")
    time.sleep(0.5)
    done = run(rlab, site)
    assert done.returncode != 0
    counts = recap(done.stdout)
    assert counts["r02"]["failed"] == 1 and counts["r01"]["failed"] == counts["r03"]["failed"] == 0
    assert "sshd does not accept this method" in done.stdout
    assert shadow_hash(rlab, "r02") == site["old_hash"]
    [entry] = entries(site, "r02")
    assert entry.state == "rolled-back" and "does not accept" in entry.events[-1]["detail"]
    assert all(entries(site, h)[0].state == "verified" for h in ("r01", "r03"))
    code, rows = status(site)
    assert code == 1 and {r["host"]: r["state"] for r in rows}["r02"] == "rolled-back"
    assert_no_secret_leaked(site)


def test_host_that_disappears_mid_run(rlab, site):
    """r03 goes down once its new password is escrowed: it is reported, and settled next run."""
    proc = start_playbook(rlab, site)
    try:
        wait_for(lambda: entries(site, "r03"), proc)
        rlab.stop_host("r03")
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    site["outputs"].append(out)
    assert proc.returncode != 0
    assert recap(out)["r03"]["unreachable"] == 1
    assert "r03: UNREACHABLE" in out  # the run's own report names it
    rlab.start_host("r03")
    state = password_is_known(rlab, site, "r03")
    code, rows = status(site)
    assert code == 1 and {r["host"]: r["settled"] for r in rows}["r03"] is False
    again = run(rlab, site)
    assert again.returncode == 0, again.stdout[-3000:]
    first, second = entries(site, "r03")
    assert first.state == ("not-applied" if state == "old" else "found-in-use")
    assert second.state == "verified" and password_is_known(rlab, site, "r03") == second.path.name
    assert_no_secret_leaked(site)


def test_killed_run_leaves_no_unknown_password(rlab, site):
    """SIGKILL right after the first secret is escrowed, before it can be applied everywhere."""
    proc = start_playbook(rlab, site)
    try:
        wait_for(lambda: list(escrow.entries(site["escrow"])), proc, interval=0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        kill_detached_workers(rlab)
    site["outputs"].append(out)
    known = {h: password_is_known(rlab, site, h) for h in HOSTS}
    assert any(entries(site, h) for h in HOSTS)
    for entry in escrow.entries(site["escrow"]):
        assert opened(site, entry)  # nothing escrowed is lost or unreadable
    code, _ = status(site)
    assert code == 1  # unconfirmed entries are shown, not hidden
    again = run(rlab, site)
    assert again.returncode == 0, again.stdout[-3000:]
    code, rows = status(site)
    assert code == 0, rows
    for host in HOSTS:
        *earlier, last = entries(site, host)
        assert last.state == "verified" and password_is_known(rlab, site, host) == last.path.name
        for entry in earlier:
            assert entry.state == ("found-in-use" if known[host] == entry.path.name else "not-applied")
    assert_no_secret_leaked(site)


def test_ops_key_rotation_never_cuts_the_connection(rlab, site):
    """The key Ansible logs in with is replaced; it logs in with the new one afterwards, the old one no longer works."""
    keys = site["dir"] / "keys"
    keys.mkdir(mode=0o700)
    host = "r01"
    (keys / host).mkdir(mode=0o700)
    old = keys / host / "id_ed25519-20260101T000000.000000+0800"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(old)], check=True)
    (keys / host / "current").symlink_to(old.name)
    rlab.ssh(host, "cat >> /root/.ssh/authorized_keys", input=Path(f"{old}.pub").read_text())
    # Ansible may use only the managed key: a copy of the lab's ssh_config without its key or shared connections.
    config = site["dir"] / "ssh_config"
    config.write_text(re.sub(r"(?m)^\s*(IdentityFile|ControlMaster|ControlPath|ControlPersist) .*\n", "",
                             rlab.ssh_config.read_text()))
    only_managed = ["-e", f"ansible_ssh_common_args='-F {config} -o ControlMaster=no'",
                    "-e", f"ansible_ssh_private_key_file={keys / host / 'current'}"]
    env = {"ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ControlPath=none"}
    done = rlab.ansible_playbook(PLAYBOOK, "-e", f"@{site['vars']}", "-e", "nanbu_rotate_ops_key=true",
                                 "-e", f"nanbu_ops_key_dir={keys}", "-e", "target=r01", *only_managed, env=env)
    site["outputs"].append(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    new = (keys / host / "current").resolve()
    assert new != old.resolve() and new.is_file() and new.stat().st_mode & 0o077 == 0
    authorized = rlab.ssh(host, "cat /root/.ssh/authorized_keys").stdout
    assert Path(f"{new}.pub").read_text().split()[1] in authorized
    assert Path(f"{old}.pub").read_text().split()[1] not in authorized
    assert Path(f"{rlab.client_key}.pub").read_text().split()[1] in authorized  # other keys untouched
    [entry] = entries(site, host, "ssh-key")
    assert entry.state == "verified" and opened(site, entry) == new.read_text()
    assert ping(rlab, "r01", *only_managed, env=env).returncode == 0  # Ansible gets in with the new key alone
    assert ping(rlab, "r01", *only_managed, "-e", f"ansible_ssh_private_key_file={old}", env=env).returncode == 4
    again = rlab.ansible_playbook(PLAYBOOK, "-e", f"@{site['vars']}", "-e", "nanbu_rotate_ops_key=true",
                                  "-e", f"nanbu_ops_key_dir={keys}", "-e", "target=r01", *only_managed, env=env)
    site["outputs"].append(again.stdout + again.stderr)
    assert again.returncode == 0, again.stdout[-3000:]  # and the next rotation starts from it
    assert (keys / host / "current").resolve() not in (new, old.resolve())
    assert ping(rlab, "r01", *only_managed, "-e", f"ansible_ssh_private_key_file={new}", env=env).returncode == 4
    assert_no_secret_leaked(site)


def ping(rlab: Lab, host: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A bare ``ansible -m ping``: 0 when Ansible can log in, 4 when the host is unreachable."""
    exe = Path(sys.executable).with_name("ansible")
    return subprocess.run([str(exe), host, "-i", str(rlab.inventory), "-m", "ansible.builtin.ping", *args],
                          env={**os.environ, "ANSIBLE_NOCOLOR": "1", **env}, capture_output=True, text=True,
                          timeout=120, cwd=PROJECT_ROOT)


def start_playbook(rlab: Lab, site: dict[str, Any]) -> subprocess.Popen[str]:
    """The playbook in its own process group, so that a test can kill it outright."""
    home = rlab.workdir / "ansible"
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(home / "cp")}
    return subprocess.Popen([str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(rlab.inventory),
                             "-e", f"@{site['vars']}", str(PLAYBOOK)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            cwd=PROJECT_ROOT)


def kill_detached_workers(rlab: Lab) -> None:
    """Ansible's workers call setsid(), so killing the playbook's process group would leave each
    worker to finish its task (here: a whole rotation). A controller that dies stops them too:
    they are this run's own processes (found by its lab inventory on their command line)."""
    import psutil

    workers = [proc for proc in psutil.process_iter(["cmdline"])
               if any(arg.endswith("ansible-playbook") for arg in proc.info["cmdline"] or [])
               and str(rlab.inventory) in (proc.info["cmdline"] or [])]
    for proc in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(workers, timeout=30)


def wait_for(condition, proc: subprocess.Popen[str], timeout: float = 180, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the playbook ended (rc {proc.returncode}) before the moment the test waits for")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(interval)
