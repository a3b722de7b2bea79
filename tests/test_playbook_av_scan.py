"""playbooks/av_scan.yml on lab host h02 with the real agent, the real clamscan and a real clamd.

The host gets a fresh signature database (a .cud built here: EICAR and clam.exe of
clamav-testfiles, so the packaged sample clam.zip is found too) in its own /var/lib/clamav,
and test files in /home and /tmp; all of it lives in the host's overlay only. clamd is started
inside the host for the clamdscan run and stopped by its PID right after; reset_host at the
end takes anything left with the host's PID namespace.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.clamdb import EICAR, EICAR_SIGNATURE, eicar_hdb, write_cud
from tests.lab import PROJECT_ROOT
from tests.playbook_output import flat, output, recap

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = ROOT / "playbooks" / "av_scan.yml"
AGENT = ROOT / ".venv" / "bin" / "nanbu-secops"
HOST = "h02"
SCAN_LOG = "/var/lib/nanbu-secops/av-scans.jsonl"
VAULT = "/var/lib/nanbu-secops/quarantine"
EICAR_SHA256 = hashlib.sha256(EICAR).hexdigest()
CLAM_ZIP = Path("/usr/share/clamav-testfiles/clam.zip")
INFECTED = ("/home/alice/下载/病毒 样本.com", "/tmp/x: y.txt")
CLEAN = "/home/alice/notes.txt"


def put(lab, path: str, data: bytes) -> None:
    """Write bytes into the host (lab.ssh's input is text: base64 carries them)."""
    quoted = "'" + path.replace("'", "'\\''") + "'"
    lab.ssh(HOST, f"mkdir -p \"$(dirname {quoted})\" && base64 -d > {quoted}", input=base64.b64encode(data).decode())


def plant(lab) -> None:
    """The infected files, a copy of clamav-testfiles' clam.zip, and a clean file."""
    for path in INFECTED:
        put(lab, path, EICAR)
    lab.ssh(HOST, f"cp {CLAM_ZIP} /home/alice/clam.zip")
    put(lab, CLEAN, "会议纪要\n".encode())


def expected_detections() -> dict[str, str]:
    return {INFECTED[0]: EICAR_SHA256, INFECTED[1]: EICAR_SHA256,
            "/home/alice/clam.zip": hashlib.sha256(CLAM_ZIP.read_bytes()).hexdigest()}


def run(lab, results: Path, *args: str):
    """The playbook on HOST. The checkout (bound into each lab host at its own path, where the
    agent runs from) is left out of every scan: under /tmp or /root it would otherwise be scanned
    whole, .venv included, and what the tests plant is all that should be found."""
    return lab.ansible_playbook(PLAYBOOK, "-e", f"target={HOST}", "-e", f"nanbu_agent={AGENT}",
                                "-e", f"av_results_dir={results}",
                                "-e", json.dumps({"av_scan_exclude": [str(PROJECT_ROOT)]}), *args)


def host_log(lab) -> list[dict]:
    done = lab.ssh(HOST, f"cat {SCAN_LOG}", check=False)
    return [json.loads(line) for line in done.stdout.splitlines()] if done.returncode == 0 else []


def exists(lab, path: str) -> bool:
    return lab.ssh(HOST, f"test -e '{path}'", check=False).returncode == 0


@pytest.fixture(scope="module")
def terminal(lab):
    lab.reset_host(HOST)
    exe = Path("/usr/share/clamav-testfiles/clam.exe").read_bytes()
    with_samples = eicar_hdb() + f"{hashlib.md5(exe).hexdigest()}:{len(exe)}:Nanbu-Test.ClamExe\n"
    with tempfile.TemporaryDirectory() as folder:
        cud = write_cud(Path(folder), dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), 27345,
                        signatures={"daily.hdb": with_samples})
        put(lab, "/var/lib/clamav/daily.cud", cud.read_bytes())
    plant(lab)
    yield lab
    lab.reset_host(HOST)


def test_check_mode_scans_nothing(terminal, tmp_path):
    lab = terminal
    result = run(lab, tmp_path / "results", "--check")
    assert result.returncode == 0, output(result)
    assert "would scan /home, /tmp, /var/tmp, /root on h02 with a time limit of 3600 s" in flat(result)
    assert f"reported only (no quarantine); left out: {PROJECT_ROOT}" in flat(result)
    assert not (tmp_path / "results").exists()
    assert host_log(lab) == []
    assert recap(result)[HOST]["changed"] == 0


