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

Article 9(2) also counts the unit's portals and app endpoints (``ipv6 check`` results that
``playbooks/ipv6_readiness.yml`` wrote and ``ingest`` stored; the unit's latest run in the quarter):
each verdict is worth ``ipv6_endpoints.verdict_values`` (``error``, not assessable, is left out),
their mean is the endpoint rate, and the article's rate in the score is
``(1 − share) × terminal rate + share × endpoint rate``, or whichever of the two exists. Without
``ipv6_endpoints`` in the policy the endpoints are shown but not scored.

:func:`compute` works on lists of the store's runs and result rows, so it is tested without a database;
:func:`build` fetches them from the store. Renderings: JSON, one self-contained HTML page (inline
CSS and SVG, no script, nothing fetched) and the xlsx workbook the county office files.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from nanbu_secops.fleet.inventory import Inventory, unit_findings
from nanbu_secops.fleet.quarter import Quarter
from nanbu_secops.policy import PolicySet, require_variables
from nanbu_secops.progress import Meter
from nanbu_secops.report import i18n, platform_use
from nanbu_secops.report import ipv6 as ipv6_report
from nanbu_secops.report.labels import SEVERITY, article_key, article_label
from nanbu_secops.store.db import EndpointRow, EndpointRun, ResultRow, Run, Store, Unreachable
from nanbu_secops.timeutil import now, rfc3339

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
            "default_weight": _NUMBER, "silent_host_penalty": _NUMBER, "unit_metadata_penalty": _NUMBER,
            "ipv6_endpoints": {
                "type": "object", "additionalProperties": False, "required": ["verdict_values", "share"],
                "properties": {
                    "verdict_values": {"type": "object", "additionalProperties": False,
                                       "required": ["ready", "partial", "not-ready"],
                                       "properties": {v: {"type": "number", "minimum": 0, "maximum": 1}
                                                      for v in ("ready", "partial", "not-ready")}},
                    "share": {"type": "number", "minimum": 0, "maximum": 1}}}}}},
}
IPV6_ARTICLE = "9(2)"


@dataclass(frozen=True)
class ScoreSettings:
    weights: dict[str, float]
    default_weight: float
    silent_host_penalty: float
    unit_metadata_penalty: float
    endpoint_values: dict[str, float] = field(default_factory=dict)  # verdict → its worth; empty: not scored
    endpoint_share: float = 0.0

    @classmethod
    def from_policy(cls, policies: PolicySet) -> ScoreSettings:
        v = require_variables(policies, SCORE_SCHEMA)["quarterly_score"]
        endpoints = v.get("ipv6_endpoints") or {}
        return cls({str(a): float(w) for a, w in v["article_weights"].items()}, float(v["default_weight"]),
                   float(v["silent_host_penalty"]), float(v["unit_metadata_penalty"]),
                   {k: float(x) for k, x in endpoints.get("verdict_values", {}).items()},
                   float(endpoints.get("share", 0.0)))


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


def _article_rates(articles: dict[str, dict[str, int]], endpoint_rate: float | None,
                   settings: ScoreSettings) -> dict[str, float]:
    """The rate of each judged article; article 9(2)'s with the endpoints' share (module docstring)."""
    rates = {a: _rate(c) for a, c in articles.items() if c["passed"] + c["failed"]}
    if endpoint_rate is not None and settings.endpoint_values:
        terminal = rates.get(IPV6_ARTICLE)
        rates[IPV6_ARTICLE] = endpoint_rate if terminal is None else \
            (1 - settings.endpoint_share) * terminal + settings.endpoint_share * endpoint_rate
    return rates


def score(articles: dict[str, dict[str, int]], hosts: int, silent: int, findings: int,
          settings: ScoreSettings, endpoint_rate: float | None = None) -> float:
    """The module docstring's formula, rounded to one decimal."""
    rates = _article_rates(articles, endpoint_rate, settings)
    if not rates or silent == hosts:
        return 0.0
    weights = {a: settings.weights.get(a, settings.default_weight) for a in rates}
    total = sum(weights.values())
    compliance = 100 * sum(weights[a] * rate for a, rate in rates.items()) / total if total else 0.0
    penalty = settings.silent_host_penalty * silent / hosts + settings.unit_metadata_penalty * findings
    return round(max(0.0, compliance - penalty), 1)


