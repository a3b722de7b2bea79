"""``nanbu-secops av scan`` with the real clamscan of this machine and databases built here.

No clamd runs on this machine (and none is started here), so the agent picks clamscan. The
command runs in a private mount namespace where a temporary database folder is bound over
/var/lib/clamav, so clamscan's own default database is what the agent uses, as on a terminal,
and the machine's /var/lib/clamav is never touched. The clamdscan path is tested on a lab host
(tests/test_playbook_av_scan.py).

The clamav-testfiles samples are detected by ClamAV's official signatures only; the database
here holds one MD5 signature of clam.exe, and clamscan finds it in every sample: packed
executables, archives, mail and documents are unpacked by the real engine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from nanbu_secops.av import records, scan
from tests.clamdb import EICAR, EICAR_SIGNATURE, eicar_hdb, write_cud

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / ".venv" / "bin" / "nanbu-secops"
TESTFILES = Path("/usr/share/clamav-testfiles")
CLAM_EXE_SIGNATURE = "Nanbu-Test.ClamExe"
EICAR_SHA256 = hashlib.sha256(EICAR).hexdigest()
NAMES = ("a b.txt", "colon: x FOUND.txt", "病毒 测试.com", "line\nbreak.txt")


def clam_exe_hdb() -> str:
    data = (TESTFILES / "clam.exe").read_bytes()
    return f"{hashlib.md5(data).hexdigest()}:{len(data)}:{CLAM_EXE_SIGNATURE}\n"


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clamdb")
    built = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    write_cud(folder, built, 27123, signatures={"daily.hdb": eicar_hdb() + clam_exe_hdb()})
    return folder


def agent(database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The agent with ``database`` as clamscan's default /var/lib/clamav (in its own mount namespace)."""
    script = 'mount --bind "$1" /var/lib/clamav && shift && exec "$@"'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh",
                           str(database), str(AGENT), "av", "scan", *args],
                          capture_output=True, text=True, timeout=300)


def logged(log: Path) -> list[records.ScanRecord]:
    return records.parse(log.read_text(encoding="utf-8"), str(log))


@pytest.fixture()
def infected(tmp_path) -> Path:
    """EICAR under awkward names (space, ": ... FOUND", Chinese, a newline), one nested, and two clean files."""
    folder = tmp_path / "data 目录"
    (folder / "sub").mkdir(parents=True)
    for name in NAMES:
        (folder / name).write_bytes(EICAR)
    (folder / "sub" / "a b.txt").write_bytes(EICAR)
    (folder / "clean.txt").write_text("nothing to see\n")
    (folder / "sub" / "readme.md").write_text("# clean\n")
    return folder


def test_finds_eicar_under_awkward_names_and_logs_the_scan(database, infected, tmp_path):
    log = tmp_path / "state" / "av-scans.jsonl"
    done = agent(database, "--format", "json", "--log", str(log), str(infected))
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    expected = {str(infected / name) for name in NAMES} | {str(infected / "sub" / "a b.txt")}
    assert {d["path"] for d in record["detections"]} == expected
    assert {d["signature"] for d in record["detections"]} == {f"{EICAR_SIGNATURE}.UNOFFICIAL"}
    assert all(d["sha256"] == EICAR_SHA256 and d["quarantined_to"] == "" for d in record["detections"])
    assert record["engine"] == "clamscan" and record["completed"] is True and record["reason"] == ""
    assert record["files_scanned"] == 7
    assert record["paths"] == [str(infected)]
    assert record["database"].startswith("ClamAV ") and "/27123/" in record["database"]
    assert record["started"].endswith("+08:00") and record["started"] <= record["finished"]
    # the log holds exactly what was printed, and nothing was moved or deleted
    assert [r.as_json() for r in logged(log)] == [record]
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o750
    assert all(Path(p).read_bytes() == EICAR for p in expected)


