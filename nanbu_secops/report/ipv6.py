"""Rendering of ``ipv6 check``: JSON for programs, text for the terminal, one self-contained HTML
page (no scripts, no external resources) for the unit's file."""

from __future__ import annotations

import html
import io
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from nanbu_secops.report.labels import article_label

VERDICTS = {"ready": ("就绪", "ready", "green"), "partial": ("部分支持", "partial", "yellow"),
            "not-ready": ("未就绪", "not ready", "red"), "error": ("无法评估", "error", "magenta")}
HEAD = {"zh": ("目标", "结论", "AAAA", "IPv6 成功率", "状态一致", "内容相似度", "二级链接", "三级链接", "说明"),
        "en": ("Target", "Verdict", "AAAA", "IPv6 success", "Status match", "Similarity", "Level 2", "Level 3", "Reason")}


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _ratio(level: dict[str, Any] | None) -> str:
    if not level or level.get("ratio") is None:
        return "—"
    return f"{level['ipv6']}/{level['total']} ({level['ratio']:.0%})"


def _cells(result: dict[str, Any], lang: str) -> list[str]:
    zh = lang == "zh"
    parity = result.get("parity") or {}
    links = result.get("links") or {}
    rate = result.get("success_rate_v6")
    aaaa = ", ".join((result.get("dns") or {}).get("aaaa") or []) or "—"
    match = "—" if not parity else (("是" if zh else "yes") if parity["status_match"] else ("否" if zh else "no"))
    return [result["target"], VERDICTS[result["verdict"]][0 if zh else 1], aaaa,
            "—" if rate is None else f"{rate:.0%}", match,
            "—" if not parity else f"{parity['similarity']:.2f}", _ratio(links.get("level2")), _ratio(links.get("level3")),
            result.get("reason") or ""]


def _client_lines(doc: dict[str, Any], lang: str) -> list[tuple[str, str, str]]:
    zh = lang == "zh"
    rows = []
    for client in doc.get("clients", []):
        only = ("可在纯 IPv6 网络使用" if zh else "works on IPv6-only") if client["ipv6_only"] else \
            ("不能在纯 IPv6 网络使用" if zh else "fails on IPv6-only")
        dual = ("双栈全部就绪" if zh else "dual-stack ready") if client["dual_stack"] else \
            ("双栈未全部就绪" if zh else "dual-stack not all ready")
        rows.append((client["client"], f"{only}; {dual}", client.get("reason") or ""))
    return rows


def render_text(doc: dict[str, Any], lang: str = "zh", color: bool = False) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=160, highlight=False)
    zh = lang == "zh"
    console.print(f"{'IPv6 支持情况' if zh else 'IPv6 readiness'} — {article_label('9(2)', lang)}")
    table = Table(*HEAD[lang], show_lines=False)
    for result in doc["targets"]:
        cells = _cells(result, lang)
        cells[1] = f"[{VERDICTS[result['verdict']][2]}]{cells[1]}[/]"
        table.add_row(*cells)
    console.print(table)
    for name, state, reason in _client_lines(doc, lang):
        console.print(f"{'移动客户端' if zh else 'Mobile client'} {name}: {state} {reason}")
    return buffer.getvalue()


STYLE = """body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}.ready{color:#1a7f37;font-weight:bold}.partial{color:#9a6700;font-weight:bold}
.not-ready{color:#cf222e;font-weight:bold}.error{color:#8250df;font-weight:bold}small{color:#666}"""


def render_html(doc: dict[str, Any], lang: str = "zh") -> str:
    zh = lang == "zh"
    title = "IPv6 支持情况报告" if zh else "IPv6 readiness report"
    e = html.escape
    rows = []
    for result in doc["targets"]:
        cells = [e(c) for c in _cells(result, lang)]
        cells[1] = f'<span class="{e(result["verdict"])}">{cells[1]}</span>'
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    clients = "".join(f"<tr><td>{e(n)}</td><td>{e(s)}</td><td>{e(r)}</td></tr>" for n, s, r in _client_lines(doc, lang))
    client_table = (f"<h2>{'移动客户端' if zh else 'Mobile clients'}</h2><table><tr><th>{'客户端' if zh else 'Client'}</th>"
                    f"<th>{'结论' if zh else 'Verdict'}</th><th>{'说明' if zh else 'Reason'}</th></tr>{clients}</table>"
                    if clients else "")
    return (f'<!DOCTYPE html><html lang="{"zh-CN" if zh else "en"}"><head><meta charset="utf-8">'
            f"<title>{e(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{e(title)}</h1><p><small>{e(article_label('9(2)', lang))} · {e(doc.get('generated', ''))}</small></p>"
            f"<table><tr>{''.join(f'<th>{e(h)}</th>' for h in HEAD[lang])}</tr>{''.join(rows)}</table>"
            f"{client_table}</body></html>\n")
