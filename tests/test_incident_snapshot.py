"""The incident evidence snapshot: on crafted roots (auth logs in and out of the window, gzip
rotations, a year wrap, btmp) and on this live system (its own process and socket)."""

from __future__ import annotations

import calendar
import datetime as dt
import gzip
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

import psutil
import pytest

from nanbu_secops.collect import Target, antivirus, authlog, processes
from nanbu_secops.collect.rootfs import RootFS
from nanbu_secops.incident import snapshot as snap
from nanbu_secops.incident.snapshot import Evidence, snapshot
from nanbu_secops.timeutil import COUNTY_TZ, today
from tests.roots import AS_OF, make_root

UTMP = "<h2xi32s4s32s256shhiii16s20s"
LOGIN_PROCESS, USER_PROCESS = 6, 7
OS_RELEASE = 'PRETTY_NAME="Kylin Linux Desktop V10 (SP1)"\nNAME="Kylin"\nVERSION_ID="v10"\nID=kylin\n'


def epoch(text: str) -> float:
    """Epoch seconds of an ISO time with offset."""
    return dt.datetime.fromisoformat(text).timestamp()


def utmp(kind: int, line: str, user: str, host: str, at: str) -> bytes:
    seconds = calendar.timegm(dt.datetime.fromisoformat(at).utctimetuple())
    return struct.pack(UTMP, kind, 4242, line.encode(), line[-4:].encode(), user.encode(), host.encode(),
                       0, 0, 0, seconds, 0, bytes(int(x) for x in host.split(".")).ljust(16, b"\0"), b"")


