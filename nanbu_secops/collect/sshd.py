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
import re
import shlex
import subprocess
from dataclasses import dataclass, field

from nanbu_secops.collect import CollectError, Target, collector

CONFIG = "/etc/ssh/sshd_config"
BINARIES = ("/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd")
MAX_INCLUDE_DEPTH = 16
SSHD_T_TIMEOUT = 10.0

# OpenSSH 9.2's (Debian 12's) signature algorithms: the HostKeyAlgorithms and PubkeyAcceptedAlgorithms
# default (`sshd -T` with an empty config) and everything it supports (`ssh -Q key-sig`).
_SIGNATURE_DEFAULT = (
    "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,"
    "ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,"
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,"
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,"
    "sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256")
_SIGNATURES = (
    "ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com", "sk-ssh-ed25519@openssh.com", "sk-ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com", "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com", "ssh-dss", "ssh-dss-cert-v01@openssh.com", "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com", "rsa-sha2-256", "rsa-sha2-256-cert-v01@openssh.com", "rsa-sha2-512",
    "rsa-sha2-512-cert-v01@openssh.com")

# OpenSSH 9.x defaults (sshd_config(5); the algorithm lists are 9.2's) for the keywords our controls
# read; used only when the files are parsed, since `sshd -T` prints every effective value itself.
DEFAULTS: dict[str, str] = {
    "permitrootlogin": "prohibit-password",
    "maxauthtries": "6",
    "passwordauthentication": "yes",
    "kbdinteractiveauthentication": "yes",
    "pubkeyauthentication": "yes",
    "permitemptypasswords": "no",
    "usepam": "no",
    "x11forwarding": "no",
    "clientaliveinterval": "0",
    "clientalivecountmax": "3",
    "logingracetime": "120",
    "maxsessions": "10",
    "port": "22",
    "authenticationmethods": "any",
    "ciphers": "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,"
               "aes256-gcm@openssh.com",
    "macs": "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
            "hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,"
            "hmac-sha2-256,hmac-sha2-512,hmac-sha1",
    "kexalgorithms": "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,"
                     "curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,"
                     "diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
                     "diffie-hellman-group18-sha512,diffie-hellman-group14-sha256",
    "hostkeyalgorithms": _SIGNATURE_DEFAULT,
    "pubkeyacceptedalgorithms": _SIGNATURE_DEFAULT,
}

# What OpenSSH 9.2 supports at all (`ssh -Q cipher|mac|kex|key-sig`): the set that ``+list``,
# ``^list`` and wildcards in an explicit list are matched against, as sshd's kex_assemble_names does.
SUPPORTED: dict[str, tuple[str, ...]] = {
    "ciphers": ("3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc", "aes128-ctr", "aes192-ctr", "aes256-ctr",
                "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"),
    "macs": ("hmac-sha1", "hmac-sha1-96", "hmac-sha2-256", "hmac-sha2-512", "hmac-md5", "hmac-md5-96",
             "umac-64@openssh.com", "umac-128@openssh.com", "hmac-sha1-etm@openssh.com",
             "hmac-sha1-96-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
             "hmac-md5-etm@openssh.com", "hmac-md5-96-etm@openssh.com", "umac-64-etm@openssh.com",
             "umac-128-etm@openssh.com"),
    "kexalgorithms": ("diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group14-sha256",
                      "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512",
                      "diffie-hellman-group-exchange-sha1", "diffie-hellman-group-exchange-sha256",
                      "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "curve25519-sha256",
                      "curve25519-sha256@libssh.org", "sntrup761x25519-sha512",
                      "sntrup761x25519-sha512@openssh.com"),
    "hostkeyalgorithms": _SIGNATURES,
    "pubkeyacceptedalgorithms": _SIGNATURES,
}

# Deprecated spellings sshd still accepts.
ALIASES = {"challengeresponseauthentication": "kbdinteractiveauthentication"}


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

    def get(self, key: str) -> tuple[str | None, str]:
        """Effective global value of ``key`` (any case) and where it came from."""
        key = ALIASES.get(key.lower(), key.lower())
        if key in self.settings:
            return self.settings[key], self.origins.get(key, self.source)
        if self.source == "files" and key in DEFAULTS:
            return DEFAULTS[key], "OpenSSH default"
        return None, "unset"

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
        return expand_algorithms(value or DEFAULTS[key], DEFAULTS[key].split(","), SUPPORTED[key])


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

    def __init__(self, target: Target):
        self.fs = target.fs
        self.settings: dict[str, str] = {}
        self.origins: dict[str, str] = {}
        self.conditional: list[Conditional] = []
        self.notes: list[str] = []

    def parse(self, path: str, depth: int = 0, match: str | None = None) -> None:
        if depth > MAX_INCLUDE_DEPTH:
            raise CollectError(f"{path}: Include nested more than {MAX_INCLUDE_DEPTH} deep")
        text = self.fs.read_text(path)
        for number, raw in enumerate(text.splitlines(), start=1):
            key, value = split_line(raw)
            if not key:
                continue
            origin = f"{path}:{number}"
            if key == "match":
                # A Match block runs to the next Match or the end of the file that holds it.
                match = None if value.lower() == "all" else value
                continue
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
                continue
            if match is not None:
                self.conditional.append(Conditional(match, key, value, origin))
            elif key not in self.settings:
                self.settings[key] = value
                self.origins[key] = origin


_LINE = re.compile(r"([^\s=]+)\s*(?:=\s*)?(.*)")


def split_line(raw: str) -> tuple[str, str]:
    """``Keyword value`` / ``Keyword=value`` -> (lower-case keyword, value); comments give ('', '')."""
    line = raw.strip()
    if not line or line.startswith("#"):
        return "", ""
    found = _LINE.fullmatch(line)
    if found is None:
        return "", ""
    key = found.group(1).lower()
    value = re.split(r"\s+#", found.group(2), maxsplit=1)[0].strip()
    return ALIASES.get(key, key), value


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


@collector("sshd")
def collect(target: Target) -> SshdConfig:
    fs = target.fs
    binary = next((b for b in BINARIES if fs.exists(b)), None)
    if binary is None and not fs.exists(CONFIG):
        return SshdConfig(installed=False)
    if not fs.exists(CONFIG):
        raise CollectError(f"sshd is installed but {CONFIG} is missing")
    parser = _FileParser(target)
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
                return SshdConfig(True, "sshd -T", settings, {k: "sshd -T" for k in settings},
                                  parser.conditional, notes)
    return SshdConfig(True, "files", parser.settings, parser.origins, parser.conditional, notes)
