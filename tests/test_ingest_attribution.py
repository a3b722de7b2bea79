"""Ingest never stores a result under the wrong host, and never refuses one silently (issue 18).

Real ``check --format json`` results (the ``report`` fixture of test_store) are laid out as
operators lay them out: nested by quarter, by county, by date, loose, and in hostile ways.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nanbu_secops.cli import main
from nanbu_secops.store import Store, ingest
from nanbu_secops.store.ingest import Misattributed, attribute
from tests.test_store import INVENTORY, Q4, dump, report, write_marker, write_run  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parent.parent
INVENTORY_DIR = ROOT / "inventory"     # szz-term-01/02 (u_shengzhong), wjj-term-01/02 (u_county_health)


def stored(db: Path) -> list[tuple[str, str, str | None, str]]:
    with Store.open(db, create=False) as store:
        return [(r.host, r.reported_host, r.unit, r.source) for r in store.runs_between(0, 2**40)]


@pytest.mark.parametrize("layout", [
    "{host}/a.json",                              # collect.yml's own layout
    "2026Q4/{host}/a.json",                       # the issue's: one folder per quarter
    "nanbu/2026/Q4/{host}/2026-11-28/a.json",     # deeper on both sides of the host
])
def test_any_depth_gives_the_inventory_host(tmp_path, report, layout):
    for host in ("szz-term-01", "wjj-term-02"):
        write_run(tmp_path / "c" / layout.format(host=host), report, "2026-11-28T09:30:00+08:00", host="debian")
    stats = ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    assert (stats.runs_added, stats.refused, stats.bad) == (2, [], [])
    assert stored(tmp_path / "fleet.db") == [
        ("szz-term-01", "debian", "u_shengzhong", layout.format(host="szz-term-01")),
        ("wjj-term-02", "debian", "u_county_health", layout.format(host="wjj-term-02"))]


def test_the_issue_layout_by_quarter_is_no_longer_a_host_named_after_the_quarter(tmp_path, report):
    """results/2026Q3/<host>/ and results/2026Q4/<host>/: no host is called 2026Q3 or 2026Q4."""
    write_run(tmp_path / "r" / "2026Q3" / "szz-term-01" / "x.json", report, "2026-08-01T09:00:00+08:00",
              host="szz-term-01")
    write_run(tmp_path / "r" / "2026Q4" / "szz-term-01" / "x.json", report, "2026-11-01T09:00:00+08:00",
              host="szz-term-01")
    write_marker(tmp_path / "r" / "2026Q4" / "wjj-term-01" / "UNREACHABLE-1.json", "wjj-term-01",
                 "2026-11-01T09:00:00+08:00")
    ingest(tmp_path / "r", tmp_path / "fleet.db", INVENTORY)
    with Store.open(tmp_path / "fleet.db") as store:
        assert store.hosts() == ["szz-term-01", "wjj-term-01"]
        assert [r.host for r in store.latest_runs(*Q4)] == ["szz-term-01"]


def test_a_disagreement_is_reported_per_file_and_not_stored(tmp_path, report):
    folder = tmp_path / "c"
    write_run(folder / "szz-term-01" / "ok.json", report, "2026-11-01T09:00:00+08:00", host="szz-term-01")
    wrong = write_run(folder / "2026Q4" / "szz-term-01" / "moved.json", report, "2026-11-02T09:00:00+08:00",
                      host="wjj-term-01")
    marker = write_marker(folder / "wjj-term-02" / "UNREACHABLE.json", "szz-term-02", "2026-11-03T09:00:00+08:00")
    stats = ingest(folder, tmp_path / "fleet.db", INVENTORY)
    assert stats.runs_added == 1 and stats.unreachable_added == 0 and stats.bad == []
    reasons = dict(stats.refused)
    assert reasons.keys() == {wrong, marker}
    assert "names host 'wjj-term-01' but sits in the folder of 'szz-term-01' (2026Q4/szz-term-01/)" in reasons[wrong]
    assert "'szz-term-02'" in reasons[marker] and "'wjj-term-02'" in reasons[marker]
    assert [row[0] for row in stored(tmp_path / "fleet.db")] == ["szz-term-01"]
    # refused again on the next ingest, never forgotten
    assert dict(ingest(folder, tmp_path / "fleet.db", INVENTORY).refused).keys() == {wrong, marker}


def test_hosts_outside_the_inventory_are_reported(tmp_path, report):
    folder = tmp_path / "c"
    stray = write_run(folder / "2026Q4" / "stranger" / "a.json", report, "2026-11-01T09:00:00+08:00", host="stranger")
    loose = write_run(folder / "loose.json", report, "2026-11-01T09:00:00+08:00", host="laptop")
    known = write_run(folder / "2026Q4" / "b.json", report, "2026-11-01T09:00:00+08:00", host="wjj-term-01")
    stats = ingest(folder, tmp_path / "fleet.db", INVENTORY)
    reasons = dict(stats.refused)
    assert reasons == {
        stray: "host 'stranger' is not in the inventory and none of its folders (2026Q4/stranger/) names one: not stored",
        loose: "host 'laptop' is not in the inventory: not stored"}
    assert stored(tmp_path / "fleet.db") == [("wjj-term-01", "wjj-term-01", "u_county_health", "2026Q4/b.json")]
    assert known.exists()


def test_folders_naming_two_inventory_hosts_are_in_doubt(tmp_path, report):
    path = write_run(tmp_path / "c" / "szz-term-01" / "wjj-term-01" / "a.json", report, "2026-11-01T09:00:00+08:00")
    stats = ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    assert stats.refused == [(path, "its folders (szz-term-01/wjj-term-01/) name several inventory hosts "
                                    "(szz-term-01, wjj-term-01): not stored")]


def test_without_an_inventory_only_a_folder_naming_the_host_counts(tmp_path, report):
    folder = tmp_path / "c"
    write_run(folder / "2026Q4" / "szz-term-01" / "a.json", report, "2026-11-01T09:00:00+08:00", host="szz-term-01")
    doubtful = write_run(folder / "2026Q4" / "b.json", report, "2026-11-02T09:00:00+08:00", host="szz-term-02")
    stats = ingest(folder, tmp_path / "fleet.db")
    assert [row[0] for row in stored(tmp_path / "fleet.db")] == ["szz-term-01"]
    assert stats.refused[0][0] == doubtful and "without --inventory" in stats.refused[0][1]


def test_attribute_rules():
    inventory = {"h1": "u", "h2": None}
    assert attribute(("2026Q4", "h1", "2026-11-28"), "debian", inventory) == "h1"
    assert attribute(("h1",), "h1", inventory) == "h1"
    assert attribute((), "h2", inventory) == "h2"
    assert attribute(("x", "h1", "h1"), "h1", inventory) == "h1"       # the same host twice is no doubt
    for folders, reported in ((("h1",), "h2"), (("q",), "h3"), ((), "h3"), (("h1", "h2"), "h1")):
        with pytest.raises(Misattributed):
            attribute(folders, reported, inventory)


# --- hostile files ----------------------------------------------------------------------------------

@pytest.mark.parametrize("document, reason", [
    ({"host": ["szz-term-01"]}, "'host' missing or not text"),
    ({"host": ""}, "'host' missing or not text"),
    ({"host": None}, "'host' missing or not text"),
])
def test_a_host_field_that_is_not_a_name_is_a_bad_file(tmp_path, report, document, reason):
    path = write_run(tmp_path / "c" / "szz-term-01" / "a.json", report, "2026-11-01T09:00:00+08:00")
    path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), **document}), encoding="utf-8")
    stats = ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    assert stats.runs_added == 0 and reason in stats.bad[0][1]


def test_a_host_that_looks_like_a_path_is_only_a_name(tmp_path, report):
    path = write_run(tmp_path / "c" / "x" / "a.json", report, "2026-11-01T09:00:00+08:00", host="../szz-term-01")
    stats = ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    assert stats.refused == [(path, "host '../szz-term-01' is not in the inventory and none of its folders (x/) "
                                    "names one: not stored")]


def test_symbolic_links_are_not_followed(tmp_path, report):
    outside = write_run(tmp_path / "elsewhere" / "r.json", report, "2026-11-01T09:00:00+08:00", host="szz-term-01")
    (tmp_path / "c" / "szz-term-01").mkdir(parents=True)
    (tmp_path / "c" / "szz-term-01" / "link.json").symlink_to(outside)
    (tmp_path / "c" / "wjj-term-01").symlink_to(outside.parent, target_is_directory=True)
    stats = ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    assert stats.runs_added == 0
    assert [(p.name, why) for p, why in stats.bad] == [("link.json", "a symbolic link (or inside one): not followed")]


def test_a_folder_named_like_a_result_and_an_unreadable_file(tmp_path, report):
    (tmp_path / "c" / "szz-term-01" / "dir.json").mkdir(parents=True)
    locked = write_run(tmp_path / "c" / "szz-term-01" / "locked.json", report, "2026-11-01T09:00:00+08:00")
    locked.chmod(0)
    stats = ingest(tmp_path / "c", tmp_path / "fleet.db", INVENTORY)
    if os.geteuid() == 0:         # root reads it anyway
        assert stats.runs_added == 1 and stats.bad == []
    else:
        assert stats.bad == [(locked, "Permission denied")]


# --- the ipv6 folder, nested too ------------------------------------------------------------------

def test_ipv6_files_nested_by_quarter(tmp_path, report):
    folder = tmp_path / "c"
    write_run(folder / "2026Q4" / "ipv6" / "szz-term-01-terminal.json", report, "2026-11-01T09:00:00+08:00")
    wrong = write_run(folder / "2026Q4" / "ipv6" / "wjj-term-01-terminal.json", report, "2026-11-01T09:00:00+08:00",
                      host="szz-term-02")
    (folder / "2026Q4" / "ipv6" / "u_shengzhong-endpoints.json").write_text(json.dumps(
        {"generated": "2026-11-01T09:05:00+08:00", "targets": [{"target": "https://a.test/", "verdict": "ready"}]}))
    stats = ingest(folder, tmp_path / "fleet.db", INVENTORY)
    assert (stats.runs_added, stats.endpoint_runs_added, stats.bad) == (1, 1, [])
    assert [p for p, _ in stats.refused] == [wrong]
    assert [row[:3] for row in stored(tmp_path / "fleet.db")] == [("szz-term-01", "terminal-01", "u_shengzhong")]


# --- dry run ----------------------------------------------------------------------------------------

def test_dry_run_shows_what_would_be_stored_and_writes_nothing(tmp_path, report, capsys):
    folder = tmp_path / "c"
    write_run(folder / "2026Q4" / "szz-term-01" / "a.json", report, "2026-11-01T09:00:00+08:00")
    write_run(folder / "2026Q4" / "szz-term-01" / "wrong.json", report, "2026-11-02T09:00:00+08:00",
              host="wjj-term-02")
    db = tmp_path / "fleet.db"
    args = ["ingest", str(folder), "--db", str(db), "--inventory", str(INVENTORY_DIR), "--lang", "en"]
    assert main([*args, "--dry-run"]) == 1                              # a file not stored is a finding
    out, err = capsys.readouterr()
    assert f"would store {folder / '2026Q4/szz-term-01/a.json'}: run of szz-term-01 (unit u_shengzhong, " \
           f"reported as terminal-01) at 2026-11-01T09:00:00+08:00" in out
    assert "(dry run: nothing written): 2 files, 1 runs added" in out and "1 not stored (host in doubt)" in out
    assert f"not stored {folder / '2026Q4/szz-term-01/wrong.json'}: the file names host 'wjj-term-02'" in err
    assert not db.exists()
    assert main(args) == 1
    before = dump(db)
    write_run(folder / "2026Q4" / "wjj-term-01" / "b.json", report, "2026-11-03T09:00:00+08:00")
    assert main([*args, "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "would store" in out and "b.json: run of wjj-term-01" in out and "a.json" not in out.split("\n")[0]
    assert dump(db) == before                                           # an existing database is untouched
    assert main(args[:4] + ["--inventory", str(tmp_path / "none"), "--lang", "en"]) == 2
    assert "no such inventory" in capsys.readouterr().err
