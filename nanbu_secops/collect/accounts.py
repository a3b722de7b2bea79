"""Local accounts: /etc/passwd and /etc/shadow of the target."""

from __future__ import annotations

from dataclasses import dataclass, field

from nanbu_secops.collect import CollectError, Target, collector

PASSWD = "/etc/passwd"
SHADOW = "/etc/shadow"


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    password: str  # "x" when the hash lives in /etc/shadow
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str
    line: int


@dataclass(frozen=True)
class ShadowEntry:
    """A shadow line. Day counts are days since 1970-01-01; None where the field is empty."""

    name: str
    hash: str
    last_change: int | None
    min_days: int | None
    max_days: int | None
    warn_days: int | None
    inactive_days: int | None
    expire: int | None
    line: int

    @property
    def locked(self) -> bool:
        """No password login is possible: ``!`` (locked) or ``*`` (no password set)."""
        return self.hash.startswith(("!", "*"))


@dataclass(frozen=True)
class Passwd:
    entries: list[PasswdEntry]
    malformed: list[int] = field(default_factory=list)  # line numbers that could not be parsed


@dataclass(frozen=True)
class Shadow:
    entries: dict[str, ShadowEntry]
    malformed: list[int] = field(default_factory=list)


def _lines(text: str) -> list[tuple[int, str]]:
    return [(n, raw) for n, raw in enumerate(text.splitlines(), start=1)
            if raw.strip() and not raw.startswith(("#", "+", "-"))]


def parse_passwd(text: str) -> Passwd:
    entries: list[PasswdEntry] = []
    malformed: list[int] = []
    for number, raw in _lines(text):
        fields = raw.split(":")
        if len(fields) != 7 or not fields[2].isdigit() or not fields[3].isdigit():
            malformed.append(number)
            continue
        name, password, uid, gid, gecos, home, shell = fields
        entries.append(PasswdEntry(name, password, int(uid), int(gid), gecos, home, shell, number))
    return Passwd(entries, malformed)


def _day(value: str) -> int | None:
    return int(value) if value.strip() else None


def parse_shadow(text: str) -> Shadow:
    entries: dict[str, ShadowEntry] = {}
    malformed: list[int] = []
    for number, raw in _lines(text):
        fields = raw.split(":")
        if len(fields) != 9:
            malformed.append(number)
            continue
        try:
            days = [_day(f) for f in fields[2:8]]
        except ValueError:
            malformed.append(number)
            continue
        entries[fields[0]] = ShadowEntry(fields[0], fields[1], *days, line=number)
    return Shadow(entries, malformed)


@collector("passwd", reads=("/etc/passwd",))
def collect_passwd(target: Target) -> Passwd:
    passwd = parse_passwd(target.fs.read_text(PASSWD))
    if not passwd.entries:
        raise CollectError(f"{PASSWD} holds no account")
    return passwd


@collector("shadow", reads=("/etc/shadow",))
def collect_shadow(target: Target) -> Shadow:
    return parse_shadow(target.fs.read_text(SHADOW))
