"""Facts "logins" (wtmp, lastlog, lastlog2) and "exemptions", from root trees built byte by byte.

Every expected value is computed by hand: epoch seconds are UTC, and the fact must give the same
instant as a naive Asia/Shanghai time, eight hours later on the clock.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import os
import sqlite3
import struct
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from nanbu_secops.collect import Target, gather
from nanbu_secops.collect.exemptions import Exemption
from nanbu_secops.collect.logins import LastLogin, Session
from nanbu_secops.collect.rootfs import RootFS

AS_OF = dt.date(2026, 11, 28)
UTMP = "<h2xi32s4s32s256shhiii16s20s"  # glibc struct utmp, x86_64: 384 bytes
LASTLOG = "<i32s256s"  # struct lastlog: 292 bytes
BOOT, RUN_LVL, USER, DEAD = 2, 1, 7, 8

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
svc:x:998:998:service:/srv:/bin/bash
alice:x:1000:1000:Alice:/home/alice:/bin/bash
bob:x:1001:1001:Bob:/home/bob:/bin/bash
carol:x:1002:1002:Carol:/home/carol:/bin/bash
"""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Epoch seconds of a UTC wall time."""
    return calendar.timegm((year, month, day, hour, minute, second))


def ut(kind: int, line: str, user: str = "", host: str = "", *, at: int, pid: int = 0,
       addr: bytes = b"") -> bytes:
    ut_id = line[-4:].encode()
    return struct.pack(UTMP, kind, pid, line.encode(), ut_id, user.encode(), host.encode(),
                       0, 0, 0, at, 123456, addr.ljust(16, b"\0"), b"")


def v4(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def make_tree(base: Path, files: dict[str, bytes | str]) -> Path:
    root = base / "root"
    tree: dict[str, bytes | str] = {"etc/passwd": PASSWD, "etc/hostname": "terminal-01\n"}
    tree.update(files)
    for rel, content in tree.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    return root


def logins(root: Path):
    facts, errors = gather(Target(RootFS(root), AS_OF), ["logins"])
    assert not errors, errors
    return facts["logins"]


def sparse_lastlog(path: Path, records: dict[int, tuple[int, str, str]]) -> None:
    """Write each UID's record at UID * 292, leaving holes, as lastlog(8) does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        for uid, (when, line, host) in sorted(records.items()):
            handle.seek(uid * struct.calcsize(LASTLOG))
            handle.write(struct.pack(LASTLOG, when, line.encode(), host.encode()))


