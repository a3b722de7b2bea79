"""The SSH daemon's effective configuration.

On the live system with sshd running, ``sshd -T`` (given the running daemon's own ``-f``/``-o``
options) is the truth. Otherwise, and for any ``--root`` tree, the configuration files are read
the way sshd reads them: keywords case-insensitive, ``Keyword=value`` allowed, the FIRST value
obtained wins, ``Include`` is expanded in place (globs, relative to /etc/ssh), and ``Match``
blocks are conditional. Match blocks are always gathered from the files, because ``sshd -T``
without a connection spec does not show them and they can re-enable what the global part forbids.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from nanbu_secops.collect import CollectError, Target, collector, rpmdb, systemd

CONFIG = "/etc/ssh/sshd_config"
BINARIES = ("/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd")
MAX_INCLUDE_DEPTH = 16
SSHD_T_TIMEOUT = 10.0

#: sshd's built-in defaults and known algorithms per upstream OpenSSH version, and distribution
#: builds that change them (sshd_defaults.json, generated from the openssh-portable release tags).
_TABLE: dict[str, Any] = json.loads(resources.files("nanbu_secops.collect").joinpath("sshd_defaults.json").read_text())
#: The version assumed when none can be found on the target: Debian 12's, the platform's own.
ASSUMED_VERSION = "9.2"
DPKG_STATUS = "/var/lib/dpkg/status"
OS_RELEASE = "/etc/os-release"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version)[:2])


@dataclass(frozen=True)
class Defaults:
    """The defaults of the OpenSSH version found (or the nearest older one in the table)."""

    table_version: str
    note: str  # where the version came from and which table applies, for the evidence
    values: dict[str, str]
    algorithms: dict[str, list[str]]
    supported: dict[str, tuple[str, ...]]
    rejects_extra_arguments: bool
    #: Before OpenSSH 8.7 ChallengeResponseAuthentication is a keyword of its own, and sshd turns
    #: keyboard-interactive on whenever it is on; from 8.7 it is an alias of KbdInteractiveAuthentication.
    challenge_response_enables_kbdinteractive: bool = False
    #: From 7.9 an integer must be a whole number; before, sshd took atoi()'s leading digits (or 0).
    strict_integers: bool = True
    #: Every keyword this version knows -> whether a Match block may hold it (servconf.c keywords[]).
    keywords: dict[str, bool] = field(default_factory=dict)


def defaults_for(version: str | None, distribution: str | None = None, origin: str = "") -> Defaults:
    """The table for ``version`` (``9.2p1``, ``1:8.4p1-5+deb11u3``...): an exact upstream version,
    else the nearest older one, and a distribution build's own changes when the table has them."""
    versions = _TABLE["versions"]
    known = sorted(versions, key=_version_key)
    upstream = re.search(r"(\d+)\.(\d+)", re.sub(r"^\d+:", "", version)) if version else None
    if upstream is None:
        chosen = ASSUMED_VERSION
        note = f"OpenSSH version not found{f' ({origin})' if origin else ''}; the defaults of OpenSSH {chosen} (Debian 12) are assumed"
    else:
        wanted = (int(upstream.group(1)), int(upstream.group(2)))
        older = [v for v in known if _version_key(v) <= wanted]
        chosen = older[-1] if older else known[0]
        found = f"OpenSSH {upstream.group(0)} ({origin})" if origin else f"OpenSSH {upstream.group(0)}"
        if _version_key(chosen) == wanted:
            note = f"{found}: its defaults"
        elif older:
            note = f"{found} is not in the table: the defaults of the nearest older version, {chosen}, are used"
        else:
            note = f"{found} is older than any in the table: the defaults of {chosen} are used"
    entry = versions[chosen]
    algorithms = {k: list(v) for k, v in entry["algorithms"].items()}
    supported = {k: tuple(v) for k, v in entry["supported"].items()}
    build = _TABLE["builds"].get(distribution or "", {}).get(chosen) if upstream is not None and \
        _version_key(chosen) == (int(upstream.group(1)), int(upstream.group(2))) else None
    if build:
        algorithms.update({k: list(v) for k, v in build.get("algorithms", {}).items()})
        for key, names in build.get("supported_add", {}).items():
            supported[key] = supported[key] + tuple(n for n in names if n not in supported[key])
        note += f"; {distribution}'s build ({build['verified']})"
    return Defaults(chosen, note, dict(entry["defaults"]), algorithms, supported, entry["rejects_extra_arguments"],
                    entry["challenge_response_enables_kbdinteractive"], entry["strict_integers"],
                    {name: spec["match"] for name, spec in entry["keywords"].items()})


