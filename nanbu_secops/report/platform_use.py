"""The "platform use" part of the quarterly report (article 29): each unit's latest site
inspection of the quarter (``site inspect`` results that ``ingest`` stored), summarised, with its
points by the weights ``site_score_weights`` of policies/article29.yml (see
:func:`nanbu_secops.checks.site.score`). The points are shown beside the unit's score, not folded
into it: the score's rule (article pass rates) is unchanged, so earlier quarters compare."""

from __future__ import annotations

import html
from typing import Any

from nanbu_secops.checks.site import has_findings, score
from nanbu_secops.policy import PolicySet
from nanbu_secops.report import site as site_report
from nanbu_secops.report.labels import article_label
from nanbu_secops.store.db import SiteRun

WORDS = {
    "title": ("集约化平台使用情况（第二十九条）", "Platform use (article 29)"),
    "sheet": ("平台使用情况", "Platform use"),
    "measured": ("检查时间", "Inspected"),
    "as_of": ("检查日期", "As of"),
    "home": ("首页可用", "Home page OK"),
    "columns": ("栏目正常/总数", "Columns OK/total"),
    "stale": ("未按时更新", "Stale"),
    "blank": ("空白栏目", "Blank"),
    "error": ("无法判断", "Error"),
    "dead": ("错误链接", "Dead links"),
    "external": ("外部链接", "External links"),
    "ads": ("疑似广告（待复核）", "Ad suspects (review)"),
    "points": ("得分", "Points"),
    "unit": ("单位", "Unit"),
    "none": ("本季度未检查", "not inspected this quarter"),
}


def weights_from_policy(policies: PolicySet) -> dict[str, float] | None:
    """``site_score_weights`` when a policy defines it; None: the part is shown but not scored."""
    try:
        variables, _ = policies.variables({"site_score_weights"})
    except LookupError:
        return None
    weights = variables["site_score_weights"]
    return {k: float(weights[k]) for k in ("home", "columns", "dead_links", "external_links")}


def summary(run: SiteRun, weights: dict[str, float] | None) -> dict[str, Any]:
    site = run.site
    statuses = [c["status"] for c in site["columns"]]
    return {
        "generated": run.generated, "as_of": run.as_of, "source": run.source,
        "home": {"url": site["home"].get("url"), "probes": site["home"]["probes"], "ok": site["home"]["ok"]},
        "columns": {"total": len(statuses), **{s: statuses.count(s) for s in ("ok", "stale", "blank", "error")}},
        "dead_links": len(site["dead_links"]), "external_links": len(site["external_links"]),
        "ad_suspects": len(site["ad_suspects"]), "findings": has_findings(site),
        "score": score(site, weights) if weights else None, "site": site,
    }


def attach(report: dict[str, Any], runs: list[SiteRun], weights: dict[str, float] | None) -> dict[str, Any]:
    """Each unit's ``platform_use`` (None when not inspected in the quarter); units inspected but
    not in the inventory go to ``unlisted_site_units``."""
    by_unit = {run.unit: run for run in runs}
    for unit in report["units"]:
        run = by_unit.get(unit["unit"])
        unit["platform_use"] = summary(run, weights) if run else None
    known = {u["unit"] for u in report["units"]}
    report["unlisted_site_units"] = sorted(u for u in by_unit if u not in known)
    return report


def _w(lang: str) -> dict[str, str]:
    return {k: v[0 if lang == "zh" else 1] for k, v in WORDS.items()}


def _cells(use: dict[str, Any]) -> list[Any]:
    c, points = use["columns"], use["score"]
    return [f'{use["home"]["ok"]}/{use["home"]["probes"]}', f'{c["ok"]}/{c["total"]}',
            c["stale"], c["blank"], c["error"],
            use["dead_links"], use["external_links"], use["ad_suspects"],
            "—" if points is None else f'{points["total"]:g}/{points["max"]:g}']


def html_section(unit: dict[str, Any], lang: str) -> str:
    """The unit's platform-use section: the summary row, then each part's table with its article."""
    e, w, use = html.escape, _w(lang), unit.get("platform_use")
    if use is None:
        return f'<h3>{e(w["title"])}</h3><p data-key="platform_use">{e(w["none"])}</p>'
    head = [w["home"], w["columns"], w["stale"], w["blank"], w["error"], w["dead"], w["external"], w["ads"],
            w["points"]]
    parts = [f'<h3>{e(w["title"])}</h3><p><small>{e(w["measured"])} {e(use["generated"])} · {e(w["as_of"])} '
             f'{e(use["as_of"])}</small></p><table data-key="platform_use"><tr>'
             + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr><tr>"
             + "".join(f"<td>{e(str(v))}</td>" for v in _cells(use)) + "</tr></table>"]
    for title, article, header, rows in site_report.sections(use["site"], lang)[1:]:
        if rows:
            parts.append(f"<h4>{e(title)} <small>{e(article_label(article, lang))}</small></h4><table><tr>"
                         + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in rows)
                         + "</table>")
    return "".join(parts)


def xlsx_sheet(book: Any, report: dict[str, Any], lang: str) -> None:
    """One row per unit inspected this quarter."""
    from nanbu_secops.report.sheet import table

    w = _w(lang)
    rows = [[u["name"], *_cells(u["platform_use"]), u["platform_use"]["generated"]]
            for u in report["units"] if u.get("platform_use")]
    if rows:
        table(book.create_sheet(w["sheet"]), [w["unit"], w["home"], w["columns"], w["stale"], w["blank"], w["error"],
                                              w["dead"], w["external"], w["ads"], w["points"], w["measured"]],
              rows, (24, 10, 12, 8, 8, 8, 8, 8, 10, 10, 26))
