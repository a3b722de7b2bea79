"""Ansible callback for bench/bench_collect.py: wall time of every task on every host, as JSON.

Enabled only by the benchmark (ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins,
ANSIBLE_CALLBACKS_ENABLED=nanbu_task_times, NANBU_TASK_TIMES=<file>), never by ansible.cfg. Ansible's own
``profile_tasks`` lives in the ansible.posix collection, and the playbooks need no collections, so
the breakdown ("where does a collection's time go?") is measured by this small stdlib-only plugin:
from ``v2_runner_on_start`` (a worker picked up the task for a host) to its result, per (task, host),
plus when the first task started (everything before it is ansible-playbook's own start-up).
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: nanbu_task_times
    type: aggregate
    short_description: per-task, per-host wall times as JSON (bench/bench_collect.py)
    description: >-
      Writes {"first_task_at", "tasks" [{"task", "host", "status", "seconds"}]} to $NANBU_TASK_TIMES.
    requirements: [enabled by ANSIBLE_CALLBACKS_ENABLED]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "nanbu_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._started: dict[tuple[str, str], float] = {}
        self._rows: list[dict] = []
        self._first: float | None = None

    def v2_runner_on_start(self, host, task) -> None:
        moment = time.time()
        self._first = self._first or moment
        self._started[(task._uuid, host.get_name())] = moment

    def _done(self, result, status: str) -> None:
        key = (result._task._uuid, result._host.get_name())
        start = self._started.pop(key, None)
        if start is not None:
            self._rows.append({"task": result._task.get_name(), "host": key[1], "status": status,
                               "seconds": time.time() - start})

    def v2_runner_on_ok(self, result) -> None:
        self._done(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._done(result, "failed")

    def v2_runner_on_skipped(self, result) -> None:
        self._done(result, "skipped")

    def v2_runner_on_unreachable(self, result) -> None:
        self._done(result, "unreachable")

    def v2_playbook_on_stats(self, stats) -> None:
        with open(os.environ["NANBU_TASK_TIMES"], "w", encoding="utf-8") as out:
            json.dump({"first_task_at": self._first, "tasks": self._rows}, out)