def _dpkg_openssh(text: str) -> str | None:
    """The installed openssh-server's version in a dpkg status file, found without parsing it all."""
    at = text.find("Package: openssh-server\n")
    if at < 0:
        return None
    block = text[at:text.find("\n\n", at) if text.find("\n\n", at) > 0 else len(text)]
    status = re.search(r"^Status: (.*)$", block, re.M)
    version = re.search(r"^Version: (.*)$", block, re.M)
    if status is None or version is None or status.group(1).split()[-1:] != ["installed"]:
        return None
    return version.group(1).strip()


def _distribution(target: Target) -> str | None:
    try:
        found = re.search(r"^ID=\"?([^\"\n]+)", target.fs.read_text(OS_RELEASE), re.M)
    except OSError:
        return None
    return found.group(1).lower() if found else None


def detect_version(target: Target, binary: str | None) -> tuple[str | None, str]:
    """(version, where it was found): dpkg's status file, else the rpm database, else (live only)
    ``sshd -V``. The package databases come first because they are read in a millisecond and
    name the distribution's build; the binary is asked only when no package owns it."""
    try:
        version = _dpkg_openssh(target.fs.read_text(DPKG_STATUS))
    except OSError:
        version = None
    if version is not None:
        return version, f"{DPKG_STATUS}: openssh-server {version}"
    found_rpm = rpmdb.package_version(target.fs, "openssh-server")
    if found_rpm is not None:
        return found_rpm[0], f"{found_rpm[1]}: openssh-server {found_rpm[0]}"
    if target.live and binary is not None:
        try:
            done = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=SSHD_T_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired):
            done = None
        found = re.search(r"OpenSSH_(\d+\.\d+\S*)", (done.stdout + done.stderr) if done else "")
        if found:
            return found.group(1).rstrip(","), f"{binary} -V"
    if target.fs.exists(rpmdb.BERKELEY_DB):
        return None, f"{rpmdb.BERKELEY_DB}: a Berkeley DB rpm database, which is not read"
    return None, ""


# Deprecated spellings sshd still accepts.
ALIASES = {"challengeresponseauthentication": "kbdinteractiveauthentication"}
#: Keywords OpenSSH renamed and still accepts under the old name (8.5: ...KeyTypes became
#: ...Algorithms); before 8.5 the old name is the only one. Either way one setting.
RENAMED = {"pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms"}


@dataclass(frozen=True)
class Conditional:
    """A setting inside a Match block."""

    match: str
    key: str
    value: str
    origin: str