def test_clean_scan_exits_0_and_reports_in_both_languages(database, tmp_path):
    folder = tmp_path / "clean"
    folder.mkdir()
    (folder / "report.txt").write_text("季度报告\n", encoding="utf-8")
    log = tmp_path / "av-scans.jsonl"
    zh = agent(database, "--log", str(log), str(folder))
    assert zh.returncode == 0, zh.stderr
    assert "完成：未发现病毒" in zh.stdout and "扫描引擎: clamscan" in zh.stdout and "已扫描文件: 1" in zh.stdout
    en = agent(database, "--lang", "en", "--log", str(log), str(folder))
    assert en.returncode == 0 and "COMPLETED: nothing found" in en.stdout and "Files scanned: 1" in en.stdout
    assert [r.completed and not r.detections for r in logged(log)] == [True, True]


def test_text_report_lists_detections_and_says_nothing_was_deleted(database, infected, tmp_path):
    done = agent(database, "--lang", "en", "--log", str(tmp_path / "log.jsonl"), str(infected / "a b.txt"))
    assert done.returncode == 1
    assert "INFECTED FILES FOUND: 1" in done.stdout and EICAR_SHA256 in done.stdout
    assert "left in place (no quarantine)" in done.stdout and "not deleted" in done.stdout
    zh = agent(database, "--log", str(tmp_path / "log.jsonl"), str(infected / "a b.txt"))
    assert "发现病毒: 1" in zh.stdout and "未删除" in zh.stdout
    newline = agent(database, "--lang", "en", "--log", str(tmp_path / "log.jsonl"), str(infected / "line\nbreak.txt"))
    assert f"{infected}/line\\nbreak.txt" in newline.stdout  # one table row, the newline shown as \n


def test_clamav_testfiles_are_all_detected(database, tmp_path):
    samples = sorted(p for p in TESTFILES.iterdir() if p.is_file())
    assert len(samples) > 30  # clamav-testfiles is installed by scripts/setup.sh --test
    done = agent(database, "--format", "json", "--log", str(tmp_path / "log.jsonl"), str(TESTFILES))
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    found = {d["path"]: d for d in record["detections"]}
    assert set(found) == {str(p) for p in samples}
    assert {d["signature"] for d in found.values()} == {f"{CLAM_EXE_SIGNATURE}.UNOFFICIAL"}
    for sample in (TESTFILES / "clam.zip", TESTFILES / "clam-upx.exe", TESTFILES / "clam.pdf"):
        assert found[str(sample)]["sha256"] == hashlib.sha256(sample.read_bytes()).hexdigest()
    assert record["files_scanned"] == len(samples)


def test_quarantine_moves_with_0600_in_0700_and_never_overwrites(database, infected, tmp_path):
    vault = tmp_path / "quarantine"
    vault.mkdir(mode=0o755)
    earlier = vault / "earlier-quarantined"
    earlier.write_bytes(b"from an earlier scan")
    log = tmp_path / "log.jsonl"
    done = agent(database, "--format", "json", "--quarantine", str(vault), "--log", str(log),
                 str(infected), str(infected / "clean.txt"))
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    assert len(record["detections"]) == 5
    assert stat.S_IMODE(vault.stat().st_mode) == 0o700
    targets = [Path(d["quarantined_to"]) for d in record["detections"]]
    assert len(set(targets)) == 5  # the two "a b.txt" got different names
    for d, target in zip(record["detections"], targets, strict=True):
        assert target.parent == vault
        assert not os.path.lexists(d["path"])  # moved away from where it was
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert target.read_bytes() == EICAR and d["sha256"] == EICAR_SHA256
    # nothing deleted: the five moved files, the earlier one, the clean files untouched
    assert sorted(vault.iterdir()) == sorted(targets + [earlier])
    assert earlier.read_bytes() == b"from an earlier scan"
    assert (infected / "clean.txt").read_text() == "nothing to see\n"
    assert (infected / "sub" / "readme.md").exists()
    assert logged(log)[0].detections[0].quarantined_to == record["detections"][0]["quarantined_to"]
    assert not any("\n" in target.name for target in targets)  # "line\nbreak.txt" got a one-line name
    text = agent(database, "--quarantine", str(vault), "--log", str(log), str(infected))
    assert text.returncode == 0 and "完成：未发现病毒" in text.stdout  # all of them are gone from there


