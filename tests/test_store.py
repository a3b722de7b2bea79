"""The fleet database: ingest of real ``check --format json`` files, idempotency, migrations, queries."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from nanbu_secops.cli import main
from nanbu_secops.errors import InputError
from nanbu_secops.fleet.inventory import load_inventory
from nanbu_secops.store import SCHEMA_VERSION, Store, ingest
from nanbu_secops.store import db as dbmodule
from nanbu_secops.timeutil import COUNTY_TZ
from tests.roots import AS_OF, make_root

ROOT = Path(__file__).resolve().parent.parent
Q4 = (int(dt.datetime(2026, 10, 1, tzinfo=COUNTY_TZ).timestamp()),
      int(dt.datetime(2027, 1, 1, tzinfo=COUNTY_TZ).timestamp()))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real result of ``check --root`` on the crafted compliant root (host ``terminal-01``)."""
    base = tmp_path_factory.mktemp("check")
    out = base / "result.json"
    main(["check", "--root", str(make_root(base / "root")), "--as-of", AS_OF.isoformat(),
          "--format", "json", "--output", str(out)])
    return json.loads(out.read_text(encoding="utf-8"))


# The inventory hosts of these tests (host -> unit), as ``Inventory.host_units`` gives them.
INVENTORY: dict[str, str | None] = {
    **{f"szz-term-0{n}": "u_shengzhong" for n in (1, 2, 3, 9)}, "wjj-term-01": "u_county_health",
    "wjj-term-02": "u_county_health", "a": None, "b": None, "c": None}


def write_run(path: Path, report: dict[str, Any], generated: str, *, host: str | None = None,
              fail: str | None = None) -> Path:
    """A copy of ``report`` generated at ``generated``, optionally from ``host`` and with control ``fail`` failed."""
    run = copy.deepcopy(report)
    run["generated"] = generated
    if host is not None:
        run["host"] = host
    for result in run["results"]:
        if result["control"] == fail:
            result["status"], result["evidence"] = "fail", {"found": ["ToDesk"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def write_marker(path: Path, host: str, at: str, msg: str = "timed out") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "unreachable": True, "at": at, "msg": msg}), encoding="utf-8")
    return path


