"""The quarterly inspection report (article 29): per unit and per article, from the stored runs.

Counting rule: for each terminal the latest run inside the quarter counts, and nothing older, so
a terminal fixed in December is not held to its October failures. A pass rate is
passed / (passed + failed) over those runs; ``error`` (could not be evaluated) and ``skip`` are
counted apart, neither good nor bad. A terminal of the inventory without a run in the quarter is
silent; markers of failed collection (unreachable) are shown beside it.

The score for the annual evaluation (weights: ``quarterly_score`` in the policy variables)::

    score = 100 × Σ(weight_a × rate_a) / Σ weight_a        over the articles with a pass or fail
            − silent_host_penalty × silent / hosts
            − unit_metadata_penalty × article-25 findings             (never below 0)

A unit with no reporting terminal has nothing verified and scores 0.

:func:`compute` works on lists of the store's runs and result rows, so it is tested without a database;
:func:`build` fetches them from the store. Renderings: JSON, one self-contained HTML page (inline
CSS and SVG, no script, nothing fetched) and the xlsx workbook the county office files.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from nanbu_secops.fleet.inventory import Inventory, unit_findings
from nanbu_secops.fleet.quarter import Quarter
from nanbu_secops.policy import PolicySet, require_variables
from nanbu_secops.report.labels import SEVERITY, article_key, article_label
from nanbu_secops.store.db import ResultRow, Run, Store, Unreachable

# Summaries of the controls behind the county's recurring questions, by control id prefix.
SUMMARIES = {"accounts": ("NS26-ACC", "NS26-PASS-"), "antivirus": ("NS27-AV-",), "ipv6": ("NS09-",)}
_NUMBER = {"type": "number", "minimum": 0}
SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["quarterly_score"],
    "properties": {"quarterly_score": {
        "type": "object", "additionalProperties": False,
        "required": ["article_weights", "default_weight", "silent_host_penalty", "unit_metadata_penalty"],
        "properties": {
            "article_weights": {"type": "object", "additionalProperties": _NUMBER,
                                "propertyNames": {"pattern": r"^[1-9][0-9]*(\([1-9][0-9]*\))?$"}},
            "default_weight": _NUMBER, "silent_host_penalty": _NUMBER, "unit_metadata_penalty": _NUMBER}}},
}


@dataclass(frozen=True)
class ScoreSettings:
    weights: dict[str, float]
    default_weight: float
    silent_host_penalty: float
    unit_metadata_penalty: float

    @classmethod
    def from_policy(cls, policies: PolicySet) -> ScoreSettings:
        v = require_variables(policies, SCORE_SCHEMA)["quarterly_score"]
        return cls({str(a): float(w) for a, w in v["article_weights"].items()}, float(v["default_weight"]),
                   float(v["silent_host_penalty"]), float(v["unit_metadata_penalty"]))


# --- computation -------------------------------------------------------------------------------

def _latest(runs: Iterable[Run]) -> dict[str, Run]:
    """Each host's latest run (the store gives one per host already; a plain list may hold more)."""
    latest: dict[str, Run] = {}
    for run in runs:
        kept = latest.get(run.host)
        if kept is None or (run.generated_utc, run.id) > (kept.generated_utc, kept.id):
            latest[run.host] = run
    return latest


def _counts(rows: Iterable[ResultRow]) -> dict[str, int]:
    tally = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    key = {"pass": "passed", "fail": "failed", "error": "errors", "skip": "skipped"}
    for row in rows:
        tally[key[row.status]] += 1
    return tally


def _rate(counts: dict[str, int]) -> float:
    """The JSON's pass rate: 0.0 when nothing was judged (see :func:`_judged_rate` for display)."""
    judged = counts["passed"] + counts["failed"]
    return counts["passed"] / judged if judged else 0.0


def _judged_rate(counts: dict[str, Any]) -> float | None:
    """The rate to show: None ("—") when nothing passed or failed, so no rate reads as 0 %."""
    return counts["pass_rate"] if counts["passed"] + counts["failed"] else None


