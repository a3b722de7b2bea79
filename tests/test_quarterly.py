"""The quarterly inspection report (article 29) on hand-made runs with hand-computed numbers.

Also quarters in Asia/Shanghai and roster changes (article 8). The HTML in a real browser is
tests/test_report_html_chromium.py.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import openpyxl
import pytest

from nanbu_secops import cli
from nanbu_secops.accounts.model import ACTIVE, DISABLED, PlatformAccount, StaffRecord
from nanbu_secops.errors import InputError
from nanbu_secops.fleet import quarter
from nanbu_secops.fleet.inventory import load_inventory
from nanbu_secops.fleet.roster import read_roster_changes, roster_changes
from nanbu_secops.policy import load_policies
from nanbu_secops.report import quarterly
from nanbu_secops.store.db import EndpointRow, EndpointRun, ResultRow, Run, Unreachable
from nanbu_secops.timeutil import COUNTY_TZ, use_clock

PROJECT = Path(__file__).resolve().parents[1]
SETTINGS = quarterly.ScoreSettings({"26": 3, "27": 2, "5": 2, "9(2)": 1}, 1, 30, 5)

HOSTS = """\
all:
  children:
    units:
      children:
        towns:
          children:
            u_a:
              hosts:
                a1:
                a2:
                a3: {ansible_host: 192.0.2.3}
        u_b:
          hosts:
            b1:
        u_c:
"""
PEOPLE = """\
  leader: {name: 张局长, phone: "0817-5500001"}
  account_manager: {name: 李科长, phone: "0817-5500002"}
