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


@pytest.mark.parametrize("kind", ["bytes", "count"])
def test_no_refresh_thread_runs_under_the_bar_and_a_fork_is_safe(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    before = set(threading.enumerate())
    bar = progress.byte_progress(1000, "packing x.nsb") if kind == "bytes" else progress.count_progress("links")
    with bar as advance:
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
    assert ("packing x.nsb" if kind == "bytes" else "links") in screen.getvalue()