def dump(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return list(conn.iterdump())


def epoch(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp())


# --- ingest ---------------------------------------------------------------------------------------

def test_real_result_is_stored_with_its_host_unit_time_and_hash(tmp_path, report):
    source = write_run(tmp_path / "c" / "szz-term-01" / "2026-11-28" / "check.json", report,
                       "2026-11-28T09:30:00+08:00", fail="NS26-TERM-001")
    stats = ingest(tmp_path / "c", tmp_path / "fleet.db", {"szz-term-01": "u_shengzhong"})
    assert (stats.files, stats.runs_added, stats.runs_skipped, stats.bad) == (1, 1, 0, [])
    assert stats.results_added == len(report["results"])
    with Store.open(tmp_path / "fleet.db", create=False) as store:
        [run] = store.runs_between(*Q4)
        assert (run.host, run.reported_host, run.unit) == ("szz-term-01", "terminal-01", "u_shengzhong")
        assert (run.generated, run.generated_utc) == ("2026-11-28T09:30:00+08:00",
                                                      int(dt.datetime(2026, 11, 28, 1, 30, tzinfo=dt.UTC).timestamp()))
        assert (run.policy_version, run.tool_version, run.as_of, run.lang) == (
            report["policy_version"], report["tool"]["version"], report["as_of"], report["lang"])
        assert run.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
        assert run.source == "szz-term-01/2026-11-28/check.json"
        rows = {r.control: r for r in store.results([run.id])}
    expected = {r["control"]: r for r in report["results"]}
    assert rows.keys() == expected.keys()
    term = rows["NS26-TERM-001"]
    assert (term.status, term.article, term.severity, term.title, term.evidence) == (
        "fail", "26", expected["NS26-TERM-001"]["severity"], expected["NS26-TERM-001"]["title"], {"found": ["ToDesk"]})
    # Evidence is kept for what the report explains (fail, error, skip), not for passes.
    assert all((r.evidence is None) == (r.status == "pass") for r in rows.values())
    skipped = [r for r in rows.values() if r.status == "skip"]
    assert skipped and skipped[0].evidence == expected[skipped[0].control]["evidence"]


def test_host_is_the_folder_else_the_files_own_field(tmp_path, report):
    write_run(tmp_path / "c" / "wjj-term-01" / "a.json", report, "2026-11-02T10:00:00+08:00")
    write_run(tmp_path / "c" / "loose.json", report, "2026-11-03T10:00:00+08:00", host="wjj-term-02")
    ingest(tmp_path / "c", tmp_path / "fleet.db", {"wjj-term-01": "u_county_health", "wjj-term-02": "u_county_health"})
    with Store.open(tmp_path / "fleet.db") as store:
        runs = {r.host: r for r in store.runs_between(*Q4)}
        assert store.hosts() == ["wjj-term-01", "wjj-term-02"]
    assert runs["wjj-term-01"].reported_host == "terminal-01"  # the folder, collect.yml's inventory name, wins
    assert (runs["wjj-term-02"].reported_host, runs["wjj-term-02"].unit) == ("wjj-term-02", "u_county_health")


def test_host_without_unit_gets_null(tmp_path, report):
    write_run(tmp_path / "c" / "new-term" / "a.json", report, "2026-11-02T10:00:00+08:00")
    ingest(tmp_path / "c", tmp_path / "fleet.db", {"other": "u_shengzhong", "new-term": None})
    with Store.open(tmp_path / "fleet.db") as store:
        assert [r.unit for r in store.runs_between(*Q4)] == [None]


def test_ingesting_twice_changes_nothing(tmp_path, report):
    folder = tmp_path / "c"
    for day in (1, 2, 3):
        write_run(folder / "szz-term-01" / f"2026-11-0{day}" / "check.json", report, f"2026-11-0{day}T09:00:00+08:00")
    write_run(folder / "loose.json", report, "2026-11-04T09:00:00+08:00", host="szz-term-02")
    write_marker(folder / "szz-term-03" / "UNREACHABLE.json", "szz-term-03", "2026-11-04T09:00:00+08:00")
    first = ingest(folder, tmp_path / "fleet.db", INVENTORY)
    before = dump(tmp_path / "fleet.db")
    second = ingest(folder, tmp_path / "fleet.db", INVENTORY)
    assert (first.runs_added, first.runs_skipped, first.unreachable_added) == (4, 0, 1)
    assert (second.files, second.runs_added, second.runs_skipped, second.results_added, second.unreachable_added) == (
        5, 0, 4, 0, 0)
    assert dump(tmp_path / "fleet.db") == before


def test_a_utf8_bom_is_accepted(tmp_path, report):
    path = write_run(tmp_path / "c" / "a" / "1.json", report, "2026-11-01T09:00:00+08:00")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY).runs_added == 1


def test_a_copy_of_a_run_under_another_name_is_the_same_run(tmp_path, report):
    original = write_run(tmp_path / "c" / "szz-term-01" / "a.json", report, "2026-11-01T09:00:00+08:00")
    (tmp_path / "c" / "szz-term-01" / "again").mkdir()
    (tmp_path / "c" / "szz-term-01" / "again" / "copy.json").write_bytes(original.read_bytes())
    stats = ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    assert (stats.runs_added, stats.runs_skipped, stats.results_added) == (1, 1, len(report["results"]))


