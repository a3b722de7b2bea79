"""requirements/agent.lock: what terminals install, pinned and hashed, and held to by deploy_agent.yml.

The lock must agree with pyproject.toml (every runtime dependency pinned, within its specifier,
each pin with hashes), the wheelhouse `scripts/setup.sh --test` fills must be the lock's files,
and a deployment from a wheelhouse holding a wheel that is not the lock's must fail before any
terminal is touched. pip is the oracle throughout: what it refuses with ``--require-hashes`` the
playbook refuses too, and a tampered wheel is one pip would install without the lock.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.lab import Lab
from tests.playbook_output import flat, output, recap

PROJECT = Path(__file__).resolve().parents[1]
LOCK = PROJECT / "requirements" / "agent.lock"
WHEELHOUSE = PROJECT / ".wheelhouse"
DEPLOY = PROJECT / "playbooks" / "deploy_agent.yml"
HOST = "h03"
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--isolated"]
NO_CONFIG = {"PIP_CONFIG_FILE": "/dev/null"}   # only the folder given, never the machine's indexes


def lock_entries(text: str) -> list[tuple[Requirement, list[str]]]:
    """Each requirement of a pip requirements file with its --hash values (continuations joined)."""
    joined = re.sub(r"\\\n", " ", text)
    entries = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        hashes = re.findall(r"--hash=(\S+)", line)
        entries.append((Requirement(re.sub(r"--hash=\S+", "", line).strip()), hashes))
    return entries


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pip_env() -> dict[str, str]:
    return {**os.environ, **NO_CONFIG}


def dry_install(find_links: Path, *requirements: str) -> subprocess.CompletedProcess[str]:
    """pip's own judgement of a wheel folder: would it install these, from there alone?"""
    return subprocess.run([*PIP, "install", "--dry-run", "--ignore-installed", "--no-index", "--only-binary=:all:",
                           "--find-links", str(find_links), *requirements],
                          capture_output=True, text=True, timeout=120, env=pip_env())


def test_the_lock_pins_every_runtime_dependency_within_pyproject():
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    entries = lock_entries(LOCK.read_text())
    pins: dict[str, list[str]] = {}
    for req, hashes in entries:
        [spec] = req.specifier                      # exactly one ==X.Y per line
        assert spec.operator == "==" and "*" not in spec.version, req
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), req
        assert len(set(hashes)) == len(hashes), req
        pins.setdefault(canonicalize_name(req.name), []).append(spec.version)
    for need in wanted:
        name = canonicalize_name(need.name)
        assert name in pins, f"{need.name} (pyproject.toml) is not pinned in {LOCK.name}: run scripts/lock.sh"
        for version in pins[name]:
            assert need.specifier.contains(version, prereleases=True), f"{name}=={version} is outside {need}"
    # the terminals' install stays light: nothing of the test or controller extras, nor the agent itself
    extras = {canonicalize_name(Requirement(r).name) for group in project["optional-dependencies"].values() for r in group}
    assert not extras & set(pins) - {canonicalize_name(r.name) for r in wanted}
    assert "nanbu-secops" not in pins


def test_every_file_of_a_binary_dependency_is_hashed_for_both_architectures():
    """One lock for x86_64 and aarch64 terminals: a compiled dependency has more hashes than one
    platform's wheels (the sdist and the other architectures' wheels), which scripts/lock.sh
    proved by downloading both architectures' wheels hash-checked."""
    by_name = {canonicalize_name(req.name): hashes for req, hashes in lock_entries(LOCK.read_text())}
    local = {sha256(p) for p in WHEELHOUSE.glob("*.whl")}
    for name in ("cryptography", "pyyaml", "psutil", "pyrage", "rpds-py", "cffi"):
        others = [h for h in by_name[name] if h.removeprefix("sha256:") not in local]
        assert len(others) >= 2, (name, by_name[name])