def test_timeout_kills_the_scan_and_records_it_not_completed(database, tmp_path):
    log = tmp_path / "log.jsonl"
    done = agent(database, "--format", "json", "--timeout", "0.5", "--log", str(log), "/usr")
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    assert record["completed"] is False and record["reason"] == "timed out after 0.5 s"
    assert logged(log)[-1].reason == "timed out after 0.5 s"
    text = agent(database, "--lang", "en", "--timeout", "0.5", "--log", str(log), "/usr")
    assert text.returncode == 1 and "SCAN DID NOT COMPLETE" in text.stdout and "timed out after 0.5 s" in text.stdout


def test_timeout_leaves_no_scanner_running(database, tmp_path):
    """In process, so the scanner's command line (it names this database) can be looked for after."""
    record = scan.scan(["/usr"], 0.5, log=tmp_path / "log.jsonl", database=database)
    assert not record.completed and record.reason == "timed out after 0.5 s"
    running = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(database).encode() in cmdline:
            running.append(pid)
    assert running == []


def test_engine_error_is_a_recorded_incomplete_scan(tmp_path):
    empty = tmp_path / "no-signatures"
    empty.mkdir()
    (tmp_path / "f.txt").write_text("x")
    log = tmp_path / "log.jsonl"
    done = agent(empty, "--format", "json", "--log", str(log), str(tmp_path / "f.txt"))
    assert done.returncode == 1
    record = json.loads(done.stdout)
    assert record["completed"] is False
    assert record["reason"].startswith("clamscan exited with 2: ") and "No supported database files found" in record["reason"]
    assert logged(log)[0].completed is False


@pytest.mark.parametrize("case", ["missing", "timeout", "quarantine_is_file"])
def test_bad_input_exits_2_naming_it_and_logs_nothing(database, tmp_path, case):
    log = tmp_path / "log.jsonl"
    (tmp_path / "f.txt").write_text("x")
    args = {"missing": [str(tmp_path / "nope 不存在")],
            "timeout": ["--timeout", "0", str(tmp_path / "f.txt")],
            "quarantine_is_file": ["--quarantine", str(tmp_path / "f.txt"), str(tmp_path / "f.txt")]}[case]
    done = agent(database, "--log", str(log), "--lang", "en", *args)
    assert done.returncode == 2
    want = {"missing": f"{tmp_path / 'nope 不存在'}: no such file or folder to scan",
            "timeout": "--timeout must be more than 0 seconds, not 0.0",
            "quarantine_is_file": f"{tmp_path / 'f.txt'}: --quarantine: not a folder"}[case]
    assert want in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == "" and not log.exists()


def test_excluded_folders_are_left_out_and_links_beside_them_not_followed(database, tmp_path):
    """EICAR on both sides of an excluded folder, two levels down: clamscan (the real engine)
    finds only what is outside it; a link to the excluded folder from beside it is not a way in."""
    top = tmp_path / "top"
    keep, skip = top / "keep", top / "mid" / "skip 排除"
    for folder in (keep, skip, top / "mid" / "other"):
        folder.mkdir(parents=True)
    for path in (keep / "a.txt", skip / "b.txt", top / "mid" / "other" / "c.txt", top / "mid" / "d.txt", top / "e.txt"):
        path.write_bytes(EICAR)
    (top / "mid" / "link").symlink_to(skip)
    log = tmp_path / "log.jsonl"
    done = agent(database, "--format", "json", "--log", str(log), "--exclude", str(skip), str(top))
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    assert sorted(d["path"] for d in record["detections"]) == sorted(
        str(p) for p in (keep / "a.txt", top / "mid" / "other" / "c.txt", top / "mid" / "d.txt", top / "e.txt"))
    assert record["paths"] == [str(top)] and record["excluded"] == [str(skip)]
    assert record["completed"] is True and record["files_scanned"] == 4
    text = agent(database, "--log", str(log), "--exclude", str(skip), str(top)).stdout
    assert f"排除目录: {skip}" in text


