"""NS26-ACCT-010/011/012 on crafted roots: dormant, shared and exempted local accounts."""

from __future__ import annotations

import datetime as dt
import json
import struct
from pathlib import Path

import pytest

from nanbu_secops.cli import main
from nanbu_secops.timeutil import COUNTY_TZ
from tests.roots import AS_OF, PASSWD, days_ago, make_root, shadow

UTMP = struct.Struct("<h2xi32s4s32s256shhiii16s20s")


def record(kind: int, user: str, line: str, host: str, when: dt.datetime, pid: int) -> bytes:
    epoch = int(when.replace(tzinfo=COUNTY_TZ).timestamp())
    return UTMP.pack(kind, pid, line.encode(), line[-4:].encode(), user.encode(), host.encode(), 0, 0, 0, epoch, 0,
                     bytes(16), b"")


def session(user: str, line: str, host: str, start: dt.datetime, minutes: int, pid: int) -> bytes:
    return (record(7, user, line, host, start, pid)
            + record(8, "", line, "", start + dt.timedelta(minutes=minutes), pid))


def check(root: Path, capsys: pytest.CaptureFixture[str], control: str) -> dict:
    main(["check", "--root", str(root), "--as-of", AS_OF.isoformat(), "--format", "json", "--only", control])
    return json.loads(capsys.readouterr().out)["results"][0]


T = dt.datetime
PASSWD_BOB = PASSWD + "bob:x:1001:1001::/home/bob:/bin/bash\nsvc2:x:1002:1002::/srv:/bin/bash\n"
SHADOW_BOB = shadow() + f"bob:$6$x$y:{days_ago(400)}:1:90:7:::\nsvc2:$6$x$y:{days_ago(400)}:1:90:7:::\n"


def root_with(tmp_path: Path, wtmp: bytes, exemptions: str | None = None) -> Path:
    root = make_root(tmp_path, {"etc/passwd": PASSWD_BOB, "etc/shadow": SHADOW_BOB,
                                "etc/nanbu-secops/exemptions.yml": exemptions})
    (root / "var/log/wtmp").write_bytes(wtmp)
    return root


def test_dormant_local_account(tmp_path, capsys):
    wtmp = (session("alice", "pts/0", "10.0.0.5", T(2026, 11, 20, 9), 30, 10)
            + session("bob", "pts/1", "10.0.0.6", T(2026, 8, 27, 23, 0), 30, 11))  # before the cut 2026-08-28
    result = check(root_with(tmp_path, wtmp), capsys, "NS26-ACCT-010")
    assert result["status"] == "fail"
    assert result["evidence"]["cut"] == "2026-08-28"
    dormant = {d["account"]: d for d in result["evidence"]["dormant"]}
    assert set(dormant) == {"bob", "svc2"}  # svc2 never logged in, created long before the cut
    assert dormant["bob"]["last_login"] == "2026-08-27T23:00:00" and dormant["bob"]["source"] == "wtmp"
    assert dormant["svc2"]["source"] == "never"


def test_login_on_the_cut_day_is_not_dormant_and_exemptions_apply(tmp_path, capsys):
    wtmp = (session("alice", "pts/0", "10.0.0.5", T(2026, 11, 20, 9), 30, 10)
            + session("bob", "pts/1", "10.0.0.6", T(2026, 8, 28, 0, 0), 30, 11))
    exemptions = ("exemptions:\n  - account: svc2\n    owner: 张伟\n    reason: 备份服务\n"
                  "    expires: 2027-03-31\n")
    result = check(root_with(tmp_path, wtmp, exemptions), capsys, "NS26-ACCT-010")
    assert result["status"] == "pass", result
    assert [e["account"] for e in result["evidence"]["exempted"]] == ["svc2"]


def test_shared_local_account(tmp_path, capsys):
    wtmp = (record(7, "alice", "pts/0", "10.0.0.5", T(2026, 11, 20, 9), 10)
            + record(7, "alice", "pts/1", "10.0.0.9", T(2026, 11, 20, 9, 10), 11)  # overlaps, other terminal
            + record(8, "", "pts/0", "", T(2026, 11, 20, 9, 30), 10)
            + record(8, "", "pts/1", "", T(2026, 11, 20, 9, 40), 11)
            + session("bob", "pts/2", "10.0.0.6", T(2026, 11, 21, 9), 30, 12)
            + session("bob", "pts/2", "10.0.0.7", T(2026, 11, 21, 9, 30), 30, 13))  # touching: not shared
    result = check(root_with(tmp_path, wtmp), capsys, "NS26-ACCT-011")
    assert result["status"] == "fail"
    shared = result["evidence"]["shared"]
    assert [s["account"] for s in shared] == ["alice"] and shared[0]["overlaps"] == 1
    assert {shared[0]["pairs"][0]["first"]["terminal"], shared[0]["pairs"][0]["second"]["terminal"]} == {
        "10.0.0.5", "10.0.0.9"}


def test_expired_exemption_is_a_finding(tmp_path, capsys):
    exemptions = ("exemptions:\n  - account: svc2\n    owner: 张伟\n    reason: 备份服务\n"
                  "    expires: 2026-11-27\n")
    result = check(root_with(tmp_path, b"", exemptions), capsys, "NS26-ACCT-012")
    assert result["status"] == "fail"
    assert result["evidence"]["expired"][0]["account"] == "svc2"
    assert result["evidence"]["expired"][0]["line"] == 2


def test_no_login_records_at_all_is_an_error_not_a_pass(tmp_path, capsys):
    root = root_with(tmp_path, b"")
    (root / "var/log/wtmp").unlink()
    result = check(root, capsys, "NS26-ACCT-010")
    assert result["status"] == "error"