def _by_control(rows: Iterable[tuple[str, ResultRow]], status: str) -> list[dict[str, Any]]:
    """Controls with ``status`` and the hosts they have it on, most hosts first."""
    hosts: dict[str, set[str]] = defaultdict(set)
    first: dict[str, ResultRow] = {}
    for host, row in rows:
        if row.status == status:
            hosts[row.control].add(host)
            first.setdefault(row.control, row)
    return sorted(({"control": c, "article": first[c].article, "severity": first[c].severity,
                    "title": first[c].title, "hosts": sorted(h)} for c, h in hosts.items()),
                  key=lambda item: (-len(item["hosts"]), item["control"]))


def score(articles: dict[str, dict[str, int]], hosts: int, silent: int, findings: int,
          settings: ScoreSettings) -> float:
    """The module docstring's formula, rounded to one decimal."""
    judged = {a: c for a, c in articles.items() if c["passed"] + c["failed"]}
    if not judged or silent == hosts:
        return 0.0
    weights = {a: settings.weights.get(a, settings.default_weight) for a in judged}
    total = sum(weights.values())
    compliance = 100 * sum(weights[a] * _rate(c) for a, c in judged.items()) / total if total else 0.0
    penalty = settings.silent_host_penalty * silent / hosts + settings.unit_metadata_penalty * findings
    return round(max(0.0, compliance - penalty), 1)


def _summaries(rows: list[tuple[str, ResultRow]]) -> dict[str, Any]:
    """Account, antivirus and IPv6 controls in brief, for the units that have results of them."""
    out = {}
    for name, prefixes in SUMMARIES.items():
        picked = [(host, row) for host, row in rows if row.control.startswith(prefixes)]
        if picked:
            out[name] = {**_counts(row for _, row in picked),
                         "hosts_failing": sorted({h for h, row in picked if row.status == "fail"})}
    return out


def _unreachable(markers: Iterable[Unreachable]) -> dict[str, dict[str, Any]]:
    """Per host: how many markers, and the latest one's time and message."""
    out: dict[str, dict[str, Any]] = {}
    for marker in sorted(markers, key=lambda m: m.at):
        count = out.get(marker.host, {}).get("markers", 0) + 1
        out[marker.host] = {"host": marker.host, "markers": count, "last_at": marker.at, "last_msg": marker.msg or ""}
    return out


def _unit(group: str, inventory: Inventory, latest: dict[str, Run], rows_by_run: dict[int, list[ResultRow]],
          unreachable: dict[str, dict[str, Any]], findings: list[dict[str, Any]],
          settings: ScoreSettings) -> dict[str, Any]:
    hosts = inventory.hosts_of(group)
    reporting = [h for h in hosts if h in latest]
    rows = [(h, row) for h in reporting for row in rows_by_run.get(latest[h].id, [])]
    per_article: dict[str, list[ResultRow]] = defaultdict(list)
    for _, row in rows:
        per_article[row.article].append(row)
    articles = {a: _counts(per_article[a]) for a in sorted(per_article, key=article_key)}
    totals = _counts(row for _, row in rows)
    silent = [h for h in hosts if h not in latest]
    return {
        "unit": group, "name": inventory.units[group].name, "hosts": len(hosts), "reporting_hosts": len(reporting),
        "silent_hosts": silent,
        "addresses": {h: str(inventory.hosts.get(h, {}).get("ansible_host", "")) for h in silent},
        "unreachable": [unreachable[h] for h in hosts if h in unreachable],
        "passed": totals["passed"], "failed": totals["failed"], "errors": totals["errors"],
        "skipped": totals["skipped"], "pass_rate": round(_rate(totals), 4),
        "score": score(articles, len(hosts), len(silent), len(findings), settings),
        "articles": {a: {**c, "pass_rate": round(_rate(c), 4)} for a, c in articles.items()},
        "failing": _by_control(rows, "fail"), "unverified": _by_control(rows, "error"),
        "summaries": _summaries(rows), "metadata_findings": findings,
        "last_runs": {h: latest[h].generated for h in reporting},
    }