def _link_ratio(level: dict[str, Any] | None) -> dict[str, Any] | None:
    if not level or level.get("ratio") is None:
        return None
    return {"ipv6": level["ipv6"], "total": level["total"], "ratio": level["ratio"]}


def _endpoints(run: EndpointRun | None, rows: list[EndpointRow], settings: ScoreSettings,
               lang: str) -> dict[str, Any] | None:
    """A unit's endpoint verdicts (its latest endpoint run), with causes and the endpoint rate."""
    if run is None:
        return None
    counts = {v: sum(row.verdict == v for row in rows) for v in ("ready", "partial", "not-ready", "error")}
    rate = _endpoint_rate(rows, settings)
    return {
        "generated": run.generated, "source": run.source, **counts,
        "rate": None if rate is None else round(rate, 4),
        "targets": [{"target": row.target, "url": row.detail.get("url"), "verdict": row.verdict, "reason": row.reason,
                     "level2": _link_ratio(row.detail.get("links", {}).get("level2")),
                     "level3": _link_ratio(row.detail.get("links", {}).get("level3")),
                     "success_rate_v6": row.detail.get("success_rate_v6"),
                     "causes": ipv6_report.causes({"target": row.target, "verdict": row.verdict, **row.detail}, lang)}
                    for row in sorted(rows, key=lambda r: r.target)],
    }


def _endpoint_rate(rows: list[EndpointRow], settings: ScoreSettings) -> float | None:
    """The mean value of the verdicts the policy values (``error`` is not one); None without any."""
    valued = [settings.endpoint_values[row.verdict] for row in rows if row.verdict in settings.endpoint_values]
    return sum(valued) / len(valued) if valued else None


def _ipv6_part(articles: dict[str, dict[str, int]], endpoint_rate: float | None,
               settings: ScoreSettings) -> dict[str, Any]:
    """What article 9(2) brings to the score: its rates, weight and points (before penalties)."""
    rates = _article_rates(articles, endpoint_rate, settings)
    weights = {a: settings.weights.get(a, settings.default_weight) for a in rates}
    total = sum(weights.values())
    terminal = articles.get(IPV6_ARTICLE)
    rate = rates.get(IPV6_ARTICLE)
    judged = terminal is not None and terminal["passed"] + terminal["failed"] > 0
    return {"terminal_rate": round(_rate(terminal), 4) if terminal is not None and judged else None,
            "endpoint_rate": round(endpoint_rate, 4) if endpoint_rate is not None else None,
            "rate": None if rate is None else round(rate, 4),
            "weight": settings.weights.get(IPV6_ARTICLE, settings.default_weight),
            "points": round(100 * weights[IPV6_ARTICLE] * rate / total, 1) if rate is not None and total else None}


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
          settings: ScoreSettings, endpoints: dict[str, Any] | None = None,
          endpoint_rate: float | None = None) -> dict[str, Any]:
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
        "score": score(articles, len(hosts), len(silent), len(findings), settings, endpoint_rate),
        "ipv6_endpoints": endpoints, "ipv6_score": _ipv6_part(articles, endpoint_rate, settings),
        "articles": {a: {**c, "pass_rate": round(_rate(c), 4)} for a, c in articles.items()},
        "failing": _by_control(rows, "fail"), "unverified": _by_control(rows, "error"),
        "summaries": _summaries(rows), "metadata_findings": findings,
        "last_runs": {h: latest[h].generated for h in reporting},
    }


