"""The ``av scan`` report: what was scanned, with what, whether it finished, and every detection.

The JSON form is the scan record itself (the line appended to the scan log), so the
playbook collects exactly what the status check later reads.
"""

from __future__ import annotations

import io
import json

from rich.console import Console
from rich.text import Text

from nanbu_secops.av.records import ScanRecord

WORDS = {
    "zh": {"title": "病毒扫描（第二十七条）", "engine": "扫描引擎", "database": "病毒库", "paths": "扫描路径",
           "excluded": "排除目录", "started": "开始", "finished": "结束", "files": "已扫描文件", "clean": "完成：未发现病毒",
           "found": "发现病毒", "incomplete": "扫描未完成", "reason": "原因", "path": "文件", "signature": "病毒名",
           "sha256": "SHA-256", "where": "隔离位置", "kept": "原处保留（未隔离）", "not_moved": "未能隔离，仍在原处",
           "unknown": "未知", "action": "处置：感染文件已报告，未删除；请核实后处理，或使用 --quarantine 隔离。",
           "moved": "处置：感染文件已移入隔离目录（权限 0600），未删除。",
           "rerun": "扫描未完成，上次完成的扫描仍是原来那次：请排除原因后重新扫描。"},
    "en": {"title": "Antivirus scan (Article 27)", "engine": "Engine", "database": "Signatures", "paths": "Paths",
           "excluded": "Excluded", "started": "Started", "finished": "Finished", "files": "Files scanned",
           "clean": "COMPLETED: nothing found",
           "found": "INFECTED FILES FOUND", "incomplete": "SCAN DID NOT COMPLETE", "reason": "Reason", "path": "File",
           "signature": "Signature", "sha256": "SHA-256", "where": "Quarantined to", "kept": "left in place (no quarantine)",
           "not_moved": "could not be moved, still in place", "unknown": "unknown",
           "action": "Action: infected files are reported, not deleted; check them, or rerun with --quarantine.",
           "moved": "Action: infected files were moved to the quarantine folder (mode 0600), not deleted.",
           "rerun": "The scan did not complete, so it does not count as a scan: fix the reason and scan again."},
}


def render_json(record: ScanRecord) -> str:
    return json.dumps(record.as_json(), ensure_ascii=False, indent=2) + "\n"


def _one_line(name: str) -> str:
    """A file name with a newline in it would read as two lines; show the newline as \\n."""
    return name.replace("\n", "\\n")


def _verdict(record: ScanRecord, words: dict[str, str]) -> Text:
    """Detections outrank an incomplete scan: what was found is the first thing to act on."""
    parts = Text()
    if record.detections:
        parts.append(f"{words['found']}: {len(record.detections)}", style="bold red")
    if not record.completed:
        parts.append("  " if record.detections else "")
        parts.append(words["incomplete"], style="bold yellow")
    if record.completed and not record.detections:
        parts.append(words["clean"], style="green")
    return parts


def render_text(record: ScanRecord, lang: str, quarantine: bool, color: bool = False) -> str:
    """``quarantine``: whether it was asked for (the record holds no flag, and a move can fail)."""
    words = WORDS[lang]
    out = io.StringIO()
    console = Console(file=out, width=200, no_color=not color, highlight=False, emoji=False)
    console.print(words["title"], markup=False)
    rows: list[tuple[str, str]] = [
        (words["engine"], record.engine), (words["database"], record.database or words["unknown"]),
        (words["paths"], ", ".join(_one_line(p) for p in record.paths)),
        *([(words["excluded"], ", ".join(_one_line(p) for p in record.excluded))] if record.excluded else []),
        (words["started"], record.started),
        (words["finished"], record.finished),
        (words["files"], words["unknown"] if record.files_scanned is None else str(record.files_scanned)),
    ]
    for label, value in rows:
        console.print(f"  {label}: {value}", markup=False, soft_wrap=True)
    console.print(_verdict(record, words))
    if record.reason:
        console.print(f"  {words['reason']}: {record.reason}", markup=False)
    if record.detections:
        # One block per file, never a table: a long path must stay whole on one line to be copied.
        for d in record.detections:
            where = d.quarantined_to or (words["not_moved"] if quarantine else words["kept"])
            console.print(f"  - {words['path']}: {_one_line(d.path)}", style="bold red", markup=False,
                          soft_wrap=True)
            console.print(f"    {words['signature']}: {d.signature}    {words['sha256']}: {d.sha256 or words['unknown']}",
                          markup=False)
            console.print(f"    {words['where']}: {_one_line(where)}", markup=False, soft_wrap=True)
        console.print(words["moved"] if quarantine else words["action"], markup=False)
    if not record.completed:
        console.print(words["rerun"], markup=False)
    return out.getvalue()