"""
GROUP_VARS = {
    "u_a": f"unit:\n  name: 甲镇人民政府\n  office: 党政办\n{PEOPLE}",
    "u_b": "unit:\n  name: 乙局\n  office: 办公室\n  leader: {name: 王局长, phone: '0817-1'}\n"
           "  account_manager: {name: 赵某, phone: ''}\n",
    "u_c": "unit:\n  name: 丙局\n  leader: {name: 示例·王某某, phone: '0817-2'}\n"
           "  account_manager: {name: 钱某, phone: '0817-3'}\n",
}


def at(text: str) -> tuple[str, int]:
    moment = dt.datetime.fromisoformat(text)
    return text, int(moment.timestamp())


def run(id_: int, host: str, when: str) -> Run:
    return Run(id_, host, host, None, *at(when), None, "test", None, "zh", "", "")


def outcome(run_id: int, control: str, article: str, status: str) -> ResultRow:
    return ResultRow(run_id, control, article, status, "high", "t", None)


RUNS = [
    run(1, "a1", "2026-10-05T09:00:00+08:00"),   # older than run 2: does not count
    run(2, "a1", "2026-12-20T09:00:00+08:00"),
    run(3, "a2", "2026-11-11T09:00:00+08:00"),
    run(4, "b1", "2026-12-31T23:59:59+08:00"),   # the quarter's last second
    run(5, "x9", "2026-11-01T09:00:00+08:00"),   # not in the inventory
    run(6, "b1", "2027-01-01T00:00:00+08:00"),   # next quarter: ignored
    run(7, "a1", "2026-08-01T09:00:00+08:00"),   # previous quarter
]
RESULTS = [
    outcome(1, "NS26-PASS-001", "26", "fail"),
    outcome(2, "NS26-PASS-001", "26", "pass"), outcome(2, "NS26-ACCT-010", "26", "fail"),
    outcome(2, "NS27-AV-001", "27", "pass"), outcome(2, "NS05-FW-001", "5", "fail"),
    outcome(2, "NS09-IPV6-001", "9(2)", "error"),
    outcome(3, "NS26-PASS-001", "26", "fail"), outcome(3, "NS26-ACCT-010", "26", "fail"),
    outcome(3, "NS27-AV-001", "27", "fail"), outcome(3, "NS05-FW-001", "5", "pass"),
    outcome(3, "NS26-TERM-001", "26", "skip"),
    outcome(4, "NS26-PASS-001", "26", "pass"), outcome(4, "NS27-AV-001", "27", "pass"),
    outcome(5, "NS26-PASS-001", "26", "fail"),
    outcome(6, "NS26-PASS-001", "26", "fail"),
    outcome(7, "NS26-PASS-001", "26", "pass"), outcome(7, "NS26-ACCT-010", "26", "pass"),
]


def endpoint_run(id_: int, unit: str, when: str) -> EndpointRun:
    return EndpointRun(id_, unit, *at(when), "", f"ipv6/{unit}-endpoints.json")


def level(total: int, ipv6: int, failing: list[dict] = ()) -> dict:  # type: ignore[assignment]
    return {"total": total, "ipv6": ipv6, "ratio": round(ipv6 / total, 3), "found": total, "capped": False,
            "failing": list(failing)}


V4ONLY = {"url": "https://v4only.a.test/", "stage": "dns", "error": "no AAAA record for v4only.a.test",
          "status_v6": None}
V6_OK = {"ok": True, "final_url": "https://www.a.test/", "status": 200, "stage": None, "error": None}
ENDPOINT_RUNS = [
    endpoint_run(1, "u_a", "2026-11-05T10:00:00+08:00"),   # older than run 2: does not count
    endpoint_run(2, "u_a", "2026-12-05T10:00:00+08:00"),
    endpoint_run(3, "u_b", "2026-08-05T10:00:00+08:00"),   # previous quarter
    endpoint_run(4, "u_zz", "2026-12-06T10:00:00+08:00"),  # a unit the inventory does not have
]
ENDPOINTS = [
    EndpointRow(1, "https://www.a.test/", "not-ready", "no AAAA record", {"url": "https://www.a.test/"}),
    EndpointRow(2, "https://www.a.test/", "ready", None,
                {"url": "https://www.a.test/", "v6": V6_OK, "dns": {"aaaa": ["2001:db8::1"]},
                 "links": {"level2": level(5, 5)}, "success_rate_v6": 1.0}),
    EndpointRow(2, "https://www.a.test/partial.html", "partial", "level2 IPv6 link ratio 80% below 85%",
                {"url": "https://www.a.test/partial.html", "v6": V6_OK, "dns": {"aaaa": ["2001:db8::1"]},
                 "links": {"level2": level(5, 4, [V4ONLY])}, "success_rate_v6": 1.0}),
    EndpointRow(2, "https://api.a.test/", "not-ready", "no successful HTTP(S) response over IPv6",
                {"url": "https://api.a.test/", "dns": {"aaaa": ["2001:db8::2"]},
                 "v6": {"ok": False, "final_url": "https://api.a.test/", "status": None, "stage": "tls",
                        "error": "certificate verification failed: Hostname mismatch, certificate is not valid "
                                 "for 'api.a.test'."}}),
    EndpointRow(3, "https://www.b.test/", "ready", None, {"url": "https://www.b.test/"}),
    EndpointRow(4, "https://www.zz.test/", "ready", None, {"url": "https://www.zz.test/"}),
]


class FakeStore:
    """The store's queries over the lists above: per host the latest run in [start, end)."""

    def latest_runs(self, start: int, end: int) -> list[Run]:
        latest: dict[str, Run] = {}
        for r in RUNS:
            if start <= r.generated_utc < end and (r.host not in latest or r.generated_utc > latest[r.host].generated_utc):
                latest[r.host] = r
        return list(latest.values())

    def results(self, run_ids: list[int]) -> list[ResultRow]:
        return [r for r in RESULTS if r.run_id in set(run_ids)]

    def latest_endpoint_runs(self, start: int, end: int) -> list[EndpointRun]:
        latest: dict[str, EndpointRun] = {}
        for r in ENDPOINT_RUNS:
            if start <= r.generated_utc < end and (r.unit not in latest or r.generated_utc > latest[r.unit].generated_utc):
                latest[r.unit] = r
        return list(latest.values())

    def endpoints(self, run_ids: list[int]) -> list[EndpointRow]:
        return [r for r in ENDPOINTS if r.run_id in set(run_ids)]

    def latest_site_runs(self, start: int, end: int) -> list:
        return []  # site inspections: tests/test_site_fleet.py, on a real store

    def unreachable(self, start: int, end: int) -> list[Unreachable]:
        markers = [Unreachable("a3", *at("2026-11-02T10:00:00+08:00"), "ssh: timed out"),
                   Unreachable("a3", *at("2026-10-02T10:00:00+08:00"), None),
                   Unreachable("b1", *at("2026-10-03T10:00:00+08:00"), None)]
        return [m for m in markers if start <= m.at_utc < end]


@pytest.fixture
def inventory_dir(tmp_path: Path) -> Path:
    """A folder of its own: Ansible reads every file in an inventory folder as an inventory."""
    root = tmp_path / "inventory"
    (root / "group_vars").mkdir(parents=True)
    (root / "hosts.yml").write_text(HOSTS, encoding="utf-8")
    for group, text in GROUP_VARS.items():
        (root / "group_vars" / f"{group}.yml").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def report(inventory_dir: Path) -> dict:
    return quarterly.build(FakeStore(), quarter.parse("2026Q4"), load_inventory(inventory_dir), SETTINGS)


def units(report: dict) -> dict[str, dict]:
    return {u["unit"]: u for u in report["units"]}


# --- quarters ----------------------------------------------------------------------------------

