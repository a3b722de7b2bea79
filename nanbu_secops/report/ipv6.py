"""Rendering of ``ipv6 check``: JSON for programs, text for the terminal, one self-contained HTML
page (no scripts, no external resources) for the unit's file."""

from __future__ import annotations

import html
import io
import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nanbu_secops.report import i18n
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
            i18n.say(result.get("reason") or "", lang)]


STAGES = {"dns": ("DNS", "DNS"), "tcp": ("TCP 连接", "TCP"), "tls": ("TLS", "TLS"), "http": ("HTTP", "HTTP"),
          "redirects": ("重定向", "redirects")}
LEVELS = {"level2": ("二级链接", "level-2 link"), "level3": ("三级链接", "level-3 link")}
MAX_CAUSES = 10  # failing links named per target; the JSON has them all


def _stage(stage: str | None, error: str | None, status: int | None, zh: bool) -> str:
    """The failing step as a reader names it: DNS, TCP, TLS name mismatch, HTTP status 404..."""
    if stage == "tls" and error and ("Hostname mismatch" in error or "IP address mismatch" in error):
        return "TLS 证书名称不符" if zh else "TLS name mismatch"
    if stage == "http" and status is not None and status >= 400:
        return f"HTTP {'状态码' if zh else 'status'} {status}"
    return STAGES.get(stage or "", (stage or "?", stage or "?"))[0 if zh else 1]


def _step(stage: str | None, error: str | None, status: int | None, zh: bool) -> str:
    """"STEP: detail", the detail left out when the step says it all (an HTTP status)."""
    name = _stage(stage, error, status, zh)
    return f"{name}: {i18n.say(error, 'zh' if zh else 'en')}" if error and error != f"HTTP status {status}" else name


def causes(result: dict[str, Any], lang: str) -> list[str]:
    """Why a target is not ready, one line each: the IPv6 homepage probe's failing step, then
    every failing link with its step (the first MAX_CAUSES; a count for the rest)."""
    zh = lang == "zh"
    if result["verdict"] == "error":
        return []
    lines = []
    v6 = result.get("v6") or {}
    if not v6.get("ok"):
        where = "首页（IPv6）" if zh else "homepage over IPv6"
        url = v6.get("final_url") or result.get("url") or result["target"]
        if not (result.get("dns") or {}).get("aaaa"):
            lines.append(f"{where} {url}: DNS: {'无 AAAA 记录' if zh else 'no AAAA record'}")
        else:
            lines.append(f"{where} {url}: " + _step(v6.get("stage") or "http", v6.get("error"), v6.get("status"), zh))
    else:
        failed = [p for p in result.get("v6_probes") or [] if not p.get("ok")]
        if failed:
            where = (f"首页（IPv6）{len(failed)}/{len(result['v6_probes'])} 次探测失败" if zh
                     else f"homepage over IPv6, {len(failed)} of {len(result['v6_probes'])} probes failed")
            first = failed[0]
            lines.append(f"{where}: " + _step(first.get("stage") or "http", first.get("error"), first.get("status"), zh))
    failing = [(level, link) for level in ("level2", "level3")
               for link in ((result.get("links") or {}).get(level) or {}).get("failing", [])]
    for level, link in failing[:MAX_CAUSES]:
        lines.append(f"{LEVELS[level][0 if zh else 1]} {link['url']}: "
                     + _step(link.get("stage"), link.get("error"), link.get("status_v6"), zh))
    if len(failing) > MAX_CAUSES:
        more = len(failing) - MAX_CAUSES
        lines.append(f"另有 {more} 个链接不可用（见 JSON）" if zh else f"{more} more failing links (see the JSON)")
    return lines


def _client_lines(doc: dict[str, Any], lang: str) -> list[tuple[str, str, str]]:
    zh = lang == "zh"
    rows = []
    for client in doc.get("clients", []):
        only = ("可在纯 IPv6 网络使用" if zh else "works on IPv6-only") if client["ipv6_only"] else \
            ("不能在纯 IPv6 网络使用" if zh else "fails on IPv6-only")
        dual = ("双栈全部就绪" if zh else "dual-stack ready") if client["dual_stack"] else \
            ("双栈未全部就绪" if zh else "dual-stack not all ready")
        rows.append((client["client"], f"{only}; {dual}", i18n.say(client.get("reason") or "", lang)))
    return rows


def render_text(doc: dict[str, Any], lang: str = "zh", color: bool = False) -> str:
    buffer = io.StringIO()
    # wide enough for the longest target on one line beside the other columns (see below)
    longest = max((len(r["target"]) for r in doc["targets"]), default=0)
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=max(160, longest + 120),
                      highlight=False)
    zh = lang == "zh"
    console.print(f"{'IPv6 支持情况' if zh else 'IPv6 readiness'} — {article_label('9(2)', lang)}")
    table = Table(*HEAD[lang], show_lines=False)
    # a target is copied from here into a browser or a ticket: kept on one line, never folded
    table.columns[0].no_wrap = True
    table.columns[0].min_width = longest
    for result in doc["targets"]:
        cells = [escape(cell) for cell in _cells(result, lang)]  # "[fd00::1]" in a URL is not markup
        cells[1] = f"[{VERDICTS[result['verdict']][2]}]{cells[1]}[/]"
        table.add_row(*cells)
    console.print(table)
    for result in doc["targets"]:
        lines = causes(result, lang)
        if lines:
            console.print(f"{'原因' if zh else 'Why'} — {escape(result['target'])}:")
            for line in lines:
                console.print(f"  - {escape(line)}", soft_wrap=True)
    for name, state, reason in _client_lines(doc, lang):
        console.print(escape(f"{'移动客户端' if zh else 'Mobile client'} {name}: {state} {reason}"))
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
        why = causes(result, lang)
        if why:
            cells[-1] += "<ul>" + "".join(f"<li>{e(line)}</li>" for line in why) + "</ul>"
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
