"""Loaded (through PYTHONPATH) only when .ci/run reruns the tests under Debian's faketime.

libfaketime 0.9.10 cannot both fake the wall clock and keep Python's waits working:
- with the monotonic clock faked too (its default), a timed lock wait (``sem_clockwait`` on
  CLOCK_MONOTONIC, which ``Thread.join(timeout)``, ``Event.wait`` and ``queue.get`` use) is not
  translated and waits as if the deadline lay 400 days away, so timeouts never fire;
- with ``FAKETIME_DONT_FAKE_MONOTONIC=1`` those waits work, but ``clock_nanosleep`` with an
  absolute CLOCK_MONOTONIC deadline, which CPython 3.11's ``time.sleep`` uses, fails with EINVAL.
So the rerun keeps the monotonic clock real and sleeps with ``select``'s relative timeout, which
libfaketime passes through. Only the wall clock (``time.time``, ``datetime.now``) is shifted,
which is what the tests are about.
"""

from __future__ import annotations

import os
import select
import time

if os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1" and "faketime" in os.environ.get("LD_PRELOAD", ""):
    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            select.select([], [], [], left)

    time.sleep = _sleep
