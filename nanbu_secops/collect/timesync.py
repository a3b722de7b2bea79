"""Time synchronisation daemons: which servers each is configured with, and whether it runs.

Logs from terminals are only comparable with the platform's (and evidence in an incident report,
article 27, only usable) when clocks agree, so article 5's controllable network includes a time
source. chrony, systemd-timesyncd and ntpd (classic or NTPsec) are read. The configuration is read
under any root; whether a daemon runs is known only on the live system, so for a ``--root`` tree
the collector reports instead whether the daemon is enabled to start at boot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nanbu_secops.collect import CollectError, Target, collector, systemd
from nanbu_secops.collect.rootfs import RootFS

MAX_INCLUDE_DEPTH = 16


@dataclass(frozen=True)
class Server:
    name: str  # host name or address, as configured
    kind: str  # server, pool, peer, NTP, FallbackNTP
    origin: str  # file:line


@dataclass(frozen=True)
class TimeDaemon:
    name: str
    config: str  # the main configuration file read
    servers: list[Server]
    enabled: str | None  # offline: the wants link that starts it at boot
    running: list[int] | None  # live: pids of the daemon (empty: not running); None: not checked
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TimeSync:
    live: bool
    daemons: list[TimeDaemon]


@dataclass(frozen=True)
class _Spec:
    name: str
    binaries: tuple[str, ...]
    configs: tuple[str, ...]  # the first that exists is read
    units: tuple[str, ...]  # systemd units that start it
    processes: tuple[str, ...]  # process names when it runs


DAEMONS = (
    _Spec("chrony", ("/usr/sbin/chronyd", "/sbin/chronyd"), ("/etc/chrony/chrony.conf", "/etc/chrony.conf"),
          ("chrony.service", "chronyd.service"), ("chronyd",)),
    _Spec("systemd-timesyncd", ("/usr/lib/systemd/systemd-timesyncd", "/lib/systemd/systemd-timesyncd"),
          ("/etc/systemd/timesyncd.conf",), ("systemd-timesyncd.service",), ("systemd-timesyncd",)),
    _Spec("ntpd", ("/usr/sbin/ntpd", "/sbin/ntpd"), ("/etc/ntpsec/ntp.conf", "/etc/ntp.conf"),
          ("ntpsec.service", "ntp.service", "ntpd.service"), ("ntpd",)),
)


def _ntp_style(fs: RootFS, path: str, directives: dict[str, str], depth: int = 0) -> list[Server]:
    """server/pool/peer lines of chrony.conf or ntp.conf; chrony's confdir, sourcedir and include
    (and ntpsec's includefile) are followed, as the daemons do."""
    if depth > MAX_INCLUDE_DEPTH:
        raise CollectError(f"{path}: includes nested more than {MAX_INCLUDE_DEPTH} deep")
    servers: list[Server] = []
    for number, raw in enumerate(fs.read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;%!":  # chrony's comment characters; ntp.conf uses '#'
            continue
        words = line.split("#", 1)[0].split()
        key = words[0].lower()
        if key in ("server", "pool", "peer") and len(words) >= 2:
            servers.append(Server(words[1], key, f"{path}:{number}"))
        elif key in directives and len(words) >= 2:
            for directory_or_glob in words[1:]:
                pattern = directives[key].format(directory_or_glob)
                for included in fs.glob(pattern):
                    servers += _ntp_style(fs, included, directives, depth + 1)
    return servers


CHRONY_DIRECTIVES = {"confdir": "{}/*.conf", "sourcedir": "{}/*.sources", "include": "{}"}
NTP_DIRECTIVES = {"includefile": "{}"}
def _timesyncd(fs: RootFS, path: str) -> list[Server]:
    """NTP= then FallbackNTP= of [Time], across timesyncd.conf and its drop-ins."""
    files = systemd.config_files(fs, path)
    return [Server(value, key, origin) for key in ("NTP", "FallbackNTP")
            for value, origin in systemd.list_setting(fs, files, "Time", key)]


def _pids(names: tuple[str, ...]) -> list[int]:
    import psutil

    return sorted(p.pid for p in psutil.process_iter(["name"]) if p.info["name"] in names)


@collector("timesync", reads=("chrony", "systemd-timesyncd", "ntpd: config", "running (live) or enabled at boot"))
def collect(target: Target) -> TimeSync:
    """Every installed time daemon with its configured servers and whether it runs (or is enabled)."""
    fs = target.fs
    daemons = []
    for spec in DAEMONS:
        config = next((c for c in spec.configs if fs.exists(c)), None)
        if config is None and not any(fs.exists(b) for b in spec.binaries):
            continue
        notes = []
        if config is None:
            servers: list[Server] = []
            notes.append(f"installed but {' / '.join(spec.configs)} does not exist")
            config = spec.configs[0]
        elif spec.name == "systemd-timesyncd":
            servers = _timesyncd(fs, config)
            if not servers:
                notes.append("no NTP= or FallbackNTP= set: only the built-in fallback servers, if any, are used")
        else:
            servers = _ntp_style(fs, config, CHRONY_DIRECTIVES if spec.name == "chrony" else NTP_DIRECTIVES)
        enabled = next((link for unit in spec.units if (link := systemd.enabled(fs, unit))), None)
        running = _pids(spec.processes) if target.live else None
        daemons.append(TimeDaemon(spec.name, config, servers, enabled, running, notes))
    return TimeSync(target.live, daemons)
