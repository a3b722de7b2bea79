"""Antivirus on a Linux terminal (article 27): ClamAV's engine, clamd, signatures, updates and scans.

A terminal is protected only when all of these hold at once, and no single tool reports them
together (Lynis sees a process, ``clamscan --version`` a version): the engine is installed,
clamd runs and answers, the signature database is recent, freshclam keeps it so, and scans
happen. This collector gathers each of those facts with where it came from; ``checks/antivirus``
turns them into one verdict. Windows terminals are described by ``collect/defender`` in the same
model (:class:`AntivirusFacts`), so one verdict function judges both.

What can be read under any root: packages and binaries, clamd.conf and freshclam.conf, the
database headers, systemd units and cron entries, the project's scan log. What only the live
system has: whether clamd runs and answers ``PING`` on its socket, whether freshclam or clamonacc
run. Offline (``--root``), "running" is replaced by "enabled at boot", as for the time daemons,
and the evidence says so.

Other products (domestic ones included) are matched by the check against the policy's catalogue
from the ``software`` facts (packages, units, processes): the catalogue is policy data.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from nanbu_secops.av.records import SCAN_LOG
from nanbu_secops.av.records import parse as parse_scan_log
from nanbu_secops.collect import CollectError, Target, collector, systemd
from nanbu_secops.collect.rootfs import RootFS
from nanbu_secops.collect.software import DPKG_STATUS, parse_dpkg_status

CLAMD_CONF = "/etc/clamav/clamd.conf"
FRESHCLAM_CONF = "/etc/clamav/freshclam.conf"
DEFAULT_DATABASE_DIR = "/var/lib/clamav"
HEADER_SIZE = 512  # a .cvd/.cld/.cud starts with a header of this size, padded with spaces
PING_TIMEOUT = 3.0  # seconds: clamd answers PING at once unless it is (re)loading its database
VERSION_TIMEOUT = 15.0

CLAMAV_PACKAGES = ("clamav", "clamav-daemon")
CLAMSCAN = ("/usr/bin/clamscan", "/usr/local/bin/clamscan")
CLAMD = ("/usr/sbin/clamd", "/usr/local/sbin/clamd")
CLAMD_UNITS = ("clamav-daemon.service", "clamav-daemon.socket", "clamd.service", "clamd@scan.service")
FRESHCLAM_UNITS = ("clamav-freshclam.service", "clamav-freshclam-once.timer", "clamav-freshclam.timer")
CLAMONACC_UNITS = ("clamav-clamonacc.service", "clamonacc.service")
CRON_DAEMONS = ("/usr/sbin/cron", "/usr/sbin/crond", "/usr/sbin/anacron", "/usr/sbin/cronie")
CRON_FILES = ("/etc/crontab", "/etc/cron.d/*", "/var/spool/cron/crontabs/*",
              "/etc/cron.daily/*", "/etc/cron.weekly/*", "/etc/cron.monthly/*")
UNIT_FOLDERS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
SCAN_COMMAND = re.compile(r"nanbu-secops\s+av\s+scan|\bclamd?scan\b")
FRESHCLAM_COMMAND = re.compile(r"\bfreshclam\b")


@dataclass(frozen=True)
class Database:
    """One signature database file and what its header says."""

    path: str
    version: int | None = None
    built: dt.datetime | None = None  # stime of the header, aware (UTC)
    signatures: int | None = None
    builder: str = ""
    problem: str = ""  # why the header could not be read; empty when it was


@dataclass(frozen=True)
class Updates:
    """How signatures are kept current: freshclam (ClamAV); None when the source cannot tell."""

    configured: bool | None
    mirrors: list[str] = field(default_factory=list)
    how: list[str] = field(default_factory=list)  # what runs it: process, unit, cron line
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AntivirusFacts:
    """One terminal's antivirus state, the same for ClamAV and Windows Defender.

    ``running`` is True/False when it was established and None when it could not be (the reason is
    in ``running_detail``). On the live system it means the engine answers now; offline it means
    the service is enabled at boot (``live`` False).
    """

    source: str  # "this system", the --root tree, or the Defender JSON file
    live: bool
    engine: str  # "ClamAV", "Microsoft Defender Antivirus"
    installed: bool
    version: str = ""
    installed_evidence: list[str] = field(default_factory=list)
    running: bool | None = None
    running_detail: str = ""
    databases: list[Database] = field(default_factory=list)
    signatures_version: str = ""
    signatures_updated: dt.datetime | None = None  # aware
    signature_age_days: int | None = None  # as the product reports it, when it gives no time
    signatures_problem: str = ""  # why the signature age cannot be established
    updates: Updates = field(default_factory=lambda: Updates(None))
    last_scan: dt.datetime | None = None  # aware: end of the last completed scan
    last_scan_age_days: int | None = None  # as the product reports it, when it gives no time
    last_scan_source: str = ""
    scan_notes: list[str] = field(default_factory=list)  # scans that did not complete, unreadable records
    scheduled: list[str] = field(default_factory=list)  # timers and cron entries that scan
    on_access: list[str] = field(default_factory=list)  # on-access / real-time scanning in force
    schedule_notes: list[str] = field(default_factory=list)  # scanning set up but not in force
    other_primary: str = ""  # the engine says another product protects the terminal (Defender passive mode)
    notes: list[str] = field(default_factory=list)


# --- configuration files ------------------------------------------------------------------------

def parse_conf(text: str) -> dict[str, list[tuple[str, int]]]:
    """clamd.conf / freshclam.conf: ``Key value`` lines, every value with its line (keys repeat)."""
    values: dict[str, list[tuple[str, int]]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        values.setdefault(key, []).append((value.strip(), number))
    return values


def _last(conf: dict[str, list[tuple[str, int]]], key: str) -> str | None:
    return conf[key][-1][0] if key in conf else None


def _read_conf(fs: RootFS, path: str) -> dict[str, list[tuple[str, int]]] | None:
    if not fs.exists(path):
        return None
    try:
        return parse_conf(fs.read_text(path))
    except OSError as exc:
        raise CollectError(f"cannot read {path}: {exc.strerror}") from None


# --- signature databases ----------------------------------------------------------------------

def parse_header(data: bytes, path: str) -> Database:
    """A database's header: ``ClamAV-VDB:time:version:sigs:flevel:md5:dsig:builder:stime``.

    stime (epoch seconds) is the build time, and so the signatures' age; a header that is short,
    not ClamAV's, or whose numbers are not numbers gives a problem instead of a guess.
    """
    head = data[:HEADER_SIZE]
    if not head.startswith(b"ClamAV-VDB:"):
        return Database(path, problem=f"not a ClamAV database header (starts with {head[:16]!r})")
    if len(data) < HEADER_SIZE:
        return Database(path, problem=f"truncated: {len(data)} bytes, the header alone is {HEADER_SIZE}")
    fields = head.decode("ascii", errors="replace").rstrip(" \0\n").split(":")
    if len(fields) < 9:
        return Database(path, problem=f"header has {len(fields)} fields, expected 9")
    try:
        version, sigs, stime = int(fields[2]), int(fields[3]), int(fields[8])
        built = dt.datetime.fromtimestamp(stime, dt.UTC)
    except (ValueError, OverflowError, OSError):
        return Database(path, problem=f"header fields are not numbers: version={fields[2]!r} sigs={fields[3]!r} "
                                      f"stime={fields[8]!r}")
    return Database(path, version, built, sigs, fields[7])


def databases(fs: RootFS, directory: str) -> list[Database]:
    """The headers of the daily and main databases in ``directory``."""
    found = []
    for name in ("daily", "main"):
        for path in fs.glob(f"{directory}/{name}.c[vlu]d"):
            try:
                with open(fs.resolve(path), "rb") as handle:
                    found.append(parse_header(handle.read(HEADER_SIZE), path))
            except OSError as exc:
                found.append(Database(path, problem=f"cannot read: {exc.strerror}"))
    return found


def newest_signatures(databases: list[Database]) -> tuple[Database | None, str]:
    """The database whose build time is the signatures' age: the newest readable daily (main is
    rebuilt only every few months, so it ages by design), else the newest main; or why none is."""
    for name in ("daily", "main"):
        group = [d for d in databases if Path(d.path).name.startswith(f"{name}.")]
        readable = [d for d in group if d.built is not None]
        if readable:
            return max(readable, key=lambda d: (d.built, d.version or 0)), ""
        if group:
            return None, "; ".join(f"{d.path}: {d.problem}" for d in group)
    return None, ""


# --- engine and clamd -------------------------------------------------------------------------

def _version_live(fs: RootFS) -> str:
    for binary in (*CLAMSCAN, *CLAMD):
        if fs.exists(binary):
            try:
                done = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                      timeout=VERSION_TIMEOUT, check=False)
            except (OSError, subprocess.TimeoutExpired):
                continue
            found = re.match(r"ClamAV (\S+?)(?:/|$)", done.stdout.strip())
            if found:
                return found.group(1)
    return ""


def ask(address: str | tuple[str, int], command: str, timeout: float = PING_TIMEOUT) -> str:
    """Send clamd one ``z``-command (``PING``, ``VERSION``) and return its answer; OSError when it cannot be asked."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(address)
        conn.sendall(f"z{command}\0".encode("ascii"))
        answer = b""
        while not answer.endswith(b"\0") and len(answer) < 4096:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.rstrip(b"\0").decode("utf-8", errors="replace").strip()


