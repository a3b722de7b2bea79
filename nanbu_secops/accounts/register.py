"""The reinstatement register: who reopened which dormant account, on whose written word.

Article 26: an account not logged in for 3 consecutive months is disabled by the county office,
and reopening it needs a written explanation (书面情况说明) from the unit. Every reopening is
recorded here before the account is unlocked (playbooks/unlock_account.yml refuses otherwise).

Format: an append-only JSON Lines file, one entry per line, each line the canonical JSON
(``json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))``, UTF-8, "\\n")
of::

    {"seq": 1, "time": "2026-11-28T09:30:00+08:00", "account": "bob", "host": "h01" | null,
     "unit": "u_shengzhong" | null, "approved_by": "...",
     "explanation": {"file": "basename", "sha256": "<hex of the file's bytes>", "text": "<full text>"},
     "prev": "<hex sha256 of the previous line's bytes, without its newline; 64 zeros on line 1>",
     "hash": "<hex sha256 of the canonical JSON of this entry without its "hash" key>"}

``host`` is the terminal (its Ansible inventory name); null means a platform account.

Beside the register lives ``REGISTER.head`` (e.g. ``reinstatements.jsonl.head``), holding
``{"entries": n, "hash": "<hash of the last entry>"}``, rewritten atomically after each append.

What this detects: an edited entry (its hash no longer matches), an entry removed, reordered,
duplicated or inserted in the middle (``seq`` and ``prev`` break at that line), a truncated or
garbled line, and - through the head file, as long as it is intact - the removal of the LAST
entries, which a bare hash chain cannot show. What it cannot stop: someone with write access who
rewrites the whole file, recomputes every hash and rewrites the head as well produces a register
that verifies. Only signatures with a key the forger does not hold can stop that; entries will be
signed once the incident-bundle keys exist. Until then keep the register where only the county
office can write, and keep copies elsewhere (an old copy must stay a prefix of the current one).

A crash between writing an entry and rewriting the head leaves the head one entry behind;
``verify`` then reports the last line as "not recorded in the head file" and appends are refused
until a person has looked at it (and fixed the head by hand).

Appends hold an exclusive ``flock`` on the register for the whole verify-append-head cycle, so
concurrent appends (two operators, two processes) serialise cleanly; ``verify`` and ``find`` hold
a shared lock while reading, so they never see half an append.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nanbu_secops import timeutil
from nanbu_secops.errors import InputError
from nanbu_secops.fileutil import atomic_write, fsync_dir, make_private_dir, require_private_dir

GENESIS = "0" * 64
FIELDS = frozenset({"seq", "time", "account", "host", "unit", "approved_by", "explanation", "prev", "hash"})
EXPLANATION_FIELDS = frozenset({"file", "sha256", "text"})
MAX_EXPLANATION_BYTES = 1024 * 1024
FILE_MODE = 0o640
DIR_MODE = 0o750  # the register's folder, when append creates it
# C0 controls other than tab, newline, form feed and carriage return: a sign of a binary file.
_BINARY_CONTROLS = frozenset(range(0x00, 0x20)) - {0x09, 0x0A, 0x0C, 0x0D}


def canonical(obj: Any) -> str:
    """The one JSON form entries are hashed and written in."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_hash(entry: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of the entry without its ``hash`` key."""
    return sha256_hex(canonical({k: v for k, v in entry.items() if k != "hash"}).encode("utf-8"))


def head_path(register: Path) -> Path:
    """``REGISTER.head`` beside the register."""
    register = Path(register)
    return register.with_name(register.name + ".head")


@dataclass(frozen=True)
class Problem:
    line: int | None  # 1-based line of the register; None for the head file or the whole file
    message: str  # already names the line, e.g. "line 3: hash mismatch (entry edited)"

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int  # lines in the register (each should be one entry)
    problems: list[str] = field(default_factory=list)
    last_hash: str | None = None  # hash of the last entry when the register is ok and not empty
    first_bad_line: int | None = None  # lowest line named by a problem, for error messages


@dataclass(frozen=True)
class _Parsed:
    result: VerifyResult
    entries: list[dict[str, Any]]  # the entries, only meaningful when result.ok
    last_line: bytes | None  # bytes of the last line (without newline), for the next prev


# ------------------------------------------------------------------------------- verify


