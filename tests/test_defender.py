"""Windows Defender status files (Get-MpComputerStatus | ConvertTo-Json) judged by the same verdict."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nanbu_secops.cli import main
from nanbu_secops.collect import defender
from nanbu_secops.errors import InputError
from tests.roots import AS_OF

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "defender"
SIGNATURES_UPDATED = dt.datetime(2026, 11, 27, 22, 15, tzinfo=dt.timezone(dt.timedelta(hours=8)))
QUICK_SCAN_END = dt.datetime(2026, 11, 26, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def status(capsys: pytest.CaptureFixture[str], fixture: str, *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(["av", "status", "--windows-defender", str(FIXTURES / fixture), "--as-of", AS_OF.isoformat(),
                 "--format", "json", "--lang", "en", *extra])
    return code, json.loads(capsys.readouterr().out)


def by_control(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["control"]: r for r in report["results"]}


@pytest.mark.parametrize("fixture, encoding", [("healthy.json", "UTF-8 BOM, /Date()/"),
                                               ("healthy-iso.json", "UTF-8, ISO 8601, 7 fraction digits"),
                                               ("healthy-utf16.json", "UTF-16 LE BOM, /Date()/")])
def test_healthy_in_every_encoding_and_date_form_is_protected(capsys, fixture, encoding):
    raw = (FIXTURES / fixture).read_bytes()
    assert raw.startswith(b"\xff\xfe") == ("UTF-16" in encoding)
    assert (b"Date(" in raw or b"D\x00a\x00t\x00e\x00(" in raw) == ("/Date()/" in encoding)
    code, report = status(capsys, fixture)
    results = by_control(report)
    assert {c: r["status"] for c, r in results.items()} == {
        "NS27-AV-001": "pass", "NS27-AV-002": "skip", "NS27-AV-003": "pass", "NS27-AV-004": "pass"}
    evidence = results["NS27-AV-001"]["evidence"]
    assert evidence["verdict"] == "protected" and evidence["engine"] == "Microsoft Defender Antivirus"
    assert evidence["signatures"] == {"version": "1.421.1520.0", "built": "2026-11-27T22:15:00+08:00",
                                      "age_days": 1, "max_age_days": 7}
    assert evidence["last_scan"]["finished"] == "2026-11-26T12:30:00+08:00"
    assert results["NS27-AV-004"]["evidence"]["on_access"] == ["RealTimeProtectionEnabled true",
                                                              "OnAccessProtectionEnabled true"]
    assert "tamper protection on" in evidence["notes"]
    assert report["host"] == Path(fixture).stem and report["root"].endswith(fixture)
    assert code == 0


def test_both_date_forms_give_the_same_times():
    slash = defender.load(FIXTURES / "healthy.json")
    iso = defender.load(FIXTURES / "healthy-iso.json")
    fraction = dt.timedelta(microseconds=123456)  # .NET writes 7 fraction digits; Python keeps 6
    assert slash.signatures_updated == SIGNATURES_UPDATED and iso.signatures_updated == SIGNATURES_UPDATED + fraction
    assert slash.last_scan == QUICK_SCAN_END and iso.last_scan == QUICK_SCAN_END + fraction


@pytest.mark.parametrize("value, expected", [
    ("/Date(1795788900000)/", SIGNATURES_UPDATED),
    ("/Date(1795788900000+0800)/", SIGNATURES_UPDATED),  # the offset only says how to display it
    ("2026-11-27T14:15:00Z", SIGNATURES_UPDATED),
    ("2026-11-27T14:15:00", SIGNATURES_UPDATED),  # no offset: UTC, as ConvertTo-Json's DateTimeKind.Utc
    (None, None),
])
def test_parse_date(value, expected):
    assert defender.parse_date(value) == expected


def test_stale_signatures(capsys):
    code, report = status(capsys, "stale-signatures.json")
    found = by_control(report)["NS27-AV-001"]
    assert (found["status"], found["evidence"]["verdict"]) == ("fail", "stale")
    assert found["evidence"]["reasons"] == ["signatures are 12 days old (maximum 7)"]
    assert code == 1


def test_policy_threshold_applies(capsys, tmp_path):
    policy = Path(__file__).resolve().parents[1] / "policies" / "article27.yml"
    (tmp_path / "p.yml").write_text(policy.read_text(encoding="utf-8").replace(
        "av_max_signature_age_days: 7", "av_max_signature_age_days: 14"), encoding="utf-8")
    code, report = status(capsys, "stale-signatures.json", "--policy", str(tmp_path / "p.yml"))
    assert by_control(report)["NS27-AV-001"]["evidence"]["verdict"] == "protected"


def test_realtime_off_is_not_running(capsys):
    code, report = status(capsys, "realtime-off.json")
    results = by_control(report)
    found = results["NS27-AV-001"]
    assert (found["status"], found["evidence"]["verdict"]) == ("fail", "not running")
    assert found["evidence"]["running"] == "RealTimeProtectionEnabled false (AMRunningMode Normal)"
    assert results["NS27-AV-004"]["status"] == "fail"
    assert code == 1


def test_never_scanned(capsys):
    code, report = status(capsys, "never-scanned.json")
    results = by_control(report)
    assert results["NS27-AV-001"]["evidence"]["verdict"] == "protected"
    scan = results["NS27-AV-003"]
    assert (scan["status"], scan["evidence"]["problem"], scan["evidence"]["age_days"]) == (
        "fail", "no completed scan found", None)
    assert "4294967295" in scan["evidence"]["source"]
    assert code == 1


def test_passive_mode_behind_another_product_is_unknown(capsys):
    code, report = status(capsys, "passive-third-party.json")
    found = by_control(report)["NS27-AV-001"]
    assert (found["status"], found["evidence"]["verdict"]) == ("error", "unknown")
    assert "another antivirus product is the primary one" in found["evidence"]["error"]
    assert "signature age cannot be verified" in found["evidence"]["error"]
    assert any("IsTamperProtected false" in n for n in found["evidence"]["notes"])
    assert code == 1


def test_host_option_names_the_terminal(capsys):
    _, report = status(capsys, "healthy.json", "--host", "NB-XZ-PC07")
    assert report["host"] == "NB-XZ-PC07"


def test_text_report_in_chinese(capsys):
    code = main(["av", "status", "--windows-defender", str(FIXTURES / "stale-signatures.json"),
                 "--as-of", AS_OF.isoformat()])
    out = capsys.readouterr().out
    assert code == 1 and "第二十七条" in out and "不通过" in out and "判定：病毒库过期" in out


# --- bad input: exit 2 naming the file --------------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("nanbu-secops")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("content, message", [
    (None, "malformed.json:23: not JSON"),  # the shipped truncated fixture
    (b'{"Name": "not defender"}', "not Get-MpComputerStatus output: no AMServiceEnabled field"),
    (b"\xff\xfe" + "[1, 2]".encode("utf-16-le"), "not Get-MpComputerStatus output"),
    (b"\xc3\x28 not utf-8", "not utf-8 text"),
    (b'{"AMServiceEnabled": true, "QuickScanEndTime": "last tuesday"}', "Get-MpComputerStatus field"),
    (b'{"AMServiceEnabled": true, "FullScanAge": "old"}', "not a number of days: 'old'"),
])
def test_bad_files_exit_2_naming_the_file(tmp_path, content, message):
    path = FIXTURES / "malformed.json" if content is None else tmp_path / "status.json"
    if content is not None:
        path.write_bytes(content)
    done = cli("av", "status", "--windows-defender", str(path), "--lang", "en")
    assert done.returncode == 2, done
    assert str(path) in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_missing_file_exits_2(tmp_path):
    done = cli("av", "status", "--windows-defender", str(tmp_path / "absent.json"), "--lang", "en")
    assert done.returncode == 2 and "absent.json" in done.stderr and "No such file" in done.stderr


def test_load_raises_input_error_with_line(tmp_path):
    with pytest.raises(InputError) as raised:
        defender.load(FIXTURES / "malformed.json")
    assert raised.value.line == 23 and raised.value.source == str(FIXTURES / "malformed.json")
