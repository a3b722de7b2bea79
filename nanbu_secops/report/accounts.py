"""Renderings of the platform account audit: text, the xlsx list sent to units, and HTML.

The xlsx is what the county office sends out: one sheet per unit, Chinese headers, one row per
finding. The HTML is one self-contained file (no scripts, no external resources).
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from io import BytesIO, StringIO
from typing import Any

from nanbu_secops.report import i18n
from nanbu_secops.report.labels import SEVERITY, article_label

RULE_LABELS = {
    "zh": {"dormant": "休眠账号", "shared": "疑似转借/共用", "not-current-staff": "非在职在编",
           "unit-mismatch": "单位不符", "generic-name": "通用账号名"},
    "en": {"dormant": "dormant", "shared": "shared", "not-current-staff": "not current staff",
           "unit-mismatch": "unit mismatch", "generic-name": "generic name"},
}
HEADERS = {
    "zh": ["规则", "账号", "姓名", "单位", "级别", "条款", "依据", "处置措施"],
    "en": ["Rule", "Account", "Holder", "Unit", "Severity", "Article", "Evidence", "Action"],
}
TITLES = {
    "zh": ("集约化平台账号审计（第二十六条）", "基准日期", "合计", "问题账号", "无问题"),
    "en": ("Platform account audit (article 26)", "As of", "Total", "Accounts with findings", "No findings"),
}
WORDS = {
    "zh": {"active": "在用 {n}", "unknown": "登录日志中有 {n} 个账号不在账号清单中（须核实是谁在使用）：",
           "more": "等（共 {n} 个，完整名单见 JSON）", "problems": "未能读取的行（已跳过）："},
    "en": {"active": "{n} active", "unknown": "{n} accounts log in but are missing from the account list "
                                               "(find out who uses them): ",
           "more": " and others ({n} in all; the JSON lists them)", "problems": "Rows that could not be read (skipped):"},
}
# xlsx column widths in characters: a Chinese character counts as two
XLSX_WIDTHS = (14, 16, 10, 22, 8, 12, 70, 60)


def _rows(report: dict[str, Any], lang: str) -> dict[str, list[list[str]]]:
    """Findings grouped by unit, each a row of display strings, the evidence as a sentence."""
    units: dict[str, list[list[str]]] = defaultdict(list)
    summary = report["summary"]
    for f in report["findings"]:
        units[f["unit"]].append([RULE_LABELS[lang][f["rule"]], f["account"], f["holder"], f["unit"],
                                 SEVERITY[lang][f["severity"]], article_label(f["article"], lang),
                                 i18n.account_evidence(f["rule"], f["evidence"], lang, report["as_of"],
                                                       summary.get("dormant_months")),
                                 f["action"]])
    return dict(sorted(units.items()))


def _summary_line(report: dict[str, Any], lang: str) -> str:
    s = report["summary"]
    counts = ", ".join(f"{RULE_LABELS[lang][r]} {n}" for r, n in s["findings"].items())
    title, as_of, total, with_findings, _ = TITLES[lang]
    return (f"{title}  {as_of}: {report['as_of']}  {total}: {s['accounts']} "
            f"({WORDS[lang]['active'].format(n=s['active'])}), {with_findings}: {s['accounts_with_findings']}  [{counts}]")


def unknown_line(report: dict[str, Any], lang: str) -> str | None:
    """Accounts that log in but are not in the account list: what an officer must see first."""
    s, w = report["summary"], WORDS[lang]
    count = s.get("log_accounts_unknown_count", 0)
    if not count:
        return None
    names = ("、" if lang == "zh" else ", ").join(s["log_accounts_unknown"])
    return w["unknown"].format(n=count) + names + (w["more"].format(n=count) if count > len(s["log_accounts_unknown"]) else "")


def render_text(report: dict[str, Any], lang: str) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = StringIO()
    console = Console(file=out, width=200, no_color=True, highlight=False, emoji=False)
    console.print(Text(_summary_line(report, lang)))
    unknown = unknown_line(report, lang)
    if unknown:
        console.print(Text(f"! {unknown}", style="bold"))
    for unit, rows in _rows(report, lang).items():
        console.print(Text(f"{unit}  ({len(rows)})", style="bold"))
        table = Table(expand=False, show_lines=True)
        for header in HEADERS[lang]:
            table.add_column(header, overflow="fold", no_wrap=header in HEADERS[lang][:6])
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)
    if not report["findings"]:
        console.print(Text(TITLES[lang][4]))
    if report["problems"]:
        console.print(Text(WORDS[lang]["problems"]))
    for problem in report["problems"]:
        console.print(Text(f"! {i18n.say(problem, lang)}"))
    return out.getvalue()


def render_json(report: dict[str, Any]) -> str:
    """Indented for people when small; one line (the fast C encoder) for large audits."""
    indent = 2 if len(report["findings"]) <= 1000 else None
    return json.dumps(report, ensure_ascii=False, indent=indent) + "\n"


def _sheet_title(unit: str, used: set[str]) -> str:
    """Excel sheet names: at most 31 characters, none of []:*?/\\, unique."""
    base = "".join("_" if ch in "[]:*?/\\" else ch for ch in unit)[:31] or "-"
    title, n = base, 2
    while title in used:
        suffix = f"~{n}"
        title, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(title)
    return title


def render_xlsx(report: dict[str, Any], lang: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from nanbu_secops.report.sheet import table

    book = Workbook()
    overview = book.active
    overview.title = "汇总" if lang == "zh" else "Summary"
    overview.append([_summary_line(report, lang)])
    overview.append(["单位" if lang == "zh" else "Unit"] + [RULE_LABELS[lang][r] for r in report["summary"]["findings"]])
    used = {overview.title}
    unknown = unknown_line(report, lang)
    if unknown:
        overview.append([])
        overview.append([unknown])
        overview.cell(overview.max_row, 1).font = Font(bold=True, color="B00000")
    overview.column_dimensions["A"].width = 24
    for unit, rows in _rows(report, lang).items():
        counts = [sum(1 for r in rows if r[0] == RULE_LABELS[lang][rule]) for rule in report["summary"]["findings"]]
        overview.append([unit, *counts])
        sheet = book.create_sheet(_sheet_title(unit, used))
        table(sheet, HEADERS[lang], rows, XLSX_WIDTHS)
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def render_html(report: dict[str, Any], lang: str) -> str:
    """One page; the short columns (rule to article) never wrap, so a Chinese name or unit stays on
    one line, and the evidence and action columns keep a readable width."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang=\"{'zh-CN' if lang == 'zh' else 'en'}\"><head><meta charset=\"utf-8\">",
             f"<title>{e(TITLES[lang][0])}</title><style>body{{font-family:sans-serif;margin:1.5em}}"
             "table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #999;padding:3px 6px;"
             "vertical-align:top;font-size:13px}th{background:#eee;white-space:nowrap}.n{white-space:nowrap}"
             ".w{min-width:16em}.high,.critical{color:#b00}.unknown{color:#b00;font-weight:bold}</style></head><body>",
             f"<h1>{e(TITLES[lang][0])}</h1><p>{e(_summary_line(report, lang))}</p>"]
    unknown = unknown_line(report, lang)
    if unknown:
        parts.append(f'<p class="unknown" data-unknown="{report["summary"]["log_accounts_unknown_count"]}">'
                     f"{e(unknown)}</p>")
    for unit, rows in _rows(report, lang).items():
        parts.append(f"<h2>{e(unit)} ({len(rows)})</h2><table><tr>")
        parts += [f"<th>{e(h)}</th>" for h in HEADERS[lang]]
        parts.append("</tr>")
        for row, finding in zip(rows, (f for f in report["findings"] if f["unit"] == unit), strict=False):
            parts.append(f"<tr class=\"{e(finding['severity'])}\">"
                         + "".join(f"<td class=\"{'n' if i < 6 else 'w'}\">{e(c)}</td>" for i, c in enumerate(row))
                         + "</tr>")
        parts.append("</table>")
    if not report["findings"]:
        parts.append(f"<p>{e(TITLES[lang][4])}</p>")
    if report["problems"]:
        parts.append(f"<h2>{e(WORDS[lang]['problems'])}</h2><ul>"
                     + "".join(f"<li>{e(i18n.say(p, lang))}</li>" for p in report["problems"]) + "</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)