def ping(address: str | tuple[str, int], timeout: float = PING_TIMEOUT) -> tuple[bool | None, str]:
    """Ask clamd ``zPING``: (True, answer) on PONG, (False, why) when nothing serves there,
    (None, why) when something does but cannot be asked (permission, timeout, another reply)."""
    where = address if isinstance(address, str) else f"{address[0]}:{address[1]}"
    try:
        text = ask(address, "PING", timeout)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        return False, f"{where}: {exc.strerror or exc}"
    except PermissionError as exc:
        return None, f"{where}: {exc.strerror}: the socket cannot be asked (run the agent as root)"
    except TimeoutError:
        return None, f"{where}: no answer to PING within {timeout:g} s (clamd may be loading its database)"
    except OSError as exc:
        return None, f"{where}: {exc.strerror or exc}"
    if text == "PONG":
        return True, f"{where}: PONG"
    return None, f"{where}: answered {text!r} instead of PONG"


def clamd_address(conf: dict[str, list[tuple[str, int]]]) -> str | tuple[str, int] | None:
    local = _last(conf, "LocalSocket")
    if local:
        return local
    port = _last(conf, "TCPSocket")
    if port and port.isdigit():
        host = _last(conf, "TCPAddr") or "127.0.0.1"
        return (host if host not in ("0.0.0.0", "::") else "127.0.0.1", int(port))
    return None


