"""/etc/login.defs, as shadow-utils reads it."""

from __future__ import annotations

from dataclasses import dataclass, field

from nanbu_secops.collect import Target, collector

PATH = "/etc/login.defs"

# shadow-utils' built-in values for keys that are absent or commented out (getdef.c).
BUILTIN_DEFAULTS: dict[str, str] = {
    "PASS_MAX_DAYS": "99999",
    "PASS_MIN_DAYS": "0",
    "PASS_WARN_AGE": "7",
    "UID_MIN": "1000",
    "UID_MAX": "60000",
}


@dataclass(frozen=True)
class Setting:
    """An effective login.defs value and where it came from."""

    value: str | None
    origin: str  # "/etc/login.defs:12", "built-in default" or "unset"


@dataclass(frozen=True)
class LoginDefs:
    """Key/value pairs of login.defs. When a key appears twice the last one applies."""

    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def get(self, key: str) -> Setting:
        if key in self.values:
            return Setting(self.values[key], f"{PATH}:{self.lines[key]}")
        if key in BUILTIN_DEFAULTS:
            return Setting(BUILTIN_DEFAULTS[key], "built-in default")
        return Setting(None, "unset")


def parse(text: str) -> LoginDefs:
    """Parse login.defs text: ``KEY VALUE`` lines, ``#`` comments, later keys win."""
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, *rest = line.split(None, 1)
        values[key] = rest[0].strip().strip('"') if rest else ""
        lines[key] = number
    return LoginDefs(values, lines)


@collector("login_defs")
def collect(target: Target) -> LoginDefs:
    return parse(target.fs.read_text(PATH))
