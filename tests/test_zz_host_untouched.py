"""Runs last (file name): the real machine's watched files must equal the session-start snapshot.

conftest's ``pytest_sessionfinish`` repeats this check after every fixture teardown;
this test makes a violation visible as a named failing test as well.
"""

from __future__ import annotations

from tests.lab import host_files_snapshot, snapshot_diff


def test_real_machine_files_untouched(host_etc_snapshot: dict[str, str]) -> None:
    diff = snapshot_diff(host_etc_snapshot, host_files_snapshot())
    assert not diff, "real machine modified:\n" + "\n".join(diff)