def test_quarter_bounds_are_shanghai_midnights():
    q4 = quarter.parse("2026Q4")
    assert q4.label == "2026Q4"
    assert q4.start_utc == int(dt.datetime(2026, 9, 30, 16, tzinfo=dt.UTC).timestamp())
    assert q4.end_utc == int(dt.datetime(2026, 12, 31, 16, tzinfo=dt.UTC).timestamp())
    assert q4.start == dt.datetime(2026, 10, 1, tzinfo=COUNTY_TZ)
    assert q4.previous() == quarter.parse("2026q3")
    assert quarter.parse("2027Q1").previous().label == "2026Q4"
    assert quarter.parse("2026Q1").start.isoformat() == "2026-01-01T00:00:00+08:00"


@pytest.mark.parametrize("text", ["2026Q5", "2026Q0", "2026-Q4", "Q4 2026", "26Q4", ""])
def test_bad_quarters_are_refused(text):
    with pytest.raises(ValueError, match="YYYYQn"):
        quarter.parse(text)


# --- the computation ---------------------------------------------------------------------------

def test_the_json_has_the_required_keys(report):
    assert report["quarter"] == "2026Q4"
    required = {"unit", "name", "hosts", "reporting_hosts", "silent_hosts", "passed", "failed", "errors",
                "pass_rate", "score", "articles", "failing"}
    for unit in report["units"]:
        assert required <= unit.keys()
        assert all({"passed", "failed"} <= counts.keys() for counts in unit["articles"].values())
        assert all({"control", "hosts"} <= item.keys() for item in unit["failing"])
    assert json.loads(quarterly.render_json(report)) == report


def test_latest_run_per_host_counts_and_pass_rate(report):
    a = units(report)["u_a"]
    # a1 through run 2 (run 1's failure is older), a2 through run 3; a3 never reported
    assert (a["hosts"], a["reporting_hosts"], a["silent_hosts"]) == (3, 2, ["a3"])
    assert (a["passed"], a["failed"], a["errors"], a["skipped"]) == (3, 5, 1, 1)
    assert a["pass_rate"] == 0.375
    assert a["articles"]["26"] == {"passed": 1, "failed": 3, "errors": 0, "skipped": 1, "pass_rate": 0.25}
    assert a["articles"]["9(2)"] == {"passed": 0, "failed": 0, "errors": 1, "skipped": 0, "pass_rate": 0.0}
    assert list(a["articles"]) == ["5", "9(2)", "26", "27"]
    assert a["addresses"] == {"a3": "192.0.2.3"}
    assert a["unreachable"] == [{"host": "a3", "markers": 2, "last_at": "2026-11-02T10:00:00+08:00",
                                 "last_msg": "ssh: timed out"}]
    b = units(report)["u_b"]        # a marker of a host that reported later: shown, but not silent
    assert b["silent_hosts"] == [] and [m["host"] for m in b["unreachable"]] == ["b1"]
    assert [(f["control"], f["hosts"]) for f in a["failing"]] == [
        ("NS26-ACCT-010", ["a1", "a2"]), ("NS05-FW-001", ["a1"]), ("NS26-PASS-001", ["a2"]), ("NS27-AV-001", ["a2"])]
    assert [(f["control"], f["hosts"]) for f in a["unverified"]] == [("NS09-IPV6-001", ["a1"])]


def test_quarter_bounds_decide_which_runs_count(report):
    b = units(report)["u_b"]        # run 4 at 23:59:59 counts; run 6 at the next midnight does not
    assert (b["passed"], b["failed"], b["pass_rate"]) == (2, 0, 1.0)
    assert b["last_runs"] == {"b1": "2026-12-31T23:59:59+08:00"}
    assert report["unlisted_hosts"] == ["x9"]


def test_summaries_of_accounts_antivirus_ipv6(report):
    s = units(report)["u_a"]["summaries"]
    assert s["accounts"] == {"passed": 1, "failed": 3, "errors": 0, "skipped": 0, "hosts_failing": ["a1", "a2"]}
    assert s["antivirus"] == {"passed": 1, "failed": 1, "errors": 0, "skipped": 0, "hosts_failing": ["a2"]}
    assert s["ipv6"] == {"passed": 0, "failed": 0, "errors": 1, "skipped": 0, "hosts_failing": []}
    assert "ipv6" not in units(report)["u_b"]["summaries"]


def test_score_formula(report):
    u = units(report)
    # 100 × (3×0.25 + 2×0.5 + 2×0.5) / 7 = 39.29, less 30 × 1/3 silent = 29.29
    assert u["u_a"]["score"] == 29.3
    # all passed, one article-25 finding (empty phone): 100 − 5
    assert u["u_b"]["score"] == 95.0
    assert [f["field"] for f in u["u_b"]["metadata_findings"]] == ["account_manager.phone"]
    # no terminal at all: nothing verified
    assert (u["u_c"]["hosts"], u["u_c"]["score"], u["u_c"]["pass_rate"]) == (0, 0.0, 0.0)
    assert [(f["field"], f["problem"]) for f in u["u_c"]["metadata_findings"]] == [
        ("leader.name", "placeholder"), ("office", "missing")]