@pytest.mark.parametrize(("text", "reason"), [
    ("{", "malformed JSON"),
    (b'{"host": "\xff"}', "not UTF-8 text (byte 10)"),
    ("[1, 2]", "not a JSON object"),
    ('{"host": "x", "generated": "2026-11-01T09:00:00+08:00", "policy_version": "p"}', "no 'results' list"),
    ('{"generated": "2026-11-01T09:00:00+08:00", "policy_version": "p", "results": []}', "'host' missing"),
    ('{"host": "x", "generated": "2026-11-01T09:00:00", "policy_version": "p", "results": []}', "no UTC offset"),
    ('{"host": "x", "generated": "yesterday", "policy_version": "p", "results": []}', "not an RFC 3339 time"),
    ('{"unreachable": true, "host": "x", "msg": "no route"}', "'at' missing"),
])
def test_a_bad_file_is_reported_and_skipped(tmp_path, report, text, reason):
    bad = tmp_path / "c" / "szz-term-01" / "bad.json"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(text if isinstance(text, bytes) else text.encode())
    write_run(tmp_path / "c" / "szz-term-01" / "good.json", report, "2026-11-01T09:00:00+08:00")
    stats = ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    assert (stats.files, stats.runs_added) == (2, 1)
    [(path, why)] = stats.bad
    assert path == bad and reason in why


@pytest.mark.parametrize(("change", "reason"), [
    ({"status": "ok"}, "results[0].status: 'ok' is not one of"),
    ({"severity": "urgent"}, "results[0].severity: 'urgent'"),
    ({"control": None}, "results[0]: missing or not text: control"),
])
def test_a_malformed_result_rejects_the_whole_file(tmp_path, report, change, reason):
    run = copy.deepcopy(report)
    run["results"][0].update(change)
    path = tmp_path / "c" / "szz-term-01" / "a.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(run), encoding="utf-8")
    stats = ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    assert stats.runs_added == 0 and reason in stats.bad[0][1]
    with Store.open(tmp_path / "fleet.db") as store:
        assert store.runs_between(0, 2**40) == [] and store.hosts() == []


def test_a_control_twice_in_one_run_is_refused(tmp_path, report):
    run = copy.deepcopy(report)
    run["results"].append(run["results"][0])
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.json").write_text(json.dumps(run), encoding="utf-8")
    stats = ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    assert "appears twice" in stats.bad[0][1]