def test_the_wheelhouse_is_the_locks_files():
    """`scripts/setup.sh --test` fills .wheelhouse from the lock: every wheel's sha256 is the lock's,
    and pip, requiring the hashes, installs the whole lock from it and nothing else."""
    wheels = sorted(WHEELHOUSE.glob("*.whl"))
    if not wheels:
        pytest.fail(f"no wheels in {WHEELHOUSE}: run `bash scripts/setup.sh --test` first", pytrace=False)
    locked = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", LOCK.read_text()))
    assert {p.name: sha256(p) in locked for p in wheels} == {p.name: True for p in wheels}
    done = dry_install(WHEELHOUSE, "--require-hashes", "-r", str(LOCK))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert len(lock_entries(LOCK.read_text())) == len(wheels)


def tamper(wheel: Path, target: Path) -> Path:
    """A copy of ``wheel`` with a zip comment added: still a valid wheel, with another sha256."""
    shutil.copyfile(wheel, target)
    with zipfile.ZipFile(target, "a") as z:
        z.comment = b"not the file the lock hashed"
    return target


@pytest.fixture
def terminal(lab: Lab) -> Iterator[Lab]:
    """HOST fresh before and after: the deployments here install into it."""
    lab.reset_host(HOST)
    try:
        yield lab
    finally:
        lab.reset_host(HOST)


def deploy(lab: Lab, *extra: str) -> subprocess.CompletedProcess[str]:
    return lab.ansible_playbook(DEPLOY, "-e", f"target={HOST}", *extra, env=NO_CONFIG)


def changed_since_marker(lab: Lab) -> list[str]:
    """Files made or changed on HOST after /root/.nslab-marker, where a deployment writes (the
    venv, /etc, /var/lib, its temporary folder) and in root's home; /work and the like are this
    machine's, seen through the lab host's overlay, and change under other sessions."""
    done = lab.ssh(HOST, "find /opt /etc /var /usr /tmp /root -xdev -newer /root/.nslab-marker "
                         "-not -path '/root/.ansible*' -print")
    return [line for line in done.stdout.splitlines() if line != "/root"]


@pytest.mark.parametrize("kind", ["altered", "other-architecture"])
def test_a_wheel_that_is_not_the_locks_stops_the_deployment(terminal: Lab, tmp_path: Path, kind: str):
    """A copy of the wheelhouse with one wheel's bytes changed. `altered`: a wheel pip would install
    here, and does install without the lock, but refuses with it; `other-architecture`: an ARM
    terminal's wheel that pip on this controller would not even pick, which only the playbook's
    own hash check sees. Either way the play fails naming the file, and the terminal is untouched."""
    lab = terminal
    if not any(WHEELHOUSE.glob("*.whl")):
        pytest.fail(f"no wheels in {WHEELHOUSE}: run `bash scripts/setup.sh --test` first", pytrace=False)
    house = tmp_path / "wheelhouse"
    shutil.copytree(WHEELHOUSE, house)
    if kind == "altered":
        [original] = house.glob("rfc8785-*.whl")
        bad = tamper(original, tmp_path / original.name)
        bad.replace(original)
        bad = original
        # the oracle: pip takes this wheel as it is, and refuses it once the lock's hashes are required
        free = dry_install(house, "--no-deps", "rfc8785==0.1.4")
        assert free.returncode == 0 and "rfc8785-0.1.4" in free.stdout, free.stdout + free.stderr
        held = dry_install(house, "--require-hashes", "-r", str(LOCK))
        assert held.returncode == 1 and "DO NOT MATCH THE HASHES" in held.stderr, held.stdout + held.stderr
        assert f"Got        {sha256(bad)}" in held.stderr
    else:
        [x86] = house.glob("psutil-*.whl")
        name = re.sub(r"x86_64", "aarch64", x86.name)
        assert name != x86.name
        bad = tamper(x86, house / name)
        assert dry_install(house, "--require-hashes", "-r", str(LOCK)).returncode == 0   # pip here does not look at it

    lab.ssh(HOST, "touch /root/.nslab-marker && sleep 1.1")
    run = deploy(lab, "-e", f"nanbu_wheelhouse={house}")
    assert run.returncode != 0, output(run)
    text = flat(run)
    assert f"{house} holds wheels whose sha256 is not in {LOCK}: {bad.name}." in text, output(run)
    assert "nothing was deployed" in text
    assert recap(run)[HOST]["changed"] == 0
    assert changed_since_marker(lab) == []
    assert lab.ssh(HOST, "test -e /opt/nanbu-secops || test -e /etc/nanbu-secops", check=False).returncode == 1
    lab.ssh(HOST, "mkdir /opt/nslab-probe")                      # the probe does see a change
    assert changed_since_marker(lab) == ["/opt", "/opt/nslab-probe"]


