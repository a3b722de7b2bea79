"""The terminal's spool of scheduled check results (``nanbu-secops spool run|newest``).

The agent's timer (playbooks/deploy_agent.yml: ``nanbu-secops-check.timer``) runs ``spool run``,
which audits the terminal as ``check --format json`` does and writes the report into the spool
folder as ``<UTC stamp>-<host>.json``; playbooks/collect.yml fetches the newest one (or runs
``spool run`` itself and fetches what it wrote). So a terminal that was off or unreachable when
the office collected still has its last results, and a collection costs one file copy.

Names sort as time: the stamp is fixed-width UTC with microseconds
(``20261129T051502.123456Z-szz-term-01.json``), so the newest result is the last name and
pruning keeps the last ``keep`` names. Each file is written atomically (temporary file, fsync,
rename), so a reader (the fetch) never sees half a report, and a crash leaves only a hidden
``.<name>.*`` temporary file, which is neither listed nor pruned as a result.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
from pathlib import Path

from nanbu_secops.fileutil import atomic_write
from nanbu_secops.timeutil import now

FILE_MODE = 0o640   # root and the group the operator may give read access (results name accounts)
DIR_MODE = 0o750
_RESULT = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[A-Za-z0-9._-]+\.json$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def result_name(host: str, moment: dt.datetime) -> str:
    """``<UTC stamp>-<host>.json`` for a result written at ``moment`` (aware)."""
    stamp = moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    safe = _UNSAFE.sub("_", host).strip("._") or "host"
    return f"{stamp}-{safe}.json"


def results(spool: Path) -> list[Path]:
    """The result files in ``spool``, oldest first (an absent folder has none)."""
    try:
        names = [entry.name for entry in os.scandir(spool) if entry.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    return [spool / name for name in sorted(names) if _RESULT.match(name)]


def written_at(path: Path) -> dt.datetime:
    """When the result at ``path`` was written (UTC, aware), from the stamp in its name; not from
    the file's mtime, which a copy or a ``touch`` changes."""
    stamp = path.name.split("-", 1)[0]
    return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=dt.UTC)


def newest(spool: Path, max_age: dt.timedelta | None = None, moment: dt.datetime | None = None) -> Path | None:
    """The newest result in ``spool``, None when there is none, or when it was written more than
    ``max_age`` before ``moment`` (default: now): a collection that asks for a fresh result gets
    none from a terminal whose timer stopped, rather than last month's."""
    found = results(spool)
    if not found:
        return None
    if max_age is not None and written_at(found[-1]) < (moment or now()) - max_age:
        return None
    return found[-1]


def prune(spool: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` results; returns the files deleted. Other files are left alone."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    found = results(spool)
    removed = found[:-keep]
    for path in removed:
        with contextlib.suppress(FileNotFoundError):  # a concurrent prune got there first
            path.unlink()
    return removed


def make_spool(spool: Path) -> None:
    """Create the folder (and missing parents) as 0750; an existing folder keeps its mode."""
    if spool.is_dir():
        return
    spool.mkdir(parents=True, exist_ok=True)
    os.chmod(spool, DIR_MODE)


def write(spool: Path, document: dict, host: str, moment: dt.datetime | None = None) -> Path:
    """Write ``document`` as the result of ``host`` at ``moment`` (default: now) atomically; its path."""
    make_spool(spool)
    moment = moment or now()
    data = (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode()
    while True:
        target = spool / result_name(host, moment)
        try:
            atomic_write(target, data, FILE_MODE, exclusive=True)
            return target
        except FileExistsError:  # the same microsecond: never replace a result, take the next one
            moment += dt.timedelta(microseconds=1)


def run(spool: Path, keep: int, *, root: str = "/", policy: str | Path | None = None) -> tuple[Path, bool]:
    """Audit ``root`` with ``policy`` (default: the installed policies), write the report into the
    spool and prune it to ``keep`` results; returns (the file written, whether all was clear)."""
    from nanbu_secops import audit
    from nanbu_secops.policy import load_policies

    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    policies = load_policies(policy)  # bad input stops here, before anything is written
    report = audit.run(policies, audit.make_target(root, now().date()))
    path = write(Path(spool), report.as_json(), report.host)
    prune(Path(spool), keep)
    return path, report.clear
