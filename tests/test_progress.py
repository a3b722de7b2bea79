"""The progress bar draws from the caller's thread: no thread runs while ``incident collect`` forks."""

from __future__ import annotations

import io
import os
import threading

import pytest

from nanbu_secops import progress


class Terminal(io.StringIO):
    """Standard error as a terminal, so the bar (not the log lines) is chosen."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("kind", ["bytes", "count", "meter"])
def test_no_refresh_thread_runs_under_the_bar_and_a_fork_is_safe(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    before = set(threading.enumerate())
    bar = {"bytes": progress.byte_progress(1000, "packing x.nsb"), "count": progress.count_progress("links"),
           "meter": progress.meter(1000, "checking x.nsb", "bytes")}[kind]
    with bar as advance:
        assert advance is not None
        advance(10)
        assert set(threading.enumerate()) == before  # nothing that could hold a lock across fork
        pid = os.fork()
        if pid == 0:  # the child writes to the bar's stream, as the snapshot process may
            try:
                advance(1)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        for _ in range(5):
            advance(100)
    assert {"bytes": "packing x.nsb", "count": "links", "meter": "checking x.nsb"}[kind] in screen.getvalue()


def test_off_a_terminal_a_meter_is_none_and_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the long jobs check before any work per chunk or file: nothing to call, nothing written."""
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    for unit in ("bytes", "items"):
        with progress.meter(10, "ingest", unit) as advance:  # type: ignore[arg-type]
            assert advance is None
    assert log.getvalue() == ""


def test_a_meter_grows_its_total(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ingest learns its total once it has listed the files; a login log read twice adds its size again."""
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    with progress.meter(0, "files", "items") as advance:
        assert advance is not None
        advance.expect(3)
        advance.expect(4)
        advance(7)
        assert [(task.completed, task.total) for task in advance.bar.tasks] == [(7, 7)]