def test_a_missing_locked_wheel_stops_the_deployment_before_the_terminal(terminal: Lab, tmp_path: Path):
    """pip's dry run on the controller finds the hole, so no half-made venv is left on a terminal."""
    lab = terminal
    house = tmp_path / "wheelhouse"
    shutil.copytree(WHEELHOUSE, house)
    [gone] = house.glob("tzdata-*.whl")
    gone.unlink()
    lab.ssh(HOST, "touch /root/.nslab-marker && sleep 1.1")
    run = deploy(lab, "-e", f"nanbu_wheelhouse={house}")
    assert run.returncode != 0
    text = flat(run)
    assert "the dependency wheels do not install as" in text and "tzdata==2026.6" in text, output(run)
    assert changed_since_marker(lab) == []


def test_the_terminal_holds_the_lock_and_a_new_lock_is_installed(terminal: Lab, tmp_path: Path):
    """A deployment installs exactly the lock's versions (pip checks each file's hash on the
    terminal); a second run changes nothing; another lock (here: the same pins, a comment more)
    is installed anew, as check mode announces, which changes only the record of the lock; then
    nothing again."""
    lab = terminal
    house = f"nanbu_wheelhouse={WHEELHOUSE}"
    first = deploy(lab, "-e", house)
    assert first.returncode == 0 and recap(first)[HOST]["changed"] > 0, output(first)
    frozen = lab.ssh(HOST, "/opt/nanbu-secops/bin/python -m pip list --format=freeze --disable-pip-version-check").stdout
    installed = {canonicalize_name(n): v for n, v in (line.split("==") for line in frozen.split())}
    locked = {canonicalize_name(r.name): next(iter(r.specifier)).version for r, _ in lock_entries(LOCK.read_text())}
    assert {n: installed.get(n) for n in locked} == locked
    assert lab.ssh(HOST, "cat /opt/nanbu-secops/nanbu-agent.lock").stdout == LOCK.read_text()

    again = deploy(lab, "-e", house)
    assert again.returncode == 0 and recap(again)[HOST]["changed"] == 0, output(again)

    relocked = tmp_path / "agent.lock"
    relocked.write_text(LOCK.read_text() + "# a new lock\n")
    dry = deploy(lab, "-e", house, "-e", f"nanbu_lock_file={relocked}", "--check")
    assert dry.returncode == 0 and recap(dry)[HOST]["changed"] == 0, output(dry)
    assert "would install the dependencies of nanbu-secops" in flat(dry)
    newer = deploy(lab, "-e", house, "-e", f"nanbu_lock_file={relocked}")
    # the same pins: pip installs nothing, only the record of the lock changes
    assert newer.returncode == 0 and recap(newer)[HOST]["changed"] == 1, output(newer)
    assert lab.ssh(HOST, "cat /opt/nanbu-secops/nanbu-agent.lock").stdout == relocked.read_text()
    last = deploy(lab, "-e", house, "-e", f"nanbu_lock_file={relocked}")
    assert last.returncode == 0 and recap(last)[HOST]["changed"] == 0, output(last)


def test_a_missing_lock_is_named_before_anything_runs(tmp_path: Path):
    """No lock, no deployment: the variable check says which file is missing (no host is contacted:
    the check runs on the controller, and the inventory's one host does not exist)."""
    home = tmp_path / "ansible"
    env = {**os.environ, "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"), "ANSIBLE_NOCOLOR": "1"}
    missing = tmp_path / "none.lock"
    done = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "nslab-nowhere,",
                           "-e", f"nanbu_lock_file={missing}", "-e", f"ansible_python_interpreter={sys.executable}",
                           str(DEPLOY)], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout[-3000:]
    assert f"the lock {missing} (nanbu_lock_file) must exist: scripts/lock.sh makes it." in flat(done)
    assert recap(done)["nslab-nowhere"] == {"ok": 0, "changed": 0, "unreachable": 0, "failed": 1, "skipped": 0,
                                            "rescued": 0, "ignored": 0}