def lastlog2_db(path: Path, rows: list[tuple[str, int, str, str, str]]) -> None:
    """lastlog2's schema (util-linux liblastlog2), in WAL mode to tempt a reader into a -wal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE Lastlog2(Name TEXT PRIMARY KEY, Time INTEGER, TTY TEXT, "
                "RemoteHost TEXT, Service TEXT)")
    db.executemany("INSERT INTO Lastlog2 VALUES (?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


# 2026-11-01, UTC wall times; the county clock reads eight hours later.
T_BOOT1 = utc(2026, 11, 1, 0, 0)          # 08:00 county time
T_ALICE1 = utc(2026, 11, 1, 1, 0)         # 09:00
T_BOB1 = utc(2026, 11, 1, 1, 30)          # 09:30
T_ALICE1_OUT = utc(2026, 11, 1, 2, 0)     # 10:00
T_CAROL = utc(2026, 11, 1, 2, 15)         # 10:15
T_SHUTDOWN = utc(2026, 11, 1, 3, 0)       # 11:00
T_BOOT2 = utc(2026, 11, 1, 3, 5)          # 11:05
T_ALICE2 = utc(2026, 11, 1, 4, 0)         # 12:00
T_BOOT3 = utc(2026, 11, 1, 5, 0)          # 13:00: alice still logged in -> a crash
T_BOB2 = utc(2026, 11, 1, 6, 0)           # 14:00, never logged out
T_WTMP_END = utc(2026, 11, 1, 16, 30)     # 2026-11-02 00:30 county time: the date changes too


def county(*fields: int) -> dt.datetime:
    return dt.datetime(*fields)


@pytest.fixture
def full_root(tmp_path: Path) -> Path:
    rotated = b"".join([
        ut(BOOT, "~", "reboot", "6.1.0-test", at=T_BOOT1),
        ut(USER, "pts/0", "alice", "192.0.2.10", at=T_ALICE1, pid=100, addr=v4("192.0.2.10")),
        ut(USER, "pts/1", "bob", "", at=T_BOB1, pid=101,
           addr=bytes.fromhex("20010db8000000000000000000000005")),
        ut(DEAD, "pts/0", at=T_ALICE1_OUT, pid=100),
    ])
    current = b"".join([
        ut(USER, "tty1", "carol", at=T_CAROL, pid=102),
        ut(RUN_LVL, "~~", "shutdown", "6.1.0-test", at=T_SHUTDOWN),
        ut(BOOT, "~", "reboot", "6.1.0-test", at=T_BOOT2),
        ut(RUN_LVL, "~~", "runlevel", "6.1.0-test", at=T_BOOT2 + 10),  # not a shutdown
        ut(USER, "pts/0", "alice", "gw.example", at=T_ALICE2, pid=200, addr=v4("198.51.100.7")),
        ut(BOOT, "~", "reboot", "6.1.0-test", at=T_BOOT3),
        ut(USER, "pts/2", "bob", "10.0.0.9", at=T_BOB2, pid=300, addr=v4("10.0.0.9")),
        ut(DEAD, "pts/9", at=T_WTMP_END, pid=999),  # logout of nobody we know: ignored
    ]) + b"\x07" * 100  # a record cut short by a full disk
    root = make_tree(tmp_path, {
        "var/log/wtmp.1": rotated,
        "var/log/wtmp": current,
        "var/log/wtmp.2.gz": b"\x1f\x8b not read",
    })
    sparse_lastlog(root / "var/log/lastlog", {
        1000: (utc(2026, 10, 20, 0, 0), "pts/4", "192.0.2.77"),   # alice: older than wtmp
        1002: (utc(2026, 11, 2, 0, 0), "pts/7", "203.0.113.4"),   # carol: newer than wtmp
        5000: (utc(2026, 11, 5, 0, 0), "pts/1", "198.51.100.1"),  # no such account
    })
    lastlog2_db(root / "var/lib/lastlog/lastlog2.db", [
        ("bob", utc(2026, 11, 3, 2, 0), "pts/0", "192.0.2.99", "sshd"),   # newer than wtmp
        ("alice", utc(2026, 10, 1, 0, 0), "pts/3", "192.0.2.5", "sshd"),  # older than wtmp
        ("dave", utc(2026, 9, 30, 16, 0), "tty2", "", "login"),           # local, no passwd entry
        ("eve", 0, "", "", ""),                                           # never
    ])
    return root


def test_wtmp_sessions_paired_like_last(full_root: Path):
    fact = logins(full_root)
    assert fact.sessions == [
        # login + logout on pts/0, overlapping bob's session on pts/1
        Session("alice", county(2026, 11, 1, 9, 0), county(2026, 11, 1, 10, 0), "192.0.2.10",
                "pts/0", "192.0.2.10", "logout"),
        # no host name recorded: the IPv6 address is the terminal; ended by the shutdown
        Session("bob", county(2026, 11, 1, 9, 30), county(2026, 11, 1, 11, 0), "2001:db8::5",
                "pts/1", "2001:db8::5", "shutdown"),
        Session("carol", county(2026, 11, 1, 10, 15), county(2026, 11, 1, 11, 0), "local:tty1",
                "tty1", None, "shutdown"),
        # still logged in when the system booted again: a crash, ends at the boot
        Session("alice", county(2026, 11, 1, 12, 0), county(2026, 11, 1, 13, 0), "gw.example",
                "pts/0", "198.51.100.7", "reboot"),
        Session("bob", county(2026, 11, 1, 14, 0), None, "10.0.0.9", "pts/2", "10.0.0.9", None),
    ]
    first, second = fact.sessions[0], fact.sessions[1]
    assert first.start < second.start < first.end < second.end  # overlapping, different lines
    assert fact.earliest == county(2026, 11, 1, 8, 0)  # the first record of the rotated file


def test_sources_and_notes(full_root: Path):
    fact = logins(full_root)
    assert fact.sources == ["/var/log/wtmp.1", "/var/log/wtmp", "/var/log/lastlog",
                            "/var/lib/lastlog/lastlog2.db"]
    assert "/var/log/wtmp: 100 trailing bytes are a partial record, ignored" in fact.notes
    assert "compressed rotations /var/log/wtmp.*.gz are not read" in fact.notes
    assert len(fact.notes) == 2, fact.notes


def test_last_login_is_the_latest_of_all_sources(full_root: Path):
    last = logins(full_root).last
    assert last == {
        "alice": LastLogin("alice", county(2026, 11, 1, 12, 0), "gw.example", "pts/0", "wtmp"),
        "bob": LastLogin("bob", county(2026, 11, 3, 10, 0), "192.0.2.99", "pts/0", "lastlog2"),
        "carol": LastLogin("carol", county(2026, 11, 2, 8, 0), "203.0.113.4", "pts/7", "lastlog"),
        "dave": LastLogin("dave", county(2026, 10, 1, 0, 0), "local:tty2", "tty2", "lastlog2"),
    }


def test_lastlog_is_read_by_seeking_to_each_uid(tmp_path: Path):
    """UID 1000's record sits at 292000 bytes; a nominally huge sparse file is not read whole."""
    root = make_tree(tmp_path, {})
    path = root / "var/log/lastlog"
    sparse_lastlog(path, {1000: (utc(2026, 11, 20, 23, 59, 59), "pts/3", "192.0.2.8")})
    with open(path, "r+b") as handle:  # 4 GiB nominal size, as UID 4294967294 (nobody) makes it
        handle.truncate(4 * 1024**3)
    fact = logins(root)
    assert fact.sources == ["/var/log/lastlog"]
    assert fact.last == {"alice": LastLogin("alice", county(2026, 11, 21, 7, 59, 59), "192.0.2.8",
                                            "pts/3", "lastlog")}
    assert fact.sessions == [] and fact.earliest is None


