"""nanbu_secops/accounts/register.py: the append-only, hash-chained reinstatement register.

Every tamper is made on a copy of a good register and must be detected with the line named.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nanbu_secops.accounts import register as reg
from nanbu_secops.errors import InputError
from nanbu_secops.timeutil import COUNTY_TZ

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2026, 11, 28, 9, 30, tzinfo=COUNTY_TZ)
ENTRIES = [  # account, host, unit, approver
    ("bob", "h01", "u_shengzhong", "王主任"),
    ("carol", "h01", "u_shengzhong", "王主任"),
    ("bob", "h02", "u_county_health", "李科长"),
    ("zhangsan", None, "u_county_health", "李科长"),  # platform account
    ("dave", "h02", None, "county-office"),
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def explanation(tmp_path: Path) -> Path:
    return write(tmp_path / "说明-bob.txt", "关于恢复 bob 账号的书面情况说明\n本人休产假返岗，申请恢复。\n单位盖章\n")


@pytest.fixture
def good(tmp_path: Path, explanation: Path) -> Path:
    """A register with five entries, verified ok."""
    path = tmp_path / "good" / "reinstatements.jsonl"
    path.parent.mkdir()
    for i, (account, host, unit, approver) in enumerate(ENTRIES):
        reg.append(path, account=account, explanation=explanation, approved_by=approver, host=host, unit=unit,
                   now=NOW + dt.timedelta(minutes=i))
    return path


def copy(good: Path, tmp_path: Path, name: str = "t") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for f in (good, reg.head_path(good)):
        shutil.copy2(f, folder / f.name)
    return folder / good.name


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def put(path: Path, parts: list[bytes]) -> None:
    path.write_bytes(b"".join(parts))


def assert_detected(path: Path, line: int | None, *fragments: str) -> reg.VerifyResult:
    result = reg.verify(path)
    assert not result.ok, result
    prefix = f"line {line}:" if line is not None else ""
    hits = [p for p in result.problems if p.startswith(prefix) and all(f in p for f in fragments)]
    assert hits, f"want a problem starting {prefix!r} with {fragments}: {result.problems}"
    return result


def edit_entry(path: Path, number: int, change) -> None:
    """Change the entry on 1-based line ``number`` but keep its old hash (a plain edit)."""
    parts = lines(path)
    entry = json.loads(parts[number - 1])
    change(entry)
    parts[number - 1] = (reg.canonical(entry) + "\n").encode()
    put(path, parts)


def flip(text: str) -> str:
    return ("X" if text[0] != "X" else "Y") + text[1:]


# ------------------------------------------------------------------------ good register


def test_append_builds_a_verified_chain(good: Path, explanation: Path):
    result = reg.verify(good)
    assert result.ok and result.problems == [] and result.entries == len(ENTRIES)
    parts = lines(good)
    entries = [json.loads(p) for p in parts]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev"] == "0" * 64
    for before, after in zip(parts, entries[1:], strict=False):
        assert after["prev"] == reg.sha256_hex(before.rstrip(b"\n"))
    for raw, e in zip(parts, entries, strict=False):
        assert raw == (reg.canonical(e) + "\n").encode()  # canonical, one line each
        assert e["hash"] == reg.sha256_hex(reg.canonical({k: v for k, v in e.items() if k != "hash"}).encode())
    first = entries[0]
    assert first["time"] == "2026-11-28T09:30:00+08:00"
    assert (first["account"], first["host"], first["unit"], first["approved_by"]) == ENTRIES[0]
    assert first["explanation"] == {"file": explanation.name, "text": explanation.read_text(encoding="utf-8"),
                                    "sha256": reg.sha256_hex(explanation.read_bytes())}
    assert entries[3]["host"] is None
    assert "本人休产假返岗" in parts[0].decode()  # ensure_ascii=False: readable in the file
    head = json.loads(reg.head_path(good).read_text())
    assert head == {"entries": 5, "hash": entries[-1]["hash"]}
    assert result.last_hash == entries[-1]["hash"]
    assert stat.S_IMODE(good.stat().st_mode) == 0o640


def test_new_register_is_0640_whatever_the_umask(tmp_path: Path, explanation: Path):
    old = os.umask(0o000)
    try:
        path = tmp_path / "r.jsonl"
        reg.append(path, account="bob", explanation=explanation, approved_by="x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(reg.head_path(path).stat().st_mode) == 0o640


def test_time_is_county_time(tmp_path: Path, explanation: Path):
    path = tmp_path / "r.jsonl"
    utc = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.UTC)
    assert reg.append(path, account="a", explanation=explanation, approved_by="x", now=utc)["time"] == \
        "2026-11-28T09:00:00+08:00"
    assert reg.append(path, account="a", explanation=explanation, approved_by="x")["time"].endswith("+08:00")


def test_missing_register_is_empty_and_ok(tmp_path: Path):
    result = reg.verify(tmp_path / "none.jsonl")
    assert result.ok and result.entries == 0
    assert reg.find(tmp_path / "none.jsonl", "bob") == []


def test_find(good: Path):
    assert [e["seq"] for e in reg.find(good, "bob")] == [1, 3]
    assert [e["seq"] for e in reg.find(good, "bob", "h02")] == [3]
    assert reg.find(good, "bob", "h03") == []
    assert reg.find(good, "zhangsan", "h01") == []  # a platform-account entry is not a terminal's
    assert [e["seq"] for e in reg.find(good, "zhangsan")] == [4]
    assert [e["seq"] for e in reg.find(good, host="h02")] == [3, 5]  # every account on a terminal


def test_find_since_a_county_day(tmp_path: Path, explanation: Path):
    """``since`` compares county dates: 2026-11-27T23:30 UTC is already the 28th in Nanbu."""
    path = tmp_path / "r.jsonl"
    for account, moment in (("old", dt.datetime(2026, 11, 1, 9, 0, tzinfo=COUNTY_TZ)),
                            ("edge", dt.datetime(2026, 11, 27, 23, 30, tzinfo=dt.UTC)),
                            ("new", dt.datetime(2026, 11, 28, 10, 0, tzinfo=COUNTY_TZ))):
        reg.append(path, account=account, host="h01", explanation=explanation, approved_by="x", now=moment)
    assert [e["account"] for e in reg.find(path, host="h01", since=dt.date(2026, 11, 28))] == ["edge", "new"]
    assert [e["account"] for e in reg.find(path, host="h01", since=dt.date(2026, 11, 29))] == []
    assert len(reg.find(path, host="h01", since=dt.date(2026, 11, 1))) == 3


# ------------------------------------------------------------------------------ tampers


@pytest.mark.parametrize("number", range(1, len(ENTRIES) + 1))
@pytest.mark.parametrize("what", ["account", "approved_by", "text", "host", "time", "seq"])
def test_editing_any_field_of_any_entry_is_detected(good: Path, tmp_path: Path, number: int, what: str):
    path = copy(good, tmp_path)

    def change(e):
        if what == "text":
            e["explanation"]["text"] = flip(e["explanation"]["text"])
        elif what == "host":
            e["host"] = "h09"
        elif what == "seq":
            e["seq"] = e["seq"] + 10
        else:
            e[what] = flip(e[what])

    edit_entry(path, number, change)
    assert_detected(path, number, "hash mismatch (entry edited)")
    with pytest.raises(InputError) as info:
        reg.find(path, "bob")
    assert info.value.line == number


def test_edit_with_recomputed_hash_breaks_the_next_prev(good: Path, tmp_path: Path):
    path = copy(good, tmp_path)
    parts = lines(path)
    entry = json.loads(parts[1])
    entry["approved_by"] = "forger"
    entry["hash"] = reg.entry_hash(entry)
    parts[1] = (reg.canonical(entry) + "\n").encode()
    put(path, parts)
    assert_detected(path, 3, "prev does not match line 2")


def test_non_canonical_rewrite_is_detected(good: Path, tmp_path: Path):
    path = copy(good, tmp_path)
    parts = lines(path)
    parts[1] = (json.dumps(json.loads(parts[1]), ensure_ascii=True) + "\n").encode()  # same content
    put(path, parts)
    result = assert_detected(path, 2, "not in canonical JSON form")
    assert any(p.startswith("line 3: prev does not match line 2") for p in result.problems)


def test_deleting_a_middle_line(good: Path, tmp_path: Path):
    path = copy(good, tmp_path)
    parts = lines(path)
    del parts[2]
    put(path, parts)
    assert_detected(path, 3, "seq 4 where 3 expected")
    assert_detected(path, 3, "prev does not match line 2 (an entry was removed or reordered)")


def test_deleting_the_first_line(good: Path, tmp_path: Path):
    path = copy(good, tmp_path)
    put(path, lines(path)[1:])
    assert_detected(path, 1, "prev is not the start of the chain")
    assert_detected(path, 1, "seq 2 where 1 expected")


def test_deleting_the_last_line_is_caught_by_the_head(good: Path, tmp_path: Path):
    path = copy(good, tmp_path)
    put(path, lines(path)[:-1])
    result = assert_detected(path, 5, "missing", "records 5 entries", "the register has 4")
    assert len(result.problems) == 1  # the chain itself is intact: only the head shows it


def test_deleting_the_head_file_is_reported(good: Path, tmp_path: Path):
    path = copy(good, tmp_path)
    reg.head_path(path).unlink()
    assert_detected(path, None, "reinstatements.jsonl.head: missing")


def test_deleting_the_register_but_not_the_head(good: Path, tmp_path: Path):
    path = copy(good, tmp_path)
    path.unlink()
    assert_detected(path, None, "missing, but", "head exists")


def test_replacing_the_last_line_with_a_valid_one(good: Path, tmp_path: Path):
    """A forged last entry chained correctly: only the head's hash can tell."""
    path = copy(good, tmp_path)
    parts = lines(path)
    entry = json.loads(parts[-1])
    entry["approved_by"] = "forger"
    entry["hash"] = reg.entry_hash(entry)
    parts[-1] = (reg.canonical(entry) + "\n").encode()
    put(path, parts)
    assert_detected(path, 5, "hash differs from reinstatements.jsonl.head")


