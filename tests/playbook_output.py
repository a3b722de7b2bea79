"""Reading an ansible-playbook run in the playbook tests: the PLAY RECAP counters per host, the
tail of the output for assertion messages, and the text with the yaml callback's wrapping undone."""

from __future__ import annotations

import re
import subprocess

ANSI = re.compile(r"\x1b\[[0-9;]*m")
RECAP_LINE = re.compile(r"^(\S+)\s*:\s*(ok=\d+.*)$", re.M)


def _text(run: subprocess.CompletedProcess | str, stderr: bool = True) -> str:
    if isinstance(run, str):
        return ANSI.sub("", run)
    return ANSI.sub("", (run.stdout or "") + ((run.stderr or "") if stderr else ""))


def recap(run: subprocess.CompletedProcess | str) -> dict[str, dict[str, int]]:
    """Every counter of the last PLAY RECAP, per host: ok, changed, unreachable, failed, skipped..."""
    text = _text(run, stderr=False)
    start = text.rfind("PLAY RECAP")
    return {m[1]: {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", m[2])}
            for m in RECAP_LINE.finditer(text[max(start, 0):])}


def output(run: subprocess.CompletedProcess) -> str:
    """The end of the run, for an assertion's message."""
    return ANSI.sub("", (run.stdout or "")[-6000:] + (run.stderr or "")[-2000:])


def flat(run: subprocess.CompletedProcess) -> str:
    """All of the run's text on one line: the yaml callback wraps long messages."""
    return " ".join(_text(run).split())