def compute(quarter: Quarter, inventory: Inventory, runs: Iterable[Run], results: Iterable[ResultRow],
            settings: ScoreSettings, unreachable: Iterable[Unreachable] = (), lang: str = "zh",
            endpoint_runs: Iterable[EndpointRun] = (), endpoints: Iterable[EndpointRow] = ()) -> dict[str, Any]:
    """The report of one quarter from its runs (any order, any number per host; those outside the
    quarter are ignored), their result rows, the quarter's unreachable markers, and the units'
    endpoint runs (the latest per unit in the quarter counts) with their endpoint rows."""
    latest = _latest(r for r in runs if quarter.start_utc <= r.generated_utc < quarter.end_utc)
    rows_by_run: dict[int, list[ResultRow]] = defaultdict(list)
    for row in results:
        rows_by_run[row.run_id].append(row)
    findings: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for finding in unit_findings(inventory, lang):
        findings[finding["unit"]].append(finding)
    marked = _unreachable(unreachable)
    latest_endpoints: dict[str, EndpointRun] = {}
    for endpoint_run in endpoint_runs:
        if quarter.start_utc <= endpoint_run.generated_utc < quarter.end_utc:
            kept = latest_endpoints.get(endpoint_run.unit)
            if kept is None or (endpoint_run.generated_utc, endpoint_run.id) > (kept.generated_utc, kept.id):
                latest_endpoints[endpoint_run.unit] = endpoint_run
    endpoint_rows: dict[int, list[EndpointRow]] = defaultdict(list)
    for row in endpoints:
        endpoint_rows[row.run_id].append(row)

    def unit(group: str) -> dict[str, Any]:
        found = latest_endpoints.get(group)
        rows = endpoint_rows.get(found.id, []) if found else []
        return _unit(group, inventory, latest, rows_by_run, marked, findings[group], settings,
                     _endpoints(found, rows, settings, lang), _endpoint_rate(rows, settings))

    units = [unit(g) for g in sorted(inventory.units)]
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
        "unlisted_endpoint_units": sorted(u for u in latest_endpoints if u not in inventory.units),
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


def from_store(store: Store, quarter: Quarter, inventory: Inventory, settings: ScoreSettings,
               lang: str = "zh") -> dict[str, Any]:
    """One quarter's report (without trend), read from the store: the annual report's building block too."""
    runs = store.latest_runs(quarter.start_utc, quarter.end_utc)
    markers = store.unreachable(quarter.start_utc, quarter.end_utc)
    endpoint_runs = store.latest_endpoint_runs(quarter.start_utc, quarter.end_utc)
    return compute(quarter, inventory, runs, store.results([r.id for r in runs]), settings, markers, lang,
                   endpoint_runs, store.endpoints([r.id for r in endpoint_runs]))


STEPS = 2  # what :func:`build` tells its progress of: the quarter and the one before, each read and scored


def build(store: Store, quarter: Quarter, inventory: Inventory, settings: ScoreSettings,
          lang: str = "zh", roster_changes: list[dict[str, Any]] | None = None,
          site_weights: dict[str, float] | None = None, progress: Meter | None = None) -> dict[str, Any]:
    """The quarter's report with its trend against the previous quarter, read from the store;
    each unit's platform use (article 29) from its latest site inspection of the quarter."""
    reports = []
    for q in (quarter, quarter.previous()):
        reports.append(from_store(store, q, inventory, settings, lang))
        if progress is not None:
            progress(1)
    report = add_trend(*reports)
    platform_use.attach(report, store.latest_site_runs(quarter.start_utc, quarter.end_utc), site_weights)
    report["generated"] = rfc3339(now())
    if roster_changes is not None:
        report["roster_changes"] = roster_changes
    return report


def retitle(report: dict[str, Any], titles: dict[str, str]) -> dict[str, Any]:
    """Control titles in the language asked now, from the policy by control id: the store keeps
    the title in the language of the run; a control the policy no longer has keeps that one."""
    for unit in report["units"]:
        for key in ("failing", "unverified"):
            for control in unit[key]:
                control["title"] = titles.get(control["control"], control["title"])
    return report