def test_swapping_two_lines(good: Path, tmp_path: Path):
    path = copy(good, tmp_path)
    parts = lines(path)
    parts[1], parts[2] = parts[2], parts[1]
    put(path, parts)
    assert_detected(path, 2, "seq 3 where 2 expected")
    assert_detected(path, 2, "prev does not match line 1")
    assert_detected(path, 3, "prev does not match line 2")


def test_duplicating_a_line(good: Path, tmp_path: Path):
    path = copy(good, tmp_path)
    parts = lines(path)
    parts.insert(2, parts[1])
    put(path, parts)
    assert_detected(path, 3, "duplicate of line 2")
    assert_detected(path, 3, "seq 2 where 3 expected")


def test_truncating_mid_line(good: Path, tmp_path: Path):
    path = copy(good, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    result = assert_detected(path, 5, "not valid JSON")
    assert any(p.startswith("line 5: last line has no newline (truncated)") for p in result.problems)


def test_missing_final_newline_alone(good: Path, tmp_path: Path):
    path = copy(good, tmp_path)
    path.write_bytes(path.read_bytes()[:-1])
    assert_detected(path, 5, "last line has no newline (truncated)")


def test_inserting_a_forged_line_with_its_own_hash(good: Path, tmp_path: Path):
    """The forger copies the chain's form: right seq, a recomputed own hash, prev of the line before."""
    path = copy(good, tmp_path)
    parts = lines(path)
    forged = json.loads(parts[1])
    forged.update(account="mallory", approved_by="nobody", seq=3, prev=reg.sha256_hex(parts[1].rstrip(b"\n")))
    forged["hash"] = reg.entry_hash(forged)
    parts.insert(2, (reg.canonical(forged) + "\n").encode())
    put(path, parts)
    assert reg.entry_hash(json.loads(parts[2])) == forged["hash"]  # its own hash is right...
    assert_detected(path, 4, "prev does not match line 3")  # ...but the next line no longer chains
    assert_detected(path, 4, "seq 3 where 4 expected")


def test_appending_a_forged_line_without_the_head(good: Path, tmp_path: Path):
    path = copy(good, tmp_path)
    parts = lines(path)
    forged = json.loads(parts[-1])
    forged.update(account="mallory", seq=6, prev=reg.sha256_hex(parts[-1].rstrip(b"\n")))
    forged["hash"] = reg.entry_hash(forged)
    parts.append((reg.canonical(forged) + "\n").encode())
    put(path, parts)
    assert_detected(path, 6, "not recorded in reinstatements.jsonl.head")


@pytest.mark.parametrize("garbage", [b"this is not json\n", b"\x00\xff\xfe\n", b"[1, 2]\n", b"\n"])
def test_garbage_line(good: Path, tmp_path: Path, garbage: bytes):
    path = copy(good, tmp_path)
    parts = lines(path)
    parts.insert(2, garbage)
    put(path, parts)
    result = reg.verify(path)
    assert not result.ok
    assert any(p.startswith("line 3:") for p in result.problems), result.problems


def test_garbled_head_file(good: Path, tmp_path: Path):
    path = copy(good, tmp_path)
    reg.head_path(path).write_text("{oops")
    assert_detected(path, None, "not a valid head file")


# ------------------------------------------------------------------------------ refusals


def test_append_refuses_a_broken_register(good: Path, tmp_path: Path, explanation: Path):
    path = copy(good, tmp_path)
    edit_entry(path, 2, lambda e: e.update(account=flip(e["account"])))
    before = path.read_bytes(), reg.head_path(path).read_bytes()
    with pytest.raises(InputError) as info:
        reg.append(path, account="eve", explanation=explanation, approved_by="x")
    assert info.value.line == 2
    assert "line 2: hash mismatch" in str(info.value)
    assert (path.read_bytes(), reg.head_path(path).read_bytes()) == before  # nothing written


def test_append_refuses_after_the_last_line_was_removed(good: Path, tmp_path: Path, explanation: Path):
    path = copy(good, tmp_path)
    put(path, lines(path)[:-1])
    with pytest.raises(InputError, match="last entries were removed"):
        reg.append(path, account="eve", explanation=explanation, approved_by="x")


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"  \n\t\n", "is empty"),
    (b"%PDF-1.7\n\x00\x01\x02binary", "looks binary"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
    ("GBK 编码的说明".encode("gbk"), "not UTF-8"),
])
def test_explanation_must_be_non_empty_text(tmp_path: Path, content: bytes, message: str):
    bad = tmp_path / "explanation.bin"
    bad.write_bytes(content)
    path = tmp_path / "r.jsonl"
    with pytest.raises(InputError, match=message) as info:
        reg.append(path, account="bob", explanation=bad, approved_by="x")
    assert info.value.source == str(bad)
    assert not reg.head_path(path).exists()


