"""Progress for long byte streams (packing gigabytes of evidence, checking a bundle).

A bar on a terminal (rich, on standard error); under Ansible or cron, where standard error is a
log, a line at every tenth of the way instead of a bar redrawn thousands of times.

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
from typing import Any

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
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=Console(stderr=True), transient=True, auto_refresh=False) as bar:
            task = bar.add_task(label, total=total)
            yield _redrawing(bar, task)
        return
    done, shown = 0, 0

    def advance(n: int) -> None:
        nonlocal done, shown
        done += n
        tenth = done * 10 // total if total else 10
        if tenth > shown:
            shown = tenth
            print(f"{label}: {min(tenth * 10, 100)}% ({_size(done)} of {_size(total)})", file=sys.stderr, flush=True)

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
        task = bar.add_task(label, total=None)
        yield _redrawing(bar, task)


def _redrawing(bar: Any, task: Any) -> Callable[[int], None]:
    """A callback that advances ``task`` and redraws ``bar`` itself, at most every _REDRAW seconds."""
    last = 0.0

    def advance(n: int) -> None:
        nonlocal last
        bar.advance(task, n)
        moment = time.monotonic()
        if moment - last >= _REDRAW:
            last = moment
            bar.refresh()

    return advance