def test_lastlog_uid_shared_by_two_names_is_noted(tmp_path: Path):
    root = make_tree(tmp_path, {"etc/passwd": PASSWD + "toor:x:0:0::/root:/bin/bash\n"})
    sparse_lastlog(root / "var/log/lastlog", {0: (utc(2026, 11, 1, 0, 0), "tty1", "")})
    fact = logins(root)
    assert fact.last["root"] == LastLogin("root", county(2026, 11, 1, 8, 0), "local:tty1", "tty1", "lastlog")
    assert "toor" not in fact.last
    assert fact.notes == ["/var/log/lastlog: UID 0 is shared by root, toor; its record is attributed to root"]


def test_lastlog2_is_opened_read_only_and_immutable(full_root: Path):
    db = full_root / "var/lib/lastlog/lastlog2.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    logins(full_root)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["lastlog2.db"]  # no -wal, -shm, -journal


def test_corrupt_lastlog2_is_noted_not_fatal(tmp_path: Path):
    root = make_tree(tmp_path, {
        "var/log/wtmp": ut(USER, "pts/0", "alice", "192.0.2.10", at=T_ALICE1, addr=v4("192.0.2.10")),
        "var/lib/lastlog/lastlog2.db": b"SQLite format 3\0" + b"\xff" * 4000,
    })
    fact = logins(root)
    assert fact.sources == ["/var/log/wtmp"]
    assert [n for n in fact.notes if n.startswith("/var/lib/lastlog/lastlog2.db: unusable (")] == fact.notes
    assert len(fact.notes) == 1
    assert fact.last["alice"].source == "wtmp"
    assert fact.sessions == [Session("alice", county(2026, 11, 1, 9, 0), None, "192.0.2.10", "pts/0",
                                     "192.0.2.10", None)]