def _pids(names: tuple[str, ...]) -> list[int]:
    import psutil

    return sorted(p.pid for p in psutil.process_iter(["name"]) if p.info["name"] in names)


def _enabled(fs: RootFS, units: tuple[str, ...]) -> str | None:
    return next((link for unit in units if (link := systemd.enabled(fs, unit))), None)


def _clamd_state(target: Target, conf: dict[str, list[tuple[str, int]]] | None,
                 installed: bool) -> tuple[bool | None, str]:
    fs = target.fs
    if not installed:
        return False, "clamd (clamav-daemon) is not installed: nothing answers scan requests"
    if conf is None:
        return False, f"{CLAMD_CONF} does not exist: clamd cannot start"
    if "Example" in conf:
        return False, f"{CLAMD_CONF}:{conf['Example'][0][1]}: the 'Example' line makes clamd refuse to start"
    address = clamd_address(conf)
    if address is None:
        return False, f"{CLAMD_CONF}: neither LocalSocket nor TCPSocket is set: clamd listens nowhere"
    if not target.live:
        link = _enabled(fs, CLAMD_UNITS)
        if link:
            return True, f"offline: not checked whether it runs; enabled at boot ({link})"
        return False, f"offline: not checked whether it runs; no unit of {', '.join(CLAMD_UNITS)} is enabled at boot"
    answered, detail = ping(address)
    pids = _pids(("clamd",))
    running = f"clamd pid {', '.join(map(str, pids))}" if pids else "no clamd process"
    return answered, f"{detail} ({running})"


# --- updates, schedules, on-access -------------------------------------------------------------