def test_trend_against_the_previous_quarter(report):
    u = units(report)
    # 2026Q3: a1 passed both (rate 1.0), a2 and a3 silent: 100 − 30 × 2/3 = 80
    assert u["u_a"]["trend"] == {"previous_quarter": "2026Q3", "previous_pass_rate": 1.0, "pass_rate_change": -0.625,
                                 "previous_score": 80.0, "score_change": -50.7}
    assert u["u_b"]["trend"]["previous_pass_rate"] is None and u["u_b"]["trend"]["score_change"] is None


def test_the_real_store_gives_the_same_report(inventory_dir, report, tmp_path):
    """The same runs as result files, through ``ingest`` into SQLite and back out of ``Store``."""
    from nanbu_secops.store import Store, ingest

    collected = tmp_path / "collected"
    for r in RUNS:
        rows = [{"control": x.control, "article": x.article, "title": x.title, "status": x.status,
                 "severity": x.severity, "evidence": {}, "remediation": ""} for x in RESULTS if x.run_id == r.id]
        folder = collected / r.host
        folder.mkdir(parents=True, exist_ok=True)
        document = {"host": r.host, "generated": r.generated, "policy_version": "test", "results": rows}
        (folder / f"run{r.id}.json").write_text(json.dumps(document), encoding="utf-8")
    for m in FakeStore().unreachable(0, 2**40):
        (collected / m.host / str(m.at_utc)).mkdir(parents=True)
        (collected / m.host / str(m.at_utc) / "UNREACHABLE.json").write_text(
            json.dumps({"unreachable": True, "host": m.host, "at": m.at, "msg": m.msg}), encoding="utf-8")
    assert not ingest(collected, tmp_path / "fleet.db").bad
    # ipv6_readiness.yml rewrites ipv6/<unit>-endpoints.json each run: ingest after each run keeps them all
    for runs in (ENDPOINT_RUNS[:1] + ENDPOINT_RUNS[2:], ENDPOINT_RUNS[1:2]):
        (collected / "ipv6").mkdir(exist_ok=True)
        for r in runs:
            targets = [{"target": x.target, "verdict": x.verdict, "reason": x.reason, **x.detail}
                       for x in ENDPOINTS if x.run_id == r.id]
            (collected / "ipv6" / f"{r.unit}-endpoints.json").write_text(
                json.dumps({"generated": r.generated, "article": "9(2)", "targets": targets, "clients": []}),
                encoding="utf-8")
        stats = ingest(collected, tmp_path / "fleet.db")
        assert (stats.bad, stats.endpoint_runs_added) == ([], len(runs))
    with Store.open(tmp_path / "fleet.db", create=False) as store:
        stored = quarterly.build(store, quarter.parse("2026Q4"), load_inventory(inventory_dir), SETTINGS)
    assert stored.pop("generated") and report.pop("generated")    # when each was made: differs by design
    assert stored == report


def test_compute_takes_plain_lists(inventory_dir):
    q = quarter.parse("2026Q4")
    report = quarterly.compute(q, load_inventory(inventory_dir), RUNS, RESULTS, SETTINGS)
    assert units(report)["u_a"]["pass_rate"] == 0.375 and units(report)["u_a"]["unreachable"] == []
    assert report["articles"]["26"] == {"passed": 2, "failed": 3, "errors": 0, "skipped": 1, "pass_rate": 0.4}


def test_weights_come_from_the_policy():
    settings = quarterly.ScoreSettings.from_policy(load_policies(PROJECT / "policies"))
    assert settings.weights["26"] == 3 and settings.silent_host_penalty == 30
    assert settings.endpoint_values == {"ready": 1.0, "partial": 0.5, "not-ready": 0.0}
    assert settings.endpoint_share == 0.5


