"""Real SSH test lab: lightweight "hosts" made of Linux namespaces on this machine.

Tests and benchmarks must act on real sshd instances, never on mocks, yet must never
change the real machine.  Each lab host therefore is:

* a network namespace ``<ns_prefix><name>`` whose ``eth0`` is one end of a veth pair;
  the other end (``<veth_prefix><i>``) is enslaved to the lab bridge, which carries
  link-local IPv4 and a ULA IPv6 prefix.  No default route, no forwarding: the only
  traffic is between this machine and the lab addresses;
* a private mount/UTS/PID namespace with an overlayfs whose lower layer is ``/`` and
  whose upper layer is a per-host directory, so ``useradd``, ``sed -i /etc/...``,
  wtmp, hostname... change only that host's upper dir;
* stock ``/usr/sbin/sshd`` chrooted into the overlay and running as PID 1 of the PID
  namespace: killing it kills everything started inside the host, and the overlay
  mounts vanish with the mount namespace.

The lab is guarded by a ``flock`` on ``/run/lock/nslab-<bridge>.lock`` that is held by
the owning process *and inherited by every host launcher*: while any host of a lab
lives the lock is taken, so whoever acquires it knows that everything carrying the lab's
names is a leftover of a crashed run and may be removed.  Launchers also get
``PR_SET_PDEATHSIG`` (unless ``persist=True``), so a SIGKILLed test run takes its hosts
with it and the next run only has to delete namespaces, links and the old workdir.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import ctypes
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = [
    "HOST_KEY",
    "Lab",
    "LabCommandError",
    "LabError",
    "LabHost",
    "MACHINE_HOST_KEYS",
    "PROJECT_ROOT",
    "WATCHED_DIRS",
    "WATCHED_FILES",
    "host_files_snapshot",
    "snapshot_diff",
]

#: Path (inside every lab host) of the per-host sshd key; also the marker by which
#: stale lab processes are recognised.
HOST_KEY = "/etc/ssh/lab_host_ed25519_key"
#: Repository root (``tests/lab/__init__.py`` -> two levels up); never hard-coded.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: The machine's own host keys, hidden inside hosts by overlay whiteouts.
MACHINE_HOST_KEYS = tuple(
    f"/etc/ssh/ssh_host_{kind}_key{ext}" for kind in ("rsa", "ecdsa", "ed25519") for ext in ("", ".pub")
)
#: Real-machine files that the test-suite must never change (see tests/conftest.py).
WATCHED_FILES = (
    "/etc/login.defs",
    "/etc/shadow",
    "/etc/passwd",
    "/etc/group",
    "/etc/gshadow",
    "/etc/ssh/sshd_config",
)
WATCHED_DIRS = ("/etc/ssh", "/etc/ssh/sshd_config.d")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MARKER = ".nslab-workdir"  # only directories carrying it are ever rm -rf'ed
_SOCK_SLACK = 40 + 17 + 4  # %C hash + ssh's temporary suffix + "cm-"
_UNIX_PATH_MAX = 107


class LabError(RuntimeError):
    """The lab could not be brought up, used or torn down."""


class LabCommandError(subprocess.CalledProcessError):
    """A command run through the lab failed; ``str()`` shows command, rc and stderr."""

    def __str__(self) -> str:
        cmd = self.cmd if isinstance(self.cmd, str) else " ".join(map(str, self.cmd))
        out = (self.stdout or "")[-3000:]
        err = (self.stderr or "")[-3000:]
        return f"command {cmd!r} exited with rc={self.returncode}\n--- stderr ---\n{err}\n--- stdout ---\n{out}"


@dataclass
class LabHost:
    """One lab host: addresses and the paths a test may want to inspect."""

    name: str
    index: int  # 1-based position; determines addresses and veth name
    ipv4: str
    ipv6: str
    netns: str
    veth: str
    dir: Path  # holds upper/, work/, merged/ and the host key
    upper: Path  # upper layer of the overlay: everything this host changed
    log: Path  # sshd's stderr (sshd -e)


# ---------------------------------------------------------------------------- helpers


def _run(cmd: Sequence[str], *, input: str | None = None, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a local helper command (ip, ssh-keygen...), raising with its stderr on failure."""
    r = subprocess.run(
        list(cmd),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and r.returncode:
        raise LabCommandError(r.returncode, list(cmd), r.stdout, r.stderr)
    return r


def _pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (this machine's init never reaps)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _kill_and_wait(pids: set[int], timeout: float = 10) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            raise LabError(f"processes did not die after SIGKILL: {sorted(p for p in pids if _alive(p))}")
        time.sleep(0.01)


def _netns_list() -> list[str]:
    return [line.split()[0] for line in _run(["ip", "netns", "list"]).stdout.splitlines() if line.strip()]


def _links() -> list[str]:
    out = _run(["ip", "-o", "link", "show"]).stdout
    return [line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines() if line.strip()]


def _mounts_under(path: Path) -> list[str]:
    """Mount points (in this mount namespace) at or below ``path``."""
    found = []
    prefix = str(path).rstrip("/") + "/"
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mnt = line.split()[4].encode().decode("unicode_escape")  # undo \040 escapes
        if mnt == str(path) or mnt.startswith(prefix):
            found.append(mnt)
    return found


def _safe_rmtree(path: Path) -> None:
    """rm -rf a lab workdir, but never through a live mount and never a foreign dir."""
    if not path.exists():
        return
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
        return
    if not (path / _MARKER).exists():
        raise LabError(f"refusing to remove {path}: it lacks the {_MARKER} marker")
    mounts = _mounts_under(path)
    if mounts:
        raise LabError(f"refusing to remove {path}: still mounted: {mounts}")
    shutil.rmtree(path)


def _read_owner(fd: int) -> dict[str, Any]:
    """Content of a lab lock file (see ``Lab._write_lock_owner``); {} if empty/garbled."""
    try:
        owner = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:  # runs in the forked child before exec
    """PR_SET_PDEATHSIG=SIGKILL: a crashed (SIGKILLed) owner takes its hosts with it."""
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


# ------------------------------------------------------------- process-wide teardown

_LIVE: dict[int, Lab] = {}
_BRIDGES_IN_USE: set[str] = set()
_REG_LOCK = threading.Lock()
_PREV_SIGTERM: Any = None


def _teardown_all() -> None:
    for lab in list(_LIVE.values()):
        with contextlib.suppress(Exception):
            lab.down()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Tear all labs down, then behave as the previous SIGTERM disposition would."""
    _teardown_all()
    prev = _PREV_SIGTERM
    signal.signal(signal.SIGTERM, prev if prev is not None else signal.SIG_DFL)
    if callable(prev):
        prev(signum, frame)
    elif prev != signal.SIG_IGN:
        os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm() -> None:
    global _PREV_SIGTERM
    if threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    if current is not _on_sigterm:
        _PREV_SIGTERM = current
        signal.signal(signal.SIGTERM, _on_sigterm)


atexit.register(_teardown_all)


# ------------------------------------------------------------------------------ Lab


class Lab:
    """A set of namespace-based SSH hosts; see the module docstring for the design.

    ``names``: list of host names or a count ``n`` (-> ``h01..hNN``).  The network
    parameters exist so that a second, independent lab (e.g. in the lab's own tests)
    can run next to the default one.  ``persist=True`` (used by ``python -m tests.lab
    up``) lets hosts outlive this process: no PDEATHSIG, no atexit/SIGTERM teardown.
    """

    def __init__(
        self,
        workdir: Path | str,
        names: list[str] | int = 3,
        *,
        bridge: str = "nslabbr0",
        ipv4_net: str = "169.254.77.0/24",
        ipv6_net: str = "fd6e:616e:6275::/64",
        ns_prefix: str = "nslab-",
        veth_prefix: str = "nslab-v",
        start_timeout: float = 30.0,
        lock_timeout: float = 600.0,
        persist: bool = False,
    ) -> None:
        self.workdir = Path(workdir).absolute()
        if isinstance(names, int):
            names = [f"h{i:02d}" for i in range(1, names + 1)]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"need at least one host and unique names, got {names!r}")
        for n in names:
            if not _NAME_RE.match(n):
                raise ValueError(f"bad host name {n!r}")
        v4, v6 = ipaddress.IPv4Network(ipv4_net), ipaddress.IPv6Network(ipv6_net)
        if v6.overlaps(ipaddress.IPv6Network("fd00::/64")):
            raise ValueError("fd00::/64 is this machine's uplink; pick another IPv6 prefix")
        if len(names) + 11 > min(v4.num_addresses, 255):
            raise ValueError(f"too many hosts for {v4}")
        if len(bridge) > 15 or len(f"{veth_prefix}{len(names)}") > 15:
            raise ValueError("interface names are limited to 15 characters")
        if len(str(self.workdir)) + _SOCK_SLACK > _UNIX_PATH_MAX:
            raise ValueError(f"workdir path too long for ssh control sockets: {self.workdir}")
        self.bridge, self.ns_prefix, self.veth_prefix = bridge, ns_prefix, veth_prefix
        self.ipv4_net, self.ipv6_net = str(v4), str(v6)
        self.bridge_ipv4, self.bridge_ipv6 = str(v4[1]), str(v6[1])
        # IPv6 host part reuses the IPv4 host digits (h01 -> .11 and ::11) for readability
        self.start_timeout, self.lock_timeout, self.persist = start_timeout, lock_timeout, persist
        self.ssh_config = self.workdir / "ssh_config"
        self.known_hosts = self.workdir / "known_hosts"
        self.inventory = self.workdir / "inventory.ini"
        self.client_key = self.workdir / "client_ed25519"
        self.state_file = self.workdir / "state.json"
        self.lock_path = Path(f"/run/lock/nslab-{bridge}.lock")
        self.hosts: dict[str, LabHost] = {}
        for i, name in enumerate(names, 1):
            hdir = self.workdir / "hosts" / name
            self.hosts[name] = LabHost(
                name=name,
                index=i,
                ipv4=str(v4[10 + i]),
                ipv6=str(v6[int(str(10 + i), 16)]),  # ::11 for h01: same digits as the IPv4
                netns=f"{ns_prefix}{name}",
                veth=f"{veth_prefix}{i}",
                dir=hdir,
                upper=hdir / "upper",
                log=self.workdir / f"{name}.log",
            )
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock_fd: int | None = None
        self._active = False

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def __repr__(self) -> str:
        return f"Lab({str(self.workdir)!r}, {list(self.hosts)!r}, bridge={self.bridge!r})"

    def up(self) -> Lab:
        """Clean leftovers, build network + upper dirs, start all hosts concurrently.

        Any failure tears down whatever was built (and the workdir) before re-raising.
        """
        if os.geteuid() != 0:
            raise LabError("the lab needs root (namespaces, overlayfs, veth)")
        if self._active:
            return self
        with _REG_LOCK:
            if self.bridge in _BRIDGES_IN_USE:
                raise LabError(f"bridge {self.bridge} is already used by another Lab in this process")
            _BRIDGES_IN_USE.add(self.bridge)
        self._active = True
        if not self.persist:
            _LIVE[id(self)] = self
            _install_sigterm()
        try:
            if self.workdir.exists() and any(self.workdir.iterdir()):
                raise LabError(f"workdir {self.workdir} is not empty")
            self._acquire_lock(self.lock_timeout)
            self._clear_stale()
            self.workdir.mkdir(parents=True, exist_ok=True)
            (self.workdir / _MARKER).touch()
            os.chmod(self.workdir, 0o700)
            self._write_lock_owner(True)
            self._make_keys()
            self._make_network()
            for h in self.hosts.values():
                self._seed(h)
            self._write_client_files()
            self._verify_routes()
            for h in self.hosts.values():  # spawn from this thread (PDEATHSIG is per thread)
                self._spawn(h)
            self._wait_all(list(self.hosts.values()))
            self._write_state()
        except BaseException:
            with contextlib.suppress(Exception):
                self.down()
            raise
        return self

    def down(self) -> None:
        """Always-safe teardown: masters, hosts, leftover processes, links, netns, workdir."""
        if not self._active:
            return
        errors: list[str] = []
        try:
            self._close_masters()
            for name in list(self._procs):
                try:
                    self._kill_host(name)
                except Exception as e:  # keep tearing down the rest
                    errors.append(f"{name}: {e}")
            try:
                if self._lock_fd is None:  # e.g. failure while waiting for the lock
                    return
                self._clear_network()
                _safe_rmtree(self.workdir)
                self._write_lock_owner(False)
            except Exception as e:
                errors.append(str(e))
        finally:
            self._release_lock()
            self._active = False
            _LIVE.pop(id(self), None)
            with _REG_LOCK:
                _BRIDGES_IN_USE.discard(self.bridge)
        if errors:
            raise LabError("lab teardown incomplete:\n" + "\n".join(errors))

    def stop_host(self, name: str) -> None:
        """Take one host down (kills its whole PID namespace); its upper dir is kept."""
        h = self.hosts[name]
        self._close_masters(only=h)
        self._kill_host(name)

    def start_host(self, name: str) -> None:
        """(Re)start a stopped host on its existing upper dir and wait until SSH works."""
        h = self.hosts[name]
        if name in self._procs:
            raise LabError(f"host {name} is already running")
        self._spawn(h)
        self._wait_all([h])

    def reset_host(self, name: str) -> None:
        """Stop a host, wipe and re-seed its upper dir (pristine copy of the machine), start it."""
        h = self.hosts[name]
        if name in self._procs:
            self.stop_host(name)
        for sub in ("upper", "work", "merged"):
            if _mounts_under(h.dir / sub):
                raise LabError(f"{h.dir / sub} is mounted; not wiping it")
            shutil.rmtree(h.dir / sub, ignore_errors=True)
        self._seed(h)
        self.start_host(name)

    # ------------------------------------------------------------------- clients

    def ssh(self, name: str, command: str, *, input: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``command`` (a shell string) as root on host ``name`` over real ssh."""
        if name not in self.hosts:
            raise KeyError(f"no lab host {name!r}; hosts: {list(self.hosts)}")
        r = _run(["ssh", "-F", str(self.ssh_config), name, command], input=input, check=False, timeout=timeout)
        if check and r.returncode:
            raise LabCommandError(r.returncode, f"ssh {name} {command}", r.stdout, r.stderr)
        return r

    def testinfra(self, name: str) -> Any:
        """A testinfra host using the lab's ssh_config (and thus its shared connections)."""
        import testinfra

        if name not in self.hosts:
            raise KeyError(f"no lab host {name!r}")
        return testinfra.get_host(f"ssh://{name}", ssh_config=str(self.ssh_config))

    def ansible_playbook(self, playbook: Path | str, *args: str, env: dict[str, str] | None = None, check: bool = False,
                         timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run the venv's ansible-playbook against the lab inventory; output is captured."""
        exe = Path(sys.executable).parent / "ansible-playbook"
        if not exe.exists():
            exe = Path(shutil.which("ansible-playbook") or "ansible-playbook")
        home = self.workdir / "ansible"
        full_env = {
            **os.environ,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_HOME": str(home),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(home / "cp"),
            **(env or {}),
        }
        cmd = [str(exe), "-i", str(self.inventory), *args, str(playbook)]
        r = subprocess.run(cmd, env=full_env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode:
            raise LabCommandError(r.returncode, cmd, r.stdout, r.stderr)
        return r

    # ------------------------------------------------------------------ internals

    def _acquire_lock(self, timeout: float) -> None:
        """Serialise labs sharing a bridge; a free lock proves leftovers are stale.

        A lab of another test session is waited for; a lab left running by
        ``python -m tests.lab up`` never goes away by itself, so that fails at once.
        """
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + timeout
        warned = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                owner = _read_owner(fd)
                if owner.get("persist") or time.monotonic() > deadline:
                    os.close(fd)
                    wd = owner.get("workdir", "?")
                    raise LabError(
                        f"bridge {self.bridge} is in use by a running lab (workdir {wd}); if it was started by "
                        f"`python -m tests.lab up`, stop it with `python -m tests.lab down --workdir {wd}`"
                    ) from None
                if not warned:
                    print(f"nslab: waiting up to {timeout:.0f}s for the lab on {self.bridge} (workdir {owner.get('workdir')})",
                          file=sys.stderr)
                    warned = True
                time.sleep(0.2)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _write_lock_owner(self, active: bool) -> None:
        """Record who holds the bridge: lets the next owner find a crashed run's workdir."""
        assert self._lock_fd is not None
        text = json.dumps({"workdir": str(self.workdir), "persist": self.persist, "pid": os.getpid()}) if active else ""
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, text.encode(), 0)

    def _clear_stale(self) -> None:
        """Remove leftovers of a crashed run of this lab config (lock must be held)."""
        assert self._lock_fd is not None
        stale = _read_owner(self._lock_fd).get("workdir")
        stale_wd = Path(stale) if stale else None
        named = {n: os.stat(f"/run/netns/{n}").st_ino for n in _netns_list()}
        ours = [n for n in named if n.startswith(self.ns_prefix)]
        victims: set[int] = set()
        for ns in ours:
            victims.update(int(p) for p in _run(["ip", "netns", "pids", ns]).stdout.split())
        root_ns = os.stat("/proc/self/ns/net").st_ino
        foreign = {ino for n, ino in named.items() if n not in ours}
        for pid in _pids():
            cmd = _cmdline(pid)
            if HOST_KEY in cmd:
                try:
                    ino = os.stat(f"/proc/{pid}/ns/net").st_ino
                except OSError:
                    continue
                if ino != root_ns and ino not in foreign:  # orphan of a crashed lab
                    victims.add(pid)
            elif stale_wd and stale_wd != self.workdir and cmd.startswith(f"ssh: {stale_wd}/"):
                victims.add(pid)  # ssh ControlPersist master of the crashed run
        victims.discard(os.getpid())
        _kill_and_wait(victims)
        self._clear_network(all_stale=True)
        if stale_wd and stale_wd != self.workdir and stale_wd.is_dir():
            with contextlib.suppress(LabError):
                _safe_rmtree(stale_wd)

    def _clear_network(self, all_stale: bool = False) -> None:
        """Delete veths, bridge and namespaces (our hosts', or every one with our prefixes)."""
        ns_names = set(_netns_list())
        ns_set = {n for n in ns_names if n.startswith(self.ns_prefix)} if all_stale else {h.netns for h in self.hosts.values()} & ns_names
        for ns in ns_set:  # processes a test may have started with `ip netns exec`
            pids = {int(p) for p in _run(["ip", "netns", "pids", ns], check=False).stdout.split()}
            _kill_and_wait(pids)
        veth_re = re.compile(rf"^{re.escape(self.veth_prefix)}\d+$")
        links = [link for link in _links() if veth_re.match(link)] + [name for name in _links() if name == self.bridge]
        batch = [f"link del {link}" for link in links] + [f"netns del {ns}" for ns in sorted(ns_set)]
        if batch:
            _run(["ip", "-force", "-batch", "-"], input="\n".join(batch) + "\n", check=False)
        left = ([name for name in _links() if veth_re.match(name) or name == self.bridge]
                + [n for n in _netns_list() if n in ns_set])
        if left:
            raise LabError(f"could not delete {left}")

    def _make_keys(self) -> None:
        """Client key plus one host key per host, generated concurrently (ssh-keygen)."""
        jobs = [(self.client_key, "nslab-client")]
        for h in self.hosts.values():
            h.dir.mkdir(parents=True, exist_ok=True)
            jobs.append((h.dir / "host_ed25519_key", f"root@{h.name}"))
        procs = [
            (key, subprocess.Popen(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            for key, comment in jobs
        ]
        for key, p in procs:
            out, err = p.communicate(timeout=30)
            if p.returncode:
                raise LabError(f"ssh-keygen {key} failed: {err.decode()}")
            os.chmod(key, 0o600)

    def _make_network(self) -> None:
        """Bridge + one veth/netns per host, with one `ip -batch` per namespace."""
        lines = [
            f"link add {self.bridge} type bridge",
            f"addr add {self.bridge_ipv4}/{ipaddress.IPv4Network(self.ipv4_net).prefixlen} dev {self.bridge}",
            f"addr add {self.bridge_ipv6}/{ipaddress.IPv6Network(self.ipv6_net).prefixlen} dev {self.bridge} nodad",
            f"link set {self.bridge} up",
        ]
        for h in self.hosts.values():
            lines += [
                f"netns add {h.netns}",
                f"link add {h.veth} type veth peer name eth0 netns {h.netns}",
                f"link set {h.veth} master {self.bridge} up",
            ]
        _run(["ip", "-batch", "-"], input="\n".join(lines) + "\n")
        p4 = ipaddress.IPv4Network(self.ipv4_net).prefixlen
        p6 = ipaddress.IPv6Network(self.ipv6_net).prefixlen
        procs = []
        for h in self.hosts.values():
            batch = f"link set lo up\naddr add {h.ipv4}/{p4} dev eth0\naddr add {h.ipv6}/{p6} dev eth0 nodad\nlink set eth0 up\n"
            p = subprocess.Popen(["ip", "-n", h.netns, "-batch", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            procs.append((h, p, batch))
        for h, p, batch in procs:
            _, err = p.communicate(batch, timeout=30)
            if p.returncode:
                raise LabError(f"configuring {h.netns} failed: {err}")

    def _verify_routes(self) -> None:
        """Every lab address must route via our bridge, never via the uplink."""
        addrs = [a for h in self.hosts.values() for a in (h.ipv4, h.ipv6)]
        out = _run(["ip", "-batch", "-"], input="".join(f"route get {a}\n" for a in addrs)).stdout
        routes = {line.split()[0]: line for line in out.splitlines() if line and not line[0].isspace()}
        for a in addrs:
            words = routes.get(a, "").split()
            dev = words[words.index("dev") + 1] if "dev" in words else None
            if dev != self.bridge or "via" in words:
                raise LabError(f"lab address {a} does not route via {self.bridge}: {routes.get(a)!r}")

    def _seed(self, h: LabHost) -> None:
        """Fill a fresh upper dir: host key, whiteouts over the machine's keys, opaque /root."""
        for d in (h.upper, h.dir / "work", h.dir / "merged"):
            d.mkdir(parents=True, exist_ok=True)
        etc_ssh = h.upper / "etc" / "ssh"
        etc_ssh.mkdir(parents=True, exist_ok=True)
        os.chmod(h.upper / "etc", 0o755)
        os.chmod(etc_ssh, 0o755)
        key = etc_ssh / Path(HOST_KEY).name
        shutil.copyfile(h.dir / "host_ed25519_key", key)
        os.chmod(key, 0o600)
        shutil.copyfile(h.dir / "host_ed25519_key.pub", f"{key}.pub")
        os.chmod(f"{key}.pub", 0o644)
        for path in MACHINE_HOST_KEYS:  # overlay whiteout = char device 0/0
            os.mknod(h.upper / path.lstrip("/"), stat.S_IFCHR | 0o600, os.makedev(0, 0))
        root = h.upper / "root"
        (root / ".ssh").mkdir(parents=True, mode=0o700)
        os.chmod(root, 0o700)
        os.setxattr(root, "trusted.overlay.opaque", b"y")  # hide the machine's /root
        auth = root / ".ssh" / "authorized_keys"
        auth.write_text(Path(f"{self.client_key}.pub").read_text())
        os.chmod(auth, 0o600)
        (h.upper / "etc" / "hostname").write_text(f"{h.name}\n")
        hosts = Path("/etc/hosts").read_text() if Path("/etc/hosts").exists() else ""
        hosts += "\n# nanbu-secops lab\n" + "".join(f"{o.ipv4} {o.name}\n" for o in self.hosts.values())
        (h.upper / "etc" / "hosts").write_text(hosts)

    def _write_client_files(self) -> None:
        """known_hosts, ssh_config and the Ansible inventory."""
        known = []
        for h in self.hosts.values():
            pub = (h.dir / "host_ed25519_key.pub").read_text().split()
            known.append(f"{h.name},{h.ipv4},{h.ipv6} {pub[0]} {pub[1]}\n")
        self.known_hosts.write_text("".join(known))
        common = (
            f"  User root\n  IdentityFile {self.client_key}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts}\n  GlobalKnownHostsFile /dev/null\n"
            f"  StrictHostKeyChecking yes\n  UpdateHostKeys no\n"
            f"  ControlMaster auto\n  ControlPath {self.workdir}/cm-%C\n  ControlPersist 120\n"
            f"  BatchMode yes\n  LogLevel ERROR\n  ConnectTimeout 10\n"
        )
        blocks = [f"Host {h.name}\n  HostName {h.ipv4}\n{common}" for h in self.hosts.values()]
        blocks.append(f"# raw lab addresses (ansible_host=IPv4, IPv6 literals)\nHost *\n{common}")
        self.ssh_config.write_text("\n".join(blocks))
        inv = ["[lab]"] + [f"{h.name} ansible_host={h.ipv4}" for h in self.hosts.values()]
        inv += [
            "",
            "[lab:vars]",
            "ansible_user=root",
            "ansible_python_interpreter=/usr/bin/python3",
            f"ansible_ssh_common_args='-F {self.ssh_config}'",
            "",
        ]
        self.inventory.write_text("\n".join(inv))

    def _script(self, h: LabHost) -> str:
        """Shell run as PID 1 of the new namespaces: build the host's filesystem, exec sshd."""
        q = shlex.quote
        # The project (and its .venv, for running the agent inside a host) is bound read-only
        # at the same path: lowerdir=/ alone misses it when it sits on another mount or under
        # a folder the host gets fresh (CI clones into /tmp, which is a tmpfs in the host).
        extra = f"P={q(str(PROJECT_ROOT))}\nmkdir -p \"$M$P\"\nmount --rbind \"$P\" \"$M$P\"\nmount -o remount,bind,ro \"$M$P\"\n"
        return f"""set -eu
M={q(str(h.dir / "merged"))}
i=0
# retry: the previous overlay on this upper dir may still be being released
until mount -t overlay overlay -o {q(f"lowerdir=/,upperdir={h.upper},workdir={h.dir / 'work'}")} "$M"; do
  i=$((i+1)); [ $i -lt 50 ] || exit 1; sleep 0.1
done
mount -t proc proc "$M/proc"
mount --bind "$M/proc/sys" "$M/proc/sys"
mount --bind "$M/proc/sys/net" "$M/proc/sys/net"
mount -o remount,bind,ro "$M/proc/sys"
if [ -e "$M/proc/sysrq-trigger" ]; then
  mount --bind "$M/proc/sysrq-trigger" "$M/proc/sysrq-trigger"
  mount -o remount,bind,ro "$M/proc/sysrq-trigger"
fi
mount -t sysfs -o ro sysfs "$M/sys"
mount --rbind /dev "$M/dev"
mount -t tmpfs -o mode=1777 tmpfs "$M/dev/shm"
mount -t tmpfs -o mode=1777 tmpfs "$M/tmp"
mount -t tmpfs -o mode=755 tmpfs "$M/run"
mkdir -p "$M/run/sshd" "$M/run/lock"
{extra}hostname {q(h.name)}
exec chroot "$M" /usr/sbin/sshd -D -e -o HostKey={HOST_KEY}
"""

    def _spawn(self, h: LabHost) -> None:
        """Start a host; the launcher inherits the lab lock so the lock means 'hosts alive'."""
        assert self._lock_fd is not None
        cmd = [
            "nsenter", f"--net=/run/netns/{h.netns}", "--",
            "unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--propagation", "private",
            "--", "/bin/sh", "-c", self._script(h),
        ]  # fmt: skip
        with open(h.log, "ab") as log:
            self._procs[h.name] = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(self._lock_fd,),
                start_new_session=True,
                preexec_fn=None if self.persist else _die_with_parent,
            )

    def _log_tail(self, h: LabHost, n: int = 4000) -> str:
        try:
            return h.log.read_text(errors="replace")[-n:] or "(empty)"
        except OSError:
            return "(no log)"

    def _wait_ready(self, h: LabHost, deadline: float) -> None:
        """Poll the TCP port, then prove a real login with `ssh NAME true`."""
        proc = self._procs[h.name]
        while True:
            if proc.poll() is not None:
                raise LabError(f"host {h.name} exited with rc={proc.returncode} while starting; sshd log {h.log}:\n{self._log_tail(h)}")
            try:
                socket.create_connection((h.ipv4, 22), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise LabError(f"host {h.name} ({h.ipv4}) did not open port 22 within {self.start_timeout}s; "
                                   f"sshd log {h.log}:\n{self._log_tail(h)}") from None
                time.sleep(0.02)
        r = self.ssh(h.name, "true", check=False, timeout=max(1.0, deadline - time.monotonic()))
        if r.returncode:
            raise LabError(f"`ssh {h.name} true` failed (rc={r.returncode}): {r.stderr.strip()}\nsshd log {h.log}:\n{self._log_tail(h)}")

    def _wait_all(self, hosts: list[LabHost]) -> None:
        deadline = time.monotonic() + self.start_timeout
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            futures = {pool.submit(self._wait_ready, h, deadline): h for h in hosts}
            errors = [str(f.exception()) for f in futures if f.exception() is not None]
        if errors:
            raise LabError("lab hosts failed to start:\n" + "\n".join(errors))

    def _ns_init_pid(self, launcher: int) -> int | None:
        """PID (in our namespace) of the host's PID 1: the unshare launcher's child."""
        try:
            kids = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def _kill_host(self, name: str) -> None:
        """SIGKILL the host's PID 1 (the kernel then kills the whole PID namespace)."""
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        init = self._ns_init_pid(proc.pid)
        if init is None:  # no PID 1 (yet/any more): --kill-child handles the child
            proc.kill()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(init, signal.SIGKILL)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def _close_masters(self, only: LabHost | None = None) -> None:
        """`ssh -O exit` every control master socket under the workdir (ours, testinfra's, ansible's)."""
        if only is not None:
            cmds = [["ssh", "-F", str(self.ssh_config), "-O", "exit", only.name]]
            for addr in (only.ipv4, only.ipv6):
                cmds.append(["ssh", "-F", str(self.ssh_config), "-O", "exit", addr])
        else:
            if not (self.workdir / _MARKER).exists():
                return
            socks = []
            for dirpath, dirnames, filenames in os.walk(self.workdir):
                if Path(dirpath) == self.workdir:
                    dirnames[:] = [d for d in dirnames if d != "hosts"]
                socks += [p for f in filenames if stat.S_ISSOCK(os.lstat(p := os.path.join(dirpath, f)).st_mode)]
            cmds = [["ssh", "-F", "/dev/null", "-o", f"ControlPath={s}", "-O", "exit", "lab"] for s in socks]
        procs = [subprocess.Popen(c, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in cmds]
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def _write_state(self) -> None:
        """Enough to rebuild this Lab object for `python -m tests.lab down`."""
        state = {
            "names": list(self.hosts),
            "bridge": self.bridge,
            "ipv4_net": self.ipv4_net,
            "ipv6_net": self.ipv6_net,
            "ns_prefix": self.ns_prefix,
            "veth_prefix": self.veth_prefix,
            "launchers": {n: p.pid for n, p in self._procs.items()},
        }
        self.state_file.write_text(json.dumps(state, indent=1))

    @classmethod
    def from_state(cls, workdir: Path | str) -> Lab:
        """Rebuild the Lab described by ``workdir/state.json`` (written by up())."""
        state = json.loads((Path(workdir) / "state.json").read_text())
        state.pop("launchers", None)
        names = state.pop("names")
        return cls(workdir, names, persist=True, **state)

    def force_down(self) -> None:
        """Tear down a lab started by another (possibly dead) process, e.g. the CLI's `up`.

        If the bridge lock is held by a lab with a different workdir, only this workdir is
        removed: the running lab is someone else's.
        """
        self._active = True
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            owner = _read_owner(fd).get("workdir")
        finally:
            os.close(fd)
        if owner == str(self.workdir):
            marker = f"{self.workdir}/hosts/"
            launchers = {p for p in _pids() if (c := _cmdline(p)).startswith("unshare ") and marker in c and HOST_KEY in c}
            _kill_and_wait(launchers)  # --kill-child takes each host's PID 1 along
        try:
            self._acquire_lock(timeout=10)
        except LabError:
            self._active = False
            if owner == str(self.workdir):
                raise
            # our hosts are long gone and the bridge (and names) now belong to another lab:
            # only our workdir is ours to remove
            if not any(str(self.workdir) in _cmdline(p) for p in _pids()):
                _safe_rmtree(self.workdir)
            return
        self._close_masters()
        self._clear_stale()
        self.down()


# ------------------------------------------------------------ real-machine snapshot


def host_files_snapshot() -> dict[str, str]:
    """sha256 of the real machine's security-relevant files and the /etc/ssh listings.

    Tests must never touch the real machine; conftest compares this at session end.
    """
    snap: dict[str, str] = {}
    for f in WATCHED_FILES:
        try:
            snap[f] = hashlib.sha256(Path(f).read_bytes()).hexdigest()
        except FileNotFoundError:
            snap[f] = "<missing>"
    for d in WATCHED_DIRS:
        try:
            snap[d + "/"] = " ".join(sorted(os.listdir(d)))
        except FileNotFoundError:
            snap[d + "/"] = "<missing>"
    return snap


def snapshot_diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Human-readable differences between two :func:`host_files_snapshot` results."""
    return [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
