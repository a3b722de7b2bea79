"""Shared pytest fixtures: the real SSH lab and guards that the real machine stays untouched.

The lab is session-scoped because bringing hosts up costs ~0.5 s and tests that need a
pristine host call ``lab.reset_host(name)``.  The snapshot of the real machine's
security-relevant files is taken at session start and compared at session end, so
any test that accidentally edits the real machine fails the whole run.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.ipv6lab import ipv6_lab  # noqa: F401  (the IPv6 tests' session fixture, built on `lab`)
from tests.lab import PROJECT_ROOT, Lab, host_files_snapshot, snapshot_diff

_SNAPSHOT = pytest.StashKey[dict[str, str]]()


# Fixtures that bring up network namespaces on this machine. A test that uses one (directly or
# through another fixture) is marked ``lab``; ``-m "not lab"`` selects the tests that need no lab,
# which .ci/run also runs under shifted clocks (faketime).
LAB_FIXTURES = frozenset({"lab", "ipv6_lab", "flab", "rlab"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs the SSH lab of network namespaces (root)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test whose fixture closure reaches a lab fixture."""
    for item in items:
        if LAB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Snapshot before any fixture or test can run."""
    session.config.stash[_SNAPSHOT] = host_files_snapshot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if the real machine's watched files changed during it."""
    before = session.config.stash.get(_SNAPSHOT, None)
    if before is None:
        return
    diff = snapshot_diff(before, host_files_snapshot())
    if diff:
        msg = "REAL MACHINE MODIFIED during the test session (must only happen inside lab hosts):\n  " + "\n  ".join(diff)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(msg, red=True, bold=True)
        else:
            print(msg, file=sys.stderr)
        session.exitstatus = 1


@pytest.fixture(scope="session", autouse=True)
def host_etc_snapshot(request: pytest.FixtureRequest) -> dict[str, str]:
    """sha256 of the real /etc/{login.defs,shadow,passwd,group,gshadow,ssh/sshd_config} and /etc/ssh listings at session start."""
    return dict(request.config.stash[_SNAPSHOT])


@pytest.fixture(scope="session")
def project_root() -> Path:
    """Repository root, derived from this file's location (CI clones elsewhere)."""
    return PROJECT_ROOT


def lab_network(n: int) -> dict[str, str]:
    """Network names of lab number ``n`` (env NSLAB_ID): 0 is the default; others let test
    sessions run side by side on one machine without waiting for each other's lab lock."""
    if n == 0:
        return {}
    if not 0 < n < 10:
        raise ValueError(f"NSLAB_ID must be 0..9, got {n}")
    return {"bridge": f"nslabbr{n}", "ipv4_net": f"169.254.{77 + n}.0/24",
            "ipv6_net": f"fd6e:616e:62{75 + n}::/64", "ns_prefix": f"nslab{n}-", "veth_prefix": f"nslab{n}v"}


@contextmanager
def own_lab(hosts: int | list[str], *, offset: int = 0, prefix: str = "nslab-") -> Iterator[Lab]:
    """Real SSH hosts on lab network NSLAB_ID + ``offset``, always torn down. Tests that stop or
    break hosts take a lab of their own (an offset), so no other test sees it."""
    if os.geteuid() != 0:
        pytest.fail("the SSH lab needs root (network namespaces, overlayfs); run the tests as root", pytrace=False)
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    the_lab = Lab(workdir, hosts, **lab_network(int(os.environ.get("NSLAB_ID", "0")) + offset))
    try:
        the_lab.up()
        yield the_lab
    finally:
        the_lab.down()  # removes the work folder it used
        if workdir.is_dir() and not any(workdir.iterdir()):  # up() failed before using it
            workdir.rmdir()


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """Three real SSH hosts (h01..h03), up once per session and always torn down."""
    with own_lab(3) as the_lab:
        yield the_lab
