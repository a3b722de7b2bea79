"""NS27-AV-001..004 against a real clamd on a lab host: protected, stale after a 10-day-old database
is loaded, not running after clamd stops. clamd runs only inside h01 (its own PID namespace and
/run), never on this machine; resetting the host at the end kills it with the namespace."""

from __future__ import annotations

import base64
import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.clamdb import write_cud

PROJECT = Path(__file__).resolve().parents[1]
AGENT = PROJECT / ".venv" / "bin" / "nanbu-secops"
HOST = "h01"
CUD = "/var/lib/clamav/daily.cud"

# A weekly scan by systemd timer, enabled at boot, and freshclam enabled: all a protected terminal has.
TIMER = "[Unit]\nDescription=weekly antivirus scan\n[Timer]\nOnCalendar=Wed 12:30\nPersistent=true\n" \
        "[Install]\nWantedBy=timers.target\n"
SERVICE = "[Unit]\nDescription=antivirus scan\n[Service]\nType=oneshot\n" \
          f"ExecStart={AGENT} av scan /home /root /tmp\n"


def database(days_old: int, version: int) -> str:
    """A daily.cud built ``days_old`` days ago, base64 for ``lab.ssh(input=...)`` (text only)."""
    with tempfile.TemporaryDirectory() as folder:
        built = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_old)
        return base64.b64encode(write_cud(Path(folder), built, version).read_bytes()).decode()


def install_database(lab, days_old: int, version: int) -> None:
    lab.ssh(HOST, f"base64 -d > {CUD}.new && chown clamav:clamav {CUD}.new && mv {CUD}.new {CUD}",
            input=database(days_old, version))


def wait_for_pong(lab) -> None:
    done = lab.ssh(HOST, "clamdscan --ping 60:1", check=False, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def clamd(lab):
    """h01 with a fresh database, clamd running in it, a scan timer, freshclam enabled and a scan logged."""
    lab.reset_host(HOST)
    try:
        install_database(lab, 1, 27001)
        today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0)
        record = {"started": (today - dt.timedelta(hours=1)).isoformat(), "finished": today.isoformat(),
                  "engine": "clamdscan", "paths": ["/home"], "completed": True, "files_scanned": 12,
                  "detections": []}
        lab.ssh(HOST, "mkdir -p /var/lib/nanbu-secops && cat > /var/lib/nanbu-secops/av-scans.jsonl",
                input=json.dumps(record) + "\n")
        lab.ssh(HOST, "cat > /etc/systemd/system/nanbu-av-scan.timer", input=TIMER)
        lab.ssh(HOST, "cat > /etc/systemd/system/nanbu-av-scan.service", input=SERVICE)
        lab.ssh(HOST, "mkdir -p /etc/systemd/system/timers.target.wants && "
                      "ln -sf /etc/systemd/system/nanbu-av-scan.timer /etc/systemd/system/timers.target.wants/ && "
                      "ln -sf /lib/systemd/system/clamav-freshclam.service /etc/systemd/system/multi-user.target.wants/")
        # clamd.conf (Debian's) listens on /var/run/clamav/clamd.ctl and daemonizes; /run is the host's own tmpfs
        lab.ssh(HOST, "mkdir -p /run/clamav && chown clamav:clamav /run/clamav && clamd", timeout=120)
        wait_for_pong(lab)
        yield lab
    finally:
        lab.reset_host(HOST)  # kills clamd with the host's PID namespace


def agent(lab, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    done = lab.ssh(HOST, f"{AGENT} {' '.join(args)} --format json --lang en", check=False, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, {r["control"]: r for r in json.loads(done.stdout)["results"]}


def test_protected_then_stale_then_not_running(clamd):
    lab = clamd
    code, results = agent(lab, "av status")
    verdict = results["NS27-AV-001"]
    assert verdict["status"] == "pass", verdict
    evidence = verdict["evidence"]
    assert evidence["verdict"] == "protected"
    assert evidence["running"].startswith("/var/run/clamav/clamd.ctl: PONG (clamd pid ")
    assert evidence["signatures"]["version"] == "daily.cud 27001" and evidence["signatures"]["age_days"] in (0, 1, 2)
    assert evidence["mode"] == "live" and evidence["version"] == lab.ssh(HOST, "clamscan --version").stdout.split()[1].split("/")[0]
    assert {c: r["status"] for c, r in results.items()} == {
        "NS27-AV-001": "pass", "NS27-AV-002": "pass", "NS27-AV-003": "pass", "NS27-AV-004": "pass"}
    assert results["NS27-AV-004"]["evidence"]["scheduled"][0].startswith("/etc/systemd/system/nanbu-av-scan.timer")
    assert code == 0
    check_code, only = agent(lab, "check --only NS27-AV-001")
    assert (check_code, list(only), only["NS27-AV-001"]["evidence"]["verdict"]) == (0, ["NS27-AV-001"], "protected")

    install_database(lab, 10, 26990)
    lab.ssh(HOST, "clamdscan --reload", timeout=60)
    wait_for_pong(lab)
    assert "26990" in lab.ssh(HOST, "clamdscan --version").stdout  # clamd itself now runs the old database
    code, results = agent(lab, "av status")
    verdict = results["NS27-AV-001"]
    assert (verdict["status"], verdict["evidence"]["verdict"]) == ("fail", "stale")
    assert verdict["evidence"]["reasons"] == ["signatures are 10 days old (maximum 7)"]
    assert code == 1

    lab.ssh(HOST, "kill $(pidof clamd) && while pidof clamd >/dev/null; do sleep 0.1; done", timeout=60)
    code, results = agent(lab, "av status")
    verdict = results["NS27-AV-001"]
    assert (verdict["status"], verdict["evidence"]["verdict"]) == ("fail", "not running")
    assert "(no clamd process)" in verdict["evidence"]["running"]
    assert code == 1


def test_socket_that_cannot_be_asked_is_unknown(clamd):
    """A socket file that nothing serves with PONG (here: a listener that never answers) is not a pass."""
    lab = clamd
    install_database(lab, 1, 27002)  # fresh signatures: only the socket is in question
    lab.ssh(HOST, "pidof clamd >/dev/null && kill $(pidof clamd); while pidof clamd >/dev/null; do sleep 0.1; done; "
                  "rm -f /run/clamav/clamd.ctl", timeout=60)
    # a silent listener on clamd's socket, under the name clamd so the agent sees a clamd process
    lab.ssh(HOST, "cp /usr/bin/python3 /tmp/clamd && (setsid /tmp/clamd -c 'import socket,time; "
                  "s=socket.socket(socket.AF_UNIX); s.bind(\"/run/clamav/clamd.ctl\"); s.listen(); "
                  "c=s.accept(); time.sleep(60)' >/dev/null 2>&1 </dev/null &) && "
                  "while [ ! -S /run/clamav/clamd.ctl ]; do sleep 0.1; done")
    _, results = agent(lab, "check --only NS27-AV-001")
    verdict = results["NS27-AV-001"]
    assert (verdict["status"], verdict["evidence"]["verdict"]) == ("error", "unknown")
    assert "no answer to PING within" in verdict["evidence"]["error"]
