"""Run a command under the essentials of a systemd unit's sandbox, emulated with util-linux.

systemd cannot run in the lab (sshd is PID 1 there), so tests/test_agent_sandbox.py proves that the
checks work under ``nanbu-secops-check.service`` by rebuilding what its settings do, from the
rendered unit itself (nothing here names a capability or a path of its own):

* a private mount namespace (``unshare --mount``, private propagation) in which
  ``ProtectSystem=strict`` remounts every mount read-only except the API filesystems, and
  ``ReadWritePaths=`` stays writable; ``ProtectHome=read-only`` is then already in force
  (``tmpfs``: empty folders over /home, /root, /run/user);
* ``PrivateTmp=``: fresh /tmp and /var/tmp; ``PrivateDevices=``: a /dev holding only null, zero,
  full, random, urandom, tty, pts and shm; ``ProtectKernelTunables=``/``ProtectControlGroups=``:
  /proc/sys and /sys read-only; ``ProtectKernelModules=``: /usr/lib/modules inaccessible;
* ``UMask=``; then ``setpriv`` drops the capability bounding set to ``CapabilityBoundingSet=``
  (root's capabilities after exec are exactly that set), clears the inheritable and ambient sets
  and sets ``NoNewPrivileges=``;
* last, a seccomp filter (libseccomp's Python binding, Debian's python3-seccomp):
  ``SystemCallFilter=`` as an allow-list of the groups systemd itself lists
  (``systemd-analyze syscall-filter``), other calls failing with ``SystemCallErrorNumber=``;
  ``SystemCallArchitectures=native``; ``RestrictAddressFamilies=`` (socket() of another family
  fails with EAFNOSUPPORT); ``RestrictNamespaces=yes`` (clone/unshare with a CLONE_NEW* flag and
  setns fail with EPERM, clone3 with ENOSYS so that the C library falls back to clone).

Not emulated: ``LockPersonality=``, ``RestrictRealtime=``, ``ProtectClock=``'s filter,
``ProtectKernelLogs=`` (no /dev/kmsg under ``PrivateDevices=`` anyway) and ``ProtectHostname=``.
Usage, as root (inside a lab host)::

    python3 tests/sandbox.py UNIT_FILE [--drop-cap CAP_X]... -- COMMAND [ARG]...

``--drop-cap`` removes one capability from the unit's set, to show what it is needed for.
It runs with the system python3 inside lab hosts: the standard library and python3-seccomp.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

_INNER = "NSLAB_SANDBOX_INNER"
_SECCOMP = "--seccomp-stage"
AF_MAX = 46  # linux/socket.h: families are 0..AF_MAX-1
CLONE_NEW = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
API_FILESYSTEMS = ("/proc", "/sys", "/dev")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def parse_unit(text: str) -> dict[str, list[str]]:
    """The ``[Service]`` settings of a unit file, each with its values in order; an empty
    assignment (``Key=``) resets the list, as systemd does for list settings."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section != "Service" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        settings[key] = settings.get(key, []) + [value] if value else []
    return settings


def words(settings: dict[str, list[str]], key: str) -> list[str]:
    """All space-separated words of a list setting (``CapabilityBoundingSet=A B``, repeated lines)."""
    return [w for value in settings.get(key, []) for w in value.split()]


def yes(settings: dict[str, list[str]], key: str) -> bool:
    values = settings.get(key) or ["no"]
    return values[-1].lower() in ("yes", "true", "on", "1")


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _mount_points() -> list[str]:
    """Mount points of this namespace, parents first (mountinfo's octal escapes undone)."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        field = line.split()[4]
        points.append(field.encode().decode("unicode_escape"))
    return sorted(set(points), key=lambda p: (p.count("/"), p))


def _under(path: str, tops: tuple[str, ...]) -> bool:
    return any(path == top or path.startswith(top + "/") for top in tops)


def _private_dev() -> None:
    """A /dev with only the pseudo-devices, built aside and moved into place (PrivateDevices=)."""
    stage = tempfile.mkdtemp(prefix="nslab-dev.", dir="/run")
    _mount("-t", "tmpfs", "-o", "mode=755,nosuid", "tmpfs", stage)
    for name in DEVICES:
        Path(stage, name).touch()
        _mount("--bind", f"/dev/{name}", f"{stage}/{name}")
    os.mkdir(f"{stage}/pts")
    _mount("--bind", "/dev/pts", f"{stage}/pts")
    os.symlink("pts/ptmx", f"{stage}/ptmx")
    os.mkdir(f"{stage}/shm")
    _mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", f"{stage}/shm")
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{fd}", f"{stage}/{name}")
    os.symlink("/proc/self/fd", f"{stage}/fd")
    _mount("--move", stage, "/dev")
    os.rmdir(stage)


def build_mounts(settings: dict[str, list[str]]) -> None:
    """Rebuild the unit's filesystem view in this (private) mount namespace."""
    protect = (settings.get("ProtectSystem") or ["no"])[-1]
    if protect != "strict":
        raise SystemExit(f"sandbox: only ProtectSystem=strict is emulated, not {protect!r}")
    writable = words(settings, "ReadWritePaths")
    for path in writable:  # its own mount, so that it can stay writable under a read-only /
        _mount("--bind", path.lstrip("-"), path.lstrip("-"))
    if yes(settings, "PrivateDevices"):
        _private_dev()
    kernel_ro = yes(settings, "ProtectKernelTunables") or yes(settings, "ProtectControlGroups")
    for point in _mount_points():
        if (kernel_ro and _under(point, ("/proc/sys", "/sys"))) or not _under(point, API_FILESYSTEMS):
            _mount("-o", "remount,bind,ro", point)
    for path in writable:
        _mount("-o", "remount,bind,rw", path.lstrip("-"))
    if yes(settings, "PrivateTmp"):
        for path in ("/tmp", "/var/tmp"):
            _mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", path)
    if (settings.get("ProtectHome") or ["no"])[-1] == "tmpfs":
        for path in ("/home", "/root", "/run/user"):
            if os.path.isdir(path):
                _mount("-t", "tmpfs", "-o", "mode=755,ro", "tmpfs", path)
    if yes(settings, "ProtectKernelModules") and os.path.isdir("/usr/lib/modules"):
        _mount("-t", "tmpfs", "-o", "mode=000,ro", "tmpfs", "/usr/lib/modules")


