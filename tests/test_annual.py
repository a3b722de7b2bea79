"""The annual evaluation (article 29) on a year of hand-made runs with hand-computed numbers.

The runs go through real result files, ``ingest`` and SQLite; the year's quarters are the
quarterly report's own, so each quarter's score must equal ``report quarterly`` for it. The HTML
in a real browser is in tests/test_report_html_chromium.py.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from nanbu_secops import cli
from nanbu_secops.errors import InputError
from nanbu_secops.fleet import quarter
from nanbu_secops.fleet.inventory import load_inventory
from nanbu_secops.policy import load_policies
from nanbu_secops.report import annual, quarterly
from nanbu_secops.store import Store, ingest
from nanbu_secops.timeutil import COUNTY_TZ, use_clock
from tests.test_quarterly import GROUP_VARS, HOSTS, SETTINGS

PROJECT = Path(__file__).resolve().parents[1]
ALL_BEGUN = dt.datetime(2026, 12, 15, 10, 0, tzinfo=COUNTY_TZ)
MID_MAY = dt.datetime(2026, 5, 10, 10, 0, tzinfo=COUNTY_TZ)
ANNUAL = annual.AnnualSettings({1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}, 0.0, 5.0)

# (host, generated, {control: status}); article from the control's prefix
RUNS = [
    ("a1", "2026-02-10T09:00:00+08:00", {"NS26-PASS-001": "fail", "NS27-AV-001": "pass"}),
    ("a1", "2026-03-31T16:30:00Z", {"NS26-PASS-001": "fail", "NS27-AV-001": "pass"}),    # 04-01 00:30 county: Q2
    ("a2", "2026-05-05T09:00:00+08:00", {"NS26-PASS-001": "pass", "NS27-AV-001": "pass"}),
    ("a1", "2026-11-02T09:00:00+08:00", {"NS26-PASS-001": "pass"}),
    ("a2", "2026-11-03T09:00:00+08:00", {"NS26-PASS-001": "fail", "NS05-FW-001": "fail"}),
    ("b1", "2025-12-31T15:59:59Z", {"NS27-AV-001": "fail"}),      # 2025-12-31 23:59:59 county: last year
    ("b1", "2026-12-01T09:00:00+08:00", {"NS27-AV-001": "pass"}),
    ("b1", "2026-12-31T16:00:00Z", {"NS27-AV-001": "fail"}),      # 2027-01-01 00:00 county: next year
]
ARTICLE = {"NS26": "26", "NS27": "27", "NS05": "5"}


def write_inventory(folder: Path) -> Path:
    (folder / "group_vars").mkdir(parents=True)
    (folder / "hosts.yml").write_text(HOSTS, encoding="utf-8")
    for group, text in GROUP_VARS.items():
        (folder / "group_vars" / f"{group}.yml").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Any]:
    """The inventory of test_quarterly (u_a: a1 a2 a3, u_b: b1, u_c: none) and a store of RUNS."""
    inventory = write_inventory(tmp_path / "inventory")
    collected = tmp_path / "results"
    for n, (host, generated, statuses) in enumerate(RUNS):
        rows = [{"control": c, "article": ARTICLE[c[:4]], "title": c, "status": s, "severity": "high"}
                for c, s in statuses.items()]
        path = collected / str(quarter.Quarter.of(dt.datetime.fromisoformat(generated)).label) / host / f"r{n}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"host": host, "generated": generated, "policy_version": "t", "results": rows}),
                        encoding="utf-8")
    loaded = load_inventory(inventory)
    stats = ingest(collected, tmp_path / "fleet.db", loaded.host_units())
    assert (stats.runs_added, stats.refused, stats.bad) == (len(RUNS), [], [])
    return {"inventory": inventory, "loaded": loaded, "db": tmp_path / "fleet.db", "root": tmp_path}


def build(site: dict[str, Any], settings: annual.AnnualSettings = ANNUAL) -> dict[str, Any]:
    with Store.open(site["db"], create=False) as store:
        return annual.build(store, 2026, site["loaded"], SETTINGS, settings)


def units(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["unit"]: u for u in report["units"]}


def test_the_json_has_exactly_the_specified_keys(site):
    with use_clock(ALL_BEGUN):
        report = build(site)
    assert list(report) == ["year", "generated", "units"]
    assert report["year"] == 2026 and report["generated"] == "2026-12-15T10:00:00+08:00"
    for unit in report["units"]:
        assert list(unit) == ["unit", "name", "quarters", "annual_score", "silent_hosts", "persistent_failures",
                              "metadata_findings", "platform_use"]   # platform use: issue 21
        assert list(unit["quarters"]) == ["2026Q1", "2026Q2", "2026Q3", "2026Q4"]


def test_quarter_scores_annual_score_silent_hosts_and_persistent_failures(site):
    """Hand-computed: weights 26:3 27:2 5:2, silent penalty 30 × silent/hosts, 5 per article-25 finding.

    u_a Q1: a1 only; 26 0/1, 27 1/1 → 100·2/5 = 40, 2 of 3 silent −20 → 20.0
        Q2: a1 (in Q2 by county time) and a2; 26 1/2, 27 2/2 → 100·3.5/5 = 70, a3 silent −10 → 60.0
        Q3: no run → null (counts 0)
        Q4: 26 1/2, 5 0/1 → 100·1.5/5 = 30, −10 → 20.0;  year (20+60+0+20)/4 = 25.0
    u_b (one finding, −5): only Q4 (its other runs are in 2025 and 2027 by county time): 100 − 5 = 95.0;
        year 95/4 = 23.75 → 23.8
    u_c: no terminal, no run: nulls; year 0.0
    """
    with use_clock(ALL_BEGUN):
        u = units(build(site))
    assert u["u_a"]["quarters"] == {"2026Q1": 20.0, "2026Q2": 60.0, "2026Q3": None, "2026Q4": 20.0}
    assert (u["u_a"]["annual_score"], u["u_b"]["annual_score"], u["u_c"]["annual_score"]) == (25.0, 23.8, 0.0)
    assert u["u_b"]["quarters"] == {"2026Q1": None, "2026Q2": None, "2026Q3": None, "2026Q4": 95.0}
    assert set(u["u_c"]["quarters"].values()) == {None}
    assert (u["u_a"]["silent_hosts"], u["u_b"]["silent_hosts"], u["u_c"]["silent_hosts"]) == (["a3"], [], [])
    # NS26-PASS-001 failed in Q1, Q2 (a1) and Q4 (a2): 3 of the 4 quarters; NS05-FW-001 1 of 4
    assert u["u_a"]["persistent_failures"] == [{"control": "NS26-PASS-001", "article": "26", "severity": "high",
                                                "title": "NS26-PASS-001", "quarters": ["2026Q1", "2026Q2", "2026Q4"],
                                                "hosts": ["a1", "a2"]}]
    assert u["u_b"]["persistent_failures"] == []


def test_failing_in_one_quarter_of_four_is_not_persistent(site):
    """a2's NS05-FW-001 failed in Q4 alone (1 of 4): not persistent; with the clock in Q3, NS26-PASS-001's
    failures in Q1 and Q2 are 2 of the 3 quarters begun: persistent."""
    with use_clock(ALL_BEGUN):
        u = units(build(site))
    assert "NS05-FW-001" not in [c["control"] for c in u["u_a"]["persistent_failures"]]
    with use_clock(dt.datetime(2026, 8, 1, tzinfo=COUNTY_TZ)):     # Q1..Q3 begun: PASS-001 in Q1, Q2 = 2 of 3
        assert [c["control"] for c in units(build(site))["u_a"]["persistent_failures"]] == ["NS26-PASS-001"]
    assert [(f["field"], f["problem"]) for f in u["u_b"]["metadata_findings"]] == [("account_manager.phone", "missing")]
    assert [(f["field"], f["problem"]) for f in u["u_c"]["metadata_findings"]] == [
        ("leader.name", "placeholder"), ("office", "missing")]
    assert u["u_c"]["metadata_findings"][1]["source"].endswith("group_vars/u_c.yml:1")


def test_each_quarter_is_the_quarterly_reports_score(site):
    with use_clock(ALL_BEGUN):
        report = build(site)
    inventory = site["loaded"]
    with Store.open(site["db"], create=False) as store:
        for label in ("2026Q1", "2026Q2", "2026Q4"):
            q = quarterly.build(store, quarter.parse(label), inventory, SETTINGS)
            for unit in q["units"]:
                if unit["reporting_hosts"]:
                    assert units(report)[unit["unit"]]["quarters"][label] == unit["score"]


def test_quarters_not_yet_begun_and_missing_quarters_by_policy(site):
    with use_clock(MID_MAY):               # Q3 and Q4 have not begun: left out whatever their runs
        u = units(build(site))
    assert (u["u_a"]["annual_score"], u["u_b"]["annual_score"]) == (40.0, 0.0)
    assert [(c["control"], c["quarters"]) for c in u["u_a"]["persistent_failures"]] == [
        ("NS26-PASS-001", ["2026Q1", "2026Q2"])]      # 2 of the 2 quarters begun
    leave_out = annual.AnnualSettings({1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}, None, 5.0)
    with use_clock(ALL_BEGUN):
        u = units(build(site, leave_out))
    assert (u["u_a"]["annual_score"], u["u_b"]["annual_score"], u["u_c"]["annual_score"]) == (33.3, 95.0, None)
    weighted = annual.AnnualSettings({1: 1.0, 2: 1.0, 3: 0.0, 4: 2.0}, 0.0, 5.0)
    with use_clock(ALL_BEGUN):
        assert units(build(site, weighted))["u_a"]["annual_score"] == 30.0     # (20 + 60 + 2·20) / 4


def test_a_future_year_has_no_score(site):
    with use_clock(ALL_BEGUN), Store.open(site["db"], create=False) as store:
        report = annual.build(store, 2027, site["loaded"], SETTINGS, ANNUAL)
    assert {u["unit"]: u["annual_score"] for u in report["units"]} == {"u_a": None, "u_b": None, "u_c": None}
    # b1's run at 2027-01-01 00:00 county time is 2027Q1's (27: 0/1, −5 → 0.0), shown, but not yet counted
    assert units(report)["u_b"]["quarters"] == {"2027Q1": 0.0, "2027Q2": None, "2027Q3": None, "2027Q4": None}


def test_trend():
    assert annual.trend({"Q1": 20.0, "Q2": None, "Q3": 60.0}, 5) == {"from": "Q1", "to": "Q3", "change": 40.0,
                                                                     "direction": "up"}
    assert annual.trend({"Q1": 60.0, "Q2": 57.0}, 5)["direction"] == "flat"
    assert annual.trend({"Q1": 60.0, "Q4": 54.9}, 5)["direction"] == "down"
    assert annual.trend({"Q1": None, "Q2": 50.0}, 5) is None


def test_weights_come_from_the_policy(tmp_path):
    settings = annual.AnnualSettings.from_policy(load_policies(str(PROJECT / "policies")))
    assert settings == annual.AnnualSettings({1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}, 0.0, 5.0)
    policy = (PROJECT / "policies" / "article26.yml").read_text(encoding="utf-8")
    bad = tmp_path / "article26.yml"
    bad.write_text(policy.replace("quarter_weights: {Q1: 1,", "quarter_weights: {Q1: -1,"), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        annual.AnnualSettings.from_policy(load_policies(str(bad)))
    # the line of the variable (annual_score:)
    line = next(n for n, text in enumerate(bad.read_text(encoding="utf-8").splitlines(), 1)
                if text.strip() == "annual_score:")
    assert f"article26.yml:{line}" in str(caught.value)


def test_report_annual_command(site, capsys):
    base = ["report", "annual", "--db", str(site["db"]), "--year", "2026", "--inventory", str(site["inventory"]),
            "--policy", str(PROJECT / "policies")]
    out = site["root"]
    with use_clock(ALL_BEGUN):
        assert cli.main([*base, "--format", "json"]) == 1          # silent host, persistent failure, findings
        shown = json.loads(capsys.readouterr().out)
        assert units(shown)["u_a"]["quarters"]["2026Q3"] is None and units(shown)["u_a"]["annual_score"] == 25.0
        assert cli.main([*base, "--output", str(out / "a.html")]) == 1
        page = (out / "a.html").read_text(encoding="utf-8")
        assert "年度安全考核报告（2026）" in page and "无上报" in page and "<script" not in page
        assert cli.main([*base, "--lang", "en", "--output", str(out / "a-en.html")]) == 1
        assert "no run" in (out / "a-en.html").read_text(encoding="utf-8")
        assert cli.main([*base, "--format", "xlsx", "--output", str(out / "a.xlsx")]) == 1
    book = openpyxl.load_workbook(io.BytesIO((out / "a.xlsx").read_bytes()))
    assert book.sheetnames == ["2026 年度考核", "多数季度不通过的控制项", "全年未上报的终端"]
    rows = list(book["2026 年度考核"].iter_rows(values_only=True))
    assert rows[0][:8] == ("单位代码", "单位", "2026Q1", "2026Q2", "2026Q3", "2026Q4", "年度得分", "趋势")
    assert rows[1][:9] == ("u_a", "甲镇人民政府", 20, 60, "无上报", 20, 25, "持平 +0.0", 1)
    assert list(book["全年未上报的终端"].iter_rows(values_only=True))[1:] == [("甲镇人民政府", "a3")]
    assert cli.main([*base, "--format", "xlsx"]) == 2
    assert cli.main([*base[:5], "19", *base[6:], "--lang", "en"]) == 2
    assert "--year: not a year" in capsys.readouterr().err
    assert cli.main([*base[:3], str(out / "none.db"), *base[4:], "--lang", "en"]) == 2


def site_result(generated: str, ok: int, statuses: list[str], dead: int, external: int) -> dict[str, Any]:
    """A ``site inspect`` result of one unit, with just what the points are computed from."""
    return {"as_of": generated[:10], "generated": generated, "sites": [{
        "unit": "u_a", "home": {"url": "https://a.test/", "probes": 15, "ok": ok, "failures": []},
        "columns": [{"name": f"c{i}", "url": f"https://a.test/c{i}/", "kind": "dynamic", "latest": None,
                     "age_days": None, "limit_days": 7, "status": st, "reason": ""} for i, st in enumerate(statuses)],
        "dead_links": [{"url": "https://a.test/x", "from": "https://a.test/", "status": 404}] * dead,
        "external_links": [{"url": "https://shop.example/", "from": "https://a.test/", "host": "shop.example"}] * external,
        "ad_suspects": []}]}


def test_platform_use_points_per_quarter_from_the_latest_site_inspection(site):
    """Issue 21: the annual report carries each quarter's platform-use points (site_score_weights:
    home 30, columns 40, dead links 20, external links 10), from the quarter's latest inspection."""
    folder = site["root"] / "results" / "2026" / "site"
    folder.mkdir(parents=True)
    inspections = {"q2.json": site_result("2026-05-10T10:00:00+08:00", 12, ["ok", "stale"], 1, 0),
                   "q4a.json": site_result("2026-10-10T10:00:00+08:00", 0, ["stale"], 1, 1),
                   "q4b.json": site_result("2026-12-01T10:00:00+08:00", 15, ["ok", "ok", "ok", "blank"], 0, 1)}
    for name, document in inspections.items():      # one folder: only the unit names the file
        (folder / f"{name[:-5]}").mkdir()
        (folder / f"{name[:-5]}" / "u_a-site.json").write_text(json.dumps(document), encoding="utf-8")
    # <unit>-site.json must sit in a site/ folder: these sit one level below it, so they are not site runs
    stats = ingest(site["root"] / "results", site["db"], site["loaded"].host_units())
    assert stats.site_runs_added == 0
    for name in inspections:
        (folder / f"{name[:-5]}" / "u_a-site.json").unlink()
        (folder / f"{name[:-5]}").rmdir()
    by_quarter = {}
    for name, document in inspections.items():
        target = site["root"] / "results" / name[:-5] / "site" / "u_a-site.json"
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(document), encoding="utf-8")
        by_quarter[name] = target
    assert ingest(site["root"] / "results", site["db"], site["loaded"].host_units()).site_runs_added == 3
    weights = {"home": 30.0, "columns": 40.0, "dead_links": 20.0, "external_links": 10.0}
    with use_clock(ALL_BEGUN), Store.open(site["db"], create=False) as store:
        report = annual.build(store, 2026, site["loaded"], SETTINGS, ANNUAL, site_weights=weights)
    # Q2: 30 × 12/15 = 24, columns 40 × 1/2 = 20, a dead link 0, no external link 10: 54
    # Q4, the later of two: 30, 40 × 3/4 = 30, no dead link 20, an external link 0: 80
    assert units(report)["u_a"]["platform_use"] == {"2026Q1": None, "2026Q2": 54.0, "2026Q3": None, "2026Q4": 80.0}
    assert units(report)["u_b"]["platform_use"] == {"2026Q1": None, "2026Q2": None, "2026Q3": None, "2026Q4": None}
    page = annual.render_html(report, ANNUAL)
    assert "平台使用得分（第二十九条）: 2026Q1 未检查 · 2026Q2 54 · 2026Q3 未检查 · 2026Q4 80" in page
