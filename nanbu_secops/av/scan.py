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

Root acts here on paths that users own and can change while the scan runs, so a detected
file is reached without following any symbolic link (``O_NOFOLLOW`` at every component from
"/"), hashed through that one descriptor, and moved relative to its folder's descriptor; the
moved entry must be that same file (device and inode), else it is put back. A path that now
passes through a link, or a file with other hard links, is reported and left in place. The
scan's targets are resolved before the scan, so every path the engine reports is reachable
without a link unless a user changed it.
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
    summary is kept as the start of a path continued on the next line. The file system is never
    asked which reading is right: a user could delete the long name after the scan so that its
    last line names another file (such as /etc/passwd), which root would then move.
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
            found.append((path, signature))
            pending = []
        elif line.endswith(" ERROR") and ": " in whole:
            errors_seen.append(whole)
            pending = []
        elif line or pending:
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


@dataclass
class Found:
    """A detected file held open: its folder's descriptor, its name there, its descriptor and stat."""

    folder_fd: int
    name: str
    fd: int
    stat: os.stat_result

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.folder_fd)


def open_no_links(path: str) -> Found | None:
    """Open the regular file at absolute ``path`` without following a link anywhere; None if that fails.

    Each component is opened relative to the one before with ``O_NOFOLLOW``, so a folder that a
    user swapped for a symbolic link after the scan stops the walk (ELOOP or ENOTDIR) instead of
    leading root elsewhere. Empty, "." and ".." components are refused: the engine prints
    none, and each would let one name stand for another.
    """
    parts = path.split("/")
    if parts[0] != "" or len(parts) < 2 or any(p in ("", ".", "..") for p in parts[1:]):
        return None
    folder_fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[1:-1]:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder_fd)
            os.close(folder_fd)
            folder_fd = child
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                     dir_fd=folder_fd)
    except OSError:
        os.close(folder_fd)
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        os.close(folder_fd)
        return None
    return Found(folder_fd, parts[-1], fd, info)


def sha256_of(found: Found) -> str:
    """The sha256 of the open file from its first byte, or "" when it cannot be read."""
    digest = hashlib.sha256()
    offset = 0
    try:
        while block := os.pread(found.fd, 1 << 20, offset):
            digest.update(block)
            offset += len(block)
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


def _same(found: Found, name: str, dir_fd: int) -> bool:
    """Whether ``name`` in ``dir_fd`` is (not a link to) the file ``found`` holds open."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == (found.stat.st_dev, found.stat.st_ino)


def quarantine(found: Found, folder: Path, stamp: str) -> str:
    """Move the open file into ``folder`` under a new name (0600); return where it went, "" if it was not moved.

    The new name is ``<scan start>-<n>-<old name>`` without control characters (the record maps
    it back). The target is created exclusively first (O_EXCL), so two files of the same name, or an
    earlier quarantined one, are never overwritten; then the file is renamed over it relative to
    both folders' descriptors, or copied into it from the open descriptor and only then unlinked
    when the folder is on another filesystem. What was moved must be the file held open: a name
    swapped in between is put back. A file with other hard links is left alone: moving one name
    would not contain it, and changing its mode would change the other names' file too.
    """
    if found.stat.st_nlink != 1:
        return ""
    base = re.sub(r"[\x00-\x1f\x7f]", "_", found.name) or "file"  # no newline in the new name
    try:
        vault_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        for attempt in range(1000):
            target = f"{stamp}-{attempt}-{base}"
            try:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                             dir_fd=vault_fd)
            except FileExistsError:
                continue
            except OSError:
                return ""
            break
        else:
            return ""
        try:
            return target if _move(found, vault_fd, target, fd) else ""
        finally:
            os.close(fd)
    finally:
        os.close(vault_fd)


def _move(found: Found, vault_fd: int, target: str, fd: int) -> bool:
    """Rename (or copy and unlink) the open file to ``target`` in the vault; True when it is there and only there."""
    try:
        os.rename(found.name, target, src_dir_fd=found.folder_fd, dst_dir_fd=vault_fd)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            with contextlib.suppress(OSError):
                os.unlink(target, dir_fd=vault_fd)  # our empty placeholder
            return False
        return _copy_across(found, vault_fd, target, fd)
    if not _same(found, target, vault_fd):  # the name was swapped after we opened it: give it back
        with contextlib.suppress(OSError):
            os.rename(target, found.name, src_dir_fd=vault_fd, dst_dir_fd=found.folder_fd)
        return False
    os.fchmod(found.fd, 0o600)
    return True


def _copy_across(found: Found, vault_fd: int, target: str, fd: int) -> bool:
    """Copy the open file into ``target`` (another filesystem), then unlink its name if it is still that file."""
    try:
        offset = 0
        while block := os.pread(found.fd, 1 << 20, offset):
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view):]
            offset += len(block)
        os.fsync(fd)
        if not _same(found, found.name, found.folder_fd):
            raise FileNotFoundError(found.name)
        os.unlink(found.name, dir_fd=found.folder_fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(target, dir_fd=vault_fd)
        return False
    return True


def _shown(text: str) -> str:
    """A file name as it can be logged: bytes that are not UTF-8 become \\x escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def split_around(targets: list[str], excluded: list[str]) -> list[str]:
    """``targets`` with the ``excluded`` folders taken out, as a list of paths to hand the engine.

    clamdscan has no option to skip a folder (only clamd.conf's ExcludePath), so exclusion is
    done here, the same for both engines: a target that holds an excluded folder is replaced by
    the entries of each folder on the way down to it, except the one leading there. Symbolic
    links among those entries are dropped, as the engines' own recursion does not follow them
    either; everything is absolute and already resolved.
    """
    out: list[str] = []
    pending = list(targets)
    while pending:
        target = pending.pop(0)
        inside = [e for e in excluded if e == target or e.startswith(target.rstrip("/") + "/")]
        if not inside:
            out.append(target)
            continue
        if target in inside or not os.path.isdir(target):
            continue  # the target is itself excluded
        try:
            entries = sorted(os.scandir(target), key=lambda entry: entry.name)
        except OSError:
            out.append(target)  # the engine will say why it cannot be read
            continue
        pending[:0] = [entry.path for entry in entries if not entry.is_symlink()]
    return out