def test_endpoints_of_each_unit_with_ratios_and_causes(report):
    u = units(report)
    endpoints = u["u_a"]["ipv6_endpoints"]
    # the unit's latest endpoint run in the quarter (run 2, not run 1), its targets by name
    assert (endpoints["generated"], endpoints["ready"], endpoints["partial"], endpoints["not-ready"],
            endpoints["error"]) == ("2026-12-05T10:00:00+08:00", 1, 1, 1, 0)
    assert endpoints["rate"] is None  # SETTINGS gives verdicts no value: shown, not scored
    targets = {t["target"]: t for t in endpoints["targets"]}
    assert list(targets) == ["https://api.a.test/", "https://www.a.test/", "https://www.a.test/partial.html"]
    assert targets["https://www.a.test/partial.html"]["level2"] == {"ipv6": 4, "total": 5, "ratio": 0.8}
    assert targets["https://www.a.test/partial.html"]["causes"] == [
        "二级链接 https://v4only.a.test/: DNS: v4only.a.test 无 AAAA 记录"]
    assert targets["https://api.a.test/"]["causes"] == [
        "首页（IPv6） https://api.a.test/: TLS 证书名称不符: 证书验证失败：主机名不符，证书对 api.a.test 无效"]
    assert u["u_b"]["ipv6_endpoints"] is None  # its only endpoint run is of the previous quarter
    assert u["u_a"]["score"] == 29.3  # unchanged: not scored
    page = quarterly.render_html(report)
    assert "门户网站与移动端接口的 IPv6 支持情况" in page and "4/5 (80.0%)" in page and "部分支持" in page
    assert "二级链接 https://v4only.a.test/: DNS: v4only.a.test 无 AAAA 记录" in page
    assert 'data-endpoint="https://api.a.test/"' in page and 'data-verdict="not-ready"' in page
    assert report["unlisted_endpoint_units"] == ["u_zz"]
    assert '<p data-key="unlisted_endpoint_units">u_zz</p>' in page
    book = openpyxl.load_workbook(io.BytesIO(quarterly.render_xlsx(report)))
    rows = list(book["网站与接口 IPv6"].values)
    assert rows[0] == ("单位", "网站或接口", "结论", "二级链接", "三级链接", "问题", "原因", "检测时间")
    assert rows[3] == ("甲镇人民政府", "https://www.a.test/partial.html", "部分支持", "4/5 (80.0%)", "—",
                       "二级链接的 IPv6 链接比例 80%，低于 85%",
                       "二级链接 https://v4only.a.test/: DNS: v4only.a.test 无 AAAA 记录",
                       "2026-12-05T10:00:00+08:00")


def test_endpoints_in_the_article_9_2_score(inventory_dir):
    """Worked by hand: a1 (u_a) passes 26 and half of 9(2); the endpoints are ready, ready, partial
    and error → (1 + 1 + 0.5) / 3 = 0.8333 (error left out); 9(2) = 0.5 × 0.5 + 0.5 × 0.8333 = 0.6667;
    score = 100 × (3 × 1 + 1 × 0.6667) / 4 = 91.67, less 30 × 2/3 silent = 71.7; 9(2) brings
    100 × 1 × 0.6667 / 4 = 16.7 points."""
    settings = quarterly.ScoreSettings({"26": 3, "9(2)": 1}, 1, 30, 5, {"ready": 1, "partial": 0.5, "not-ready": 0}, 0.5)
    runs = [run(1, "a1", "2026-11-11T09:00:00+08:00")]
    results = [outcome(1, "NS26-PASS-001", "26", "pass"), outcome(1, "NS09-IPV6-001", "9(2)", "pass"),
               outcome(1, "NS09-IPV6-002", "9(2)", "fail")]
    rows = [EndpointRow(9, t, v, None, {}) for t, v in (("a", "ready"), ("b", "ready"), ("c", "partial"), ("d", "error"))]
    report = quarterly.compute(quarter.parse("2026Q4"), load_inventory(inventory_dir), runs, results, settings,
                               endpoint_runs=[endpoint_run(9, "u_a", "2026-12-01T09:00:00+08:00")], endpoints=rows)
    u_a = units(report)["u_a"]
    assert u_a["ipv6_endpoints"]["rate"] == 0.8333
    assert u_a["ipv6_score"] == {"terminal_rate": 0.5, "endpoint_rate": 0.8333, "rate": 0.6667, "weight": 1.0,
                                 "points": 16.7}
    assert u_a["score"] == 71.7
    # without the endpoints: 100 × (3 × 1 + 1 × 0.5) / 4 = 87.5, less 20 = 67.5
    assert units(quarterly.compute(quarter.parse("2026Q4"), load_inventory(inventory_dir), runs, results,
                                   settings))["u_a"]["score"] == 67.5
    # endpoints only (no 9(2) result on the terminal): 9(2) = 0.8333; 100 × (3 + 0.8333) / 4 − 20 = 75.8
    no_terminal = [r for r in results if r.article != "9(2)"]
    report = quarterly.compute(quarter.parse("2026Q4"), load_inventory(inventory_dir), runs, no_terminal, settings,
                               endpoint_runs=[endpoint_run(9, "u_a", "2026-12-01T09:00:00+08:00")], endpoints=rows)
    assert units(report)["u_a"]["score"] == 75.8


def test_a_bad_weight_names_its_file_and_line(tmp_path):
    bad = tmp_path / "article26.yml"
    text = (PROJECT / "policies" / "article26.yml").read_text(encoding="utf-8")
    bad.write_text(text.replace("silent_host_penalty: 30", "silent_host_penalty: many"), encoding="utf-8")
    # the loader knows the lines of top-level variables: the error points at the quarterly_score key
    first = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("  quarterly_score:"))
    with pytest.raises(InputError) as caught:
        quarterly.ScoreSettings.from_policy(load_policies(bad))
    assert str(caught.value) == (f"{bad}:{first}: variables.quarterly_score.silent_host_penalty: "
                                 "'many' is not of type 'number'")



