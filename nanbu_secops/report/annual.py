"""The annual evaluation (article 29: the quarterly inspections feed every unit's annual performance
evaluation), built from the four quarterly reports of the year, never from counting of its own.

Per unit:

- ``quarters``: the quarterly report's score of each county-time quarter (:mod:`quarterly`), or
  ``null`` when the unit had no run at all in it (no terminal result, no endpoint result);
- ``annual_score``: Σ weight_q × score_q / Σ weight_q (``annual_score.quarter_weights`` in the policy
  variables) over the quarters that have begun by the clock; a begun quarter without any run counts
  as ``missing_quarter_score`` (null there: it is left out); ``null`` when no quarter counts;
- ``silent_hosts``: the unit's inventory hosts without a single run in the year;
- ``persistent_failures``: controls failing on at least one of its terminals in more than half of
  the year's quarters begun by the clock, with those quarters and the hosts;
- ``metadata_findings``: article 25's (the same as in the quarterly report).

The trend (first to last scored quarter, ``trend_threshold`` points) is shown in the HTML and the
sheet; the JSON keeps exactly the keys above, from which it follows.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from nanbu_secops.fleet.inventory import Inventory, unit_findings
from nanbu_secops.fleet.quarter import Quarter
from nanbu_secops.policy import PolicySet, require_variables
from nanbu_secops.progress import Meter
from nanbu_secops.report import platform_use, quarterly
from nanbu_secops.report.labels import SEVERITY, article_label
from nanbu_secops.store.db import Store
from nanbu_secops.timeutil import now, rfc3339

_WEIGHT = {"type": "number", "minimum": 0}
ANNUAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["annual_score"],
    "properties": {"annual_score": {
        "type": "object", "additionalProperties": False,
        "required": ["quarter_weights", "missing_quarter_score", "trend_threshold"],
        "properties": {
            "quarter_weights": {"type": "object", "additionalProperties": False, "required": ["Q1", "Q2", "Q3", "Q4"],
                                "properties": {f"Q{n}": _WEIGHT for n in range(1, 5)}},
            "missing_quarter_score": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
            "trend_threshold": _WEIGHT}}},
}


@dataclass(frozen=True)
class AnnualSettings:
    quarter_weights: dict[int, float]      # quarter number -> weight
    missing_quarter_score: float | None
    trend_threshold: float

    @classmethod
    def from_policy(cls, policies: PolicySet) -> AnnualSettings:
        v = require_variables(policies, ANNUAL_SCHEMA)["annual_score"]
        missing = v["missing_quarter_score"]
        return cls({int(q[1]): float(w) for q, w in v["quarter_weights"].items()},
                   None if missing is None else float(missing), float(v["trend_threshold"]))


def quarters_of(year: int) -> list[Quarter]:
    return [Quarter(year, n) for n in range(1, 5)]


def _quarter_score(unit: dict[str, Any]) -> float | None:
    """The quarterly score, or None when the unit had no run at all in the quarter."""
    return unit["score"] if unit["reporting_hosts"] or unit.get("ipv6_endpoints") else None


def annual_score(scores: dict[Quarter, float | None], settings: AnnualSettings) -> float | None:
    """The module docstring's weighted mean over the quarters begun by now."""
    moment = now()
    total = weight_sum = 0.0
    for q, value in scores.items():
        if q.start > moment:
            continue
        counted = settings.missing_quarter_score if value is None else value
        weight = settings.quarter_weights[q.number]
        if counted is None or weight == 0:
            continue
        total += weight * counted
        weight_sum += weight
    return round(total / weight_sum, 1) if weight_sum else None


def trend(quarters: dict[str, float | None], threshold: float) -> dict[str, Any] | None:
    """From the first to the last scored quarter: the change and up/down/flat; None with fewer than two."""
    scored = [(label, value) for label, value in quarters.items() if value is not None]
    if len(scored) < 2:
        return None
    change = round(scored[-1][1] - scored[0][1], 1)
    direction = "up" if change > threshold else "down" if change < -threshold else "flat"
    return {"from": scored[0][0], "to": scored[-1][0], "change": change, "direction": direction}