def relative_source(source: str, base: Path | None) -> str:
    """A ``path:line`` under the inventory's folder as a path relative to it, so a report names the
    file as the office's copy of the inventory has it, not the controller's absolute path."""
    if base is None:
        return source
    path, sep, line = source.rpartition(":") if source.rpartition(":")[2].isdigit() else (source, "", "")
    folder = base if base.is_dir() else base.parent
    try:
        return Path(path).resolve().relative_to(folder.resolve()).as_posix() + sep + line
    except ValueError:
        return source


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
    "unlisted_units": ("不在清单中的单位的网站与接口结果", "Endpoint results of units not in the inventory"),
    "none": ("无", "none"),
    "score_rule": ("得分：按条款权重计算的通过率，扣除未上报终端和单位信息缺项",
                   "Score: pass rate weighted by article, less penalties for silent terminals and missing unit details"),
    "overview": ("汇总", "Overview"),
    "endpoints": ("门户网站与移动端接口的 IPv6 支持情况（第九条第（二）项）",
                  "Portals and app endpoints over IPv6 (article 9(2))"),
    "endpoints_sheet": ("网站与接口 IPv6", "IPv6 endpoints"),
    "target": ("网站或接口", "Portal or endpoint"),
    "verdict": ("结论", "Verdict"),
    "level2": ("二级链接", "Level-2 links"),
    "level3": ("三级链接", "Level-3 links"),
    "why": ("原因", "Why"),
    "measured": ("检测时间", "Measured"),
    "ipv6_part": ("第九条第（二）项在得分中", "Article 9(2) in the score"),
    "terminal_rate": ("终端检查通过率", "terminal pass rate"),
    "endpoint_rate": ("网站与接口得分率", "endpoint rate"),
    "article_rate": ("该条款得分率", "article rate"),
    "weight": ("权重", "weight"),
    "points": ("计分", "points"),
    "generated": ("生成时间", "Generated"),
    "legend": ("图例", "Legend"),
    "legend_good": ("通过率 ≥ 90%", "pass rate ≥ 90%"),
    "legend_fair": ("60% ≤ 通过率 < 90%", "60% ≤ pass rate < 90%"),
    "legend_poor": ("通过率 < 60%", "pass rate < 60%"),
    "legend_bad": ("红字：不通过、未就绪、未上报或须整改的项", "red text: failing, not ready, silent or to be fixed"),
}
WORDS = {lang: {key: pair[i] for key, pair in _WORDS.items()} for i, lang in enumerate(("zh", "en"))}
STYLE = ("body{font-family:'Noto Sans CJK SC','Source Han Sans SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif;"
         "margin:1.5em;color:#222}table{border-collapse:collapse;margin:0.5em 0 1.5em}"
         "td,th{border:1px solid #999;padding:3px 6px;vertical-align:top;font-size:13px}th{background:#eee}"
         "td.n{text-align:right}.bad{color:#b00}svg{display:block;margin:0.5em 0 1.5em}"
         "h2{border-bottom:2px solid #345;padding-bottom:2px}small{color:#555}"
         "th,td:first-child{white-space:nowrap}td{min-width:2.2em}"
         ".sw{display:inline-block;width:1em;height:0.8em;margin:0 0.3em 0 0.6em;vertical-align:baseline}")


GOOD, FAIR, POOR = "#2a7", "#e90", "#c33"   # the bars' colours, explained by the legend


def _legend(w: dict[str, str]) -> str:
    """What the colours mean, beside the charts that use them."""
    swatch = '<span class="sw" style="background:{}"></span>{}'
    items = [swatch.format(c, html.escape(w[k])) for c, k in ((GOOD, "legend_good"), (FAIR, "legend_fair"),
                                                                (POOR, "legend_poor"))]
    items.append(f'<span class="bad">{html.escape(w["legend_bad"])}</span>')
    return f'<p class="legend" data-legend="1"><small>{html.escape(w["legend"])}: ' + " · ".join(items) + "</small></p>"


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _change(value: float | None, percent: bool) -> str:
    if value is None:
        return "—"
    return f"{value * 100:+.1f}%" if percent else f"{value:+.1f}"