def _cron_lines(fs: RootFS, pattern: re.Pattern[str]) -> list[str]:
    """``file:line: text`` of every non-comment cron line (or cron script line) matching ``pattern``."""
    found = []
    for glob in CRON_FILES:
        for path in fs.glob(glob):
            try:
                text = fs.read_text(path)
            except OSError:
                continue  # a folder or an unreadable entry schedules nothing we could show
            for number, raw in enumerate(text.splitlines(), start=1):
                line = raw.strip()
                if line and not line.startswith("#") and pattern.search(line):
                    found.append(f"{path}:{number}: {line}")
    return found


def _unit_file(fs: RootFS, unit: str) -> str | None:
    return next((f"{folder}/{unit}" for folder in UNIT_FOLDERS if fs.exists(f"{folder}/{unit}")), None)


def _timers(fs: RootFS, pattern: re.Pattern[str]) -> tuple[list[str], list[str]]:
    """Enabled timers whose service runs a command matching ``pattern``; and disabled ones (notes).

    Only timers enabled at boot and those an administrator put in /etc/systemd/system are read:
    a packaged timer that nobody enabled schedules nothing, and reading every one is slow.
    """
    scheduled, notes = [], []
    names = sorted({p.rsplit("/", 1)[1] for glob in ("/etc/systemd/system/*.wants/*.timer", "/etc/systemd/system/*.timer")
                    for p in fs.glob(glob)})
    for timer in names:
        path = _unit_file(fs, timer)
        if path is None:
            continue
        service = timer[: -len(".timer")] + ".service"
        for raw in fs.read_text(path).splitlines():
            if raw.strip().startswith("Unit="):
                service = raw.split("=", 1)[1].strip()
        service_path = _unit_file(fs, service)
        if service_path is None:
            continue
        execs = [line.strip() for line in fs.read_text(service_path).splitlines()
                 if line.strip().startswith("ExecStart") and pattern.search(line)]
        if not execs:
            continue
        link = systemd.enabled(fs, timer)
        entry = f"{path} -> {service_path}: {execs[0]}"
        if link:
            scheduled.append(f"{entry} (enabled: {link})")
        else:
            notes.append(f"{path} runs a scan but is not enabled at boot")
    return scheduled, notes


def _cron_daemon(fs: RootFS) -> bool:
    return any(fs.exists(b) for b in CRON_DAEMONS)


def _updates(target: Target, conf: dict[str, list[tuple[str, int]]] | None) -> Updates:
    fs = target.fs
    if conf is None:
        return Updates(False, problems=[f"{FRESHCLAM_CONF} does not exist: freshclam is not configured"])
    mirrors = [f"{key} {value} ({FRESHCLAM_CONF}:{line})" for key in ("PrivateMirror", "DatabaseMirror")
               for value, line in conf.get(key, [])]
    problems = [] if mirrors else [f"{FRESHCLAM_CONF}: no DatabaseMirror or PrivateMirror: nowhere to update from"]
    if "Example" in conf:
        problems.append(f"{FRESHCLAM_CONF}:{conf['Example'][0][1]}: the 'Example' line makes freshclam refuse to run")
    how = []
    if target.live and (pids := _pids(("freshclam",))):
        how.append(f"freshclam runs (pid {', '.join(map(str, pids))})")
    if link := _enabled(fs, FRESHCLAM_UNITS):
        how.append(f"enabled at boot: {link}")
    if _cron_daemon(fs):
        how += [f"cron: {line}" for line in _cron_lines(fs, FRESHCLAM_COMMAND)]
    if not how:
        problems.append("freshclam is neither running, nor enabled at boot, nor in a cron job")
    return Updates(not problems, mirrors, how, problems)


def _on_access(target: Target, conf: dict[str, list[tuple[str, int]]] | None) -> tuple[list[str], list[str]]:
    """On-access paths in force (clamd.conf OnAccess* and clamonacc running/enabled); notes."""
    if conf is None:
        return [], []
    paths = [f"{key} {value} ({CLAMD_CONF}:{line})" for key in ("OnAccessIncludePath", "OnAccessMountPath")
             for value, line in conf.get(key, [])]
    if not paths:
        return [], []
    if target.live:
        pids = _pids(("clamonacc",))
        if pids:
            return [f"{p}; clamonacc pid {', '.join(map(str, pids))}" for p in paths], []
        return [], [f"on-access paths are configured in {CLAMD_CONF} but clamonacc does not run"]
    link = _enabled(target.fs, CLAMONACC_UNITS)
    if link:
        return [f"{p}; clamonacc enabled at boot ({link})" for p in paths], []
    return [], [f"on-access paths are configured in {CLAMD_CONF} but clamonacc is not enabled at boot"]