def test_missing_explanation(tmp_path: Path):
    with pytest.raises(InputError, match="file not found"):
        reg.append(tmp_path / "r.jsonl", account="bob", explanation=tmp_path / "nope.txt", approved_by="x")
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize("field, value", [("account", ""), ("account", "bob\nmallory"), ("approved_by", "  "),
                                          ("host", "")])
def test_bad_fields_refused(tmp_path: Path, explanation: Path, field: str, value: str):
    args = {"account": "bob", "approved_by": "x", "host": "h01", field: value}
    with pytest.raises(InputError, match=field):
        reg.append(tmp_path / "r.jsonl", explanation=explanation, **args)


# ---------------------------------------------------------------------------- concurrency


WORKER = """
import sys
from pathlib import Path
from nanbu_secops.accounts import register
path, who, explanation = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
for i in range(50):
    register.append(path, account=f"{who}{i}", explanation=explanation, approved_by=who, host="h01")
"""


def test_two_processes_append_concurrently(tmp_path: Path, explanation: Path):
    path = tmp_path / "r.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(path), who, str(explanation)], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for who in ("a", "b")]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    result = reg.verify(path)
    assert result.ok, result.problems
    assert result.entries == 100
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [e["seq"] for e in entries] == list(range(1, 101))
    assert {e["account"] for e in entries} == {f"{w}{i}" for w in "ab" for i in range(50)}
    # each writer's own entries stay in its order
    for who in "ab":
        mine = [int(e["account"][1:]) for e in entries if e["approved_by"] == who]
        assert mine == list(range(50))