def test_scan_reports_detections_to_the_controller_and_moves_nothing(terminal, tmp_path):
    lab = terminal
    results = tmp_path / "results"
    result = run(lab, results, "-e", "av_scan_timeout=300")
    assert result.returncode == 0, output(result)
    assert (recap(result)[HOST]["changed"], recap(result)[HOST]["failed"]) == (0, 0)
    record = json.loads((results / f"{HOST}.json").read_text(encoding="utf-8"))
    assert {d["path"]: d["sha256"] for d in record["detections"]} == expected_detections()
    assert record["engine"] == "clamscan" and record["completed"] is True
    assert record["paths"] == ["/home", "/tmp", "/var/tmp", "/root"]
    assert record["excluded"] == [str(PROJECT_ROOT)]
    assert "/27345/" in record["database"]
    assert all(d["quarantined_to"] == "" for d in record["detections"])
    assert host_log(lab) == [record]  # the terminal logged the very record the controller got
    for path in (*INFECTED, "/home/alice/clam.zip", CLEAN):
        assert exists(lab, path), path
    assert f"{INFECTED[1]}: {EICAR_SIGNATURE}.UNOFFICIAL sha256 {EICAR_SHA256}; left in place" in flat(result), output(result)
    assert "Summary: infected files per host" in result.stdout and "- '/tmp/x: y.txt'" in result.stdout


def test_quarantine_is_opt_in_and_moves(terminal, tmp_path):
    lab = terminal
    results = tmp_path / "results"
    result = run(lab, results, "-e", f"av_quarantine_dir={VAULT}", "-e", '{"av_scan_paths": ["/home", "/tmp", "/srv/none"]}')
    assert result.returncode == 0, output(result)
    assert recap(result)[HOST]["changed"] == 1
    assert "not on h02, not scanned: /srv/none" in flat(result)
    record = json.loads((results / f"{HOST}.json").read_text(encoding="utf-8"))
    assert {d["path"]: d["sha256"] for d in record["detections"]} == expected_detections()
    assert lab.ssh(HOST, f"stat -c %a {VAULT}").stdout.strip() == "700"
    for d in record["detections"]:
        assert not exists(lab, d["path"])
        moved = d["quarantined_to"]
        assert moved.startswith(VAULT + "/")
        assert lab.ssh(HOST, f"stat -c %a '{moved}'").stdout.strip() == "600"
        assert lab.ssh(HOST, f"sha256sum '{moved}'").stdout.split()[0] == d["sha256"]
    assert exists(lab, CLEAN)
    assert len(host_log(lab)) == 2
    again = run(lab, results, "-e", f"av_quarantine_dir={VAULT}")  # nothing left: nothing moves
    assert again.returncode == 0 and recap(again)[HOST]["changed"] == 0, output(again)
    assert json.loads((results / f"{HOST}.json").read_text())["detections"] == []
    plant(lab)  # for the tests after this one


@pytest.mark.skipif(shutil.which("clamdscan") is None,
                    reason="clamdscan (Debian package clamdscan, apart from clamav-daemon) is not installed")
def test_clamdscan_when_clamd_runs(terminal, tmp_path):
    lab = terminal
    lab.ssh(HOST, "install -d -o clamav -g clamav -m 755 /run/clamav")
    pid = lab.ssh(HOST, "setsid clamd --foreground=yes </dev/null >/tmp/clamd.out 2>&1 & echo $!").stdout.strip()
    assert pid.isdigit()
    try:
        lab.ssh(HOST, "for i in $(seq 300); do [ -S /run/clamav/clamd.ctl ] && exit 0; sleep 0.1; done; exit 1")
        results = tmp_path / "results"
        result = run(lab, results, "-e", '{"av_scan_paths": ["/home", "/tmp"]}')
        assert result.returncode == 0, output(result)
        record = json.loads((results / f"{HOST}.json").read_text(encoding="utf-8"))
        assert record["engine"] == "clamdscan" and record["completed"] is True, record
        assert "/27345/" in record["database"]
        assert {d["path"]: d["sha256"] for d in record["detections"]} == expected_detections()
        assert host_log(lab)[-1] == record
    finally:
        lab.ssh(HOST, f"kill {pid}; for i in $(seq 100); do kill -0 {pid} 2>/dev/null || exit 0; sleep 0.1; done; "
                      f"kill -9 {pid}", check=False)
    assert lab.ssh(HOST, f"kill -0 {pid}", check=False).returncode != 0


def test_timeout_fails_the_host_but_keeps_the_record(terminal, tmp_path):
    lab = terminal
    results = tmp_path / "results"
    result = run(lab, results, "-e", '{"av_scan_paths": ["/usr"], "av_scan_timeout": 1}')
    assert recap(result)[HOST]["failed"] == 1, output(result)
    assert "did not complete: timed out after 1 s" in flat(result)
    record = json.loads((results / f"{HOST}.json").read_text(encoding="utf-8"))
    assert record["completed"] is False and record["reason"] == "timed out after 1 s"
    assert host_log(lab)[-1] == record
    assert lab.ssh(HOST, "pgrep -x clamscan", check=False).returncode == 1  # the scanner was killed too


def test_agent_refusal_fails_the_host(terminal, tmp_path):
    lab = terminal
    before = host_log(lab)
    result = run(lab, tmp_path / "results", "-e", "av_scan_timeout=0.0")
    assert recap(result)[HOST]["failed"] == 1
    assert "av_scan_timeout must be a number of seconds above 0" in flat(result), output(result)
    result = run(lab, tmp_path / "results", "-e", "nanbu_agent=/nonexistent/nanbu-secops")
    assert recap(result)[HOST]["failed"] == 1
    assert "/nonexistent/nanbu-secops exited with" in flat(result), output(result)
    assert host_log(lab) == before