def last_scan(fs: RootFS, log: str = SCAN_LOG) -> tuple[dt.datetime | None, str, list[str]]:
    """End of the last completed scan in the project's scan log, where it was read, and notes."""
    if not fs.exists(log):
        return None, f"{log} does not exist: no scan was recorded by nanbu-secops av scan", []
    try:
        records = parse_scan_log(fs.read_text(log), log)
    except OSError as exc:
        raise CollectError(f"cannot read {log}: {exc.strerror}") from None
    notes = []
    for record in reversed(records):
        try:
            finished = dt.datetime.fromisoformat(record.finished)
        except ValueError:
            notes.append(f"{record.origin}: finished time {record.finished!r} is not RFC 3339")
            continue
        if finished.tzinfo is None:
            notes.append(f"{record.origin}: finished time has no UTC offset")
            continue
        if not record.completed:
            notes.append(f"{record.origin}: scan of {', '.join(record.paths)} did not complete: {record.reason}")
            continue
        return finished, record.origin, notes
    return None, f"{log}: no completed scan recorded", notes


# --- the collector ------------------------------------------------------------------------------

@collector("antivirus", reads=("ClamAV: clamd.conf, freshclam.conf, signature databases", "clamd PING (live)", "timers and cron",
                           "the av scan log"))
def collect(target: Target) -> AntivirusFacts:
    """ClamAV's state on the target: see the module docstring for what is read where."""
    fs = target.fs
    source = "this system" if target.live else str(fs.root)
    try:
        packages = parse_dpkg_status(fs.read_text(DPKG_STATUS)) if fs.exists(DPKG_STATUS) else {}
    except OSError as exc:
        raise CollectError(f"cannot read {DPKG_STATUS}: {exc.strerror}") from None
    evidence = [f"package {p.name} {p.version} ({DPKG_STATUS}:{p.line})"
                for name in CLAMAV_PACKAGES if (p := packages.get(name))]
    evidence += [b for b in (*CLAMSCAN, *CLAMD) if fs.exists(b)]
    if not evidence:
        return AntivirusFacts(source, target.live, "ClamAV", installed=False)
    version = _version_live(fs) if target.live else ""
    version = version or next((p.version for n in CLAMAV_PACKAGES if (p := packages.get(n))), "")
    clamd_installed = "clamav-daemon" in packages or any(fs.exists(b) for b in CLAMD)
    clamd_conf = _read_conf(fs, CLAMD_CONF)
    freshclam_conf = _read_conf(fs, FRESHCLAM_CONF)
    running, running_detail = _clamd_state(target, clamd_conf, clamd_installed)

    directory = (_last(clamd_conf or {}, "DatabaseDirectory") or _last(freshclam_conf or {}, "DatabaseDirectory")
                 or DEFAULT_DATABASE_DIR)
    found = databases(fs, directory)
    newest, problem = newest_signatures(found)
    if not found:
        problem = ""  # no database at all is a finding (stale), not an unknown
    notes = [] if found else [f"no daily.* or main.* database in {directory}"]

    scheduled, timer_notes = _timers(fs, SCAN_COMMAND)
    cron = _cron_lines(fs, SCAN_COMMAND)
    if cron and not _cron_daemon(fs):
        timer_notes.append(f"cron entries scan but no cron daemon ({', '.join(CRON_DAEMONS)}) is installed")
    elif cron:
        scheduled += [f"cron: {line}" for line in cron]
    on_access, access_notes = _on_access(target, clamd_conf)
    scanned, scan_source, scan_notes = last_scan(fs)
    return AntivirusFacts(
        source=source, live=target.live, engine="ClamAV", installed=True, version=version,
        installed_evidence=evidence, running=running, running_detail=running_detail, databases=found,
        signatures_version=f"{Path(newest.path).name} {newest.version}" if newest else "",
        signatures_updated=newest.built if newest else None, signatures_problem=problem,
        updates=_updates(target, freshclam_conf), last_scan=scanned, last_scan_source=scan_source,
        scan_notes=scan_notes, scheduled=scheduled, on_access=on_access, schedule_notes=timer_notes + access_notes,
        notes=notes)