@pytest.mark.parametrize("before,after,message", [
    ("      share: 0.5", "      share: 2", "variables.quarterly_score.ipv6_endpoints.share: 2 is greater than the maximum of 1"),
    ("{ready: 1, partial: 0.5, not-ready: 0}", "{ready: 1, partial: 0.5}",
     "variables.quarterly_score.ipv6_endpoints.verdict_values: 'not-ready' is a required property"),
    ("{ready: 1, partial: 0.5, not-ready: 0}", "{ready: 1, partial: 0.5, not-ready: 0, error: 0}",
     "variables.quarterly_score.ipv6_endpoints.verdict_values: unknown key(s) ('error' was unexpected)"),
])
def test_bad_endpoint_values_name_their_file_and_line(tmp_path, before, after, message):
    bad = tmp_path / "article26.yml"
    text = (PROJECT / "policies" / "article26.yml").read_text(encoding="utf-8")
    assert before in text
    bad.write_text(text.replace(before, after), encoding="utf-8")
    first = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("  quarterly_score:"))
    with pytest.raises(InputError) as caught:
        quarterly.ScoreSettings.from_policy(load_policies(bad))
    assert str(caught.value) == f"{bad}:{first}: {message}"


# --- renderings --------------------------------------------------------------------------------

def test_html_is_self_contained_and_chinese(report):
    page = quarterly.render_html(report)
    assert page.startswith('<!DOCTYPE html><html lang="zh-CN">')
    assert "季度安全检查报告（2026Q4）" in page and "第二十六条" in page and "2026-12-31" in page
    for outside in ('href="', "src=", "<script", "<link", "@import", "url(", "<img"):  # endpoint URLs are text only
        assert outside not in page
    assert page.count("<svg") == 2
    assert "Pass rate by unit" in quarterly.render_html(report, "en")


def test_xlsx_sheets(report):
    book = openpyxl.load_workbook(io.BytesIO(quarterly.render_xlsx(report)))
    assert book.sheetnames == ["2026Q4 汇总", "不通过的控制项", "本季度未上报的终端", "网站与接口 IPv6"]
    rows = list(book.worksheets[0].values)
    assert rows[0][:10] == ("单位代码", "单位", "终端数", "已上报", "未上报", "通过", "不通过", "错误", "通过率 (%)", "得分")
    assert rows[1][:12] == ("u_a", "甲镇人民政府", 3, 2, 1, 3, 5, 1, 37.5, 29.3, 100.0, 80.0)
    assert rows[1][12:16] == (50.0, None, 25.0, 50.0)          # articles 5, 9(2) (no pass/fail), 26, 27
    failing = list(book.worksheets[1].values)
    assert failing[1][:3] == ("甲镇人民政府", "NS26-ACCT-010", "第二十六条") and failing[1][5] == "a1, a2"
    assert list(book.worksheets[2].values)[1] == ("甲镇人民政府", "a3", "192.0.2.3", 2,
                                                  "2026-11-02T10:00:00+08:00 ssh: timed out")
    assert book.worksheets[0].freeze_panes == "A2"


# --- roster changes (article 8) ----------------------------------------------------------------

def staff(name: str, unit: str, employment: str = "active", staff_id: str = "") -> StaffRecord:
    return StaffRecord(name, staff_id, unit, employment, "established", 2)


def account(name: str, holder: str, unit: str, status: str = ACTIVE) -> PlatformAccount:
    return PlatformAccount(name, holder, unit, "编辑", status, None, None, 2)


def test_roster_changes():
    previous = [staff("张三", "甲镇"), staff("李四", "甲镇", staff_id="S2"), staff("王五", "乙局"),
                staff("赵六", "乙局"), staff("孙七", "甲镇", "retired"), staff("周八", "甲镇")]
    current = [staff("张三", "甲镇", "left"), staff("李 四", "乙局", staff_id="S2"), staff("王五", "乙局"),
               staff("周八", "甲镇")]
    accounts = [account("zs", "张三", "甲镇"), account("ls", "李四", "甲镇"), account("ls2", "李四", "乙局"),
                account("ww", "王五", "乙局"), account("zl", "赵六", "乙局", DISABLED), account("sq", "孙七", "甲镇"),
                account("zb", "周八", "甲镇")]
    assert roster_changes(previous, current, accounts) == [
        {"article": "8", "change": "left", "name": "张三", "staff_id": "", "from_unit": "甲镇", "to_unit": None,
         "accounts": ["zs"]},
        # 李四 moved (matched by staff number): the account of his former unit is still his
        {"article": "8", "change": "moved", "name": "李四", "staff_id": "S2", "from_unit": "甲镇", "to_unit": "乙局",
         "accounts": ["ls"]},
        # 赵六 left but his account is disabled; 孙七 had retired already last quarter (the audit's case)
    ]