def setpriv_argv(settings: dict[str, list[str]], drop: list[str], command: list[str]) -> list[str]:
    """``setpriv`` keeping only the unit's bounding set (minus ``drop``), with no inheritable or
    ambient capabilities, and no_new_privs when the unit sets NoNewPrivileges=."""
    if words(settings, "AmbientCapabilities"):
        raise SystemExit("sandbox: AmbientCapabilities= is not emulated")
    caps = [c for c in words(settings, "CapabilityBoundingSet") if c not in drop]
    if any(c.startswith("~") for c in caps):
        raise SystemExit("sandbox: only a positive CapabilityBoundingSet= list is emulated")
    keep = "".join(f",+{c.lower().removeprefix('cap_')}" for c in caps)
    argv = ["setpriv", f"--bounding-set=-all{keep}", "--inh-caps=-all", "--ambient-caps=-all"]
    if yes(settings, "NoNewPrivileges"):
        argv.append("--no-new-privs")
    return [*argv, "--", *command]


def syscall_groups() -> dict[str, list[str]]:
    """systemd's own system call groups (``@name`` -> members, which may be groups)."""
    text = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], capture_output=True, text=True,
                          check=True).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif line.startswith("    ") and current is not None and not line.strip().startswith("#"):
            current.append(line.strip())
        elif line and not line.startswith(" "):
            current = None
    return groups


def expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    found: set[str] = set()
    for name in names:
        found |= expand(groups[name], groups) if name.startswith("@") else {name}
    return found


def load_seccomp(settings: dict[str, list[str]]) -> None:
    """Install the unit's system call filters on this process (inherited by what it execs)."""
    import seccomp

    allowed_words = words(settings, "SystemCallFilter")
    if not allowed_words:
        return
    if any(w.startswith("~") for w in allowed_words):
        raise SystemExit("sandbox: only an allow-list SystemCallFilter= is emulated")
    groups = syscall_groups()
    allowed = expand(["@default", *allowed_words], groups)
    number = (settings.get("SystemCallErrorNumber") or [""])[-1]
    default = seccomp.ERRNO(getattr(errno, number)) if number else seccomp.KILL_PROCESS
    arch = (settings.get("SystemCallArchitectures") or ["native"])[-1]
    if arch != "native":
        raise SystemExit(f"sandbox: only SystemCallArchitectures=native is emulated, not {arch!r}")
    filt = seccomp.SyscallFilter(default)
    families = [int(getattr(socket, w)) for w in words(settings, "RestrictAddressFamilies")]
    namespaces = yes(settings, "RestrictNamespaces")
    special = {"socket"} if families else set()
    if namespaces:
        special |= {"clone", "clone3", "unshare", "setns"}
    for name in sorted(allowed - special):
        try:
            filt.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError):  # a name this libseccomp or this architecture does not know
            continue
    if families and "socket" in allowed:
        for family in range(AF_MAX):
            action = seccomp.ALLOW if family in families else seccomp.ERRNO(errno.EAFNOSUPPORT)
            filt.add_rule(action, "socket", seccomp.Arg(0, seccomp.EQ, family))
        filt.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.GE, AF_MAX))
    if namespaces:
        for name in ("clone", "unshare"):  # x86-64: the flags are the first argument of both
            if name in allowed:
                filt.add_rule(seccomp.ALLOW, name, seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEW, 0))
        if "clone3" in allowed:
            filt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    filt.load()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("unit", type=Path)
    parser.add_argument("--drop-cap", action="append", default=[], metavar="CAP")
    parser.add_argument(_SECCOMP, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    if args.seccomp_stage:  # last stage, already inside the namespace and under setpriv
        load_seccomp(parse_unit(args.unit.read_text()))
        os.execvp(args.command[0], args.command)
    if os.environ.get(_INNER) != "1":  # first pass: into a private mount namespace, then again
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", "--",
                               sys.executable, os.path.abspath(__file__), *argv], {**os.environ, _INNER: "1"})
    os.environ.pop(_INNER)
    settings = parse_unit(args.unit.read_text())
    build_mounts(settings)
    os.umask(int((settings.get("UMask") or ["0022"])[-1], 8))
    last = [sys.executable, os.path.abspath(__file__), str(args.unit), _SECCOMP, "--", *args.command]
    command = setpriv_argv(settings, [c.upper() for c in args.drop_cap], last)
    os.execvp(command[0], command)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