def test_not_a_directory_is_input_error(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        ingest(tmp_path / "missing", tmp_path / "fleet.db", INVENTORY)


# --- unreachable markers ---------------------------------------------------------------------------

def test_unreachable_markers_are_stored_once_and_queried_by_time(tmp_path, report):
    folder = tmp_path / "c"
    write_marker(folder / "wjj-term-02" / "UNREACHABLE.json", "wjj-term-02", "2026-11-20T02:00:00+08:00", "timed out")
    write_marker(folder / "wjj-term-02" / "2026-09-30" / "UNREACHABLE.json", "wjj-term-02", "2026-09-30T23:59:59+08:00")
    write_marker(folder / "loose-unreachable.json", "szz-term-09", "2026-12-01T08:00:00+08:00", "no route")
    assert ingest(folder, tmp_path / "fleet.db", INVENTORY).unreachable_added == 3
    assert ingest(folder, tmp_path / "fleet.db", INVENTORY).unreachable_added == 0
    with Store.open(tmp_path / "fleet.db") as store:
        marks = store.unreachable(*Q4)
        assert store.hosts() == ["szz-term-09", "wjj-term-02"]
    assert [(m.host, m.at, m.at_utc, m.msg) for m in marks] == [
        ("szz-term-09", "2026-12-01T08:00:00+08:00", epoch("2026-12-01T08:00:00+08:00"), "no route"),
        ("wjj-term-02", "2026-11-20T02:00:00+08:00", epoch("2026-11-20T02:00:00+08:00"), "timed out")]


# --- queries ---------------------------------------------------------------------------------------

def test_latest_run_per_host_in_a_county_quarter(tmp_path, report):
    folder = tmp_path / "c"
    write_run(folder / "a" / "1.json", report, "2026-10-01T00:00:00+08:00")  # the first second of Q4: in
    write_run(folder / "a" / "2.json", report, "2026-12-20T16:00:00Z", fail="NS26-SSH-001")  # Dec 21 00:00 county
    write_run(folder / "a" / "3.json", report, "2027-01-01T00:00:00+08:00")  # the end: out
    write_run(folder / "b" / "1.json", report, "2026-09-30T23:59:59+08:00")  # Sep 30 in the county: out
    write_run(folder / "c" / "1.json", report, "2026-10-01T00:00:00+08:00")
    write_run(folder / "c" / "2.json", report, "2026-11-15T10:00:00+08:00", fail="NS27-AV-001")
    ingest(folder, tmp_path / "fleet.db", INVENTORY)
    with Store.open(tmp_path / "fleet.db") as store:
        latest = store.latest_runs(*Q4)
        between = store.runs_between(*Q4)
        failed = {(r.run_id, r.control) for r in store.results([run.id for run in latest]) if r.status == "fail"}
        assert store.hosts() == ["a", "b", "c"]
    assert [(r.host, r.generated) for r in latest] == [("a", "2026-12-20T16:00:00Z"), ("c", "2026-11-15T10:00:00+08:00")]
    assert [(r.host, r.source) for r in between] == [("a", "a/1.json"), ("a", "a/2.json"), ("c", "c/1.json"),
                                                     ("c", "c/2.json")]
    assert failed == {(latest[0].id, "NS26-SSH-001"), (latest[1].id, "NS27-AV-001")}


def test_results_of_many_runs_in_one_query(tmp_path, report):
    data = write_run(tmp_path / "template.json", report, "2026-11-01T09:00:00+08:00").read_bytes()
    for n in range(1200):  # more ids than SQLite's historical limit of 999 bound parameters
        (tmp_path / "c" / f"h{n}").mkdir(parents=True)
        (tmp_path / "c" / f"h{n}" / "r.json").write_bytes(data)
    ingest(tmp_path / "c", tmp_path / "fleet.db", {f"h{n}": None for n in range(1200)})
    with Store.open(tmp_path / "fleet.db") as store:
        ids = [r.id for r in store.latest_runs(*Q4)]
        assert len(ids) == 1200
        assert len(store.results(ids)) == 1200 * len(report["results"])
        assert store.results([]) == []


# --- the database file and its schema --------------------------------------------------------------

def test_new_database_is_private_in_wal_mode_at_the_current_version(tmp_path):
    with Store.open(tmp_path / "fleet.db") as store:
        assert store.version == SCHEMA_VERSION
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (tmp_path / "fleet.db").stat().st_mode & 0o777 == 0o600


def test_missing_database_is_refused_when_not_creating(tmp_path):
    with pytest.raises(InputError, match="no such database"):
        Store.open(tmp_path / "fleet.db", create=False)
    assert not (tmp_path / "fleet.db").exists()


def test_a_file_that_is_not_sqlite_is_input_error(tmp_path):
    (tmp_path / "fleet.db").write_text("not a database, just text that is long enough to have a header\n" * 10)
    with pytest.raises(InputError, match="not a usable database"):
        Store.open(tmp_path / "fleet.db")


def test_a_version_0_database_is_migrated(tmp_path):
    with sqlite3.connect(tmp_path / "fleet.db") as conn:  # an existing, empty SQLite file: user_version 0
        conn.execute("CREATE TABLE operator_notes (note TEXT)")
    with Store.open(tmp_path / "fleet.db") as store:
        assert store.version == SCHEMA_VERSION
        tables = {name for (name,) in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "results", "unreachable", "operator_notes"} <= tables


def test_a_later_step_upgrades_an_existing_database_and_keeps_its_data(tmp_path, report, monkeypatch):
    write_run(tmp_path / "c" / "a" / "1.json", report, "2026-11-01T09:00:00+08:00")
    ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    monkeypatch.setattr(dbmodule, "MIGRATIONS", (*dbmodule.MIGRATIONS, ("ALTER TABLE runs ADD COLUMN note TEXT",)))
    monkeypatch.setattr(dbmodule, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Store.open(tmp_path / "fleet.db") as store:
        assert store.version == SCHEMA_VERSION + 1
        assert store.conn.execute("SELECT host, note FROM runs").fetchall() == [("a", None)]


def test_a_failing_step_leaves_the_database_at_its_old_version(tmp_path, monkeypatch):
    Store.open(tmp_path / "fleet.db").close()
    before = dump(tmp_path / "fleet.db")
    monkeypatch.setattr(dbmodule, "MIGRATIONS", (*dbmodule.MIGRATIONS,
                                                 ("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL")))
    monkeypatch.setattr(dbmodule, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(InputError):
        Store.open(tmp_path / "fleet.db")
    monkeypatch.undo()
    with Store.open(tmp_path / "fleet.db") as store:
        assert store.version == SCHEMA_VERSION
    assert dump(tmp_path / "fleet.db") == before


def test_a_newer_database_is_refused_and_left_untouched(tmp_path, report):
    with sqlite3.connect(tmp_path / "fleet.db") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = (tmp_path / "fleet.db").read_bytes()
    write_run(tmp_path / "c" / "a" / "1.json", report, "2026-11-01T09:00:00+08:00")
    with pytest.raises(InputError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    assert (tmp_path / "fleet.db").read_bytes() == before  # not even switched to WAL


# --- inventory -------------------------------------------------------------------------------------

def test_units_from_the_example_inventory_as_the_cli_passes_them(tmp_path, report):
    inventory = load_inventory(ROOT / "inventory")
    units = inventory.host_units()
    write_run(tmp_path / "c" / "wjj-term-02" / "a.json", report, "2026-11-02T10:00:00+08:00")
    write_run(tmp_path / "c" / "szz-term-01" / "a.json", report, "2026-11-02T10:00:00+08:00")
    ingest(tmp_path / "c", tmp_path / "fleet.db", units)
    with Store.open(tmp_path / "fleet.db") as store:
        assert [(r.host, r.unit) for r in store.latest_runs(*Q4)] == [
            ("szz-term-01", "u_shengzhong"), ("wjj-term-02", "u_county_health")]


# --- ipv6_readiness.yml's folder (article 9(2)) ------------------------------------------------------

def endpoints_doc(generated: str, **verdicts: str) -> dict[str, Any]:
    """An ``ipv6 check --format json`` document with one target per keyword (its verdict)."""
    return {"generated": generated, "article": "9(2)", "clients": [],
            "targets": [{"target": f"https://{name}.test/", "url": f"https://{name}.test/", "verdict": verdict,
                         "reason": None if verdict == "ready" else "no AAAA record",
                         "dns": {"aaaa": [], "a": ["192.0.2.1"], "ns": []},
                         "v6": {"ok": verdict == "ready", "error": "no AAAA record", "timings": {"total_ms": 1.0}},
                         "links": {"level2": {"total": 5, "ipv6": 4, "ratio": 0.8, "found": 5, "capped": False,
                                              "failing": [{"url": "https://x.test/", "stage": "dns", "error": "e",
                                                           "status_v6": None, "has_aaaa": False}, "garbage"]}}}
                        for name, verdict in verdicts.items()]}


def test_ipv6_folder_terminal_and_endpoint_files(tmp_path, report):
    """ipv6/<host>-terminal.json is that host's run (not a host named "ipv6"); ipv6/<unit>-endpoints.json
    is the unit's endpoint verdicts."""
    collected = tmp_path / "c"
    write_run(collected / "ipv6" / "szz-term-01-terminal.json", report, "2026-11-02T10:00:00+08:00")
    (collected / "ipv6" / "u_shengzhong-endpoints.json").write_text(
        json.dumps(endpoints_doc("2026-11-02T10:05:00+08:00", www="ready", app="not-ready")), encoding="utf-8")
    stats = ingest(collected, tmp_path / "fleet.db", {"szz-term-01": "u_shengzhong"})
    assert (stats.bad, stats.runs_added, stats.endpoint_runs_added, stats.endpoints_added) == ([], 1, 1, 2)
    with Store.open(tmp_path / "fleet.db") as store:
        assert [(r.host, r.unit) for r in store.latest_runs(*Q4)] == [("szz-term-01", "u_shengzhong")]
        assert "ipv6" not in store.hosts()
        runs = store.latest_endpoint_runs(*Q4)
        assert [(r.unit, r.generated, r.source) for r in runs] == [
            ("u_shengzhong", "2026-11-02T10:05:00+08:00", "ipv6/u_shengzhong-endpoints.json")]
        rows = store.endpoints([r.id for r in runs])
    assert [(r.target, r.verdict, r.reason) for r in rows] == [
        ("https://app.test/", "not-ready", "no AAAA record"), ("https://www.test/", "ready", None)]
    detail = rows[0].detail
    assert detail["v6"] == {"ok": False, "final_url": None, "status": None, "stage": None, "error": "no AAAA record"}
    assert detail["links"]["level2"]["failing"] == [{"url": "https://x.test/", "stage": "dns", "error": "e",
                                                     "status_v6": None}]  # the non-object dropped
    again = ingest(collected, tmp_path / "fleet.db", INVENTORY)
    assert (again.runs_skipped, again.endpoint_runs_added) == (2, 0)


def test_latest_endpoint_run_per_unit(tmp_path):
    collected = tmp_path / "c"
    (collected / "ipv6").mkdir(parents=True)
    for when, verdict in (("2026-10-02T10:00:00+08:00", "not-ready"), ("2026-12-02T10:00:00+08:00", "ready"),
                          ("2027-01-02T10:00:00+08:00", "partial")):
        (collected / "ipv6" / "u_a-endpoints.json").write_text(json.dumps(endpoints_doc(when, www=verdict)))
        assert ingest(collected, tmp_path / "fleet.db", INVENTORY).endpoint_runs_added == 1
    with Store.open(tmp_path / "fleet.db") as store:
        runs = store.latest_endpoint_runs(*Q4)
        assert [r.generated for r in runs] == ["2026-12-02T10:00:00+08:00"]
        assert [r.verdict for r in store.endpoints([r.id for r in runs])] == ["ready"]


@pytest.mark.parametrize("change,reason", [
    (lambda d: d.pop("targets"), "no 'targets' list"),
    (lambda d: d.update(generated="yesterday"), "not an RFC 3339 time"),
    (lambda d: d.pop("generated"), "'generated' missing"),
    (lambda d: d["targets"][0].update(verdict="great"), "targets[0].verdict: 'great' is not one of"),
    (lambda d: d["targets"][0].pop("target"), "targets[0].target: missing"),
    (lambda d: d["targets"][0].update(reason=["x"]), "targets[0].reason: not text"),
    (lambda d: d["targets"].append(dict(d["targets"][0])), "appears twice"),
    (lambda d: d["targets"].append(7), "targets[1]: not an object"),
])
def test_a_malformed_endpoint_file_is_reported_and_skipped(tmp_path, change, reason):
    document = endpoints_doc("2026-11-02T10:05:00+08:00", www="ready")
    change(document)
    (tmp_path / "c" / "ipv6").mkdir(parents=True)
    (tmp_path / "c" / "ipv6" / "u_a-endpoints.json").write_text(json.dumps(document))
    stats = ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    assert stats.endpoint_runs_added == 0 and len(stats.bad) == 1 and reason in stats.bad[0][1], stats.bad
    with Store.open(tmp_path / "fleet.db") as store:
        assert store.latest_endpoint_runs(0, 2**40) == []


def test_a_version_1_database_gains_the_endpoint_tables_and_keeps_its_runs(tmp_path, report, monkeypatch):
    write_run(tmp_path / "c" / "a" / "1.json", report, "2026-11-01T09:00:00+08:00")
    monkeypatch.setattr(dbmodule, "MIGRATIONS", dbmodule.MIGRATIONS[:1])
    monkeypatch.setattr(dbmodule, "SCHEMA_VERSION", 1)
    ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    monkeypatch.undo()
    (tmp_path / "c" / "ipv6").mkdir()
    (tmp_path / "c" / "ipv6" / "u_a-endpoints.json").write_text(json.dumps(endpoints_doc("2026-11-02T10:05:00+08:00",
                                                                                         www="ready")))
    stats = ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    assert (stats.runs_skipped, stats.endpoint_runs_added) == (1, 1)
    with Store.open(tmp_path / "fleet.db") as store:
        assert store.version == SCHEMA_VERSION >= 2  # and on through later migrations
        assert [r.host for r in store.latest_runs(*Q4)] == ["a"]
