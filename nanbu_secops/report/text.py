"""The article table operators read in a terminal or a ticket."""

from __future__ import annotations

import shutil
from itertools import groupby
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nanbu_secops.report import i18n
from nanbu_secops.report.labels import SEVERITY, STATUS, WORDS, article_key, article_label
from nanbu_secops.results import Report, Status

STYLE = {"pass": "green", "fail": "bold red", "error": "bold yellow", "skip": "dim"}
EVIDENCE_WIDTH = 160


def render(report: Report, stream: TextIO, color: bool = False) -> None:
    lang = report.lang
    words, status_words, severity_words = WORDS[lang], STATUS[lang], SEVERITY[lang]
    width = shutil.get_terminal_size((160, 24)).columns if color else 200
    console = Console(file=stream, width=width, no_color=not color, highlight=False, emoji=False)
    console.print(f"{words['host']}: {report.host}    {words['as_of']}: {report.as_of}    "
                  f"{words['generated']}: {report.generated}", markup=False)
    console.print(f"{words['policy']}: {report.policy_version}    {words['root']}: {report.root}", markup=False)
    ordered = sorted(report.results, key=lambda r: article_key(r.article))
    for article, group in groupby(ordered, key=lambda r: r.article):
        results = list(group)
        console.print(Text(f"{article_label(article, lang)}  ({len(results)} {words['items']})", style="bold"))
        table = Table(expand=False)
        for column in ("control", "status", "severity", "title", "evidence"):
            table.add_column(words[column], overflow="fold")
        for r in results:
            table.add_row(Text(r.control), Text(status_words[r.status.value], style=STYLE[r.status.value]),
                          Text(severity_words[r.severity]), Text(r.title),
                          Text(i18n.evidence(r.evidence, lang, EVIDENCE_WIDTH)))
        console.print(table)
    todo = [r for r in ordered if r.status in (Status.FAIL, Status.ERROR)]
    if todo:
        console.print(f"{words['remediation']}:", markup=False)
        for r in todo:
            console.print(f"  [{r.control}] {r.remediation}", markup=False)
    counts = ", ".join(f"{status_words[s.value]} {report.count(s)}" for s in Status)
    console.print(f"{words['summary']}: {len(report.results)} {words['items']} ({counts})", markup=False)