def test_roster_changes_from_files(tmp_path):
    (tmp_path / "q3.csv").write_text("姓名,工号,单位,在职状态,编制\n张三,S1,甲镇,在职,在编\n李四,S2,甲镇,在职,在编\n",
                                     encoding="utf-8")
    (tmp_path / "q4.csv").write_text("姓名,工号,单位,在职状态,编制\n李四,S2,甲镇,在职,在编\n坏行,S9,甲镇,不知道,在编\n",
                                     encoding="gb18030")
    (tmp_path / "accounts.csv").write_text("账号,姓名,单位,状态\nzs,张三,甲镇,正常\nls,李四,甲镇,正常\n", encoding="utf-8")
    changes, problems = read_roster_changes(tmp_path / "q3.csv", tmp_path / "q4.csv", tmp_path / "accounts.csv")
    assert [(c["name"], c["change"], c["accounts"]) for c in changes] == [("张三", "left", ["zs"])]
    assert [(p.row, "在职状态" in p.message) for p in problems] == [(3, True)]


def test_report_carries_roster_changes(inventory_dir):
    changes = [{"article": "8", "change": "left", "name": "张三", "staff_id": "", "from_unit": "甲镇",
                "to_unit": None, "accounts": ["zs"]}]
    report = quarterly.build(FakeStore(), quarter.parse("2026Q4"), load_inventory(inventory_dir), SETTINGS,
                             roster_changes=changes)
    assert report["roster_changes"] == changes
    assert "人员变动后仍持有账号（第八条）" in quarterly.render_html(report)
    assert openpyxl.load_workbook(io.BytesIO(quarterly.render_xlsx(report))).sheetnames[-1] == "人员变动后仍持有账号（第八条）"


# --- the command -------------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(cli, "cmd_report_quarterly"), reason="`nanbu-secops report quarterly` is not wired into cli.py yet")
def test_report_quarterly_command(inventory_dir, tmp_path, capsys):
    from nanbu_secops.store import ingest

    collected = tmp_path / "collected"
    for r in RUNS:
        rows = [{"control": x.control, "article": x.article, "title": x.title, "status": x.status,
                 "severity": x.severity} for x in RESULTS if x.run_id == r.id]
        (collected / r.host).mkdir(parents=True, exist_ok=True)
        (collected / r.host / f"run{r.id}.json").write_text(
            json.dumps({"host": r.host, "generated": r.generated, "policy_version": "t", "results": rows}), encoding="utf-8")
    ingest(collected, tmp_path / "fleet.db")
    base = ["report", "quarterly", "--db", str(tmp_path / "fleet.db"), "--quarter", "2026Q4",
            "--inventory", str(inventory_dir), "--policy", str(PROJECT / "policies")]
    assert cli.main([*base, "--format", "json"]) == 1                 # failures and silent hosts: findings
    shown = json.loads(capsys.readouterr().out)
    assert units(shown)["u_a"]["score"] == 29.3 and shown["quarter"] == "2026Q4"
    assert cli.main([*base, "--output", str(tmp_path / "q.html")]) == 1
    assert "季度安全检查报告（2026Q4）" in (tmp_path / "q.html").read_text(encoding="utf-8")
    assert cli.main([*base, "--format", "xlsx", "--output", str(tmp_path / "q.xlsx")]) == 1
    assert openpyxl.load_workbook(tmp_path / "q.xlsx").sheetnames[0] == "2026Q4 汇总"
    assert cli.main([*base[:5], "2026Q5", *base[6:], "--lang", "en"]) == 2
    assert "--quarter: not a quarter in YYYYQn form" in capsys.readouterr().err
    assert cli.main([*base[:3], str(tmp_path / "none.db"), *base[4:], "--lang", "en"]) == 2
    assert "no such database" in capsys.readouterr().err


HOSTS_INI = """\
[u_a]
a[1:2]
a3 ansible_host=192.0.2.3

[u_b]
b1

[u_c]

[towns:children]
u_a

[units:children]
towns
u_b
u_c
"""