def _persistent(per_quarter: list[tuple[Quarter, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Controls failing (the quarterly ``failing`` lists) in more than half of the year's quarters
    begun by the clock: "most quarters" of the year, not of the few a unit happened to report in."""
    moment = now()
    begun = [(q.label, unit) for q, unit in per_quarter if q.start <= moment]
    seen: dict[str, dict[str, Any]] = {}
    quarters: dict[str, list[str]] = defaultdict(list)
    hosts: dict[str, set[str]] = defaultdict(set)
    for label, unit in begun:
        for item in unit["failing"]:
            seen.setdefault(item["control"], item)
            quarters[item["control"]].append(label)
            hosts[item["control"]].update(item["hosts"])
    return sorted(({"control": c, "article": seen[c]["article"], "severity": seen[c]["severity"],
                    "title": seen[c]["title"], "quarters": quarters[c], "hosts": sorted(hosts[c])}
                   for c in seen if 2 * len(quarters[c]) > len(begun)),
                  key=lambda item: (-len(item["quarters"]), item["control"]))


def compute(year: int, reports: dict[Quarter, dict[str, Any]], inventory: Inventory, settings: AnnualSettings,
            lang: str = "zh") -> dict[str, Any]:
    """The annual report from the year's four quarterly reports (:func:`quarterly.compute` output)."""
    findings: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for finding in unit_findings(inventory, lang):
        findings[finding["unit"]].append(finding)
    units = []
    for group in sorted(inventory.units):
        per_quarter = [(q, next(u for u in reports[q]["units"] if u["unit"] == group)) for q in quarters_of(year)]
        scores = {q: _quarter_score(unit) for q, unit in per_quarter}
        reporting = {h for _, unit in per_quarter for h in unit["last_runs"]}
        units.append({
            "unit": group, "name": inventory.units[group].name,
            "quarters": {q.label: value for q, value in scores.items()},
            "annual_score": annual_score(scores, settings),
            "silent_hosts": [h for h in inventory.hosts_of(group) if h not in reporting],
            "persistent_failures": _persistent(per_quarter),
            "metadata_findings": findings[group],
            # article 29 via 14, 18, 12: the points of each quarter's latest site inspection
            "platform_use": {q.label: _platform_points(unit) for q, unit in per_quarter},
        })
    return {"year": year, "generated": rfc3339(now()), "units": units}


STEPS = 4  # what :func:`build` tells its progress of: each quarter, read and scored


def build(store: Store, year: int, inventory: Inventory, score: quarterly.ScoreSettings, settings: AnnualSettings,
          lang: str = "zh", site_weights: dict[str, float] | None = None,
          progress: Meter | None = None) -> dict[str, Any]:
    """The year's report read from the store, through the quarterly report of each quarter (with
    its platform use, as the quarterly report attaches it)."""
    reports = {}
    for q in quarters_of(year):
        reports[q] = platform_use.attach(quarterly.from_store(store, q, inventory, score, lang),
                                         store.latest_site_runs(q.start_utc, q.end_utc), site_weights)
        if progress is not None:
            progress(1)
    return compute(year, reports, inventory, settings, lang)


def _platform_points(unit: dict[str, Any]) -> float | None:
    """A quarter's platform-use points, None when the unit's site was not inspected (or not scored)."""
    use = unit.get("platform_use")
    return use["score"]["total"] if use and use.get("score") else None


def clear(report: dict[str, Any]) -> bool:
    """Nothing to act on: every terminal reported, no control failed persistently, every unit named its people."""
    return not any(u["silent_hosts"] or u["persistent_failures"] or u["metadata_findings"] for u in report["units"])


# --- renderings --------------------------------------------------------------------------------

def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"


_WORDS = {
    "title": ("南部县政府网站集约化平台年度安全考核报告", "Annual security evaluation of the county platform"),
    "basis": ("各季度检查结果纳入年度绩效考评", "the quarterly inspections feed the annual evaluation"),
    "annual_score": ("年度得分", "Annual score"),
    "trend_col": ("趋势", "Trend"),
    "up": ("上升", "up"), "down": ("下降", "down"), "flat": ("持平", "flat"),
    "no_run": ("无上报", "no run"),
    "persistent": ("多数季度不通过的控制项", "Controls failing in most quarters"),
    "quarters_failing": ("不通过的季度", "Quarters failing"),
    "silent_year": ("全年未上报的终端", "Terminals that never reported this year"),
    "by_unit_score": ("各单位年度得分", "Annual score by unit"),
    "annual_rule": ("年度得分：各季度得分按权重加权平均；无上报的季度按政策计分，尚未开始的季度不计",
                    "Annual score: the quarters' scores weighted as the policy says; a quarter without any run "
                    "counts as the policy's score for it, quarters not yet begun are left out"),
    "overview_sheet": ("年度考核", "Annual evaluation"),
    "generated": ("生成时间", "Generated"),
    "platform_col": ("平台使用得分（第二十九条）", "Platform use points (article 29)"),
    "not_inspected": ("未检查", "not inspected"),
}
WORDS = {lang: {**quarterly.WORDS[lang], **{k: pair[i] for k, pair in _WORDS.items()}}
         for i, lang in enumerate(("zh", "en"))}


def _score_text(value: float | None, w: dict[str, str]) -> str:
    return w["no_run"] if value is None else f"{value:.1f}"


def _annual_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _trend_text(found: dict[str, Any] | None, w: dict[str, str]) -> str:
    return "—" if found is None else f'{w[found["direction"]]} {found["change"]:+.1f}'


def _overview(report: dict[str, Any], settings: AnnualSettings, w: dict[str, str]) -> str:
    labels = [q.label for q in quarters_of(report["year"])]
    rows = []
    for u in report["units"]:
        cells = "".join(quarterly._cell(_score_text(u["quarters"][label], w), label) for label in labels)
        rows.append(f'<tr data-unit="{html.escape(u["unit"])}"><td>{html.escape(u["name"])}</td>{cells}'
                    + quarterly._cell(_annual_text(u["annual_score"]), "annual_score")
                    + quarterly._cell(_trend_text(trend(u["quarters"], settings.trend_threshold), w), "trend")
                    + quarterly._cell(len(u["silent_hosts"]), "silent_hosts")
                    + quarterly._cell(len(u["persistent_failures"]), "persistent_failures")
                    + quarterly._cell(len(u["metadata_findings"]), "metadata_findings") + "</tr>")
    return quarterly._table([w["unit"], *labels, w["annual_score"], w["trend_col"], w["silent_year"], w["persistent"],
                             w["metadata"]], rows)


def _unit_section(unit: dict[str, Any], lang: str, w: dict[str, str]) -> str:
    e = html.escape
    parts = [f'<h2 id="{e(unit["unit"])}">{e(unit["name"])} <small>{e(unit["unit"])}</small></h2>',
             "<p>" + " · ".join(f"{e(label)} {e(_score_text(value, w))}" for label, value in unit["quarters"].items())
             + f' · {e(w["annual_score"])} {_annual_text(unit["annual_score"])}</p>',
             f'<p data-key="platform_use">{e(w["platform_col"])}: '
             + " · ".join(f"{e(label)} {e(w['not_inspected'] if value is None else f'{value:g}')}"
                          for label, value in unit.get("platform_use", {}).items()) + "</p>"]
    if unit["persistent_failures"]:
        rows = [f'<tr data-persistent="{e(c["control"])}"><td>{e(c["control"])}</td>'
                f'<td>{e(article_label(c["article"], lang))}</td>'
                f'<td>{e(SEVERITY[lang].get(c["severity"], c["severity"]))}</td><td>{e(c["title"])}</td>'
                f'<td data-key="quarters">{e(", ".join(c["quarters"]))}</td>'
                f'<td data-key="hosts">{e(", ".join(c["hosts"]))}</td></tr>' for c in unit["persistent_failures"]]
        parts.append(f'<h3>{e(w["persistent"])}</h3>' + quarterly._table(
            [w["control"], w["article"], w["severity"], w["check"], w["quarters_failing"], w["host"]], rows))
    if unit["silent_hosts"]:
        items = "".join(f'<li data-silent="{e(h)}">{e(h)}</li>' for h in unit["silent_hosts"])
        parts.append(f'<h3>{e(w["silent_year"])}</h3><ul>{items}</ul>')
    if unit["metadata_findings"]:
        rows = [f'<tr class="bad"><td>{e(f["label"])}</td><td>{e(w[f["problem"]])}</td><td>{e(f["source"])}</td></tr>'
                for f in unit["metadata_findings"]]
        parts.append(f'<h3>{e(w["metadata"])}</h3>'
                     + quarterly._table([w["field"], w["problem"], w["source"]], rows))
    return "".join(parts)


def render_html(report: dict[str, Any], settings: AnnualSettings, lang: str = "zh") -> str:
    """One self-contained page in the quarterly report's style: inline CSS and SVG, no script."""
    e, w = html.escape, WORDS[lang]
    title = f'{w["title"]}（{report["year"]}）' if lang == "zh" else f'{w["title"]} ({report["year"]})'
    scored = [(u["name"], u["annual_score"] / 100) for u in report["units"] if u["annual_score"] is not None]
    parts = [f'<!DOCTYPE html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
             f"<title>{e(title)}</title><style>{quarterly.STYLE}</style></head><body>",
             f"<h1>{e(title)}</h1><p><small>{e(article_label('29', lang))}: {e(w['basis'])} · "
             f"{e(w['generated'])} {e(report['generated'])} (Asia/Shanghai)</small></p>",
             f"<h2>{e(w['overview'])}</h2>", _overview(report, settings, w),
             f"<p><small>{e(w['annual_rule'])}</small></p>",
             f"<h3>{e(w['by_unit_score'])}</h3>", quarterly._bars(scored, "annual_score", lambda share: f"{share * 100:.1f}")]
    parts += [_unit_section(u, lang, w) for u in report["units"]]
    parts.append("</body></html>\n")
    return "".join(parts)


def render_xlsx(report: dict[str, Any], settings: AnnualSettings, lang: str = "zh") -> bytes:
    """The workbook the office files: one row per unit, then persistent failures and silent terminals."""
    from openpyxl import Workbook

    from nanbu_secops.report.sheet import table

    w = WORDS[lang]
    labels = [q.label for q in quarters_of(report["year"])]
    book = Workbook()
    units = book.active
    units.title = f'{report["year"]} {w["overview_sheet"]}'
    rows = []
    for u in report["units"]:
        found = trend(u["quarters"], settings.trend_threshold)
        rows.append([u["unit"], u["name"], *(u["quarters"][label] if u["quarters"][label] is not None else w["no_run"]
                                             for label in labels),
                     u["annual_score"], _trend_text(found, w), len(u["silent_hosts"]), len(u["persistent_failures"]),
                     "; ".join(f'{f["label"]}: {w[f["problem"]]}' for f in u["metadata_findings"]),
                     " · ".join(f"{label} {w['not_inspected'] if v is None else f'{v:g}'}"
                                for label, v in u.get("platform_use", {}).items())])
    table(units, [w["code"], w["unit"], *labels, w["annual_score"], w["trend_col"], w["silent_year"],
                  w["persistent"], w["metadata"], w["platform_col"]], rows,
          (16, 24, 10, 10, 10, 10, 10, 12, 10, 12, 40, 40))
    failing = book.create_sheet(w["persistent"][:31])
    table(failing, [w["unit"], w["control"], w["article"], w["severity"], w["check"], w["quarters_failing"], w["host"]],
          [[u["name"], c["control"], article_label(c["article"], lang), SEVERITY[lang].get(c["severity"], c["severity"]),
            c["title"], ", ".join(c["quarters"]), ", ".join(c["hosts"])] for u in report["units"]
           for c in u["persistent_failures"]], (24, 16, 14, 8, 50, 24, 40))
    silent = book.create_sheet(w["silent_year"][:31])
    table(silent, [w["unit"], w["host"]], [[u["name"], h] for u in report["units"] for h in u["silent_hosts"]],
          (24, 24))
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()