def scan(paths: list[str], timeout: float, *, log: Path, quarantine_dir: Path | None = None,
         clamd_conf: Path = CLAMD_CONF, database: Path | None = None, exclude: list[str] | None = None) -> ScanRecord:
    """Scan ``paths`` except the folders in ``exclude``, quarantine when asked, append the record
    to ``log`` and return it.

    Bad input (a missing path, a time limit that is not positive, an unusable quarantine
    folder, no engine) raises InputError before anything is scanned or moved; a log that
    cannot be written raises it after the scan, saying so.
    """
    if not timeout > 0:
        raise InputError(f"--timeout must be more than 0 seconds, not {timeout}")
    for given in paths:
        if not os.path.lexists(given):
            raise InputError("no such file or folder to scan", given)
    for given in exclude or []:
        if not os.path.isdir(given):
            raise InputError("--exclude: not a folder", given)
    resolved = [os.path.realpath(p) for p in paths]  # links resolved now, as root chose them
    excluded = [os.path.realpath(p) for p in exclude or []]
    targets = split_around(resolved, excluded)
    if not targets:  # an engine given no path would scan its working folder
        raise InputError("nothing left to scan: every path is excluded or holds only excluded folders and links")
    folder = prepare_quarantine(quarantine_dir) if quarantine_dir is not None else None
    engine = choose_engine(clamd_conf, database)
    started = now()
    code, out, err = run_engine(engine.argv + targets, timeout)
    finished = now()
    outcome = parse_output(out, err)
    stamp = started.strftime("%Y%m%dT%H%M%S")
    detections = []
    for path, signature in outcome.found:
        found = open_no_links(path)
        digest, moved = "", ""
        if found is not None:
            try:
                digest = sha256_of(found)
                moved = quarantine(found, folder, stamp) if folder is not None and digest else ""
            finally:
                found.close()
        where = str(folder / moved) if moved and folder is not None else ""
        detections.append(Detection(path=_shown(path), signature=signature, sha256=digest, quarantined_to=_shown(where)))
    if code is None:
        reason = f"timed out after {timeout:g} s"
    elif code not in (0, 1):
        detail = "; ".join(outcome.error_lines[:5]) or "no message"
        reason = f"{engine.name} exited with {code}: {detail}"
    else:
        reason = ""
    record = ScanRecord(started=rfc3339(started), finished=rfc3339(finished), engine=engine.name,
                        paths=[_shown(t) for t in resolved], completed=not reason, reason=reason,
                        files_scanned=outcome.files_scanned, detections=detections, database=engine.database,
                        excluded=[_shown(e) for e in excluded])
    try:
        append(log, record)
    except OSError as exc:
        raise InputError(f"scan log: {exc.strerror} (the scan ran: {len(detections)} detections)", log) from None
    return record
