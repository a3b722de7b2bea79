"""Fact "logins" from REAL wtmp/lastlog records, written by a real sshd for real SSH logins.

bob logs in to lab host h02 twice with a pseudo-terminal (sshd records utmp/wtmp/lastlog only
for sessions with a tty), the first session still open while the second comes and goes. The
collector then runs INSIDE the host, as the agent would on a terminal, and must agree with what
util-linux ``last``, ``utmpdump`` and ``lastlog`` print on that same host.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

PROJECT = Path(__file__).resolve().parents[1]
PYTHON = PROJECT / ".venv" / "bin" / "python"
HOST = "h02"
COUNTY = "TZ=Asia/Shanghai LC_ALL=C"  # last/lastlog print local time: make it the county's

COLLECT = """\
import dataclasses, datetime as dt, json
from nanbu_secops.collect import Target, gather
from nanbu_secops.collect.rootfs import RootFS

facts, errors = gather(Target(RootFS("/"), dt.date.today()), ["logins"])
fact = facts.get("logins")
print(json.dumps({"errors": errors, "fact": fact and dataclasses.asdict(fact)}, default=str))
"""

CTIME = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}"
LAST_LINE = re.compile(rf"^(?P<user>\S+)\s+(?P<line>\S+)\s+(?P<host>\S+)\s+(?P<start>{CTIME})"
                       rf"(?: - (?P<end>{CTIME})| +(?P<open>still logged in))")


@pytest.fixture(scope="module")
def bob_logged_in(lab):
    """h02 with user bob, who logged in twice over SSH; the sessions overlap."""
    lab.reset_host(HOST)
    lab.ssh(HOST, " && ".join([
        "touch /var/log/wtmp /var/log/lastlog",  # sshd appends to wtmp only if it exists
        # /run is a fresh tmpfs in the host: create utmp as boot (systemd-tmpfiles) does.
        # Debian's sshd logs out through logout(3), which writes the wtmp logout record only
        # after finding the login in utmp: without it every session looks "gone - no logout".
        "install -m 664 -g utmp /dev/null /run/utmp",
        "useradd -m -s /bin/bash bob",
        "install -d -m 700 -o bob -g bob /home/bob/.ssh",
        "install -m 600 -o bob -g bob /root/.ssh/authorized_keys /home/bob/.ssh/authorized_keys",
    ]))

    def bob(command: str) -> list[str]:
        # -l bob beats the config's User root; no ControlMaster: root's shared connection
        # would run the command as root, and without a login of bob's own.
        return ["ssh", "-F", str(lab.ssh_config), "-o", "ControlMaster=no", "-o", "ControlPath=none",
                "-tt", "-l", "bob", HOST, command]

    held = subprocess.Popen(bob("sleep 5; exit"), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while "still logged in" not in lab.ssh(HOST, "last -w bob").stdout:  # the first session is on
            assert held.poll() is None, held.communicate()
            assert time.monotonic() < deadline, "bob's first login never showed up in utmp"
            time.sleep(0.1)
        time.sleep(1.1)  # a later second than the first login, so the order is unambiguous
        second = subprocess.run(bob("sleep 1; exit"), stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        out, err = held.communicate(timeout=60)
        assert held.returncode == 0, err
        # `last` prints "still running" for a logout in the very second it runs: let it pass
        time.sleep(1.1)
    finally:
        if held.poll() is None:
            held.kill()
            held.wait()
    yield lab
    lab.reset_host(HOST)


def collect_on_host(lab) -> dict[str, Any]:
    done = lab.ssh(HOST, f"cd / && PYTHONDONTWRITEBYTECODE=1 {PYTHON} -", input=COLLECT)
    result = json.loads(done.stdout)
    assert result["errors"] == {}
    return result["fact"]


def when(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def test_sessions_agree_with_last_and_utmpdump(bob_logged_in):
    lab = bob_logged_in
    fact = collect_on_host(lab)
    assert "/var/log/wtmp" in fact["sources"]
    assert fact["notes"] == []
    sessions = [s for s in fact["sessions"] if s["user"] == "bob"]
    assert [s["user"] for s in fact["sessions"]] == ["bob", "bob"]  # root's lab logins have no tty

    # last -F: full times to the second, newest first; -w: full user and host names
    printed = lab.ssh(HOST, f"{COUNTY} last -F -w bob").stdout
    print(printed, *sessions, sep="\n")  # shown with -rP, and on failure
    rows = [m.groupdict() for m in map(LAST_LINE.match, printed.splitlines()) if m]
    assert len(rows) == 2, printed
    rows.reverse()
    for session, row in zip(sessions, rows, strict=False):
        assert session["line"] == row["line"]
        assert session["terminal"] == row["host"] == lab.bridge_ipv4  # the client's address
        assert session["address"] == lab.bridge_ipv4
        assert when(session["start"]) == dt.datetime.strptime(row["start"], "%a %b %d %H:%M:%S %Y")
        assert when(session["end"]) == dt.datetime.strptime(row["end"], "%a %b %d %H:%M:%S %Y")
        assert session["ended_by"] == "logout"
    first, second = sessions
    assert first["line"] != second["line"]
    # the first session was still open while the second came and went
    assert when(first["start"]) < when(second["start"]) < when(second["end"]) < when(first["end"])

    # utmpdump: the raw records, stamped in UTC to the microsecond
    dump = lab.ssh(HOST, f"{COUNTY} utmpdump /var/log/wtmp").stdout
    records = [re.findall(r"\[(.*?)\]", line) for line in dump.splitlines()]
    logins = [r for r in records if r[0] == "7" and r[3].strip() == "bob"]
    assert [(r[4].strip(), r[6].strip()) for r in logins] == [(s["line"], s["address"]) for s in sessions]
    for record, session in zip(logins, sessions, strict=False):
        stamp = dt.datetime.fromisoformat(record[7].replace(",", "."))
        assert stamp.utcoffset() == dt.timedelta(0)
        county = stamp.astimezone(ZoneInfo("Asia/Shanghai"))  # eight hours later on the clock
        assert county.replace(tzinfo=None, microsecond=0) == when(session["start"])
    begins = re.search(rf"^wtmp begins ({CTIME})$", printed, re.M)
    assert begins, printed
    assert when(fact["earliest"]) == when(sessions[0]["start"]) == dt.datetime.strptime(
        begins.group(1), "%a %b %d %H:%M:%S %Y")


def test_last_login_agrees_with_lastlog(bob_logged_in):
    lab = bob_logged_in
    fact = collect_on_host(lab)
    printed = lab.ssh(HOST, f"{COUNTY} lastlog -u bob").stdout
    print(printed, fact["last"], sep="\n")
    header, row = printed.splitlines()
    assert header.split() == ["Username", "Port", "From", "Latest"]
    user, port, origin, latest = row.split(None, 3)
    assert user == "bob"
    latest_time = dt.datetime.strptime(latest.strip(), "%a %b %d %H:%M:%S %z %Y")
    assert latest_time.utcoffset() == dt.timedelta(hours=8)
    bob = fact["last"]["bob"]
    assert when(bob["time"]) == latest_time.replace(tzinfo=None)
    assert bob["terminal"] == origin == lab.bridge_ipv4
    assert bob["line"] == port
    assert "/var/log/lastlog" in fact["sources"]
    # the latest login is the second session's start; wtmp holds the same moment
    assert when(bob["time"]) == max(when(s["start"]) for s in fact["sessions"] if s["user"] == "bob")
