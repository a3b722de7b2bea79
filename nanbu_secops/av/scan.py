"""Run one antivirus scan of chosen paths with ClamAV, optionally quarantine, and log it.

Which engine: clamdscan when clamd answers ``PING`` on the LocalSocket of clamd.conf and
clamdscan is installed (the signatures are already loaded: a scan starts at once), else
clamscan (loads the signatures itself: slower, but needs no daemon). clamdscan passes file
descriptors (``--fdpass``) because clamd runs as the ``clamav`` user and could not open
root's or other users' files by name. A clamd reachable only over TCP is not used.

What "completed" means: the engine went through every path to the end (exit 0 clean or 1
found) within the time limit. On timeout the engine's whole process group is killed (so no
scanner keeps running unseen) and the scan is recorded as not completed, with the
detections printed before the kill. Exit 2 of the engine (no database, unreadable paths...)
is a scan that did not complete, with the engine's own error lines as the reason.

Detections are reported, never deleted. With a quarantine folder each detected file is moved
there (mode 0600, folder 0700, a new name that cannot overwrite anything) after its sha256
is taken, and the record says where it went.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from nanbu_secops.av.records import Detection, ScanRecord, append
from nanbu_secops.collect import antivirus
from nanbu_secops.collect.rootfs import RootFS
from nanbu_secops.errors import InputError
from nanbu_secops.timeutil import now, rfc3339

CLAMD_CONF = Path("/etc/clamav/clamd.conf")
DEFAULT_DATABASE = Path("/var/lib/clamav")  # clamscan's built-in database folder on Debian
_SUMMARY = "----------- SCAN SUMMARY -----------"
_SCANNED = re.compile(r"^Scanned files: (\d+)$")  # clamscan only: clamdscan does not count


@dataclass(frozen=True)
class Engine:
    """The command that will scan, and the signature version line it will scan with."""

    name: str               # "clamdscan" or "clamscan"
    argv: list[str]         # without the paths
    database: str           # e.g. "ClamAV 1.4.6/27000/Sun Nov 29 03:05:28 2026"


def clamd_socket(conf: Path) -> str | None:
    """clamd's LocalSocket as clamd.conf sets it (the last setting wins, as in clamd), if any.

    A clamd reachable only over TCP is not used: clamdscan's --fdpass needs a local socket.
    """
    try:
        address = antivirus.clamd_address(antivirus.parse_conf(conf.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return None
    return address if isinstance(address, str) else None


def clamscan_database(database: Path | None) -> str:
    """``clamscan --version``, completed from the daily database header when it names no database.

    ``clamscan --version`` names the database only for daily.cvd and daily.cld; a terminal
    updated by incremental ``.cud`` files would otherwise be logged without its version.
    """
    argv = ["clamscan", "--version"] + (["-d", str(database)] if database else [])
    try:
        line = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""
    folder = database if database is not None else DEFAULT_DATABASE
    newest, _ = antivirus.newest_signatures(antivirus.databases(RootFS("/"), str(folder)))
    if line and "/" not in line and newest is not None and newest.built is not None:
        line = f"{line}/{newest.version}/{time.ctime(newest.built.timestamp())}"
    return line


def choose_engine(clamd_conf: Path = CLAMD_CONF, database: Path | None = None) -> Engine:
    """clamdscan when clamd answers and clamdscan exists, else clamscan; InputError when neither can scan.

    ``database``: a folder or file of signatures for clamscan (``-d``) instead of its built-in
    /var/lib/clamav; clamd always uses its own DatabaseDirectory.
    """
    sock = clamd_socket(clamd_conf)
    if sock is not None and shutil.which("clamdscan") and antivirus.ping(sock)[0]:
        try:
            version = antivirus.ask(sock, "VERSION")
        except OSError:
            version = ""
        return Engine("clamdscan", ["clamdscan", "-c", str(clamd_conf), "--fdpass", "--infected"], version)
    if not shutil.which("clamscan"):
        raise InputError("no antivirus engine: clamscan is not installed and clamd (with clamdscan) does not answer; "
                         "install the clamav package", clamd_conf)
    argv = ["clamscan", "-r", "--infected"] + (["-d", str(database)] if database else [])
    return Engine("clamscan", argv, clamscan_database(database))


@dataclass
class Outcome:
    """What the engine printed, read: detections (path, signature), files scanned, error lines."""

    found: list[tuple[str, str]]
    files_scanned: int | None
    error_lines: list[str]


def parse_output(stdout: str, stderr: str) -> Outcome:
    """Read ``PATH: SIGNATURE FOUND`` lines, ``... ERROR`` lines and the number of files scanned.

    A path may hold spaces, ``: `` or even a newline (printed as is), so the signature is what
    follows the last ``": "`` of the line, and a line that is neither a result nor part of the
    summary is kept as the start of a path continued on the next line (unless the file
    system says the name stands on one line).
    """
    found: list[tuple[str, str]] = []
    errors_seen: list[str] = []
    scanned = None
    pending: list[str] = []
    in_summary = False
    for line in stdout.split("\n"):
        if line == _SUMMARY:
            in_summary = True
            continue
        if in_summary:
            match = _SCANNED.match(line)
            if match:
                scanned = int(match.group(1))
            continue
        whole = "\n".join(pending + [line])
        if line.endswith(" FOUND") and ": " in whole:
            path, _, signature = whole[:-len(" FOUND")].rpartition(": ")
            alone = line[:-len(" FOUND")].rpartition(": ")[0]
            if pending and alone and not os.path.lexists(path) and os.path.lexists(alone):
                path = alone  # the lines before were not the start of this name
            found.append((path, signature))
            pending = []
        elif line.endswith(" ERROR") and ": " in whole:
            errors_seen.append(whole)
            pending = []
        elif line:
            pending.append(line)
        elif pending:
            pending.append(line)
    errors_seen += [line for line in stderr.splitlines() if line.strip()]
    return Outcome(found, scanned, errors_seen)


def run_engine(argv: list[str], timeout: float) -> tuple[int | None, str, str]:
    """Run the engine in its own process group; (exit code or None on timeout, stdout, stderr).

    On timeout the whole group is killed, so a scanner and anything it started never outlive
    the time limit, and what it had printed is still returned.
    """
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, os.fsdecode(out), os.fsdecode(err)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, os.fsdecode(out), os.fsdecode(err)
    finally:
        if proc.poll() is None:  # KeyboardInterrupt or another error while waiting
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def sha256_of(path: str) -> str:
    """The file's sha256, or "" when it cannot be read (gone, or not a regular file)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return ""
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def prepare_quarantine(folder: Path) -> Path:
    """Create the quarantine folder (0700) or tighten an existing one; refuse anything but a folder."""
    folder = Path(os.path.abspath(folder))
    if os.path.lexists(folder) and (folder.is_symlink() or not folder.is_dir()):
        raise InputError("--quarantine: not a folder (a symbolic link is refused too)", folder)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    except OSError as exc:
        raise InputError(f"--quarantine: {exc.strerror}", folder) from None
    return folder


