"""Rendering of ``site inspect``: JSON (the form of issue 21), text, one self-contained HTML page
and an xlsx workbook (a sheet per part). Every part names the article it applies."""

from __future__ import annotations

import html
import io
import json
import re
from typing import Any

from nanbu_secops.report.i18n import say
from nanbu_secops.report.labels import article_label
from nanbu_secops.report.sheet import table

STATUS = {"ok": ("正常", "ok"), "stale": ("未按时更新", "stale"), "blank": ("空白栏目", "blank"),
          "error": ("无法判断", "error")}
KIND = {"dynamic": ("动态类", "dynamic"), "other": ("其他", "other")}

Section = tuple[str, str, list[str], list[list[Any]]]  # title, article, header, rows

# The column reasons of checks/site.py (English in the JSON, for programs) as a Chinese report says them.
REASONS_ZH = [
    (re.compile(r"latest item (\d+) days old, limit (\d+) days"), r"最近一条已 \1 天，超过 \2 天的时限"),
    (re.compile(r"the list page has no items"), "列表页没有内容"),
    (re.compile(r"no date can be read in (\d+) list entries"), r"\1 条列表项均无法识别发布日期"),
    (re.compile(r"no date can be read: (.*?)( \(dates after the as-of day\))?$"),
     lambda m: f"无法识别发布日期：{m.group(1)}" + ("（均晚于检查日期）" if m.group(2) else "")),
    (re.compile(r"list page cannot be fetched: (.*)"), r"列表页无法访问：\1"),
]


def reason(text: str | None, lang: str) -> str:
    """A column's reason in the report's language."""
    if not text or lang != "zh":
        return text or ""
    for pattern, chinese in REASONS_ZH:
        if pattern.fullmatch(text):
            return pattern.sub(chinese, text)
    return say(text, lang)


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _t(zh: bool, chinese: str, english: str) -> str:
    return chinese if zh else english


def sections(site: dict[str, Any], lang: str) -> list[Section]:
    """The parts of one site's report as tables, shared by text, HTML and xlsx."""
    zh = lang == "zh"
    home = site["home"]
    home_rows = [[home["url"], f"{home['ok']}/{home['probes']}",
                  "; ".join(f"#{f['probe']}: {say(f['reason'], lang)}" for f in home["failures"]) or "—"]]
    columns = [[c["name"], KIND[c["kind"]][0 if zh else 1], c["url"], c["latest"] or "—",
                "—" if c["age_days"] is None else c["age_days"], c["limit_days"],
                STATUS[c["status"]][0 if zh else 1], reason(c["reason"], lang)] for c in site["columns"]]
    return [
        (_t(zh, "首页可用性", "Home page"), "29", [_t(zh, "地址", "URL"), _t(zh, "成功/访问次数", "OK/probes"),
                                                   _t(zh, "失败原因", "Failures")], home_rows),
        (_t(zh, "栏目更新", "Column updates"), "14",
         [_t(zh, "栏目", "Column"), _t(zh, "类别", "Kind"), _t(zh, "地址", "URL"), _t(zh, "最近更新", "Latest"),
          _t(zh, "间隔(天)", "Age (days)"), _t(zh, "时限(天)", "Limit (days)"), _t(zh, "状态", "Status"),
          _t(zh, "说明", "Reason")], columns),
        (_t(zh, "错误链接", "Dead links"), "29", [_t(zh, "链接", "Link"), _t(zh, "所在页面", "On page"),
                                                  _t(zh, "状态", "Status")],
         [[d["url"], d["from"], say(str(d["status"]), lang)] for d in site["dead_links"]]),
        (_t(zh, "外部链接（非政府、非权威网站）", "External links (non-government, non-authoritative)"), "18",
         [_t(zh, "链接", "Link"), _t(zh, "所在页面", "On page"), _t(zh, "域名", "Host")],
         [[x["url"], x["from"], x["host"]] for x in site["external_links"]]),
        (_t(zh, "疑似商业广告（须人工复核）", "Suspected advertising (for review)"), "12",
         [_t(zh, "链接或页面", "Link or page"), _t(zh, "所在页面", "On page"), _t(zh, "依据", "Why")],
         [[a["url"], a["from"], say(a["why"], lang)] for a in site["ad_suspects"]]),
    ]


def _unit_title(site: dict[str, Any], zh: bool) -> str:
    return f"{_t(zh, '单位', 'Unit')}: {site['unit']}"


def render_text(doc: dict[str, Any], lang: str = "zh") -> str:
    zh = lang == "zh"
    out = [_t(zh, "集约化平台使用情况检查", "Platform-use inspection") + f" · {article_label('29', lang)} · "
           + _t(zh, "检查日期", "as of") + f" {doc['as_of']} · {doc['generated']}"]
    for site in doc["sites"]:
        out += ["", _unit_title(site, zh)]
        for title, article, header, rows in sections(site, lang):
            out.append(f"  {title}（{article_label(article, lang)}）" if zh
                       else f"  {title} ({article_label(article, lang)})")
            if not rows:
                out.append("    " + _t(zh, "无", "none"))
            for row in rows:
                out.append("    " + " | ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v not in ("", None)))
    return "\n".join(out) + "\n"


STYLE = """body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:1em}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top;word-break:break-all}th{background:#f0f0f0}small{color:#666}"""


def render_html(doc: dict[str, Any], lang: str = "zh") -> str:
    zh = lang == "zh"
    e = html.escape
    title = _t(zh, "集约化平台使用情况检查", "Platform-use inspection")
    body = []
    for site in doc["sites"]:
        body.append(f"<h2>{e(_unit_title(site, zh))}</h2>")
        for name, article, header, rows in sections(site, lang):
            body.append(f"<h3>{e(name)} <small>{e(article_label(article, lang))}</small></h3>")
            cells = "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in rows)
            empty = f"<tr><td colspan='{len(header)}'>{_t(zh, '无', 'none')}</td></tr>"
            body.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + f"</tr>{cells or empty}</table>")
    return (f'<!DOCTYPE html><html lang="{"zh-CN" if zh else "en"}"><head><meta charset="utf-8">'
            f"<title>{e(title)}</title><style>{STYLE}</style></head><body><h1>{e(title)}</h1>"
            f"<p><small>{e(article_label('29', lang))} · {e(_t(zh, '检查日期', 'as of'))} {e(doc['as_of'])} · "
            f"{e(doc['generated'])}</small></p>{''.join(body)}</body></html>\n")


def render_xlsx(doc: dict[str, Any], lang: str = "zh") -> bytes:
    """One sheet per part; each row starts with the unit."""
    from openpyxl import Workbook

    zh = lang == "zh"
    book = Workbook()
    book.remove(book.active)
    parts: dict[str, tuple[list[str], list[list[Any]]]] = {}
    for site in doc["sites"]:
        for name, article, header, rows in sections(site, lang):
            key = f"{name}（{article_label(article, lang)}）" if zh else f"{name} ({article_label(article, lang)})"
            entry = parts.setdefault(key, ([_t(zh, "单位", "Unit"), *header], []))
            entry[1].extend([site["unit"], *row] for row in rows)
    for index, (key, (header, rows)) in enumerate(parts.items(), 1):
        sheet = book.create_sheet(f"{index} {key}"[:31])
        table(sheet, header, rows, [16] + [40] * (len(header) - 1))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
