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
  and sets ``NoNewPrivileges=``.

Not emulated: the seccomp filters (``SystemCallFilter=``, ``RestrictAddressFamilies=``,
``LockPersonality=``, ``RestrictNamespaces=``, ``RestrictRealtime=``), which the test leaves to
systemd. Usage, as root (inside a lab host)::

    python3 tests/sandbox.py UNIT_FILE [--drop-cap CAP_X]... -- COMMAND [ARG]...

``--drop-cap`` removes one capability from the unit's set, to show what it is needed for.
Standard library only: it runs with the system python3 inside lab hosts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_INNER = "NSLAB_SANDBOX_INNER"
API_FILESYSTEMS = ("/proc", "/sys", "/dev")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
EMULATED = {"ProtectSystem", "ReadWritePaths", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts",
            "ProtectKernelTunables", "ProtectControlGroups", "ProtectKernelModules", "UMask",
            "CapabilityBoundingSet", "AmbientCapabilities", "NoNewPrivileges"}


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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("unit", type=Path)
    parser.add_argument("--drop-cap", action="append", default=[], metavar="CAP")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    if os.environ.get(_INNER) != "1":  # first pass: into a private mount namespace, then again
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", "--",
                               sys.executable, os.path.abspath(__file__), *argv], {**os.environ, _INNER: "1"})
    os.environ.pop(_INNER)
    settings = parse_unit(args.unit.read_text())
    build_mounts(settings)
    os.umask(int((settings.get("UMask") or ["0022"])[-1], 8))
    command = setpriv_argv(settings, [c.upper() for c in args.drop_cap], args.command)
    os.execvp(command[0], command)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