def _check(data: bytes, head: bytes | None, register: Path) -> _Parsed:
    """Verify register bytes and head bytes (None: no head file)."""
    problems: list[Problem] = []

    def bad(line: int | None, message: str) -> None:
        problems.append(Problem(line, message))

    lines = data.split(b"\n")
    truncated = lines[-1] != b""
    if not truncated:
        lines.pop()  # the empty piece after the final newline
    entries: list[dict[str, Any]] = []
    previous_line: bytes | None = None
    previous_number = 0
    previous_seq = 0
    seen_hashes: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        try:
            entry = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, ValueError):
            entry = None
            bad(number, f"line {number}: not valid JSON")
        else:
            if entry is None:
                bad(number, f"line {number}: empty line (not an entry)")
        if not isinstance(entry, dict):
            if entry is not None:
                bad(number, f"line {number}: not a JSON object")
            continue  # the next entry is compared with the last one that could be read
        missing, extra = FIELDS - entry.keys(), entry.keys() - FIELDS
        if missing or extra:
            what = ", ".join([f"missing {sorted(missing)}"] * bool(missing) + [f"unexpected {sorted(extra)}"] * bool(extra))
            bad(number, f"line {number}: not a register entry ({what})")
        if entry_hash(entry) != entry.get("hash"):
            bad(number, f"line {number}: hash mismatch (entry edited)")
        elif canonical(entry).encode("utf-8") != raw:
            bad(number, f"line {number}: not in canonical JSON form (line rewritten)")
        seq = entry.get("seq")
        expected = previous_seq + 1
        if not isinstance(seq, int) or isinstance(seq, bool) or seq != expected:
            bad(number, f"line {number}: seq {seq!r} where {expected} expected")
        own = entry.get("hash")
        if isinstance(own, str) and own in seen_hashes:
            bad(number, f"line {number}: duplicate of line {seen_hashes[own]}")
        elif isinstance(own, str):
            seen_hashes[own] = number
        want_prev = GENESIS if previous_line is None else sha256_hex(previous_line)
        if entry.get("prev") != want_prev:
            if previous_line is None:
                bad(number, f"line {number}: prev is not the start of the chain (entries before it were removed)")
            else:
                bad(number, f"line {number}: prev does not match line {previous_number} "
                            "(an entry was removed or reordered)")
        explanation = entry.get("explanation")
        if not (isinstance(explanation, dict) and explanation.keys() == EXPLANATION_FIELDS
                and isinstance(explanation.get("text"), str)
                and sha256_hex(explanation["text"].encode("utf-8")) == explanation.get("sha256")):
            bad(number, f"line {number}: explanation does not match its sha256")
        entries.append(entry)
        previous_line, previous_number = raw, number
        previous_seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else expected
    if truncated:
        bad(len(lines), f"line {len(lines)}: last line has no newline (truncated)")

    count = len(lines)
    last_hash = entries[-1].get("hash") if entries and len(entries) == count else None
    hp = head_path(register)
    if head is None:
        if count:
            bad(None, f"{hp.name}: missing (cannot tell whether the last entries were removed)")
    else:
        try:
            recorded = json.loads(head.decode("utf-8"))
            n, h = recorded["entries"], recorded["hash"]
            if not isinstance(n, int) or isinstance(n, bool) or n < 0 or not (h is None or isinstance(h, str)):
                raise ValueError
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            bad(None, f"{hp.name}: not a valid head file")
        else:
            if count < n:
                bad(count + 1, f"line {count + 1}: missing: {hp.name} records {n} entries, the register has "
                               f"{count} (the last entries were removed)")
            elif count > n:
                bad(n + 1, f"line {n + 1}: not recorded in {hp.name} ({n} entries recorded, {count} present: "
                           f"appended without updating the head, or a crash between the two)")
            elif count and not truncated:
                actual = entries[-1].get("hash") if len(entries) == count else None
                if actual != h:
                    bad(count, f"line {count}: hash differs from {hp.name} (the last entry was replaced)")
    numbered = [p.line for p in problems if p.line is not None]
    ok = not problems
    return _Parsed(
        VerifyResult(ok=ok, entries=count, problems=[str(p) for p in problems],
                     last_hash=last_hash if ok else None, first_bad_line=min(numbered) if numbered else None),
        entries if ok else [],
        lines[-1] if lines and ok else None,
    )


@contextlib.contextmanager
def _locked_read(register: Path) -> Iterator[tuple[bytes, bytes | None] | None]:
    """(register bytes, head bytes or None) read under a shared lock; None if no register."""
    try:
        fd = os.open(register, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = None
    except OSError as exc:
        raise InputError(f"cannot read the register: {exc.strerror}", register) from None
    if fd is None:
        yield None
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
        yield data, _read_head(register)
    finally:
        os.close(fd)


def _read_head(register: Path) -> bytes | None:
    try:
        return head_path(register).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"cannot read the head file: {exc.strerror}", head_path(register)) from None


def _verify_parsed(register: Path) -> _Parsed:
    register = Path(register)
    if register.parent.is_dir():  # others able to write there could swap the register and its head
        require_private_dir(register.parent, "register folder")
    with _locked_read(register) as read:
        if read is None:
            head = _read_head(register)
            if head is None:
                return _Parsed(VerifyResult(ok=True, entries=0), [], None)  # nothing recorded yet
            return _Parsed(VerifyResult(ok=False, entries=0, problems=[
                f"{register.name}: missing, but {head_path(register).name} exists (the register was deleted)"]),
                [], None)
        return _check(*read, register)