@dataclass(frozen=True)
class SshdConfig:
    installed: bool
    source: str = ""  # "sshd -T" or "files"
    settings: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    conditional: list[Conditional] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    defaults: Defaults = field(default_factory=lambda: defaults_for(ASSUMED_VERSION))
    #: Lines sshd would refuse (``file:line: Keyword value: why``): sshd then refuses the whole
    #: configuration, so no setting read from it can be trusted.
    invalid: list[str] = field(default_factory=list)

    def get(self, key: str) -> tuple[str | None, str]:
        """Effective global value of ``key`` (any case) and where it came from."""
        key = key.lower()
        if self.source == "files" and self.defaults.challenge_response_enables_kbdinteractive:
            if key == "kbdinteractiveauthentication":
                return self._kbdinteractive_before_8_7()
        else:
            key = ALIASES.get(key, key)
        if key in self.settings:
            return self.settings[key], self.origins.get(key, self.source)
        if self.source == "files" and key in self.defaults.values:
            return self.defaults.values[key], "OpenSSH default"
        if self.source == "files" and key in self.defaults.algorithms:
            return ",".join(self.defaults.algorithms[key]), "OpenSSH default"
        return None, "unset"

    def _kbdinteractive_before_8_7(self) -> tuple[str, str]:
        """Keyboard-interactive is on when either keyword is (sshd.c before 8.7)."""
        found = []
        for key in ("kbdinteractiveauthentication", "challengeresponseauthentication"):
            value = self.settings.get(key, self.defaults.values[key])
            found.append((value, self.origins.get(key, "OpenSSH default")))
        on = [pair for pair in found if pair[0].lower() == "yes"]
        if not on:
            return found[0][0], found[0][1]
        value, origin = on[0]
        if origin != found[0][1]:
            origin = f"{origin} (ChallengeResponseAuthentication turns keyboard-interactive on before OpenSSH 8.7)"
        return value, origin

    def algorithms(self, key: str, value: str | None = None) -> list[str]:
        """The algorithm list sshd ends up with for ``key`` (ciphers, macs, kexalgorithms...).

        ``value`` is a Match block's setting; without it the global one is used. ``sshd -T``
        prints the final list; a value read from the files may be ``+list``, ``-list``,
        ``^list`` or hold wildcards, which are resolved against OpenSSH's default and supported
        lists the way sshd does, so a check sees what a client is actually offered.
        """
        key = key.lower()
        if value is None:
            value, _ = self.get(key)
            if self.source == "sshd -T":
                return [name for name in (value or "").split(",") if name]
        default = self.defaults.algorithms[key]
        return expand_algorithms(value or ",".join(default), default, self.defaults.supported[key])