def _bars(items: Sequence[tuple[str, float]], key: str, text: Callable[[float], str] | None = None) -> str:
    """A horizontal bar chart of rates in inline SVG; each bar carries its value for checking.
    ``text`` writes the value beside the bar (default: as a percentage)."""
    e = html.escape
    row, label_width, bar_width = 26, 220, 400
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + bar_width + 80}" '
             f'height="{row * len(items) + 10}" role="img" data-chart="{e(key)}">']
    for i, (label, rate) in enumerate(items):
        y = 5 + i * row
        colour = GOOD if rate >= 0.9 else FAIR if rate >= 0.6 else POOR
        parts.append(f'<text x="{label_width - 6}" y="{y + 16}" text-anchor="end" font-size="13">{e(label)}</text>'
                     f'<rect x="{label_width}" y="{y + 3}" width="{bar_width}" height="18" fill="#eee"/>'
                     f'<rect x="{label_width}" y="{y + 3}" width="{rate * bar_width:.1f}" height="18" fill="{colour}" '
                     f'data-label="{e(label)}" data-value="{rate:.4f}"/>'
                     f'<text x="{label_width + bar_width + 6}" y="{y + 16}" font-size="13">{(text or _percent)(rate)}</text>')
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


def _unit_section(unit: dict[str, Any], lang: str, w: dict[str, str], base: Path | None) -> str:
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
    if unit.get("ipv6_endpoints"):
        parts.append(_endpoint_section(unit, lang, w))
    if "platform_use" in unit:
        parts.append(platform_use.html_section(unit, lang))
    if unit["metadata_findings"]:
        rows = [f'<tr class="bad"><td>{e(f["label"])}</td><td>{e(w[f["problem"]])}</td>'
                f'<td>{e(relative_source(f["source"], base))}</td></tr>'
                for f in unit["metadata_findings"]]
        parts.append(f'<h3>{e(w["metadata"])}</h3>' + _table([w["field"], w["problem"], w["source"]], rows))
    return "".join(parts)


def _links_text(level: dict[str, Any] | None) -> str:
    return "—" if not level else f'{level["ipv6"]}/{level["total"]} ({_percent(level["ratio"])})'


def _endpoint_section(unit: dict[str, Any], lang: str, w: dict[str, str]) -> str:
    """The unit's portals and endpoints: verdict, link ratios and why; then 9(2)'s part of the score."""
    e, endpoints, part = html.escape, unit["ipv6_endpoints"], unit["ipv6_score"]
    rows = []
    for t in endpoints["targets"]:
        label, css = ipv6_report.VERDICTS[t["verdict"]][0 if lang == "zh" else 1], t["verdict"]
        why = "".join(f"<li>{e(line)}</li>" for line in t["causes"])
        bad = ' class="bad"' if css != "ready" else ""
        rows.append(f'<tr data-endpoint="{e(t["target"])}"><td>{e(t["target"])}</td>'
                    f'<td data-key="verdict" data-verdict="{e(css)}"{bad}>{e(label)}</td>'
                    + _cell(_links_text(t["level2"]), "level2") + _cell(_links_text(t["level3"]), "level3")
                    + f'<td>{e(i18n.say(t["reason"] or "", lang))}{f"<ul>{why}</ul>" if why else ""}</td></tr>')
    share = (f'{w["terminal_rate"]} {_percent(part["terminal_rate"])} · {w["endpoint_rate"]} '
             f'{_percent(part["endpoint_rate"])} · {w["article_rate"]} {_percent(part["rate"])} · '
             f'{w["weight"]} {part["weight"]:g} · {w["points"]} {"—" if part["points"] is None else part["points"]}')
    return (f'<h3>{e(w["endpoints"])}</h3><p><small>{e(w["measured"])} {e(endpoints["generated"])}</small></p>'
            + _table([w["target"], w["verdict"], w["level2"], w["level3"], w["why"]], rows)
            + f'<p data-key="ipv6_score">{e(w["ipv6_part"])}: {e(share)}</p>')


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