def write(root: Path, rel: str, data: bytes | str, mtime: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.utime(path, (epoch(mtime), epoch(mtime)))


def files(evidence: list[Evidence]) -> dict[str, bytes]:
    paths = [e.path for e in evidence]
    assert len(paths) == len(set(paths))
    assert all(p.startswith("evidence/") for p in paths)
    return {e.path: e.data for e in evidence}


def doc(found: dict[str, bytes], path: str) -> Any:
    data = found[path]
    value = json.loads(data.decode("utf-8"))
    assert data == snap.to_json(value)  # sorted keys, indent 1, non-ASCII kept
    return value


# --- a crafted root, 2026-11-28, the 7 days 2026-11-22 .. 2026-11-28 -----------------------------

AUTH_LOG = """\
Nov 21 23:59:59 terminal-01 sshd[100]: OUTSIDE-1 Failed password for root from 10.20.0.9 port 4242 ssh2
Nov 22 00:00:00 terminal-01 sshd[101]: INSIDE-1 Failed password for root from 10.20.0.9 port 4243 ssh2
 continuation of INSIDE-1
Nov 28 09:30:01 terminal-01 sshd[102]: INSIDE-2 Accepted publickey for alice from 10.20.0.7 port 5000 ssh2
2026-11-20T09:30:01.123456+08:00 terminal-01 sshd[103]: OUTSIDE-2 rsyslog high precision, too old
2026-11-28T09:31:01.123456+08:00 terminal-01 sshd[104]: INSIDE-3 用户 张三 登录
2026-11-28T18:00:00Z terminal-01 sshd[105]: OUTSIDE-3 after the as-of day (02:00 on the 29th here)
 continuation of OUTSIDE-3
"""
AUTH_LOG_1 = """\
Nov 15 08:00:00 terminal-01 sshd[90]: OUTSIDE-4 a week too early
Nov 23 08:00:00 terminal-01 sshd[91]: INSIDE-4 session opened for user root
"""
AUTH_LOG_2 = """\
Nov 21 05:00:00 terminal-01 sshd[80]: OUTSIDE-5 compressed, before the window
Nov 22  5:00:00 terminal-01 sshd[81]: bad clock field, goes with OUTSIDE-5
Nov 22 05:00:00 terminal-01 sshd[82]: INSIDE-5 compressed rotation, in the window
"""
AUTH_LOG_3 = "Nov  8 05:00:00 terminal-01 sshd[70]: OUTSIDE-6 file older than the window\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = make_root(tmp_path, {"etc/os-release": OS_RELEASE})
    write(base, "var/log/auth.log", AUTH_LOG, "2026-11-28T12:00:00+08:00")
    write(base, "var/log/auth.log.1", AUTH_LOG_1, "2026-11-23T06:25:00+08:00")
    write(base, "var/log/auth.log.2.gz", gzip.compress(AUTH_LOG_2.encode()), "2026-11-22T06:25:00+08:00")
    write(base, "var/log/auth.log.3.gz", gzip.compress(AUTH_LOG_3.encode()), "2026-11-09T06:25:00+08:00")
    write(base, "var/log/btmp", utmp(LOGIN_PROCESS, "ssh:notty", "admin", "10.20.0.9", "2026-11-10T03:00:00+08:00")
          + utmp(LOGIN_PROCESS, "ssh:notty", "root", "10.20.0.9", "2026-11-27T03:00:00+08:00"),
          "2026-11-27T03:00:00+08:00")
    write(base, "var/log/btmp.1", utmp(LOGIN_PROCESS, "ssh:notty", "oracle", "10.20.0.8", "2026-11-22T01:00:00+08:00")
          + b"\0" * 100, "2026-11-22T01:00:00+08:00")  # a partial record at the end: noted
    write(base, "var/log/wtmp", utmp(USER_PROCESS, "pts/0", "alice", "10.20.0.7", "2026-11-28T09:30:02+08:00"),
          "2026-11-28T09:30:02+08:00")
    return base


def test_offline_snapshot(root: Path) -> None:
    found = files(snapshot(Target(RootFS(root), AS_OF)))
    assert set(found) == {snap.HOST, snap.PROCESSES, snap.CONNECTIONS, snap.LISTENING, snap.SESSIONS, snap.AUTH_LOG,
                          snap.AUTH_LOG_SOURCES, snap.ANTIVIRUS, snap.RESULTS, snap.ERRORS}
    assert doc(found, snap.ERRORS) == {"errors": []}

    host = doc(found, snap.HOST)
    assert (host["hostname"], host["live"], host["root"], host["as_of"]) == (
        "terminal-01", False, str(root), "2026-11-28")
    assert host["os_release"]["PRETTY_NAME"] == "Kylin Linux Desktop V10 (SP1)"
    assert host["window"] == {"days": 7, "start": "2026-11-22T00:00:00+08:00", "end": "2026-11-29T00:00:00+08:00"}
    assert "kernel" not in host and "boot_time" not in host
    for path in (snap.PROCESSES, snap.CONNECTIONS, snap.LISTENING):
        assert doc(found, path) == {"skipped": "not the live system"}

    text = found[snap.AUTH_LOG].decode("utf-8")
    assert [line.split(": ", 1)[1].split()[0] for line in text.splitlines() if ": " in line] == [
        "INSIDE-5", "INSIDE-4", "INSIDE-1", "INSIDE-2", "INSIDE-3"]  # oldest file first
    assert " continuation of INSIDE-1\n" in text and "用户 张三 登录" in text
    assert "OUTSIDE" not in text
    sources = doc(found, snap.AUTH_LOG_SOURCES)
    assert sources["files"] == ["/var/log/auth.log.2.gz", "/var/log/auth.log.1", "/var/log/auth.log"]
    assert sources["lines"] == 6
    assert any("/var/log/auth.log.3.gz" in n and "before the window" in n for n in sources["notes"])

    sessions = doc(found, snap.SESSIONS)
    assert sessions["logged_in_now"] == {"skipped": "not the live system"}
    failed = sessions["failed_logins"]
    assert failed["sources"] == ["/var/log/btmp.1", "/var/log/btmp"]
    assert [(a["user"], a["time"], a["host"], a["address"]) for a in failed["attempts"]] == [
        ("oracle", "2026-11-22T01:00:00+08:00", "10.20.0.8", "10.20.0.8"),
        ("root", "2026-11-27T03:00:00+08:00", "10.20.0.9", "10.20.0.9")]
    assert failed["notes"] == ["/var/log/btmp.1: 100 trailing bytes are a partial record, ignored"]
    assert [(s["user"], s["start"], s["end"]) for s in sessions["recent_logins"]["sessions"]] == [
        ("alice", "2026-11-28T09:30:02+08:00", None)]

    av = doc(found, snap.ANTIVIRUS)
    assert (av["engine"], av["installed"], av["live"]) == ("ClamAV", True, False)
    assert av["signatures_updated"].endswith("+08:00")
    results = doc(found, snap.RESULTS)
    assert results["host"] == "terminal-01" and results["as_of"] == "2026-11-28"
    assert {r["control"]: r["status"] for r in results["results"]}["NS26-PASS-001"] == "pass"


def test_year_wrap_and_red_hat_names(tmp_path: Path) -> None:
    """In January, "Dec 30" in a file written days ago is last year's December, not this year's."""
    base = make_root(tmp_path)
    write(base, "var/log/secure-20261227", "Dec 26 23:00:00 t sshd[1]: OUTSIDE-1 before the window\n"
          "Dec 27 01:00:00 t sshd[2]: INSIDE-1 rotated, dated name\n", "2026-12-27T03:00:00+08:00")
    write(base, "var/log/secure-20270103.gz", gzip.compress(
        b"Dec 31 23:59:59 t sshd[3]: INSIDE-2 the old year\nJan  1 00:00:01 t sshd[4]: INSIDE-3 the new year\n"),
        "2027-01-03T03:00:00+08:00")
    write(base, "var/log/secure", "Jan  3 09:00:00 t sshd[5]: INSIDE-4 today\n"
          "Jan  4 09:00:00 t sshd[6]: OUTSIDE-2 after the as-of day\n", "2027-01-04T09:00:00+08:00")
    write(base, "var/log/secure-20261220", "Dec 19 23:00:00 t sshd[1]: OUTSIDE-3 file before the window\n",
          "2026-12-20T03:00:00+08:00")
    excerpt = authlog.collect_authlog(Target(RootFS(base), dt.date(2027, 1, 3)), 8)  # from 27 December
    assert excerpt.files == ["/var/log/secure-20261227", "/var/log/secure-20270103.gz", "/var/log/secure"]
    assert [line.split()[5] for line in excerpt.text.splitlines()] == ["INSIDE-1", "INSIDE-2", "INSIDE-3", "INSIDE-4"]


def test_syslog_year_inference() -> None:
    written = dt.datetime(2027, 1, 3, 10, tzinfo=COUNTY_TZ)
    at = dt.datetime(2026, 12, 30, 9, 30, 1, tzinfo=COUNTY_TZ)
    assert authlog.line_time(b"Dec 30 09:30:01 h sshd: x\n", written) == at
    assert authlog.line_time(b"Jan  3 09:30:01 h sshd: x\n", written) == at.replace(2027, 1, 3)
    assert authlog.line_time(b"Feb 29 09:30:01 h sshd: x\n", dt.datetime(2029, 1, 3, tzinfo=COUNTY_TZ)) == \
        dt.datetime(2028, 2, 29, 9, 30, 1, tzinfo=COUNTY_TZ)
    assert authlog.line_time(b"2026-11-28T01:30:01.5Z h sshd: x\n", written) == \
        dt.datetime(2026, 11, 28, 9, 30, 1, 500000, tzinfo=COUNTY_TZ)
    assert authlog.line_time(b" continuation\n", written) is None
    assert authlog.line_time(b"Foo 30 09:30:01 h\n", written) is None


def test_excerpt_is_capped_keeping_the_newest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = make_root(tmp_path)
    write(base, "var/log/auth.log", "".join(f"Nov 28 09:{n // 60:02d}:{n % 60:02d} t sshd[1]: line {n}\n"
                                            for n in range(300)), "2026-11-28T12:00:00+08:00")
    monkeypatch.setattr(authlog, "MAX_LINES", 100)
    excerpt = authlog.collect_authlog(Target(RootFS(base), AS_OF), 7)
    lines = excerpt.text.splitlines()
    assert (excerpt.lines, lines[0].split()[-1], lines[-1].split()[-1]) == (100, "200", "299")
    assert any("200 oldest lines" in n for n in excerpt.notes)


def test_failed_logins_keep_the_newest(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(authlog, "MAX_ATTEMPTS", 1)
    failed = authlog.failed_logins(Target(RootFS(root), AS_OF), 7)
    assert [a.user for a in failed.attempts] == ["root"]
    assert "2 failed logins in the window: the 1 oldest were left out" in failed.notes


def test_failing_parts_are_listed_and_the_rest_written(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("collector broke")

    monkeypatch.setattr(antivirus, "collect", broken)
    monkeypatch.setattr(authlog, "failed_logins", broken)
    found = files(snapshot(Target(RootFS(root), AS_OF)))
    assert doc(found, snap.ERRORS) == {"errors": [
        {"part": f"{snap.SESSIONS}: failed logins", "error": "RuntimeError: collector broke"},
        {"part": snap.ANTIVIRUS, "error": "RuntimeError: collector broke"}]}
    assert snap.ANTIVIRUS not in found
    sessions = doc(found, snap.SESSIONS)
    assert sessions["failed_logins"] is None and sessions["recent_logins"]["sessions"]
    assert {snap.HOST, snap.AUTH_LOG, snap.RESULTS, snap.LISTENING} <= set(found)
    assert doc(found, snap.RESULTS)["results"]  # the audit's own antivirus collector is untouched


# --- the live system ---------------------------------------------------------------------------

def test_live_snapshot_sees_this_process_and_its_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        found = files(snapshot(Target(RootFS("/"), today()), days=1))

    assert doc(found, snap.ERRORS) == {"errors": []}
    host = doc(found, snap.HOST)
    assert host["live"] is True and host["kernel"]["release"] == os.uname().release
    assert host["hostname"] == socket.gethostname()

    me = psutil.Process()
    exe = Path(me.exe())
    processes = {p["pid"]: p for p in doc(found, snap.PROCESSES)["processes"]}
    mine = processes[os.getpid()]
    assert (mine["exe"], mine["ppid"], mine["cmdline"], mine["name"]) == (
        str(exe), os.getppid(), me.cmdline(), me.name())
    assert mine["exe_sha256"] == hashlib.sha256(exe.read_bytes()).hexdigest()
    assert mine["create_time"] == dt.datetime.fromtimestamp(me.create_time(), COUNTY_TZ).isoformat(timespec="seconds")
    assert mine["user"] == me.username()

    connections = doc(found, snap.CONNECTIONS)["connections"]
    assert {"family": "inet", "type": "tcp", "laddr": {"ip": "127.0.0.1", "port": port}, "raddr": None,
            "status": "LISTEN", "pid": os.getpid(), "process": me.name()} in connections
    listening = doc(found, snap.LISTENING)["listeners"]
    assert any(x["port"] == port and x["pid"] == os.getpid() for x in listening)
    assert isinstance(doc(found, snap.SESSIONS)["logged_in_now"], list)
    assert doc(found, snap.RESULTS)["root"] == "/"


def test_process_walk_survives_ended_and_denied_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()
    monkeypatch.setattr(psutil, "pids", lambda: [os.getpid(), ended.pid])
    cmdline = psutil.Process.cmdline

    def denied(self: psutil.Process) -> list[str]:
        if self.pid == os.getpid():
            raise psutil.AccessDenied(self.pid)
        return cmdline(self)

    monkeypatch.setattr(psutil.Process, "cmdline", denied)
    monkeypatch.setattr(processes, "MAX_HASH_BYTES", 1000)
    found = processes.processes()
    assert found.notes == [f"pid {ended.pid} ended during the walk"]
    [mine] = found.processes
    assert (mine.pid, mine.cmdline, mine.exe_sha256) == (os.getpid(), None, None)
    assert mine.unreadable["cmdline"] == "access denied"
    assert mine.unreadable["exe_sha256"].startswith("not hashed: ")


def test_deleted_executable_is_hashed_through_proc(tmp_path: Path) -> None:
    copy = tmp_path / "sleeper"
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", copy)
    digest = hashlib.sha256(copy.read_bytes()).hexdigest()
    child = subprocess.Popen([str(copy), "30"])
    try:
        copy.unlink()
        found = {p.pid: p for p in processes.processes().processes}
    finally:
        child.kill()
        child.wait()
    mine = found[child.pid]
    assert mine.exe_sha256 == digest
    assert "deleted" in mine.unreadable["exe"]