def _matching(patterns: list[str], names: tuple[str, ...] | list[str]) -> list[str]:
    return [name for name in names if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def expand_algorithms(value: str, default: list[str], supported: tuple[str, ...]) -> list[str]:
    """Resolve an sshd algorithm setting (sshd_config(5): ``+`` append, ``-`` remove, ``^`` prepend).

    Wildcards expand to the supported algorithms they match; a plain name is kept even when
    this table does not know it (a newer sshd may), so an unknown weak name is never hidden.
    """
    value = value.strip()
    head = value[:1] if value[:1] in ("+", "-", "^") else ""
    rest = [item.strip() for item in value[len(head):].split(",") if item.strip()]
    if head == "-":
        return [name for name in default if name not in _matching(rest, default)]
    named: list[str] = []
    for item in rest:
        found = _matching([item], supported) if any(ch in item for ch in "*?") else [item]
        named += [name for name in found if name not in named]
    if head == "+":
        return default + [name for name in named if name not in default]
    if head == "^":
        return named + [name for name in default if name not in named]
    return named


class _FileParser:
    """Reads sshd_config and its Includes from a target's filesystem."""

    def __init__(self, target: Target, defaults: Defaults):
        self.fs = target.fs
        self.defaults = defaults
        self.settings: dict[str, str] = {}
        self.origins: dict[str, str] = {}
        self.conditional: list[Conditional] = []
        self.notes: list[str] = []
        self.invalid: list[str] = []

    def parse(self, path: str, depth: int = 0, match: str | None = None) -> None:
        if depth > MAX_INCLUDE_DEPTH:
            raise CollectError(f"{path}: Include nested more than {MAX_INCLUDE_DEPTH} deep")
        text = self.fs.read_text(path)
        for number, raw in enumerate(text.splitlines(), start=1):
            match = self.line(raw, f"{path}:{number}", match, depth)

    def options(self, options: list[tuple[str, str]]) -> None:
        """``-o`` options of sshd's command line: sshd reads them before its configuration file,
        so, the first value obtained winning, they override it (RHEL 8's crypto policy does this)."""
        for option, origin in options:
            self.line(option, f"{origin} (sshd -o {option})", None, 0)

    def line(self, raw: str, origin: str, match: str | None, depth: int) -> str | None:
        """Read one line; returns the Match criteria in force after it."""
        separate = self.defaults.challenge_response_enables_kbdinteractive and match is None
        written, value = split_line(raw, aliases=False)
        if not written:
            return match
        key = RENAMED.get(written, written)
        key = key if separate else ALIASES.get(key, key)
        problem = self._keyword_problem(written, match is not None)
        if problem:
            self.invalid.append(f"{origin}: {raw.strip()}: {problem}")
            return match
        if key == "match":
            # A Match block runs to the next Match or the end of the file that holds it.
            return None if value.lower() == "all" else value
        if key == "include":
            try:
                patterns = shlex.split(value)
            except ValueError as exc:  # an unclosed quote: sshd itself refuses such a file
                raise CollectError(f"{origin}: Include {value!r}: {exc}") from None
            for pattern in patterns:
                if not pattern.startswith("/"):
                    pattern = f"/etc/ssh/{pattern}"
                found = self.fs.glob(pattern)
                if not found and not any(ch in pattern for ch in "*?["):
                    self.notes.append(f"{origin}: included file {pattern} does not exist")
                for included in found:
                    self.parse(included, depth + 1, match)
            return match
        if key in VALUE_RULES:
            problem, value = check_value(key, value, self.defaults)
            if problem:
                self.invalid.append(f"{origin}: {raw.strip()}: {problem}")
        if match is not None:
            self.conditional.append(Conditional(match, key, value, origin))
        elif key not in self.settings:
            self.settings[key] = value
            self.origins[key] = origin
        return match

    def _keyword_problem(self, keyword: str, in_match: bool) -> str:
        """Why sshd refuses this keyword here: unknown to this version, or not allowed in a Match block."""
        known = self.defaults.keywords
        if not known or keyword in ("match", "include"):
            return ""
        if keyword not in known:
            return f"bad configuration option for OpenSSH {self.defaults.table_version}"
        if in_match and not known[keyword]:
            return "not allowed within a Match block"
        return ""


_LINE = re.compile(r"([^\s=]+)\s*(?:=\s*)?(.*)")


def split_line(raw: str, aliases: bool = True) -> tuple[str, str]:
    """``Keyword value`` / ``Keyword=value`` -> (lower-case keyword, value); comments give ('', '').
    With ``aliases`` a deprecated spelling becomes the keyword it stands for."""
    line = raw.split("\x00", 1)[0].strip().lstrip("= \t")  # sshd reads a C string; '=' separates like a blank
    if not line or line.startswith("#"):
        return "", ""
    found = _LINE.fullmatch(line)
    if found is None or not found.group(1).strip("\"'"):
        return "", ""  # sshd ignores a line that is only quotes
    key = found.group(1).lower()
    value = re.split(r"\s+#", found.group(2), maxsplit=1)[0].strip()
    return (ALIASES.get(RENAMED.get(key, key), RENAMED.get(key, key)) if aliases else key), value


# --- what sshd accepts as a value (servconf.c process_server_config_line) ---------------------------

_FLAGS = ("passwordauthentication", "kbdinteractiveauthentication", "pubkeyauthentication", "permitemptypasswords",
          "usepam", "x11forwarding")
_ALGORITHM_KEYS = ("ciphers", "macs", "kexalgorithms", "hostkeyalgorithms", "pubkeyacceptedalgorithms")
_AUTH_METHODS = ("password", "publickey", "keyboard-interactive", "hostbased", "gssapi-with-mic", "none")
#: The kind of value each keyword the controls read takes; sshd exits at start-up (and ``sshd -t``
#: fails) on any line of these whose value does not parse, in a Match block or not.
VALUE_RULES: dict[str, str] = {
    **{key: "flag" for key in _FLAGS}, "challengeresponseauthentication": "flag",
    "permitrootlogin": "permitrootlogin",
    "maxauthtries": "int", "maxsessions": "int", "clientalivecountmax": "int",
    "clientaliveinterval": "time", "logingracetime": "time",
    "port": "port",
    "authenticationmethods": "authmethods",
    **{key: "algorithms" for key in _ALGORITHM_KEYS},
}
def seconds(value: str | None) -> int | None:
    """A time value as sshd's convtime() reads it (``90``, ``5m``, ``1h30m``; units s m h d w in
    either case, none meaning seconds), or None when sshd would refuse it."""
    if value is None or not (_TIME.fullmatch(value) and value.isascii()):
        return None
    units = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return sum(int(number) * units[unit.lower()] for number, unit in re.findall(r"(\d+)([sSmMhHdDwW]?)", value))


_PERMIT_ROOT = ("yes", "prohibit-password", "without-password", "forced-commands-only", "no")
_TIME = re.compile(r"(?:\d+[sSmMhHdDwW]?)+")


def check_value(key: str, value: str, defaults: Defaults) -> tuple[str, str]:
    """(why sshd would refuse this value or "", the value as sshd reads it).

    From OpenSSH 8.7 a line is split like a shell word list (quotes allowed, extra words fatal);
    earlier versions take the first word and ignore the rest."""
    try:
        words = shlex.split(value, comments=True)
    except ValueError:
        return "invalid quotes", value
    if not words:
        return "missing argument", value
    if defaults.rejects_extra_arguments and len(words) > 1 and VALUE_RULES[key] != "authmethods":
        return "extra arguments at end of line", value
    word, kind = words[0], VALUE_RULES[key]
    if kind == "flag" and word.lower() not in ("yes", "no"):
        return f"unsupported option {word!r}", word
    if kind == "permitrootlogin" and word.lower() not in _PERMIT_ROOT:
        return f"unsupported option {word!r}", word
    if kind == "int" and not defaults.strict_integers:
        digits = re.match(r"[+-]?\d*", word.strip())
        return "", str(int(digits.group(0))) if digits and digits.group(0).lstrip("+-") else "0"
    if kind == "int" and not (word.isascii() and word.isdigit() and int(word) <= 2**31 - 1):
        return f"invalid integer {word!r}", word
    if kind == "time" and not (_TIME.fullmatch(word) and word.isascii()):
        return f"invalid time value {word!r}", word
    if kind == "port" and not (word.isascii() and word.isdigit() and 1 <= int(word) <= 65535):
        return f"bad port number {word!r}", word
    if kind == "algorithms":
        return _algorithm_problem(key, word, defaults), word
    if kind == "authmethods":
        return _auth_methods_problem(words), value
    return "", word


def _algorithm_problem(key: str, word: str, defaults: Defaults) -> str:
    """A ``-`` list is not checked by sshd; otherwise every name must be one this version knows
    (the key and signature lists may hold wildcards that match one)."""
    if word.startswith("-"):
        return ""
    names = [n for n in word.lstrip("+^").split(",") if n]  # sshd skips empty names ("a,b,")
    supported = defaults.supported[key]
    for name in names:
        wildcard = any(ch in name for ch in "*?") and key in ("hostkeyalgorithms", "pubkeyacceptedalgorithms")
        if name not in supported and not (wildcard and _matching([name], supported)):
            return f"bad {key} name {name!r} for OpenSSH {defaults.table_version}"
    return ""


def _auth_methods_problem(words: list[str]) -> str:
    """``any`` alone, or lists of known method names (a ``:submethod`` is not checked by sshd)."""
    if words == ["any"]:
        return ""
    for word in words:
        for method in word.split(","):
            if method == "any":
                return '"any" must appear alone in AuthenticationMethods'
            if method.split(":", 1)[0] not in _AUTH_METHODS:
                return f"unknown authentication method {method!r}"
    return ""


SERVICES = ("sshd.service", "ssh.service")  # Red Hat's name, Debian's (which aliases sshd.service to it)


def service_options(target: Target) -> list[tuple[str, str]]:
    """(``Keyword=value``, where it came from) for each ``-o`` option systemd's sshd.service gives
    sshd, its ``$VARIABLES`` expanded from the unit's EnvironmentFile= files. On RHEL 8-likes
    (Rocky 8, Kylin Server V10, openEuler's RHEL 8-style builds) the crypto-policies back-end
    /etc/crypto-policies/back-ends/opensshserver.config is such a file, setting CRYPTO_POLICY to
    ``-oCiphers=... -oMACs=...``, and /etc/sysconfig/sshd (read after it) may empty it to opt out.
    Debian's ssh.service passes $SSHD_OPTS from /etc/default/ssh the same way."""
    found = next((f for f in (systemd.exec_start(target.fs, unit) for unit in SERVICES) if f is not None), None)
    if found is None:
        return []
    words, _ = found
    options: list[tuple[str, str]] = []
    for i, (word, origin) in enumerate(words):
        if word == "-o" and i + 1 < len(words):
            options.append(words[i + 1])
        elif word.startswith("-o") and len(word) > 2:
            options.append((word[2:], origin))
    return options


def _running_sshd_options() -> list[str] | None:
    """The listening sshd's ``-f``/``-o`` options, or None when no sshd runs here."""
    import psutil

    for proc in psutil.process_iter(["name", "cmdline", "ppid"]):
        if proc.info["name"] != "sshd":
            continue
        try:
            parent = psutil.Process(proc.info["ppid"]).name() if proc.info["ppid"] else ""
        except psutil.Error:
            parent = ""
        if parent == "sshd":
            continue  # a per-connection child, not the listener
        argv = proc.info["cmdline"] or []
        options: list[str] = []
        for i, arg in enumerate(argv):
            if arg in ("-f", "-o") and i + 1 < len(argv):
                options += [arg, argv[i + 1]]
        return options
    return None


def _sshd_t(binary: str, options: list[str]) -> dict[str, str]:
    done = subprocess.run([binary, "-T", *options], capture_output=True, text=True,
                          timeout=SSHD_T_TIMEOUT, check=False)
    if done.returncode != 0:
        raise CollectError(f"sshd -T exited {done.returncode}: {done.stderr.strip()[:300]}")
    settings: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key.lower(), value.strip())
    return settings