def render_html(report: dict[str, Any], lang: str = "zh", base: Path | None = None) -> str:
    """One self-contained page: inline CSS and SVG, no script, nothing to fetch. Files are named
    relative to ``base``, the inventory."""
    e, w = html.escape, WORDS[lang]
    title = f'{w["title"]}（{report["quarter"]}）' if lang == "zh" else f'{w["title"]} ({report["quarter"]})'
    parts = [f'<!DOCTYPE html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
             f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{e(title)}</h1><p><small>{e(article_label('29', lang))} · {e(w['period'])} "
             f"{e(report['start'][:10])} – {_last_day(report)} (Asia/Shanghai)"
             + (f" · {e(w['generated'])} <span data-key=\"generated\">{e(report['generated'])}</span>"
                if report.get("generated") else "") + "</small></p>",
             f"<h2>{e(w['overview'])}</h2>", _overview(report, w), f"<p><small>{e(w['score_rule'])}</small></p>",
             f"<h3>{e(w['by_unit'])}</h3>",
             _bars([(u["name"], u["pass_rate"]) for u in report["units"] if _judged_rate(u) is not None], "units"),
             f"<h3>{e(w['by_article'])}</h3>",
             _bars([(article_label(a, lang), c["pass_rate"]) for a, c in report["articles"].items()
                   if _judged_rate(c) is not None], "articles"), _legend(w)]
    parts += [_unit_section(u, lang, w, base) for u in report["units"]]
    if "roster_changes" in report:
        parts.append(_roster_section(report["roster_changes"], w))
    if report["unlisted_hosts"]:
        parts.append(f'<h2>{e(w["unlisted"])}</h2><p>{e(", ".join(report["unlisted_hosts"]))}</p>')
    if report.get("unlisted_endpoint_units"):
        parts.append(f'<h2>{e(w["unlisted_units"])}</h2><p data-key="unlisted_endpoint_units">'
                     f'{e(", ".join(report["unlisted_endpoint_units"]))}</p>')
    parts.append("</body></html>\n")
    return "".join(parts)


def _hundredths(rate: float | None) -> float | None:
    """A rate as the percentage the sheet shows (its header says %), empty when there is none."""
    return None if rate is None else round(rate * 100, 1)


def _marker_cells(unit: dict[str, Any], host: str) -> list[Any]:
    """Unreachables counted and the latest one, for a silent host's row."""
    marker = next((m for m in unit["unreachable"] if m["host"] == host), None)
    return [marker["markers"], f'{marker["last_at"]} {marker["last_msg"]}'.strip()] if marker else [0, ""]


def render_xlsx(report: dict[str, Any], lang: str = "zh", base: Path | None = None) -> bytes:
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
                     "; ".join(f'{f["label"]}: {w[f["problem"]]} ({relative_source(f["source"], base)})'
                               for f in u["metadata_findings"])])
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
    endpoint_rows = [[u["name"], t["target"], ipv6_report.VERDICTS[t["verdict"]][0 if lang == "zh" else 1],
                      _links_text(t["level2"]), _links_text(t["level3"]), i18n.say(t["reason"] or "", lang), "\n".join(t["causes"]),
                      u["ipv6_endpoints"]["generated"]]
                     for u in report["units"] if u.get("ipv6_endpoints") for t in u["ipv6_endpoints"]["targets"]]
    platform_use.xlsx_sheet(book, report, lang)
    if endpoint_rows:
        sheet = book.create_sheet(w["endpoints_sheet"])
        table(sheet, [w["unit"], w["target"], w["verdict"], w["level2"], w["level3"], w["problem"], w["why"],
                      w["measured"]], endpoint_rows, (24, 36, 10, 14, 14, 40, 60, 26))
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
    was silent, every unit named its people, no departed holder kept an account, and no site
    inspection of the quarter found anything."""
    return not report.get("roster_changes") and not any(
        u["failed"] or u["errors"] or u["silent_hosts"] or u["metadata_findings"]
        or (u.get("platform_use") or {}).get("findings") for u in report["units"])
