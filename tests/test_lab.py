"""Tests of the real SSH lab itself (tests/lab): isolation, networking, lifecycle, cleanup.

Everything here runs against real sshd processes; the point is to prove that what
tests do inside lab hosts can never reach the real machine, and that no lab run
leaves namespaces, links, processes, mounts or files behind.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab import HOST_KEY, MACHINE_HOST_KEYS, PROJECT_ROOT, Lab, LabError

pytestmark = pytest.mark.lab  # every test here builds or uses a lab of network namespaces

FORWARD_SYSCTLS = ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding")


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _forwarding() -> dict[str, str]:
    return {p: Path(p).read_text() for p in FORWARD_SYSCTLS}


def _route_dev(addr: str, netns: str | None = None) -> str:
    ns = ["-n", netns] if netns else []
    words = subprocess.run(["ip", *ns, "route", "get", addr], capture_output=True, text=True, check=True).stdout.split()
    assert "via" not in words, words
    return words[words.index("dev") + 1]


# ------------------------------------------------------------- the session lab


def test_each_host_answers_with_its_own_hostname(lab: Lab) -> None:
    for name in lab.hosts:
        assert lab.ssh(name, "hostname").stdout.strip() == name
        assert lab.ssh(name, "cat /etc/hostname").stdout.strip() == name


def test_sshd_is_pid_1(lab: Lab) -> None:
    for name in lab.hosts:
        out = lab.ssh(name, "cat /proc/1/comm; readlink /proc/1/exe; cat /proc/1/cmdline | tr '\\0' ' '").stdout.split("\n")
        assert out[0] == "sshd"
        assert out[1] == "/usr/sbin/sshd"
        assert f"HostKey={HOST_KEY}" in out[2]


def test_writes_stay_inside_one_host(lab: Lab) -> None:
    real_login_defs = _sha("/etc/login.defs")
    try:
        lab.ssh(
            "h01",
            "useradd -m -s /bin/sh nslabprobe && chage -M 33 nslabprobe"
            " && sed -i 's/^PASS_MAX_DAYS.*/PASS_MAX_DAYS 42/' /etc/login.defs",
        )
        assert lab.ssh("h01", "getent passwd nslabprobe").stdout.startswith("nslabprobe:")
        assert "33" in lab.ssh("h01", "chage -l nslabprobe | grep -i maximum").stdout
        assert lab.ssh("h01", "grep '^PASS_MAX_DAYS' /etc/login.defs").stdout.split() == ["PASS_MAX_DAYS", "42"]
        assert (lab.hosts["h01"].upper / "etc" / "login.defs").exists()  # copied up, not written through
        # the real machine and the other hosts are untouched
        with pytest.raises(KeyError):
            pwd.getpwnam("nslabprobe")
        assert _sha("/etc/login.defs") == real_login_defs
        for other in ("h02", "h03"):
            assert lab.ssh(other, "getent passwd nslabprobe", check=False).returncode == 2
            assert lab.ssh(other, "sha256sum /etc/login.defs").stdout.split()[0] == real_login_defs
    finally:
        lab.reset_host("h01")
    # reset_host gives back a pristine copy of the machine
    assert lab.ssh("h01", "getent passwd nslabprobe", check=False).returncode == 2
    assert lab.ssh("h01", "sha256sum /etc/login.defs").stdout.split()[0] == real_login_defs
    assert lab.ssh("h01", "hostname").stdout.strip() == "h01"


def test_machine_host_keys_and_root_home_are_hidden(lab: Lab) -> None:
    machine_root = set(os.listdir("/root"))
    # A checkout under /root (cloned into ~ as root) is bound into each host at its own path, so
    # its top folder is the one name of the machine's /root a host may show.
    shown = {".ssh"}
    if PROJECT_ROOT.is_relative_to("/root"):
        shown.add(PROJECT_ROOT.relative_to("/root").parts[0])
    for name in lab.hosts:
        for key in MACHINE_HOST_KEYS:
            assert lab.ssh(name, f"test -e {key}", check=False).returncode == 1, key
        assert lab.ssh(name, f"test -s {HOST_KEY} && test -s {HOST_KEY}.pub", check=False).returncode == 0
        host_root = set(lab.ssh(name, "ls -A /root").stdout.split())
        assert ".ssh" in host_root
        assert host_root & machine_root <= shown, host_root & machine_root
        assert lab.ssh(name, "ls -A /root/.ssh").stdout.split() == ["authorized_keys"]
        assert lab.ssh(name, "stat -c %a /root /root/.ssh /root/.ssh/authorized_keys").stdout.split() == ["700", "700", "600"]
    assert oct(lab.client_key.stat().st_mode & 0o777) == "0o600"


def test_every_lab_address_routes_via_the_bridge_and_no_default_route(lab: Lab) -> None:
    for h in lab.hosts.values():
        assert _route_dev(h.ipv4) == lab.bridge
        assert _route_dev(h.ipv6) == lab.bridge
        for family in ("-4", "-6"):
            out = subprocess.run(["ip", "-n", h.netns, family, "route", "show", "default"], capture_output=True, text=True, check=True)
            assert out.stdout.strip() == "", out.stdout
        assert lab.ssh(h.name, "ip route show default; ip -6 route show default").stdout.strip() == ""


def test_project_and_its_venv_are_visible_read_only(lab: Lab, project_root: Path) -> None:
    """The agent runs inside hosts from this checkout, wherever it lies (CI clones into /tmp)."""
    done = lab.ssh("h01", f"{project_root}/.venv/bin/nanbu-secops --version && touch {project_root}/x", check=False)
    assert done.stdout.startswith("nanbu-secops ")
    assert done.returncode != 0 and "Read-only file system" in done.stderr
    assert not (project_root / "x").exists()


def test_proc_sys_read_only_but_net_writable(lab: Lab) -> None:
    before = _forwarding()
    script = textwrap.dedent(
        """\
        set -e
        awk '$2 == "/proc/sys" {print $4}' /proc/mounts | cut -d, -f1
        awk '$2 == "/proc/sys/net" {print $4}' /proc/mounts | cut -d, -f1
        test -w /proc/sys/vm/swappiness && echo vm-writable || echo vm-readonly
        (echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo kernel-writable || echo kernel-readonly
        f=/proc/sys/net/ipv4/conf/eth0/accept_local
        old=$(cat $f); echo 1 > $f; cat $f; echo "$old" > $f
        """
    )
    out = lab.ssh("h02", script).stdout.split()
    assert out == ["ro", "rw", "vm-readonly", "kernel-readonly", "1"], out
    assert _forwarding() == before


def test_testinfra_sees_what_ssh_sees(lab: Lab) -> None:
    host = lab.testinfra("h02")
    assert host.file("/etc/hostname").content_string.strip() == "h02"
    assert host.check_output("hostname") == lab.ssh("h02", "hostname").stdout.strip()
    root = host.user("root")
    assert (root.uid, root.home) == (0, "/root")
    assert host.file(HOST_KEY).exists
    assert not host.file("/etc/ssh/ssh_host_ed25519_key").exists
    assert host.file("/proc/1/comm").content_string.strip() == "sshd"


def test_ipv6_reachability(lab: Lab) -> None:
    for h in lab.hosts.values():
        with socket.create_connection((h.ipv6, 22), timeout=5) as s:
            assert s.recv(64).startswith(b"SSH-2.0-")
        r = subprocess.run(["ssh", "-F", str(lab.ssh_config), h.ipv6, "hostname"], capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert (r.returncode, r.stdout.strip()) == (0, h.name), r.stderr


def test_stop_and_start_keep_the_upper_dir(lab: Lab) -> None:
    h = lab.hosts["h03"]
    lab.ssh("h03", "echo kept > /root/nslab-marker")
    lab.stop_host("h03")
    with pytest.raises(OSError):
        socket.create_connection((h.ipv4, 22), timeout=2).close()
    assert lab.ssh("h02", "hostname").stdout.strip() == "h02"  # others unaffected
    lab.start_host("h03")
    try:
        assert lab.ssh("h03", "cat /root/nslab-marker; hostname; cat /proc/1/comm").stdout.split() == ["kept", "h03", "sshd"]
    finally:
        lab.ssh("h03", "rm -f /root/nslab-marker")


def test_ssh_failure_reports_command_rc_and_stderr(lab: Lab) -> None:
    with pytest.raises(subprocess.CalledProcessError) as exc:
        lab.ssh("h01", "echo oops >&2; exit 7")
    text = str(exc.value)
    assert "rc=7" in text and "oops" in text and "exit 7" in text
    assert lab.ssh("h01", "cat", input="piped\n").stdout == "piped\n"


def test_ansible_playbook_runs_on_every_host(lab: Lab, tmp_path: Path) -> None:
    playbook = tmp_path / "probe.yml"
    playbook.write_text(
        textwrap.dedent(
            """\
            - hosts: lab
              gather_facts: true
              gather_subset: [min]
              tasks:
                - ansible.builtin.assert:
                    that: ansible_facts.hostname == inventory_hostname
                - ansible.builtin.copy:
                    content: "{{ inventory_hostname }}\\n"
                    dest: /tmp/nslab-ansible-probe
            """
        )
    )
    r = lab.ansible_playbook(playbook, env={"ANSIBLE_REMOTE_TMP": "/tmp/.ansible-remote"})
    assert r.returncode == 0, r.stdout + r.stderr
    for name in lab.hosts:
        assert f"{name}" in r.stdout and "failed=0" in r.stdout
        assert lab.ssh(name, "cat /tmp/nslab-ansible-probe").stdout.strip() == name
    assert not Path("/tmp/nslab-ansible-probe").exists()  # host /tmp is a private tmpfs


# ------------------------------------------- separate small labs: lifecycle & cleanup


def _free_net() -> dict[str, Any]:
    """Network parameters no other lab on this machine uses (others may run in parallel)."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    for k in range(100, 200):
        bridge = f"nslt{k}br"
        if f" {bridge}:" in links:
            continue
        v4, v6 = f"169.254.{k}.1", f"fd6e:616e:6275:{k}::1"
        routes = [subprocess.run(["ip", "route", "get", a], capture_output=True, text=True).stdout for a in (v4, v6)]
        if all(" via " in r for r in routes):  # not on-link anywhere yet
            return dict(bridge=bridge, ipv4_net=f"169.254.{k}.0/24", ipv6_net=f"fd6e:616e:6275:{k}::/64",
                        ns_prefix=f"nslt{k}-", veth_prefix=f"nslt{k}v")
    raise AssertionError("no free lab network")


@pytest.fixture
def small_lab_args() -> Iterator[dict[str, Any]]:
    """Free network parameters plus a fresh short workdir; checks ip_forward is never touched."""
    before = _forwarding()
    workdir = Path(tempfile.mkdtemp(prefix="nslt-", dir="/tmp"))
    net = _free_net()
    yield {"workdir": workdir, **net}
    Path(f"/run/lock/nslab-{net['bridge']}.lock").unlink(missing_ok=True)  # one-off bridge: no litter
    assert _forwarding() == before
    if workdir.is_dir() and not any(workdir.iterdir()):
        workdir.rmdir()


def _lab_pids(lab: Lab) -> set[int]:
    """Every process inside the lab's namespaces (launchers, sshd PID 1s, sessions)."""
    pids: set[int] = set()
    for h in lab.hosts.values():
        out = subprocess.run(["ip", "netns", "pids", h.netns], capture_output=True, text=True).stdout
        pids.update(int(p) for p in out.split())
    return pids


def _assert_nothing_left(lab: Lab, pids: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert lab.ns_prefix not in netns, netns
    assert lab.veth_prefix not in links and f" {lab.bridge}:" not in links, links
    alive = [p for p in pids if Path(f"/proc/{p}").exists() and Path(f"/proc/{p}/cmdline").read_bytes()]
    assert not alive, alive  # zombies (empty cmdline) are this machine's non-reaping init
    assert str(lab.workdir) not in Path("/proc/self/mountinfo").read_text()
    assert not any(str(lab.workdir) in _cmd(p) for p in os.listdir("/proc") if p.isdigit())
    assert not lab.workdir.exists()


def _cmd(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_small_lab_up_down_leaves_nothing(small_lab_args: dict[str, Any]) -> None:
    args = dict(small_lab_args)
    with Lab(args.pop("workdir"), 1, **args) as small:
        assert small.ssh("h01", "hostname").stdout.strip() == "h01"
        assert _route_dev(small.hosts["h01"].ipv4) == small.bridge
        pids = _lab_pids(small)
        assert len(pids) >= 2
    _assert_nothing_left(small, pids)


def test_exception_inside_with_tears_down(small_lab_args: dict[str, Any]) -> None:
    args = dict(small_lab_args)
    small = Lab(args.pop("workdir"), ["a1", "a2"], **args)
    pids: set[int] = set()
    with pytest.raises(ZeroDivisionError), small:
        pids = _lab_pids(small)
        raise ZeroDivisionError("inside the lab's with block")
    assert pids
    _assert_nothing_left(small, pids)


def test_failed_up_halfway_leaves_nothing(small_lab_args: dict[str, Any]) -> None:
    """A 70-character name passes validation but `hostname` rejects it inside the host,
    so the first host comes up and the second dies during start-up."""
    args = dict(small_lab_args)
    small = Lab(args.pop("workdir"), ["ok1", "x" * 70], **args)
    with pytest.raises(LabError) as exc:
        small.up()
    assert "x" * 70 in str(exc.value) and "log" in str(exc.value)
    _assert_nothing_left(small)


def test_rerun_after_sigkill_cleans_stale_leftovers(small_lab_args: dict[str, Any], project_root: Path) -> None:
    args = dict(small_lab_args)
    crashed_wd = args.pop("workdir")
    crash = textwrap.dedent(
        f"""\
        import os, signal, sys
        sys.path.insert(0, {str(project_root)!r})
        from tests.lab import Lab
        Lab({str(crashed_wd)!r}, 2, **{args!r}).up()
        print("UP", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    r = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, timeout=120)
    assert r.returncode == -9 and "UP" in r.stdout, r.stderr
    # PDEATHSIG took the hosts down; namespaces, links and the workdir are left over
    deadline = time.monotonic() + 10
    while any(HOST_KEY in _cmd(p) and str(crashed_wd) in _cmd(p) for p in os.listdir("/proc") if p.isdigit()):
        assert time.monotonic() < deadline, "hosts survived their SIGKILLed owner"
        time.sleep(0.05)
    assert f"{args['ns_prefix']}h01" in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert crashed_wd.exists()
    new_wd = Path(tempfile.mkdtemp(prefix="nslt-", dir="/tmp"))
    with Lab(new_wd, 2, **args) as rerun:
        assert not crashed_wd.exists()  # stale workdir of the crashed run removed
        assert rerun.ssh("h02", "hostname").stdout.strip() == "h02"
        pids = _lab_pids(rerun)
    _assert_nothing_left(rerun, pids)


def test_cli_up_and_down(small_lab_args: dict[str, Any], project_root: Path) -> None:
    args = dict(small_lab_args)
    wd = args.pop("workdir")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in args.items()]
    cli = [sys.executable, "-m", "tests.lab"]
    up = subprocess.run([*cli, "up", "--workdir", str(wd), "--hosts", "2", *flags], cwd=project_root, capture_output=True,
                        text=True, timeout=120)
    try:
        assert up.returncode == 0, up.stderr
        assert f"ssh_config: {wd}/ssh_config" in up.stdout and f"inventory:  {wd}/inventory.ini" in up.stdout
        r = subprocess.run(["ssh", "-F", f"{wd}/ssh_config", "h02", "hostname"], capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert r.stdout.strip() == "h02", r.stderr
        survivor = Lab.from_state(wd)
        pids = _lab_pids(survivor)
        # a lab left running by the CLI owns the bridge: another Lab fails fast, clearly
        intruder_wd = Path(tempfile.mkdtemp(prefix="nslt-", dir="/tmp"))
        t0 = time.monotonic()
        with pytest.raises(LabError, match="python -m tests.lab down"):
            Lab(intruder_wd, 1, **args).up()
        assert time.monotonic() - t0 < 5
        intruder_wd.rmdir()
        assert survivor.ssh("h01", "hostname").stdout.strip() == "h01"  # untouched by the intruder
    finally:
        down = subprocess.run([*cli, "down", "--workdir", str(wd)], cwd=project_root, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    _assert_nothing_left(survivor, pids)


def test_bad_parameters_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Lab(tmp_path, ["ok", "bad name"])
    with pytest.raises(ValueError):
        Lab(tmp_path, 1, ipv6_net="fd00::/64")
    with pytest.raises(ValueError):
        Lab(Path("/tmp") / ("x" * 80), 1)