# -------------------------------------------------------------------------------- module CLI


def run_module(*args: str) -> subprocess.CompletedProcess:
    """The register commands with their messages in English (the language test covers Chinese)."""
    return subprocess.run([sys.executable, "-m", "nanbu_secops", "accounts", "register", *args, "--lang", "en"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_cli_verify_and_find(good: Path, tmp_path: Path):
    done = run_module("verify", "--register", str(good))
    assert done.returncode == 0, done.stderr
    assert "ok (5 entries)" in done.stdout
    done = run_module("find", "--register", str(good), "--account", "bob", "--host", "h02")
    assert done.returncode == 0
    found = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(e["seq"], e["host"]) for e in found] == [(3, "h02")]
    done = run_module("find", "--register", str(good), "--account", "bob", "--host", "h03")
    assert done.returncode == 1 and done.stdout == ""
    # recent entries of a terminal: NOW is 2026-11-28 in the county
    done = run_module("find", "--register", str(good), "--host", "h02", "--within-days", "0", "--as-of", "2026-11-28")
    assert done.returncode == 0 and [json.loads(line)["seq"] for line in done.stdout.splitlines()] == [3, 5]
    done = run_module("find", "--register", str(good), "--host", "h02", "--within-days", "14", "--as-of", "2026-12-13")
    assert done.returncode == 1
    for bad, message in ((["--within-days", "-1", "--host", "h02"], "--within-days must be 0 or more"),
                         ([], "give --account, --host or both"),
                         (["--host", "h02", "--within-days", "3", "--as-of", "28.11.2026"], "--as-of:")):
        done = run_module("find", "--register", str(good), *bad)
        assert done.returncode == 2 and message in done.stderr, done.stderr

    broken = copy(good, tmp_path, "broken")
    edit_entry(broken, 3, lambda e: e.update(approved_by=flip(e["approved_by"])))
    done = run_module("verify", "--register", str(broken))
    assert done.returncode == 1
    assert "line 3: hash mismatch (entry edited)" in done.stderr
    done = run_module("find", "--register", str(broken), "--account", "bob")
    assert done.returncode == 2
    assert f"{broken}:3:" in done.stderr and "fails verification" in done.stderr


def test_cli_verify_of_a_missing_register_is_exit_2(tmp_path: Path):
    """A typo in --register must not read as "ok"; --missing-ok says a register not created yet is fine."""
    missing = tmp_path / "typo.jsonl"
    done = run_module("verify", "--register", str(missing))
    assert done.returncode == 2 and f"{missing}: no such register" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
    done = run_module("verify", "--register", str(missing), "--missing-ok")
    assert done.returncode == 0 and "ok (0 entries)" in done.stdout


def test_cli_verify_of_a_deleted_register_is_broken_not_missing(good: Path, tmp_path: Path):
    deleted = copy(good, tmp_path, "deleted")
    deleted.unlink()
    for extra in ([], ["--missing-ok"]):
        done = run_module("verify", "--register", str(deleted), *extra)
        assert done.returncode == 1 and "the register was deleted" in done.stderr, done.stderr
