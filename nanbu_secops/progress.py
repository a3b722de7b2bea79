"""Progress of long jobs (packing gigabytes of evidence, checking a bundle, auditing a login log).

A bar on a terminal (rich, on standard error), erased when the job ends. ``incident collect``
runs under Ansible or cron too, where standard error is a log: it gets a line at every tenth of
the way instead of a bar redrawn thousands of times (:func:`byte_progress`). The other jobs
(:func:`meter`) show nothing at all off a terminal, so piped, logged and JSON output stays byte
for byte what it was, and the work they do costs nothing more than a ``None`` check.

The bar is redrawn from the caller's thread (at most ten times a second), never by rich's refresh
thread: ``incident collect`` forks its snapshot process and the age child while the bar is up, and
a process forked while another thread runs can inherit a lock that thread holds (the child's
first write to the terminal would then wait forever).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

_REDRAW = 0.1  # seconds between redraws of a bar


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


@contextmanager
def byte_progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """Yield a callback taking the number of bytes just processed."""
    if sys.stderr.isatty():
        with meter(total, label, "bytes") as bar:
            assert bar is not None
            yield bar
        return
    done, shown = 0, 0

    def advance(n: int) -> None:
        nonlocal done, shown
        done += n
        tenth = done * 10 // total if total else 10
        if tenth > shown:
            shown = tenth
            print(f"{label}: {min(tenth * 10, 100)}% ({_size(done)}/{_size(total)})", file=sys.stderr, flush=True)

    yield advance


@contextmanager
def count_progress(label: str) -> Iterator[Callable[[int], None]]:
    """Like :func:`byte_progress` for a count whose total is not known in advance (links found
    while crawling): a spinner with the count on a terminal, nothing in a log."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}: {task.completed}"),
                  console=Console(stderr=True), transient=True, auto_refresh=False) as bar:
        yield Meter(bar, bar.add_task(label, total=None), None)


@contextmanager
def meter(total: int, label: str, unit: Literal["bytes", "items"]) -> Iterator[Meter | None]:
    """A bar toward ``total`` bytes or items on standard error when it is a terminal, erased at the
    end; None off a terminal (nothing written, nothing to call). ``total`` may be 0 and grown by
    :meth:`Meter.expect` once the job knows its size (the files an ingest finds)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TransferSpeedColumn

    columns = (DownloadColumn(), TransferSpeedColumn()) if unit == "bytes" else (MofNCompleteColumn(),)
    with Progress("[progress.description]{task.description}", BarColumn(), *columns,
                  console=Console(stderr=True), transient=True, auto_refresh=False) as bar:
        yield Meter(bar, bar.add_task(label, total=total), total)


class Meter:
    """Advances one task of a rich bar and redraws the bar itself, from the caller's thread (see
    the module's docstring), at most every _REDRAW seconds."""

    def __init__(self, bar: Any, task: Any, total: float | None) -> None:
        self.bar, self.task, self.total, self.done, self.last = bar, task, total, 0, 0.0

    def __call__(self, n: int) -> None:
        """``n`` more bytes or items done; never shown past the total (a zip reader reads its
        directory more than once: the bytes read are a little more than the file's size)."""
        if self.total is not None:
            n = max(0, min(n, int(self.total) - self.done))
        self.done += n
        self.bar.advance(self.task, n)
        moment = time.monotonic()
        if moment - self.last >= _REDRAW:
            self.last = moment
            self.bar.refresh()

    def expect(self, n: int) -> None:
        """``n`` more to do than the total said (a file read a second time, files just listed)."""
        self.total = (self.total or 0) + n
        self.bar.update(self.task, total=self.total)