def test_split_around_replaces_a_target_by_what_lies_beside_the_excluded_folder(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "c").mkdir()
    (tmp_path / "a" / "f").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "a" / "ln").symlink_to(tmp_path / "a" / "b")
    assert scan.split_around([str(tmp_path)], [str(tmp_path / "a" / "b")]) == [
        str(tmp_path / "a" / "c"), str(tmp_path / "a" / "f"), str(tmp_path / "d")]
    assert scan.split_around([str(tmp_path / "d")], [str(tmp_path / "a")]) == [str(tmp_path / "d")]
    assert scan.split_around([str(tmp_path / "a")], [str(tmp_path / "a")]) == []
    assert scan.split_around([str(tmp_path / "a")], [str(tmp_path / "ab")]) == [str(tmp_path / "a")]  # not a prefix


@pytest.mark.parametrize("case, message", [("missing", "--exclude: not a folder"),
                                           ("everything", "nothing left to scan")])
def test_bad_exclusions_exit_2_and_scan_nothing(database, tmp_path, case, message):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_bytes(EICAR)
    exclude = str(tmp_path / "nope") if case == "missing" else str(tmp_path / "d")
    done = agent(database, "--log", str(tmp_path / "log.jsonl"), "--lang", "en", "--exclude", exclude,
                 str(tmp_path / "d"))
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stdout == "" and not (tmp_path / "log.jsonl").exists()


def test_clamd_that_does_not_answer_means_clamscan(tmp_path, database):
    conf = tmp_path / "clamd.conf"
    conf.write_text(f"# comment\nLocalSocket /nonexistent/old.ctl\nLocalSocket {tmp_path / 'clamd.ctl'}\n")
    assert scan.clamd_socket(conf) == str(tmp_path / "clamd.ctl")  # the last setting wins, as in clamd
    (tmp_path / "clamd.ctl").write_text("not a socket")
    engine = scan.choose_engine(conf, database)
    assert engine.name == "clamscan" and engine.argv[-2:] == ["-d", str(database)]


def test_parse_output_reads_names_with_colons_and_newlines():
    out = ("/d/x: y FOUND.txt: Sig.A FOUND\n/d/two\nlines: Sig.B FOUND\n/d/e: Access denied. ERROR\n\n"
           "----------- SCAN SUMMARY -----------\nScanned files: 9\nTotal errors: 1\n")
    outcome = scan.parse_output(out, "LibClamAV Warning: something\n")
    assert outcome.found == [("/d/x: y FOUND.txt", "Sig.A"), ("/d/two\nlines", "Sig.B")]
    assert outcome.files_scanned == 9
    assert outcome.error_lines == ["/d/e: Access denied. ERROR", "LibClamAV Warning: something"]