def compute(quarter: Quarter, inventory: Inventory, runs: Iterable[Run], results: Iterable[ResultRow],
            settings: ScoreSettings, unreachable: Iterable[Unreachable] = (), lang: str = "zh") -> dict[str, Any]:
    """The report of one quarter from its runs (any order, any number per host; those outside the
    quarter are ignored), their result rows, and the quarter's unreachable markers."""
    latest = _latest(r for r in runs if quarter.start_utc <= r.generated_utc < quarter.end_utc)
    rows_by_run: dict[int, list[ResultRow]] = defaultdict(list)
    for row in results:
        rows_by_run[row.run_id].append(row)
    findings: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for finding in unit_findings(inventory, lang):
        findings[finding["unit"]].append(finding)
    marked = _unreachable(unreachable)
    units = [_unit(g, inventory, latest, rows_by_run, marked, findings[g], settings) for g in sorted(inventory.units)]
    fleet: dict[str, dict[str, int]] = {}
    for unit in units:
        for article, counts in unit["articles"].items():
            into = fleet.setdefault(article, {"passed": 0, "failed": 0, "errors": 0, "skipped": 0})
            for key in into:
                into[key] += counts[key]
    return {
        "quarter": quarter.label, "start": quarter.start.isoformat(), "end": quarter.end.isoformat(),
        "units": units,
        "articles": {a: {**fleet[a], "pass_rate": round(_rate(fleet[a]), 4)} for a in sorted(fleet, key=article_key)},
        "unlisted_hosts": sorted(h for h in latest if inventory.unit_of(h) is None),
    }