def quarantine(path: str, folder: Path, stamp: str) -> str:
    """Move ``path`` into ``folder`` under a new name (0600); return where it went, "" if it could not be moved.

    The new name is ``<scan start>-<n>-<old name>`` without control characters (the record maps
    it back). The target is created exclusively first (O_EXCL), so two files of the same name, or an
    earlier quarantined one, are never overwritten; then the file is renamed over it, or
    copied into it and only then unlinked when the folder is on another filesystem.
    """
    base = re.sub(r"[\x00-\x1f\x7f]", "_", os.path.basename(path)) or "file"  # no newline in the new name
    for attempt in range(1000):
        target = folder / f"{stamp}-{attempt}-{base}"
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        except OSError:
            return ""
        break
    else:
        return ""
    try:
        try:
            os.rename(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # another filesystem: copy, then unlink
                raise
            with open(path, "rb") as source, os.fdopen(os.dup(fd), "wb") as sink:
                shutil.copyfileobj(source, sink)
                sink.flush()
                os.fsync(sink.fileno())
            os.unlink(path)
        os.chmod(target, 0o600)
    except OSError:
        with contextlib.suppress(OSError):
            if os.path.lexists(path):  # the original is still there: drop our empty placeholder
                os.unlink(target)
        return ""
    finally:
        os.close(fd)
    return str(target)


def _shown(text: str) -> str:
    """A file name as it can be logged: bytes that are not UTF-8 become \\x escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def scan(paths: list[str], timeout: float, *, log: Path, quarantine_dir: Path | None = None,
         clamd_conf: Path = CLAMD_CONF, database: Path | None = None) -> ScanRecord:
    """Scan ``paths``, quarantine when asked, append the record to ``log`` and return it.

    Bad input (a missing path, a time limit that is not positive, an unusable quarantine
    folder, no engine) raises InputError before anything is scanned or moved; a log that
    cannot be written raises it after the scan, saying so.
    """
    if not timeout > 0:
        raise InputError(f"--timeout must be more than 0 seconds, not {timeout}")
    targets = [os.path.abspath(p) for p in paths]
    for given, target in zip(paths, targets):
        if not os.path.lexists(target):
            raise InputError("no such file or folder to scan", given)
    folder = prepare_quarantine(quarantine_dir) if quarantine_dir is not None else None
    engine = choose_engine(clamd_conf, database)
    started = now()
    code, out, err = run_engine(engine.argv + targets, timeout)
    finished = now()
    outcome = parse_output(out, err)
    stamp = started.strftime("%Y%m%dT%H%M%S")
    detections = []
    for path, signature in outcome.found:
        digest = sha256_of(path)
        moved = quarantine(path, folder, stamp) if folder is not None and digest else ""
        detections.append(Detection(path=_shown(path), signature=signature, sha256=digest, quarantined_to=_shown(moved)))
    if code is None:
        reason = f"timed out after {timeout:g} s"
    elif code not in (0, 1):
        detail = "; ".join(outcome.error_lines[:5]) or "no message"
        reason = f"{engine.name} exited with {code}: {detail}"
    else:
        reason = ""
    record = ScanRecord(started=rfc3339(started), finished=rfc3339(finished), engine=engine.name,
                        paths=[_shown(t) for t in targets], completed=not reason, reason=reason,
                        files_scanned=outcome.files_scanned, detections=detections, database=engine.database)
    try:
        append(log, record)
    except OSError as exc:
        raise InputError(f"scan log: {exc.strerror} (the scan ran: {len(detections)} detections)", log) from None
    return record
