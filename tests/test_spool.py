"""The terminal's spool of check results (nanbu_secops.fleet.spool, ``nanbu-secops spool``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nanbu_secops import cli
from nanbu_secops.errors import InputError
from nanbu_secops.fleet import spool
from nanbu_secops.store import ingest
from tests.roots import make_root

PROJECT = Path(__file__).resolve().parents[1]
POLICIES = PROJECT / "policies"
UTC = dt.UTC


def test_names_sort_as_time_and_are_safe():
    a = spool.result_name("szz-term-01", dt.datetime(2026, 11, 29, 5, 0, 0, 999999, tzinfo=UTC))
    b = spool.result_name("szz-term-01", dt.datetime(2026, 11, 29, 5, 0, 1, tzinfo=UTC))
    c = spool.result_name("aaa", dt.datetime(2026, 11, 29, 13, 0, 2, tzinfo=dt.timezone(dt.timedelta(hours=8))))
    assert a == "20261129T050000.999999Z-szz-term-01.json"
    assert sorted([c, b, a]) == [a, b, c]      # 13:00:02+08:00 is 05:00:02 UTC, after b
    assert spool.result_name("../../etc/x y", dt.datetime(2026, 1, 1, tzinfo=UTC)).endswith("-etc_x_y.json")


def test_run_writes_atomically_prunes_and_newest(tmp_path):
    root = make_root(tmp_path / "root")
    folder = tmp_path / "var" / "spool"           # parents made too
    written = []
    for _ in range(4):
        path, clear = spool.run(folder, 2, root=str(root), policy=str(POLICIES))
        written.append(path)
        assert path.parent == folder and path.exists()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in written[-2:])
    assert spool.results(folder) == written[-2:]          # the two newest are kept
    assert not written[0].exists() and not written[1].exists()
    assert spool.newest(folder) == written[-1]
    report = json.loads(written[-1].read_text())
    assert report["host"] == "terminal-01" and written[-1].name.endswith("-terminal-01.json")
    assert isinstance(clear, bool) and clear == (report["summary"]["fail"] + report["summary"]["error"] == 0)
    assert {r["control"] for r in report["results"]} >= {"NS26-PASS-001", "NS26-SSH-001"}
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]   # no temporary file left


def test_newest_and_prune_ignore_other_files(tmp_path):
    assert spool.newest(tmp_path / "missing") is None
    assert spool.newest(tmp_path) is None
    names = [spool.result_name("h", dt.datetime(2026, 11, d, tzinfo=UTC)) for d in (1, 3, 2)]
    for name in names:
        (tmp_path / name).write_text("{}")
    (tmp_path / "zzz-notes.json").write_text("{}")                           # not a result name
    (tmp_path / f".{names[0]}.tmp123").write_text("half")                    # a crashed write
    (tmp_path / "99991231T000000.000000Z-dir.json").mkdir()                   # not a file
    assert spool.newest(tmp_path) == tmp_path / names[1]                     # the 3rd
    assert spool.prune(tmp_path, 1) == [tmp_path / names[0], tmp_path / names[2]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [names[1], "zzz-notes.json", f".{names[0]}.tmp123", "99991231T000000.000000Z-dir.json"])
    with pytest.raises(ValueError):
        spool.prune(tmp_path, 0)


def test_existing_folder_keeps_its_mode_and_same_instant_never_overwrites(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)
    moment = dt.datetime(2026, 11, 29, tzinfo=UTC)
    first = spool.write(folder, {"n": 1}, "h01", moment)
    second = spool.write(folder, {"n": 2}, "h01", moment)
    assert first != second and json.loads(first.read_text()) == {"n": 1}
    assert spool.newest(folder) == second
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_bad_policy_writes_nothing(tmp_path):
    root = make_root(tmp_path / "root")
    bad = tmp_path / "bad.yml"
    bad.write_text("policy: [not, a, mapping\n")
    with pytest.raises(InputError):
        spool.run(tmp_path / "spool", 3, root=str(root), policy=str(bad))
    assert spool.newest(tmp_path / "spool") is None


def test_cli_spool_run_and_newest_then_ingest(tmp_path, capsys):
    root = make_root(tmp_path / "root")
    folder = tmp_path / "spool"
    code = cli.main(["spool", "run", "--dir", str(folder), "--keep", "3", "--root", str(root), "--policy", str(POLICIES)])
    printed = Path(capsys.readouterr().out.strip())
    assert code in (0, 1) and printed.exists()
    assert cli.main(["spool", "newest", "--dir", str(folder)]) == 0
    assert Path(capsys.readouterr().out.strip()) == printed
    assert cli.main(["spool", "newest", "--dir", str(tmp_path / "empty")]) == 1
    # What the spool holds is what `ingest` loads (collect.yml fetches it to DIR/<host>/).
    results = tmp_path / "results" / "terminal-01"
    results.mkdir(parents=True)
    (results / printed.name).write_bytes(printed.read_bytes())
    stats = ingest(tmp_path / "results", tmp_path / "fleet.db")
    assert stats.runs_added == 1 and not stats.bad


def test_cli_refuses_keep_below_one(tmp_path):
    done = subprocess.run([sys.executable, "-m", "nanbu_secops", "spool", "run", "--dir", str(tmp_path), "--keep", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--keep" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_newest_with_max_age_judges_the_stamp_in_the_name_not_mtime(tmp_path):
    # collect.yml's spool mode asks for a result at most nanbu_spool_max_age_hours old and audits
    # now when there is none; the age is the name's UTC stamp (a copy or touch changes mtime).
    written = dt.datetime(2026, 11, 29, 5, 15, 2, 123456, tzinfo=UTC)
    path = spool.write(tmp_path, {"host": "t"}, "t", written)
    assert spool.written_at(path) == written
    os.utime(path)                                              # mtime: today, whatever today is
    day = dt.timedelta(hours=26)
    assert spool.newest(tmp_path, day, written + day) == path   # exactly at the bound: still fresh
    assert spool.newest(tmp_path, day, written + day + dt.timedelta(microseconds=1)) is None
    county = dt.timezone(dt.timedelta(hours=8))
    assert spool.newest(tmp_path, dt.timedelta(hours=1), dt.datetime(2026, 11, 29, 14, 0, tzinfo=county)) == path
    assert spool.newest(tmp_path, dt.timedelta(0), written) == path
    assert spool.newest(tmp_path / "empty", day, written) is None
    assert spool.newest(tmp_path) == path                       # no bound: the newest, however old


def test_cli_newest_max_age(tmp_path, capsys):
    fresh = spool.write(tmp_path / "fresh", {"host": "t"}, "t")                       # written now
    spool.write(tmp_path / "old", {"host": "t"}, "t", dt.datetime(2020, 1, 1, tzinfo=UTC))
    assert cli.main(["spool", "newest", "--dir", str(tmp_path / "fresh"), "--max-age-hours", "26"]) == 0
    assert Path(capsys.readouterr().out.strip()) == fresh
    assert cli.main(["spool", "newest", "--dir", str(tmp_path / "old"), "--max-age-hours", "26"]) == 1
    assert capsys.readouterr().out == ""
    assert cli.main(["spool", "newest", "--dir", str(tmp_path / "old")]) == 0        # no bound asked
    for bad in ("-1", "nan", "inf", "1e300"):
        done = subprocess.run([sys.executable, "-m", "nanbu_secops", "spool", "newest", "--dir", str(tmp_path / "old"),
                               "--max-age-hours", bad], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "--max-age-hours" in done.stderr and "Traceback" not in done.stderr, bad