def test_nested_results_and_an_ini_inventory_give_the_same_figures(inventory_dir, tmp_path):
    """Acceptance (issue 18): the same results one folder deeper (by quarter), read with the same
    units written as INI with a host range, give the same quarterly figures as the flat layout with
    YAML; and two folders deeper with group_vars/<group>/ folders too (findings name their file)."""
    from nanbu_secops.store import Store, ingest

    ini, folders = tmp_path / "inventory-ini", tmp_path / "inventory-folders"
    (ini / "group_vars").mkdir(parents=True)
    (ini / "hosts.ini").write_text(HOSTS_INI, encoding="utf-8")
    (folders / "hosts.ini").parent.mkdir()
    (folders / "hosts.ini").write_text(HOSTS_INI, encoding="utf-8")
    for group, text in GROUP_VARS.items():
        (ini / "group_vars" / f"{group}.yml").write_text(text, encoding="utf-8")
        (folders / "group_vars" / group).mkdir(parents=True)     # group_vars/<group>/ folders, as Ansible merges them
        (folders / "group_vars" / group / "unit.yml").write_text(text, encoding="utf-8")
        (folders / "group_vars" / group / "connection.yml").write_text("ansible_user: ops\n", encoding="utf-8")
    reports = []
    for layout, inventory_folder in (("{host}/run{id}.json", inventory_dir),
                                     ("{quarter}/{host}/run{id}.json", ini),
                                     ("county/{quarter}/{host}/run{id}.json", folders)):
        collected, db = tmp_path / f"collected-{len(reports)}", tmp_path / f"fleet-{len(reports)}.db"
        for r in RUNS:
            rows = [{"control": x.control, "article": x.article, "title": x.title, "status": x.status,
                     "severity": x.severity} for x in RESULTS if x.run_id == r.id]
            path = collected / layout.format(host=r.host, id=r.id, quarter=quarter.Quarter.of(
                dt.datetime.fromisoformat(r.generated)).label)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"host": f"pc-{r.id}", "generated": r.generated, "policy_version": "t",
                                        "results": rows}), encoding="utf-8")
        inventory = load_inventory(inventory_folder)
        stats = ingest(collected, db, inventory.host_units())
        assert stats.runs_added == 6 and [p.name for p, _ in stats.refused] == ["run5.json"]   # x9: not listed
        with Store.open(db, create=False) as store, use_clock(dt.datetime(2027, 1, 4, 9, 30, tzinfo=COUNTY_TZ)):
            built = quarterly.build(store, quarter.parse("2026Q4"), inventory, SETTINGS)
        text = quarterly.render_json(built).replace(str(inventory_folder), "INVENTORY")
        reports.append(json.loads(text.replace("group_vars/u_a/unit.yml", "group_vars/u_a.yml")
                                  .replace("group_vars/u_b/unit.yml", "group_vars/u_b.yml")
                                  .replace("group_vars/u_c/unit.yml", "group_vars/u_c.yml")))
    flat, nested, deeper = reports
    assert nested == flat and deeper == flat
    by_unit = {u["unit"]: u for u in flat["units"]}
    assert (by_unit["u_a"]["reporting_hosts"], by_unit["u_a"]["silent_hosts"], by_unit["u_b"]["reporting_hosts"]) == (
        2, ["a3"], 1)
    assert by_unit["u_a"]["addresses"] == {"a3": "192.0.2.3"} and by_unit["u_a"]["passed"] == 3


def test_html_has_generation_time_legend_and_inventory_relative_paths(inventory_dir):

    with use_clock(dt.datetime(2027, 1, 4, 9, 30, tzinfo=COUNTY_TZ)):
        report = quarterly.build(FakeStore(), quarter.parse("2026Q4"), load_inventory(inventory_dir), SETTINGS)
    assert report["generated"] == "2027-01-04T09:30:00+08:00"
    page = quarterly.render_html(report, "zh", inventory_dir)
    assert '生成时间 <span data-key="generated">2027-01-04T09:30:00+08:00</span>' in page
    assert 'data-legend="1"' in page and "通过率 ≥ 90%" in page and "通过率 &lt; 60%" in page
    for colour in (quarterly.GOOD, quarterly.FAIR, quarterly.POOR):      # every bar colour is explained
        assert f"background:{colour}" in page
    sources = [f["source"] for u in report["units"] for f in u["metadata_findings"]]
    assert sources and all(s.startswith(str(inventory_dir)) for s in sources)   # the JSON keeps the full path
    assert str(inventory_dir) not in page
    assert "group_vars/u_b.yml:" in page
    assert "Legend" in quarterly.render_html(report, "en", inventory_dir)
    sheet = openpyxl.load_workbook(io.BytesIO(quarterly.render_xlsx(report, "zh", inventory_dir)))
    assert not any(str(inventory_dir) in str(c) for ws in sheet for row in ws.iter_rows(values_only=True) for c in row)


def test_titles_follow_the_language_asked_not_the_stored_one(report):
    policies = load_policies(PROJECT / "policies")
    english = {c.id: c.title.get("en") for c in policies.controls}
    quarterly.retitle(report, english)
    failing = [c for u in report["units"] for c in u["failing"]]
    assert failing and all(c["title"] == english.get(c["control"], "t") for c in failing)
    assert any(c["control"] in english for c in failing)