def test_logout_matches_by_line_and_a_new_login_ends_an_open_one(tmp_path: Path):
    root = make_tree(tmp_path, {"var/log/wtmp": b"".join([
        ut(USER, "pts/0", "alice", "192.0.2.10", at=T_ALICE1, pid=10, addr=v4("192.0.2.10")),
        ut(USER, "pts/0", "bob", "192.0.2.11", at=T_BOB1, pid=11, addr=v4("192.0.2.11")),  # no logout before
        ut(DEAD, "pts/0", at=T_ALICE1_OUT, pid=12),  # pid differs: last still ends pts/0's session
        ut(USER, "pts/1", "", at=T_CAROL, pid=13),  # no user: a logout record of some writers
    ])})
    fact = logins(root)
    assert [(s.user, s.start, s.end, s.ended_by) for s in fact.sessions] == [
        ("alice", county(2026, 11, 1, 9, 0), county(2026, 11, 1, 9, 30), "login"),
        ("bob", county(2026, 11, 1, 9, 30), county(2026, 11, 1, 10, 0), "logout"),
    ]
    assert fact.notes == []


def test_records_as_sshd_getty_and_sysvinit_write_them(tmp_path: Path):
    """sshd writes two logout records per session (logout(3)+logwtmp, then its own), in any
    order with other sessions' records; getty's LOGIN_PROCESS records are no logins; sysvinit
    marks a shutdown as a change to runlevel 6 (the runlevel is the low byte of ut_pid)."""
    root = make_tree(tmp_path, {"var/log/wtmp": b"".join([
        ut(6, "tty1", "LOGIN", at=T_BOOT1, pid=50),  # LOGIN_PROCESS
        ut(USER, "pts/0", "alice", "192.0.2.10", at=T_ALICE1, pid=36, addr=v4("192.0.2.10")),
        ut(USER, "pts/1", "bob", "192.0.2.10", at=T_BOB1, pid=49, addr=v4("192.0.2.10")),
        ut(DEAD, "pts/1", at=T_ALICE1_OUT, pid=49),
        ut(DEAD, "pts/0", at=T_CAROL, pid=36),
        ut(DEAD, "pts/0", at=T_CAROL + 1, pid=36, addr=v4("192.0.2.10")),
        ut(DEAD, "pts/1", at=T_ALICE1_OUT + 1, pid=49, addr=v4("192.0.2.10")),  # written late
        ut(USER, "tty1", "carol", at=T_ALICE2, pid=50),
        ut(RUN_LVL, "~", "runlevel", at=T_BOOT3, pid=ord("6") + 256 * ord("5")),
    ])})
    fact = logins(root)
    assert [(s.user, s.line, s.start, s.end, s.ended_by) for s in fact.sessions] == [
        ("alice", "pts/0", county(2026, 11, 1, 9, 0), county(2026, 11, 1, 10, 15), "logout"),
        ("bob", "pts/1", county(2026, 11, 1, 9, 30), county(2026, 11, 1, 10, 0), "logout"),
        ("carol", "tty1", county(2026, 11, 1, 12, 0), county(2026, 11, 1, 13, 0), "shutdown"),
    ]
    assert set(fact.last) == {"alice", "bob", "carol"}  # not "LOGIN"


def test_times_are_county_time_across_midnight(tmp_path: Path):
    """16:30 UTC on 1 November is 00:30 on 2 November in Nanbu: the day matters for dormancy."""
    root = make_tree(tmp_path, {"var/log/wtmp": ut(USER, "pts/5", "alice", "h", at=T_WTMP_END)})
    session, = logins(root).sessions
    assert session.start == dt.datetime(2026, 11, 2, 0, 30) and session.start.tzinfo is None


