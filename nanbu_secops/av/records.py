"""The scan log the agent keeps on each terminal: one JSON object per line, appended per scan.

ClamAV itself does not remember when a terminal was last scanned (clamscan writes no state,
clamd's log rotates and mixes in other clients), so ``nanbu-secops av scan`` records every scan
here and the status check reads the last completed one. A torn last line (a crash while
writing) is skipped, never fatal.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCAN_LOG = "/var/lib/nanbu-secops/av-scans.jsonl"


@dataclass(frozen=True)
class Detection:
    path: str
    signature: str
    sha256: str = ""            # of the file when it was found (empty if it could not be read)
    quarantined_to: str = ""    # where it was moved, when quarantine was asked for


@dataclass(frozen=True)
class ScanRecord:
    started: str                # RFC 3339, county time
    finished: str
    engine: str                 # "clamdscan" or "clamscan"
    paths: list[str]
    completed: bool             # False when the scan timed out or the engine failed
    reason: str = ""            # why it did not complete
    files_scanned: int | None = None
    detections: list[Detection] = field(default_factory=list)
    database: str = ""          # the engine's signature version line, e.g. "ClamAV 1.4.6/27500/..."
    excluded: list[str] = field(default_factory=list)  # folders left out of the paths (av scan --exclude)
    origin: str = ""            # file:line it was read from (not written)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("origin")
        return data


def append(log: Path, record: ScanRecord) -> None:
    """Append one record durably (O_APPEND + fsync), creating the folder (0750) when needed."""
    log.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    line = json.dumps(record.as_json(), ensure_ascii=False, sort_keys=True) + "\n"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def parse(text: str, source: str) -> list[ScanRecord]:
    """Every well-formed record in a scan log's text, oldest first."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            data = json.loads(line)
            detections = [Detection(**d) for d in data.pop("detections", [])]
            found.append(ScanRecord(**data, detections=detections, origin=f"{source}:{number}"))
        except (json.JSONDecodeError, TypeError, ValueError):
            continue
    return found
