"""/etc/login.defs, as shadow-utils reads it."""

from __future__ import annotations

from dataclasses import dataclass, field

from nanbu_secops.collect import Target, collector

PATH = "/etc/login.defs"

# What shadow-utils does when a key is absent or commented out (login.defs(5) of shadow 4.13;
# useradd writes an empty shadow field for the ageing keys): the value, or None when the
# feature is off, and the meaning that goes into the evidence.
BUILTIN_DEFAULTS: dict[str, tuple[str | None, str]] = {
    "PASS_MAX_DAYS": (None, "absent: passwords never expire (-1 assumed)"),
    "PASS_MIN_DAYS": ("0", "absent: no minimum (0 assumed)"),
    "PASS_WARN_AGE": (None, "absent: no warning is given"),
    "UID_MIN": ("1000", "absent: 1000 assumed"),
    "UID_MAX": ("60000", "absent: 60000 assumed"),
}
#: Ageing keys for which a negative value switches the feature off (login.defs(5)).
NEGATIVE_DISABLES = {"PASS_MAX_DAYS": "a negative value: passwords never expire",
                     "PASS_MIN_DAYS": "a negative value: no minimum",
                     "PASS_WARN_AGE": "a negative value: no warning is given"}


@dataclass(frozen=True)
class Setting:
    """An effective login.defs value and where it came from."""

    value: str | None  # None: not set, or the feature is off (see meaning)
    origin: str  # "/etc/login.defs:12", "built-in default" or "unset"
    meaning: str = ""


@dataclass(frozen=True)
class LoginDefs:
    """Key/value pairs of login.defs. When a key appears twice the last one applies."""

    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def get(self, key: str) -> Setting:
        if key in self.values:
            value, origin = self.values[key], f"{PATH}:{self.lines[key]}"
            if key in NEGATIVE_DISABLES and value.strip().startswith("-") and value.strip()[1:].isdigit():
                return Setting(None, origin, NEGATIVE_DISABLES[key])
            return Setting(value, origin)
        if key in BUILTIN_DEFAULTS:
            value, meaning = BUILTIN_DEFAULTS[key]
            return Setting(value, "built-in default", meaning)
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


@collector("login_defs", reads=("/etc/login.defs",))
def collect(target: Target) -> LoginDefs:
    return parse(target.fs.read_text(PATH))