def verify(register: Path) -> VerifyResult:
    """Check the whole chain and the head file. A register that does not exist yet (and has no
    head file) is ok with 0 entries: nothing has been reinstated."""
    return _verify_parsed(register).result


def _broken(register: Path, result: VerifyResult) -> InputError:
    return InputError(f"the register fails verification: {'; '.join(result.problems)}", register,
                      result.first_bad_line)


def find(register: Path, account: str | None = None, host: str | None = None,
         since: dt.date | None = None) -> list[dict[str, Any]]:
    """Entries for ``account`` and/or terminal ``host`` (a platform-account entry, host null,
    matches no host), recorded on or after ``since`` (county date) when given; lock_dormant.yml
    asks for the recent ones, to leave a reopened account open until its holder first logs in.
    Raises InputError when the register is broken."""
    parsed = _verify_parsed(Path(register))
    if not parsed.result.ok:
        raise _broken(Path(register), parsed.result)
    return [e for e in parsed.entries
            if (account is None or e["account"] == account) and (host is None or e["host"] == host)
            and (since is None or dt.datetime.fromisoformat(e["time"]).astimezone(timeutil.COUNTY_TZ).date() >= since)]


# ------------------------------------------------------------------------------- append


def _read_explanation(path: Path) -> dict[str, str]:
    path = Path(path)
    try:
        if path.is_dir():
            raise InputError("explanation: is a folder, not a text file", path)
        with path.open("rb") as handle:
            data = handle.read(MAX_EXPLANATION_BYTES + 1)
    except FileNotFoundError:
        raise InputError("explanation: file not found", path) from None
    except OSError as exc:
        raise InputError(f"explanation: cannot read: {exc.strerror}", path) from None
    if len(data) > MAX_EXPLANATION_BYTES:
        raise InputError(f"explanation: larger than {MAX_EXPLANATION_BYTES // 1024} KiB; record a text version", path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"explanation: not UTF-8 text (byte {exc.start}); scan or convert it to a UTF-8 "
                         "text file first", path) from None
    if any(ord(ch) in _BINARY_CONTROLS for ch in text):
        raise InputError("explanation: looks binary (control characters); a UTF-8 text file is needed", path)
    if not text.strip():
        raise InputError("explanation: is empty", path)
    return {"file": path.name, "sha256": sha256_hex(data), "text": text}


def _text_field(name: str, value: object, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name}: must be a non-empty text")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InputError(f"{name}: must not contain control characters or line breaks")
    return value


def _write_head(register: Path, entries: int, last_hash: str) -> None:
    """Rewrite the head file atomically (temp file, fsync, rename, fsync of the folder)."""
    atomic_write(head_path(register), (canonical({"entries": entries, "hash": last_hash}) + "\n").encode("utf-8"),
                 FILE_MODE)


def append(register: Path, *, account: str, explanation: Path, approved_by: str, host: str | None = None,
           unit: str | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """Verify the register, then append one entry (fsync'ed) and rewrite the head file.

    Refuses (InputError) when the existing register is broken, or when the explanation is
    missing, empty, binary or too large. Creates the register (mode 0640) when missing.
    """
    register = Path(register)
    account = _text_field("account", account)
    approved_by = _text_field("approved_by", approved_by)
    host = _text_field("host", host, optional=True)
    unit = _text_field("unit", unit, optional=True)
    explained = _read_explanation(explanation)
    moment = now or timeutil.now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timeutil.COUNTY_TZ)  # a naive time means county time
    moment = moment.astimezone(timeutil.COUNTY_TZ)
    make_private_dir(register.parent, DIR_MODE, "register folder")

    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
    try:
        fd = os.open(register, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.fchmod(fd, FILE_MODE)  # exactly 0640 whatever the umask
        fsync_dir(register.parent)
    except FileExistsError:
        fd = os.open(register, flags)
    except OSError as exc:
        raise InputError(f"cannot create the register: {exc.strerror}", register) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0) if size else b""
        parsed = _check(data, _read_head(register), register)
        if not parsed.result.ok:
            raise _broken(register, parsed.result)
        entry: dict[str, Any] = {
            "seq": parsed.result.entries + 1,
            "time": timeutil.rfc3339(moment),
            "account": account,
            "host": host,
            "unit": unit,
            "approved_by": approved_by,
            "explanation": explained,
            "prev": GENESIS if parsed.last_line is None else sha256_hex(parsed.last_line),
        }
        entry["hash"] = entry_hash(entry)
        line = (canonical(entry) + "\n").encode("utf-8")
        written = os.write(fd, line)
        if written != len(line):  # a short write on a regular file: disk full
            raise InputError(f"short write ({written} of {len(line)} bytes): the register needs repair", register)
        os.fsync(fd)
        _write_head(register, entry["seq"], entry["hash"])
        return entry
    finally:
        os.close(fd)  # releases the lock


# --------------------------------------------------------------------------------- main
