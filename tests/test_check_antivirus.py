"""NS27-AV-001..004 on crafted roots (offline), the database header parser and clamd's PING."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from nanbu_secops.cli import main
from nanbu_secops.collect.antivirus import clamd_address, parse_conf, parse_header, ping
from tests.clamdb import header
from tests.roots import AS_OF, CLAMD_CONF, clamav_db, county_time, make_root, scan_record

CLAMAV_PARTS = ("usr/bin/clamscan", "usr/sbin/clamd", "etc/clamav/clamd.conf", "etc/clamav/freshclam.conf",
                "var/lib/clamav/daily.cud", "etc/systemd/system/multi-user.target.wants/clamav-daemon.service",
                "etc/systemd/system/multi-user.target.wants/clamav-freshclam.service")
NO_CLAMAV: dict[str, Any] = dict.fromkeys(CLAMAV_PARTS)


def av(tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any] | None = None,
       *extra: str) -> tuple[int, dict[str, dict[str, Any]]]:
    code = main(["av", "status", "--root", str(make_root(tmp_path, changes)), "--as-of", AS_OF.isoformat(),
                 "--format", "json", "--lang", "en", *extra])
    report = json.loads(capsys.readouterr().out)
    return code, {r["control"]: r for r in report["results"]}


def verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any] | None = None) -> dict[str, Any]:
    return av(tmp_path, capsys, changes)[1]["NS27-AV-001"]


# --- the verdict ------------------------------------------------------------------------------

def test_protected_offline_terminal_passes_everything(tmp_path, capsys):
    code, results = av(tmp_path, capsys)
    assert {c: r["status"] for c, r in results.items()} == {
        "NS27-AV-001": "pass", "NS27-AV-002": "pass", "NS27-AV-003": "pass", "NS27-AV-004": "pass"}
    assert code == 0
    evidence = results["NS27-AV-001"]["evidence"]
    assert evidence["verdict"] == "protected"
    assert evidence["signatures"] == {"version": "daily.cud 27000", "built": "2026-11-27T12:00:00+08:00",
                                      "age_days": 1, "max_age_days": 7}
    assert evidence["mode"].startswith("offline")
    assert evidence["running"] == ("offline: not checked whether it runs; enabled at boot "
                                   "(/etc/systemd/system/multi-user.target.wants/clamav-daemon.service)")
    assert evidence["last_scan"]["finished"] == "2026-11-27T11:00:00+08:00"
    assert results["NS27-AV-002"]["evidence"]["mirrors"] == ["PrivateMirror 10.20.0.80 (/etc/clamav/freshclam.conf:3)"]
    assert results["NS27-AV-004"]["evidence"]["scheduled"] == [
        "cron: /etc/cron.d/nanbu-av-scan:1: 30 12 * * 3 root /opt/nanbu-secops/bin/nanbu-secops av scan /home /root /tmp"]


@pytest.mark.parametrize("days_old, status, result", [(0, "pass", "protected"), (7, "pass", "protected"),
                                                      (8, "fail", "stale"), (10, "fail", "stale")])
def test_signature_age_against_the_policy_maximum(tmp_path, capsys, days_old, status, result):
    found = verdict(tmp_path, capsys, {"var/lib/clamav/daily.cud": clamav_db(days_old)})
    assert (found["status"], found["evidence"]["verdict"], found["evidence"]["signatures"]["age_days"]) == (
        status, result, days_old)
    if result == "stale":
        assert found["evidence"]["reasons"] == [f"signatures are {days_old} days old (maximum 7)"]


def test_newest_daily_decides_and_old_main_does_not_matter(tmp_path, capsys):
    found = verdict(tmp_path, capsys, {"var/lib/clamav/daily.cld": clamav_db(20, 26900),
                                       "var/lib/clamav/main.cvd": clamav_db(300, 62)})
    assert (found["status"], found["evidence"]["signatures"]["version"]) == ("pass", "daily.cud 27000")
    assert len(found["evidence"]["databases"]) == 3


@pytest.mark.parametrize("data, reason", [
    (b"\x1f\x8b\x08\x00garbage" * 80, "not a ClamAV database header"),
    (clamav_db()[:100], "truncated: 100 bytes"),
    (b"", "not a ClamAV database header"),
    (b"ClamAV-VDB:28 Nov 2026 12-00 +0800:27000:10:90:X:X:nanbu".ljust(512, b" "), "header has 8 fields"),
    (b"ClamAV-VDB:28 Nov 2026 12-00 +0800:27000:10:90:X:X:nanbu:yesterday".ljust(512, b" "),
     "stime='yesterday'"),
])
def test_unreadable_header_is_unknown_never_a_pass(tmp_path, capsys, data, reason):
    found = verdict(tmp_path, capsys, {"var/lib/clamav/daily.cud": data})
    assert (found["status"], found["evidence"]["verdict"]) == ("error", "unknown")
    assert reason in found["evidence"]["error"] and "/var/lib/clamav/daily.cud" in found["evidence"]["error"]


def test_stale_beats_unknown_and_not_running_beats_stale(tmp_path, capsys):
    stale = verdict(tmp_path, capsys, {"var/lib/clamav/daily.cud": clamav_db(30), "var/lib/clamav/main.cvd": b"junk"})
    assert stale["evidence"]["verdict"] == "stale"  # main's header is not read: a daily is there
    down = verdict(tmp_path / "b", capsys, {"var/lib/clamav/daily.cud": clamav_db(30),
                                            "etc/systemd/system/multi-user.target.wants/clamav-daemon.service": None})
    assert (down["status"], down["evidence"]["verdict"]) == ("fail", "not running")
    assert down["evidence"]["reasons"][1] == "signatures are 30 days old (maximum 7)"


def test_build_time_in_the_future_is_unknown(tmp_path, capsys):
    found = verdict(tmp_path, capsys, {"var/lib/clamav/daily.cud": clamav_db(-5)})
    assert found["evidence"]["verdict"] == "unknown"
    assert "5 days after the as-of date" in found["evidence"]["error"]


def test_no_database_is_stale(tmp_path, capsys):
    found = verdict(tmp_path, capsys, {"var/lib/clamav/daily.cud": None})
    assert (found["status"], found["evidence"]["verdict"]) == ("fail", "stale")
    assert found["evidence"]["reasons"] == ["no signature database; no daily.* or main.* database in /var/lib/clamav"]


def test_database_directory_comes_from_clamd_conf(tmp_path, capsys):
    found = verdict(tmp_path, capsys, {
        "etc/clamav/clamd.conf": CLAMD_CONF.replace("/var/lib/clamav", "/srv/clamav"),
        "srv/clamav/daily.cvd": clamav_db(2, 27100)})
    assert found["evidence"]["signatures"]["version"] == "daily.cvd 27100"


@pytest.mark.parametrize("changes, running", [
    ({"etc/systemd/system/multi-user.target.wants/clamav-daemon.service": None},
     "offline: not checked whether it runs; no unit of clamav-daemon.service, clamav-daemon.socket"),
    ({"usr/sbin/clamd": None}, "clamd (clamav-daemon) is not installed"),
    ({"etc/clamav/clamd.conf": None}, "/etc/clamav/clamd.conf does not exist"),
    ({"etc/clamav/clamd.conf": "# sample\nExample\n" + CLAMD_CONF}, "clamd.conf:2: the 'Example' line"),
    ({"etc/clamav/clamd.conf": "User clamav\n"}, "neither LocalSocket nor TCPSocket is set"),
])
def test_clamd_that_cannot_run_is_not_running(tmp_path, capsys, changes, running):
    found = verdict(tmp_path, capsys, changes)
    assert (found["status"], found["evidence"]["verdict"]) == ("fail", "not running")
    assert running in found["evidence"]["running"]


def test_socket_activation_counts_as_enabled(tmp_path, capsys):
    found = verdict(tmp_path, capsys, {
        "etc/systemd/system/multi-user.target.wants/clamav-daemon.service": None,
        "etc/systemd/system/sockets.target.wants/clamav-daemon.socket": ""})
    assert found["evidence"]["verdict"] == "protected"


def test_no_antivirus_at_all_is_absent(tmp_path, capsys):
    code, results = av(tmp_path, capsys, NO_CLAMAV)
    found = results["NS27-AV-001"]
    assert (found["status"], found["evidence"]["verdict"]) == ("fail", "absent")
    assert found["evidence"]["installed"] is False
    assert all(results[c]["status"] == "skip" for c in ("NS27-AV-002", "NS27-AV-003", "NS27-AV-004"))
    assert code == 1


OTHER_DPKG = "\nPackage: huorong-security\nStatus: install ok installed\nVersion: 2.0.1.5\n"


def test_other_product_only_is_unknown_never_a_silent_pass(tmp_path, capsys):
    dpkg = make_root(tmp_path / "ref").joinpath("var/lib/dpkg/status").read_text()
    code, results = av(tmp_path / "t", capsys, {**NO_CLAMAV, "var/lib/dpkg/status": dpkg + OTHER_DPKG,
                                                "lib/systemd/system/ds_agent.service": "[Service]\n"})
    found = results["NS27-AV-001"]
    assert (found["status"], found["evidence"]["verdict"]) == ("error", "unknown")
    products = {p["product"]: p for p in found["evidence"]["other_products"]}
    assert set(products) == {"火绒 Huorong", "亚信安全 Deep Security (ds_agent)"}
    assert products["火绒 Huorong"]["installed"][0].startswith("package huorong-security 2.0.1.5 (/var/lib/dpkg/status:")
    assert products["亚信安全 Deep Security (ds_agent)"]["installed"] == ["unit /lib/systemd/system/ds_agent.service"]
    assert "signature age cannot be verified" in found["evidence"]["error"]
    assert found["evidence"]["other_products_running"].startswith("not checked (offline")
    assert code == 1


def test_other_product_beside_protected_clamav_is_listed(tmp_path, capsys):
    dpkg = make_root(tmp_path / "ref").joinpath("var/lib/dpkg/status").read_text()
    found = verdict(tmp_path / "t", capsys, {"var/lib/dpkg/status": dpkg + OTHER_DPKG})
    assert found["evidence"]["verdict"] == "protected"
    assert [p["product"] for p in found["evidence"]["other_products"]] == ["火绒 Huorong"]
    assert "signature age cannot be verified" in found["evidence"]["other_products"][0]["not_verified"]


def test_catalogue_is_policy_data(tmp_path, capsys):
    """An operator adds a product in the policy file, without Python."""
    policy = Path(__file__).resolve().parents[1] / "policies" / "article27.yml"
    text = policy.read_text(encoding="utf-8").replace(
        "  av_other_products:\n", "  av_other_products:\n    - name: Local AV\n      processes: [localav]\n"
        "      paths: [/opt/localav]\n", 1)
    (tmp_path / "p.yml").write_text(text, encoding="utf-8")
    root = make_root(tmp_path / "r", {**NO_CLAMAV, "opt/localav/README": "x"})
    main(["av", "status", "--root", str(root), "--policy", str(tmp_path / "p.yml"), "--as-of", AS_OF.isoformat(),
          "--format", "json"])
    found = json.loads(capsys.readouterr().out)["results"][0]
    assert found["evidence"]["other_products"][0]["installed"] == ["path /opt/localav"]


# --- updates, scans, scheduling ---------------------------------------------------------------

@pytest.mark.parametrize("changes, problem", [
    ({"etc/clamav/freshclam.conf": "DatabaseOwner clamav\n"}, "no DatabaseMirror or PrivateMirror"),
    ({"etc/clamav/freshclam.conf": None}, "freshclam.conf does not exist"),
    ({"etc/systemd/system/multi-user.target.wants/clamav-freshclam.service": None},
     "freshclam is neither running, nor enabled at boot, nor in a cron job"),
])
def test_freshclam_not_configured_fails(tmp_path, capsys, changes, problem):
    found = av(tmp_path, capsys, changes)[1]["NS27-AV-002"]
    assert found["status"] == "fail" and any(problem in p for p in found["evidence"]["problems"])


def test_freshclam_from_cron_counts(tmp_path, capsys):
    found = av(tmp_path, capsys, {
        "etc/systemd/system/multi-user.target.wants/clamav-freshclam.service": None,
        "etc/cron.d/clamav-freshclam": "# update\n17 * * * * clamav /usr/bin/freshclam --quiet\n"})[1]["NS27-AV-002"]
    assert found["status"] == "pass"
    assert found["evidence"]["how"] == ["cron: /etc/cron.d/clamav-freshclam:2: 17 * * * * clamav /usr/bin/freshclam --quiet"]


@pytest.mark.parametrize("log, status, problem", [
    (None, "fail", "no completed scan found"),
    (scan_record(8), "fail", "last completed scan is 8 days old (period 7)"),
    (scan_record(7), "pass", None),
    (scan_record(3) + scan_record(1, completed=False) + '{"started": "torn', "pass", None),
    (scan_record(1, completed=False), "fail", "no completed scan found"),
])
def test_last_completed_scan_within_the_period(tmp_path, capsys, log, status, problem):
    found = av(tmp_path, capsys, {"var/lib/nanbu-secops/av-scans.jsonl": log})[1]["NS27-AV-003"]
    assert found["status"] == status
    assert found["evidence"].get("problem") == problem


def test_incomplete_scan_is_named_in_the_evidence(tmp_path, capsys):
    found = av(tmp_path, capsys, {"var/lib/nanbu-secops/av-scans.jsonl": scan_record(2) + scan_record(0, False)})[1]
    scan = found["NS27-AV-003"]["evidence"]
    assert scan["finished"] == county_time(2, 11).isoformat() and scan["age_days"] == 2
    assert scan["notes"] == ["/var/lib/nanbu-secops/av-scans.jsonl:2: scan of /home did not complete: "
                             "timed out after 3600 s"]


TIMER = "[Timer]\nOnCalendar=weekly\n[Install]\nWantedBy=timers.target\n"


@pytest.mark.parametrize("changes, status", [
    ({"etc/cron.d/nanbu-av-scan": None}, "fail"),
    ({"usr/sbin/cron": None}, "fail"),  # a cron entry nothing runs
    ({"etc/cron.d/nanbu-av-scan": "#30 12 * * 3 root clamscan -r /home\n"}, "fail"),
    ({"etc/cron.d/nanbu-av-scan": None, "var/spool/cron/crontabs/root": "0 3 * * 0 clamdscan --multiscan /home\n"},
     "pass"),
    ({"etc/cron.d/nanbu-av-scan": None, "etc/systemd/system/av.timer": TIMER,
      "etc/systemd/system/av.service": "[Service]\nExecStart=/usr/bin/clamscan -r /home\n"}, "fail"),  # not enabled
    ({"etc/cron.d/nanbu-av-scan": None, "etc/systemd/system/av.timer": TIMER,
      "etc/systemd/system/av.service": "[Service]\nExecStart=/usr/bin/clamscan -r /home\n",
      "etc/systemd/system/timers.target.wants/av.timer": ""}, "pass"),
    ({"etc/cron.d/nanbu-av-scan": None, "etc/clamav/clamd.conf": CLAMD_CONF + "OnAccessIncludePath /home\n"}, "fail"),
    ({"etc/cron.d/nanbu-av-scan": None, "etc/clamav/clamd.conf": CLAMD_CONF + "OnAccessIncludePath /home\n",
      "etc/systemd/system/multi-user.target.wants/clamav-clamonacc.service": ""}, "pass"),
])
def test_scheduled_or_on_access_scanning(tmp_path, capsys, changes, status):
    assert av(tmp_path, capsys, changes)[1]["NS27-AV-004"]["status"] == status


# --- command line -----------------------------------------------------------------------------

def test_av_status_text_is_chinese_by_default_and_host_can_be_named(tmp_path, capsys):
    root = make_root(tmp_path, {"var/lib/clamav/daily.cud": clamav_db(10)})
    code = main(["av", "status", "--root", str(root), "--as-of", AS_OF.isoformat(), "--host", "xz-pc07"])
    out = capsys.readouterr().out
    assert code == 1
    assert "第二十七条" in out and "不通过" in out and "xz-pc07" in out and "判定：病毒库过期" in out


def test_check_only_27_runs_the_same_controls(tmp_path, capsys):
    main(["check", "--root", str(make_root(tmp_path)), "--only", "27", "--format", "json"])
    assert [r["control"] for r in json.loads(capsys.readouterr().out)["results"]] == [
        "NS27-AV-001", "NS27-AV-002", "NS27-AV-003", "NS27-AV-004"]


def test_av_status_bad_root_exits_2(tmp_path, capsys):
    assert main(["av", "status", "--root", str(tmp_path / "nope"), "--lang", "en"]) == 2
    assert "--root: not a directory" in capsys.readouterr().err


def test_unreadable_database_is_unknown(tmp_path, capsys):
    root = make_root(tmp_path)
    (root / "var/lib/clamav/daily.cud").unlink()
    (root / "var/lib/clamav/daily.cud").mkdir()  # a directory where the file should be
    main(["av", "status", "--root", str(root), "--as-of", AS_OF.isoformat(), "--format", "json"])
    found = json.loads(capsys.readouterr().out)["results"][0]
    assert found["status"] == "error" and "cannot read" in found["evidence"]["error"]


# --- header parser and PING ---------------------------------------------------------------------

def test_parse_header_reads_version_signatures_and_build_time():
    built = county_time(3)
    db = parse_header(header(built, 27123, 4567), "/x/daily.cud")
    assert (db.version, db.signatures, db.built, db.builder, db.problem) == (27123, 4567, built, "nanbu-tests", "")


def serve(path: str, reply: bytes | None) -> threading.Thread:
    """A one-connection unix socket server answering ``reply`` (None: never answer)."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()

    def run() -> None:
        conn, _ = server.accept()
        with conn, server:
            assert conn.recv(16) == b"zPING\0"
            if reply is not None:
                conn.sendall(reply)
            else:
                conn.recv(16)  # until the client gives up

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("reply, answered, detail", [
    (b"PONG\0", True, ": PONG"),
    (b"UNKNOWN COMMAND\0", None, "answered 'UNKNOWN COMMAND' instead of PONG"),
    (None, None, "no answer to PING within 0.3 s (clamd may be loading its database)"),
])
def test_ping(tmp_path, reply, answered, detail):
    path = str(tmp_path / "clamd.ctl")
    thread = serve(path, reply)
    assert ping(path, timeout=0.3) == (answered, f"{path}{detail}" if detail.startswith(":") else f"{path}: {detail}")
    thread.join(timeout=5)


def test_ping_refused_and_missing_mean_not_running(tmp_path):
    missing = str(tmp_path / "none.ctl")
    assert ping(missing, timeout=0.3)[0] is False
    stale = tmp_path / "stale.ctl"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(stale))
    listener.close()  # the socket file stays, nobody listens: as after clamd crashed
    assert ping(str(stale), timeout=0.3) == (False, f"{stale}: Connection refused")


@pytest.mark.parametrize("conf, address", [
    ("LocalSocket /run/clamav/clamd.ctl\nTCPSocket 3310\n", "/run/clamav/clamd.ctl"),
    ("TCPSocket 3310\n", ("127.0.0.1", 3310)),
    ("TCPSocket 3310\nTCPAddr 0.0.0.0\n", ("127.0.0.1", 3310)),  # listening everywhere: ask loopback
    ("TCPSocket 3310\nTCPAddr ::1\n", ("::1", 3310)),
    ("# LocalSocket /x\n", None),
])
def testclamd_address(conf, address):
    assert clamd_address(parse_conf(conf)) == address