def test_garbage_wtmp_is_noted(tmp_path: Path):
    root = make_tree(tmp_path, {"var/log/wtmp": b"\xff" * (384 * 3)})
    fact = logins(root)
    assert fact.sessions == [] and fact.sources == ["/var/log/wtmp"]
    assert fact.notes == ["/var/log/wtmp: 3 records of unknown type ignored (corrupt file?)"]


def test_empty_wtmp_covers_from_its_creation(tmp_path: Path):
    """As `last` says "wtmp begins" for an empty file: its ctime, which touch cannot backdate."""
    root = make_tree(tmp_path, {"var/log/wtmp": b""})
    os.utime(root / "var/log/wtmp", (T_BOOT1, T_BOOT1))  # an mtime is easily faked
    ctime = int((root / "var/log/wtmp").stat().st_ctime)
    fact = logins(root)
    assert fact.sources == ["/var/log/wtmp"] and fact.sessions == [] and fact.last == {}
    assert fact.earliest == dt.datetime.fromtimestamp(ctime, ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    assert fact.earliest != county(2026, 11, 1, 8, 0)


def test_no_usable_source_while_records_exist_is_an_error(tmp_path: Path):
    root = make_tree(tmp_path, {"var/log/messages": ""})
    (root / "var/log/wtmp").mkdir()  # unreadable as a file
    facts, errors = gather(Target(RootFS(root), AS_OF), ["logins"])
    assert "logins" not in facts
    assert errors["logins"].startswith("no usable login record: /var/log/wtmp: unreadable (")


def test_log_directory_without_login_records_is_an_error(tmp_path: Path):
    root = make_tree(tmp_path, {"var/log/messages": ""})
    facts, errors = gather(Target(RootFS(root), AS_OF), ["logins"])
    assert errors == {"logins": "no login record on the target: none of /var/log/wtmp, "
                                "/var/log/lastlog, /var/lib/lastlog/lastlog2.db"}


def test_tree_without_var_log_has_no_evidence(tmp_path: Path):
    fact = logins(make_tree(tmp_path, {}))
    assert (fact.sessions, fact.last, fact.sources, fact.earliest) == ([], {}, [], None)
    assert fact.notes == ["no /var/log on the target: no login evidence"]


def test_wtmp_reached_through_an_absolute_symlink_stays_in_the_root(tmp_path: Path):
    root = make_tree(tmp_path, {"srv/logs/wtmp": ut(USER, "pts/0", "alice", "x", at=T_ALICE1)})
    (root / "var/log").mkdir(parents=True)
    (root / "var/log/wtmp").symlink_to("/srv/logs/wtmp")  # resolves inside the target
    assert [s.user for s in logins(root).sessions] == ["alice"]


# ---------------------------------------------------------------------------- exemptions

EXEMPT = "etc/nanbu-secops/exemptions.yml"


def exemptions(tmp_path: Path, text: str | None):
    root = make_tree(tmp_path, {} if text is None else {EXEMPT: textwrap.dedent(text)})
    return gather(Target(RootFS(root), AS_OF), ["exemptions"])


VALID = """\
# 服务账号豁免
exemptions:
  - account: backup
    controls: [NS26-ACCT-010]
    owner: 张伟 (信息股)
    reason: 夜间备份服务账号
    expires: 2027-03-31

  - account: svc
    owner: 李娜 (网络中心)
    reason: "监控采集账号"
    expires: "2026-11-27"
"""


def test_exemptions_valid_and_expired(tmp_path: Path):
    facts, errors = exemptions(tmp_path, VALID)
    assert errors == {}
    fact = facts["exemptions"]
    backup = Exemption("backup", ("NS26-ACCT-010",), "张伟 (信息股)", "夜间备份服务账号",
                       dt.date(2027, 3, 31), 3)
    svc = Exemption("svc", None, "李娜 (网络中心)", "监控采集账号", dt.date(2026, 11, 27), 9)
    assert fact.entries == [backup, svc]
    assert fact.source == "/etc/nanbu-secops/exemptions.yml"

    assert fact.applies("backup", "NS26-ACCT-010", AS_OF) == backup
    assert fact.applies("backup", "NS26-ACCT-011", AS_OF) is None  # not a listed control
    assert fact.applies("backup", "NS26-ACCT-010", dt.date(2027, 3, 31)) == backup  # last valid day
    assert fact.applies("backup", "NS26-ACCT-010", dt.date(2027, 4, 1)) is None
    assert fact.applies("alice", "NS26-ACCT-010", AS_OF) is None
    # svc: every account control, but it lapsed the day before AS_OF
    assert fact.applies("svc", "NS26-ACCT-010", dt.date(2026, 11, 27)) == svc
    assert fact.applies("svc", "NS26-PASS-004", dt.date(2026, 11, 27)) is None  # not an account control
    assert fact.applies("svc", "NS26-ACCT-010", AS_OF) is None
    assert fact.expired(AS_OF) == [svc]
    assert fact.expired(dt.date(2026, 1, 1)) == []


def test_exemptions_missing_file(tmp_path: Path):
    facts, errors = exemptions(tmp_path, None)
    assert errors == {}
    assert facts["exemptions"].entries == [] and facts["exemptions"].source is None
    assert facts["exemptions"].applies("backup", "NS26-ACCT-010", AS_OF) is None


def test_exemptions_empty_file(tmp_path: Path):
    facts, errors = exemptions(tmp_path, "# nothing exempted\n")
    assert errors == {} and facts["exemptions"].entries == []
    assert facts["exemptions"].source == "/etc/nanbu-secops/exemptions.yml"


@pytest.mark.parametrize(("text", "error"), [
    ("""\
     exemptions:
       - account: backup
         reason: 备份
         expires: 2027-03-31
     """, "2: exemption is missing 'owner'"),
    ("""\
     exemptions:
       - account: backup
         owner: 张伟
         reason: 备份
         expires: 2027-02-30
     """, "5: invalid value '2027-02-30' (day is out of range for month)"),
    ("""\
     exemptions:
       - account: backup
         owner: 张伟
         reason: 备份
         expires: next spring
     """, "5: expires 'next spring' is not a date (YYYY-MM-DD)"),
    ("""\
     exemptions:
       - account: backup
         owner: 张伟
         reason: 备份
         expires: 2027-03-31
         approved_by: 王五
     """, "6: unknown key 'approved_by' (allowed: account, controls, expires, owner, reason)"),
    ("""\
     exemptions:
       - account: backup
         controls: NS26-ACCT-010
         owner: 张伟
         reason: 备份
         expires: 2027-03-31
     """, "3: controls must be a non-empty list of control ids; leave it out to exempt from every account control"),
    ("""\
     exemptions:
       - account: backup
         owner: ""
         reason: 备份
         expires: 2027-03-31
     """, "3: owner must be non-empty text"),
    ("""\
     exemptions:
       - account: backup
         owner: 张伟
         owner: 李娜
         reason: 备份
         expires: 2027-03-31
     """, "4: exemption: duplicate key 'owner'"),
    ("""\
     exemption:
       - account: backup
     """, "1: unknown key 'exemption' (expected 'exemptions')"),
    ("""\
     exemptions:
       - account: backup
         owner: [张伟
     """, "4: malformed YAML: while parsing a flow sequence expected ',' or ']', but got '<stream end>'"),
])
def test_exemptions_malformed_with_line(tmp_path: Path, text: str, error: str):
    facts, errors = exemptions(tmp_path, text)
    assert "exemptions" not in facts
    assert errors == {"exemptions": f"/etc/nanbu-secops/exemptions.yml:{error}"}