def add_trend(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """Each unit's pass rate and score last quarter and the change (None where it had no report)."""
    before = {u["unit"]: u for u in previous["units"] if u["reporting_hosts"]}
    for unit in current["units"]:
        old = before.get(unit["unit"])
        unit["trend"] = {"previous_quarter": previous["quarter"],
                         "previous_pass_rate": old["pass_rate"] if old else None,
                         "pass_rate_change": round(unit["pass_rate"] - old["pass_rate"], 4) if old else None,
                         "previous_score": old["score"] if old else None,
                         "score_change": round(unit["score"] - old["score"], 1) if old else None}
    return current


def build(store: Store, quarter: Quarter, inventory: Inventory, settings: ScoreSettings,
          lang: str = "zh", roster_changes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The quarter's report with its trend against the previous quarter, read from the store."""

    def one(q: Quarter) -> dict[str, Any]:
        runs = store.latest_runs(q.start_utc, q.end_utc)
        markers = store.unreachable(q.start_utc, q.end_utc)
        return compute(q, inventory, runs, store.results([r.id for r in runs]), settings, markers, lang)

    report = add_trend(one(quarter), one(quarter.previous()))
    if roster_changes is not None:
        report["roster_changes"] = roster_changes
    return report


# --- renderings --------------------------------------------------------------------------------

def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"


# Every word of the report: key -> (Chinese, English).
_WORDS = {
    "title": ("南部县政府网站集约化平台季度安全检查报告", "Quarterly security inspection of the county platform"),
    "period": ("检查期间", "Period"),
    "unit": ("单位", "Unit"),
    "code": ("单位代码", "Code"),
    "hosts": ("终端数", "Terminals"),
    "reporting": ("已上报", "Reporting"),
    "silent": ("未上报", "Silent"),
    "passed": ("通过", "Passed"),
    "failed": ("不通过", "Failed"),
    "errors": ("错误", "Errors"),
    "skipped": ("跳过", "Skipped"),
    "pass_rate": ("通过率", "Pass rate"),
    "score": ("得分", "Score"),
    "trend": ("较上季度", "vs last quarter"),
    "previous": ("上季度通过率", "Last quarter's pass rate"),
    "previous_score": ("上季度得分", "Last quarter's score"),
    "article": ("条款", "Article"),
    "control": ("控制项", "Control"),
    "severity": ("级别", "Severity"),
    "check": ("检查内容", "Check"),
    "host": ("主机", "Host"),
    "address": ("地址", "Address"),
    "by_unit": ("各单位通过率", "Pass rate by unit"),
    "by_article": ("各条款通过率（全县）", "Pass rate by article (county)"),
    "failing": ("不通过的控制项", "Failing controls"),
    "unverified": ("无法评估的控制项", "Controls that could not be evaluated"),
    "silent_hosts": ("本季度未上报的终端", "Terminals that did not report this quarter"),
    "unreachable": ("无法连接记录", "Unreachable markers"),
    "last_marker": ("最近一次无法连接", "Latest marker"),
    "metadata": ("单位信息（第二十五条）", "Unit details (article 25)"),
    "field": ("事项", "Item"),
    "problem": ("问题", "Problem"),
    "source": ("位置", "Where"),
    "missing": ("未填写", "missing"),
    "placeholder": ("仍为示例", "still the example"),
    "summaries": ("专项情况", "Topics"),
    "failing_hosts": ("不通过的主机", "Hosts failing"),
    "accounts": ("账号与口令", "Accounts and passwords"),
    "antivirus": ("防病毒", "Antivirus"),
    "ipv6": ("IPv6", "IPv6"),
    "roster": ("人员变动后仍持有账号（第八条）", "Staff who left or moved and still hold accounts (article 8)"),
    "name": ("姓名", "Name"),
    "change": ("变动", "Change"),
    "left": ("离职/退休", "left/retired"),
    "moved": ("调动", "moved"),
    "from": ("原单位", "Former unit"),
    "to": ("现单位", "Unit now"),
    "accounts_held": ("仍持有的账号", "Accounts still held"),
    "unlisted": ("不在清单中的上报主机", "Reporting hosts not in the inventory"),
    "none": ("无", "none"),
    "score_rule": ("得分：按条款权重计算的通过率，扣除未上报终端和单位信息缺项",
                   "Score: pass rate weighted by article, less penalties for silent terminals and missing unit details"),
    "overview": ("汇总", "Overview"),
}
WORDS = {lang: {key: pair[i] for key, pair in _WORDS.items()} for i, lang in enumerate(("zh", "en"))}
STYLE = ("body{font-family:'Noto Sans CJK SC','Source Han Sans SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif;"
         "margin:1.5em;color:#222}table{border-collapse:collapse;margin:0.5em 0 1.5em}"
         "td,th{border:1px solid #999;padding:3px 6px;vertical-align:top;font-size:13px}th{background:#eee}"
         "td.n{text-align:right}.bad{color:#b00}svg{display:block;margin:0.5em 0 1.5em}"
         "h2{border-bottom:2px solid #345;padding-bottom:2px}small{color:#555}")


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _change(value: float | None, percent: bool) -> str:
    if value is None:
        return "—"
    return f"{value * 100:+.1f}%" if percent else f"{value:+.1f}"


def _bars(items: Sequence[tuple[str, float]], key: str) -> str:
    """A horizontal bar chart of rates in inline SVG; each bar carries its value for checking."""
    e = html.escape
    row, label_width, bar_width = 26, 220, 400
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + bar_width + 80}" '
             f'height="{row * len(items) + 10}" role="img" data-chart="{e(key)}">']
    for i, (label, rate) in enumerate(items):
        y = 5 + i * row
        colour = "#2a7" if rate >= 0.9 else "#e90" if rate >= 0.6 else "#c33"
        parts.append(f'<text x="{label_width - 6}" y="{y + 16}" text-anchor="end" font-size="13">{e(label)}</text>'
                     f'<rect x="{label_width}" y="{y + 3}" width="{bar_width}" height="18" fill="#eee"/>'
                     f'<rect x="{label_width}" y="{y + 3}" width="{rate * bar_width:.1f}" height="18" fill="{colour}" '
                     f'data-label="{e(label)}" data-value="{rate:.4f}"/>'
                     f'<text x="{label_width + bar_width + 6}" y="{y + 16}" font-size="13">{_percent(rate)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _cell(value: Any, key: str = "") -> str:
    """One table cell; numbers right-aligned, and ``key`` marks the cells whose values are checked."""
    data = f' data-key="{html.escape(key)}"' if key else ""
    numeric = ' class="n"' if isinstance(value, (int, float)) or key else ""
    return f"<td{data}{numeric}>{html.escape(str(value))}</td>"


def _table(header: Sequence[str], rows: Iterable[str]) -> str:
    """A table from its header words and its ``<tr>`` rows."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _overview(report: dict[str, Any], w: dict[str, str]) -> str:
    header = [w["unit"], w["hosts"], w["reporting"], w["silent"], w["passed"], w["failed"], w["errors"],
              w["pass_rate"], w["score"], w["trend"]]
    rows = []
    for u in report["units"]:
        trend = u.get("trend", {})
        rows.append(f'<tr data-unit="{html.escape(u["unit"])}"><td>{html.escape(u["name"])}</td>'
                    + _cell(u["hosts"], "hosts") + _cell(u["reporting_hosts"], "reporting_hosts")
                    + _cell(len(u["silent_hosts"]), "silent_hosts") + _cell(u["passed"], "passed")
                    + _cell(u["failed"], "failed") + _cell(u["errors"], "errors")
                    + _cell(_percent(_judged_rate(u)), "pass_rate") + _cell(f'{u["score"]:.1f}', "score")
                    + _cell(_change(trend.get("pass_rate_change"), True), "pass_rate_change") + "</tr>")
    return _table(header, rows)


def _article_rows(unit: dict[str, Any], lang: str, w: dict[str, str]) -> str:
    rows = [f'<tr data-unit="{html.escape(unit["unit"])}" data-article="{html.escape(a)}">'
            f"<td>{html.escape(article_label(a, lang))}</td>" + _cell(c["passed"], "passed")
            + _cell(c["failed"], "failed") + _cell(c["errors"], "errors") + _cell(c["skipped"], "skipped")
            + _cell(_percent(_judged_rate(c)), "pass_rate") + "</tr>" for a, c in unit["articles"].items()]
    return _table([w["article"], w["passed"], w["failed"], w["errors"], w["skipped"], w["pass_rate"]], rows)


def _control_rows(items: list[dict[str, Any]], lang: str, w: dict[str, str], kind: str) -> str:
    e = html.escape
    rows = [f'<tr data-{kind}="{e(c["control"])}"><td>{e(c["control"])}</td>'
            f'<td>{e(article_label(c["article"], lang))}</td>'
            f'<td>{e(SEVERITY[lang].get(c["severity"], c["severity"]))}</td><td>{e(c["title"])}</td>'
            f'<td data-key="hosts">{e(", ".join(c["hosts"]))}</td></tr>' for c in items]
    return _table([w["control"], w["article"], w["severity"], w["check"], w["host"]], rows)


def _unit_section(unit: dict[str, Any], lang: str, w: dict[str, str]) -> str:
    e = html.escape
    parts = [f'<h2 id="{e(unit["unit"])}">{e(unit["name"])} <small>{e(unit["unit"])}</small></h2>',
             f'<p>{e(w["hosts"])} {unit["hosts"]} · {e(w["reporting"])} {unit["reporting_hosts"]} · '
             f'{e(w["pass_rate"])} {_percent(_judged_rate(unit))} · {e(w["score"])} {unit["score"]:.1f}'
             + (f' · {e(w["previous"])} {_percent(unit["trend"]["previous_pass_rate"])}' if "trend" in unit else "")
             + "</p>"]
    if unit["articles"]:
        parts.append(_article_rows(unit, lang, w))
    for key in ("failing", "unverified"):
        if unit[key]:
            parts.append(f"<h3>{e(w[key])}</h3>" + _control_rows(unit[key], lang, w, key))
    if unit["silent_hosts"]:
        marked = {m["host"]: m for m in unit["unreachable"]}
        items = "".join(f'<li data-silent="{e(h)}">{e(h)} {e(unit["addresses"].get(h, ""))}'
                        + (_marker_note(marked[h], w) if h in marked else "") + "</li>" for h in unit["silent_hosts"])
        parts.append(f'<h3>{e(w["silent_hosts"])}</h3><ul>{items}</ul>')
    if unit["summaries"]:
        rows = [f"<tr><td>{e(w[name])}</td>" + _cell(s["passed"]) + _cell(s["failed"]) + _cell(s["errors"])
                + f'<td>{e(", ".join(s["hosts_failing"]) or w["none"])}</td></tr>' for name, s in unit["summaries"].items()]
        parts.append(f'<h3>{e(w["summaries"])}</h3>'
                     + _table([w["summaries"], w["passed"], w["failed"], w["errors"], w["failing_hosts"]], rows))
    if unit["metadata_findings"]:
        rows = [f'<tr class="bad"><td>{e(f["label"])}</td><td>{e(w[f["problem"]])}</td><td>{e(f["source"])}</td></tr>'
                for f in unit["metadata_findings"]]
        parts.append(f'<h3>{e(w["metadata"])}</h3>' + _table([w["field"], w["problem"], w["source"]], rows))
    return "".join(parts)


def _marker_note(marker: dict[str, Any], w: dict[str, str]) -> str:
    text = f'{w["unreachable"]} ×{marker["markers"]}, {marker["last_at"]} {marker["last_msg"]}'.strip()
    return f' <span class="bad">({html.escape(text)})</span>'


def _roster_section(changes: list[dict[str, Any]], w: dict[str, str]) -> str:
    e = html.escape
    rows = [f"<tr><td>{e(c['name'])}</td><td>{e(w[c['change']])}</td><td>{e(c['from_unit'])}</td>"
            f"<td>{e(c['to_unit'] or '')}</td><td>{e(', '.join(c['accounts']))}</td></tr>" for c in changes]
    body = _table([w["name"], w["change"], w["from"], w["to"], w["accounts_held"]], rows) if rows else f"<p>{w['none']}</p>"
    return f'<h2>{e(w["roster"])}</h2>{body}'


def _last_day(report: dict[str, Any]) -> str:
    """The quarter's last calendar day (``end`` is the next quarter's first moment)."""
    return (dt.date.fromisoformat(report["end"][:10]) - dt.timedelta(days=1)).isoformat()


def render_html(report: dict[str, Any], lang: str = "zh") -> str:
    """One self-contained page: inline CSS and SVG, no script, nothing to fetch."""
    e, w = html.escape, WORDS[lang]
    title = f'{w["title"]}（{report["quarter"]}）' if lang == "zh" else f'{w["title"]} ({report["quarter"]})'
    parts = [f'<!DOCTYPE html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
             f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{e(title)}</h1><p><small>{e(article_label('29', lang))} · {e(w['period'])} "
             f"{e(report['start'][:10])} – {_last_day(report)} (Asia/Shanghai)</small></p>",
             f"<h2>{e(w['overview'])}</h2>", _overview(report, w), f"<p><small>{e(w['score_rule'])}</small></p>",
             f"<h3>{e(w['by_unit'])}</h3>",
             _bars([(u["name"], u["pass_rate"]) for u in report["units"] if _judged_rate(u) is not None], "units"),
             f"<h3>{e(w['by_article'])}</h3>",
             _bars([(article_label(a, lang), c["pass_rate"]) for a, c in report["articles"].items()
                   if _judged_rate(c) is not None], "articles")]
    parts += [_unit_section(u, lang, w) for u in report["units"]]
    if "roster_changes" in report:
        parts.append(_roster_section(report["roster_changes"], w))
    if report["unlisted_hosts"]:
        parts.append(f'<h2>{e(w["unlisted"])}</h2><p>{e(", ".join(report["unlisted_hosts"]))}</p>')
    parts.append("</body></html>\n")
    return "".join(parts)


def _hundredths(rate: float | None) -> float | None:
    """A rate as the percentage the sheet shows (its header says %), empty when there is none."""
    return None if rate is None else round(rate * 100, 1)


def _marker_cells(unit: dict[str, Any], host: str) -> list[Any]:
    """Unreachables counted and the latest one, for a silent host's row."""
    marker = next((m for m in unit["unreachable"] if m["host"] == host), None)
    return [marker["markers"], f'{marker["last_at"]} {marker["last_msg"]}'.strip()] if marker else [0, ""]