def test_parse_output_never_takes_a_shorter_name_the_file_system_suggests(tmp_path):
    """The last line of a name alone may name a real file; the detection still belongs to the whole name."""
    (tmp_path / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    out = f"/gone/x\n{tmp_path}/passwd: Sig.A FOUND\n"
    assert scan.parse_output(out, "").found == [(f"/gone/x\n{tmp_path}/passwd", "Sig.A")]


def user_acts_after_the_scan(monkeypatch, act) -> None:
    """Run ``act`` right after the real engine returns, as a user racing root's quarantine would."""
    real = scan.run_engine

    def engine_then_user(argv: list[str], timeout: float) -> tuple[int | None, str, str]:
        result = real(argv, timeout)
        act()
        return result

    monkeypatch.setattr(scan, "run_engine", engine_then_user)


@pytest.fixture()
def fake_etc(tmp_path) -> Path:
    """A stand-in for /etc that root must never touch (the real /etc is never used by a test)."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "passwd").chmod(0o644)
    return etc


def test_quarantine_does_not_follow_a_folder_swapped_for_a_link(database, tmp_path, monkeypatch, fake_etc):
    """EICAR in ~/x/passwd is found; the user then makes ~/x a link to an etc folder: its passwd stays put."""
    home = tmp_path / "home"
    (home / "x").mkdir(parents=True)
    (home / "x" / "passwd").write_bytes(EICAR)
    vault = tmp_path / "vault"

    def swap() -> None:
        (home / "x").rename(home / "x.old")
        (home / "x").symlink_to(fake_etc)

    user_acts_after_the_scan(monkeypatch, swap)
    record = scan.scan([str(home)], 120, log=tmp_path / "log.jsonl", quarantine_dir=vault, database=database)
    assert [(d.path, d.signature) for d in record.detections] == [(str(home / "x" / "passwd"),
                                                                   f"{EICAR_SIGNATURE}.UNOFFICIAL")]
    assert record.detections[0].quarantined_to == "" and record.detections[0].sha256 == ""
    assert (fake_etc / "passwd").read_text() == "root:x:0:0:root:/root:/bin/bash\n"
    assert stat.S_IMODE((fake_etc / "passwd").stat().st_mode) == 0o644
    assert list(vault.iterdir()) == []
    assert (home / "x.old" / "passwd").read_bytes() == EICAR  # left for a person to look at


def test_quarantine_does_not_take_the_last_line_of_a_vanished_name(database, tmp_path, monkeypatch, fake_etc):
    """A name "x\n<etc>/passwd" reported infected, then deleted: the real <etc>/passwd is not moved."""
    home = tmp_path / "home"
    nested = home / "x\n" / str(fake_etc).lstrip("/")
    nested.mkdir(parents=True)
    (nested / "passwd").write_bytes(EICAR)
    vault = tmp_path / "vault"
    user_acts_after_the_scan(monkeypatch, lambda: shutil.rmtree(home / "x\n"))
    record = scan.scan([str(home)], 120, log=tmp_path / "log.jsonl", quarantine_dir=vault, database=database)
    assert [d.path for d in record.detections] == [f"{home}/x\n{fake_etc}/passwd"]
    assert record.detections[0].quarantined_to == ""
    assert (fake_etc / "passwd").read_text() == "root:x:0:0:root:/root:/bin/bash\n"
    assert list(vault.iterdir()) == []


def test_quarantine_puts_back_a_file_swapped_in_after_it_was_opened(database, tmp_path, monkeypatch):
    """Between root's open and its rename the user puts another file under the name: that one is not kept."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "a.txt").write_bytes(EICAR)
    vault = tmp_path / "vault"
    real_open = scan.open_no_links

    def open_then_swap(path: str) -> scan.Found | None:
        found = real_open(path)
        (home / "a.txt").rename(home / "a.old")
        (home / "a.txt").write_text("the user's other file\n")
        return found

    monkeypatch.setattr(scan, "open_no_links", open_then_swap)
    record = scan.scan([str(home)], 120, log=tmp_path / "log.jsonl", quarantine_dir=vault, database=database)
    assert record.detections[0].sha256 == EICAR_SHA256 and record.detections[0].quarantined_to == ""
    assert (home / "a.txt").read_text() == "the user's other file\n" and list(vault.iterdir()) == []


def test_quarantine_leaves_a_file_with_other_hard_links(database, tmp_path, fake_etc):
    """Moving one name of a hard-linked file would not contain it, and chmod would change the other name's file."""
    home = tmp_path / "home"
    home.mkdir()
    (fake_etc / "shadow").write_bytes(EICAR)
    (fake_etc / "shadow").chmod(0o640)
    os.link(fake_etc / "shadow", home / "shadow")
    vault = tmp_path / "vault"
    record = scan.scan([str(home)], 120, log=tmp_path / "log.jsonl", quarantine_dir=vault, database=database)
    assert [(d.path, d.sha256, d.quarantined_to) for d in record.detections] == [(str(home / "shadow"), EICAR_SHA256, "")]
    assert stat.S_IMODE((fake_etc / "shadow").stat().st_mode) == 0o640 and (home / "shadow").exists()


def test_scan_targets_are_resolved_before_the_scan(database, tmp_path):
    """A target given through a link is scanned where it points, so its detections can be reached without links."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "e.txt").write_bytes(EICAR)
    (tmp_path / "via").symlink_to(real)
    vault = tmp_path / "vault"
    record = scan.scan([str(tmp_path / "via")], 120, log=tmp_path / "log.jsonl", quarantine_dir=vault,
                       database=database)
    assert record.paths == [str(real)]
    assert [d.path for d in record.detections] == [str(real / "e.txt")]
    assert Path(record.detections[0].quarantined_to).read_bytes() == EICAR and not (real / "e.txt").exists()