@collector("sshd", reads=("sshd -T (live)", "sshd_config and its Includes", "the options sshd.service passes",
                     "the OpenSSH version (dpkg, rpmdb.sqlite)"))
def collect(target: Target) -> SshdConfig:
    fs = target.fs
    binary = next((b for b in BINARIES if fs.exists(b)), None)
    if binary is None and not fs.exists(CONFIG):
        return SshdConfig(installed=False)
    if not fs.exists(CONFIG):
        raise CollectError(f"sshd is installed but {CONFIG} is missing")
    version, origin = detect_version(target, binary)
    defaults = defaults_for(version, _distribution(target), origin)
    parser = _FileParser(target, defaults)
    parser.options(service_options(target))
    parser.parse(CONFIG)
    notes = parser.notes
    if target.live and binary is not None:
        options = _running_sshd_options()
        if options is not None:
            try:
                settings = _sshd_t(binary, options)
            except (CollectError, OSError, subprocess.TimeoutExpired) as exc:
                notes.append(f"sshd -T failed ({exc}); read the configuration files instead")
            else:
                # sshd itself accepted the files: its verdict stands over this parser's.
                notes += [f"{line} (but sshd -T accepted the configuration)" for line in parser.invalid]
                return SshdConfig(True, "sshd -T", settings, {k: "sshd -T" for k in settings},
                                  parser.conditional, notes, defaults)
    return SshdConfig(True, "files", parser.settings, parser.origins, parser.conditional, notes, defaults,
                      parser.invalid)