def render_xlsx(report: dict[str, Any], lang: str = "zh") -> bytes:
    """The workbook the office files: one row per unit, then failing controls and silent terminals."""
    from openpyxl import Workbook

    from nanbu_secops.report.sheet import table

    w = WORDS[lang]
    articles = list(report["articles"])
    book = Workbook()
    units = book.active
    units.title = f'{report["quarter"]} {w["overview"]}'
    header = [w["code"], w["unit"], w["hosts"], w["reporting"], w["silent"], w["passed"], w["failed"], w["errors"],
              f'{w["pass_rate"]} (%)', w["score"], f'{w["previous"]} (%)', w["previous_score"],
              *(f'{article_label(a, lang)} {w["pass_rate"]} (%)' for a in articles), w["metadata"]]
    rows = []
    for u in report["units"]:
        trend = u.get("trend", {})
        previous = trend.get("previous_pass_rate")
        rows.append([u["unit"], u["name"], u["hosts"], u["reporting_hosts"], len(u["silent_hosts"]), u["passed"],
                     u["failed"], u["errors"], _hundredths(_judged_rate(u)), u["score"],
                     _hundredths(previous), trend.get("previous_score"),
                     *(_hundredths(_judged_rate(u["articles"][a])) if a in u["articles"] else None for a in articles),
                     "; ".join(f'{f["label"]}: {w[f["problem"]]}' for f in u["metadata_findings"])])
    table(units, header, rows, (16, 24, 8, 8, 8, 8, 8, 8, 10, 8, 12, 10, *(12 for _ in articles), 40))
    failing = book.create_sheet(w["failing"])
    table(failing, [w["unit"], w["control"], w["article"], w["severity"], w["check"], w["host"]],
          [[u["name"], c["control"], article_label(c["article"], lang), SEVERITY[lang].get(c["severity"], c["severity"]),
            c["title"], ", ".join(c["hosts"])] for u in report["units"] for c in u["failing"]],
          (24, 16, 14, 8, 50, 40))
    silent = book.create_sheet(w["silent_hosts"][:31])
    table(silent, [w["unit"], w["host"], w["address"], w["unreachable"], w["last_marker"]],
          [[u["name"], h, u["addresses"].get(h, ""), *_marker_cells(u, h)] for u in report["units"]
           for h in u["silent_hosts"]], (24, 20, 20, 10, 50))
    if "roster_changes" in report:
        roster = book.create_sheet(w["roster"][:31])
        table(roster, [w["name"], w["change"], w["from"], w["to"], w["accounts_held"]],
              [[c["name"], w[c["change"]], c["from_unit"], c["to_unit"] or "", ", ".join(c["accounts"])]
               for c in report["roster_changes"]], (12, 10, 24, 24, 30))
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def clear(report: dict[str, Any]) -> bool:
    """Nothing to act on (the command's exit 0): no control failed or went unverified, no terminal
    was silent, every unit named its people, and no departed holder kept an account."""
    return not report.get("roster_changes") and not any(
        u["failed"] or u["errors"] or u["silent_hosts"] or u["metadata_findings"] for u in report["units"])
