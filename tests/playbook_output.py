"""Reading an ansible-playbook run in the playbook tests: the PLAY RECAP counters per host, the
tail of the output for assertion messages, and the text with the yaml callback's wrapping undone."""

from __future__ import annotations

import re
import subprocess

RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def recap(result: subprocess.CompletedProcess) -> dict[str, dict[str, int]]:
    return {m[1]: {"ok": int(m[2]), "changed": int(m[3]), "failed": int(m[5])} for m in RECAP.finditer(result.stdout)}


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout[-6000:] + result.stderr[-2000:]


def flat(result: subprocess.CompletedProcess) -> str:
    return " ".join(result.stdout.split())  # the yaml callback wraps long messages
