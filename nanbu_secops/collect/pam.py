"""The PAM stacks that decide password complexity and failed-login lockout, read offline.

Debian-style systems (Debian, Ubuntu, UOS, Kylin desktop) change passwords through
``/etc/pam.d/common-password`` and authenticate through ``common-auth``; Red Hat-style systems
(openEuler, Kylin Server V10, Rocky) use ``system-auth`` (local logins, ``passwd``) and
``password-auth`` (sshd and other remote services) for both. Each stack file present is read with
its ``include``/``substack``/``@include`` lines expanded, as libpam does.

The modules' settings are gathered as each module reads them: pam_pwquality first reads
``/etc/security/pwquality.conf.d/*.conf`` in ASCII order, then ``pwquality.conf`` (a later value
wins), then its own arguments override; pam_faillock reads ``faillock.conf`` (or its ``conf=``
file), then its arguments override; pam_cracklib and pam_tally2 read only their arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nanbu_secops.collect import CollectError, Target, collector
from nanbu_secops.collect.rootfs import RootFS

PAM_D = "/etc/pam.d"
#: The files a family's password changes and logins go through, per PAM management group.
STACKS: dict[str, dict[str, tuple[str, ...]]] = {
    "debian": {"password": ("/etc/pam.d/common-password",), "auth": ("/etc/pam.d/common-auth",)},
    "redhat": {"password": ("/etc/pam.d/system-auth", "/etc/pam.d/password-auth"),
               "auth": ("/etc/pam.d/system-auth", "/etc/pam.d/password-auth")},
}
PWQUALITY_CONF = "/etc/security/pwquality.conf"
PWQUALITY_CONF_D = "/etc/security/pwquality.conf.d/*.conf"
FAILLOCK_CONF = "/etc/security/faillock.conf"
#: Where distributions install PAM modules (a root without any of them: presence is not judged).
MODULE_DIRS = ("/lib/security", "/lib64/security", "/usr/lib/security", "/usr/lib64/security",
               "/lib/*-linux-gnu*/security", "/usr/lib/*-linux-gnu*/security")
MAX_INCLUDE_DEPTH = 16
KINDS = ("auth", "account", "password", "session")
QUALITY_MODULES = ("pam_pwquality.so", "pam_cracklib.so")
LOCKOUT_MODULES = ("pam_faillock.so", "pam_tally2.so")


@dataclass(frozen=True)
class PamLine:
    """One rule of a PAM stack: ``[-]type control module [arguments]``."""

    path: str
    line: int
    kind: str  # auth, account, password, session
    control: str  # required, requisite, sufficient, optional, include, substack or "[value=action ...]"
    module: str  # the module's file name (pam_unix.so), or the included file for include/substack
    args: tuple[str, ...]
    optional_module: bool = False  # the leading "-": a missing module is skipped silently

    @property
    def origin(self) -> str:
        return f"{self.path}:{self.line}"

    def text(self) -> str:
        return " ".join((("-" if self.optional_module else "") + self.kind, self.control, self.module, *self.args))


@dataclass(frozen=True)
class Option:
    """A module setting and where it came from (a file and line, a module argument, or the default)."""

    value: str
    origin: str


@dataclass(frozen=True)
class ModuleUse:
    """One line of a stack that calls a module, with the settings that module runs with there."""

    rule: PamLine
    options: dict[str, Option]
    installed: bool | None  # the module file is in the root (None: the root has no module folder)


@dataclass(frozen=True)
class Stack:
    """One stack file's rules of one management group, includes expanded, in the order libpam runs them."""

    path: str
    family: str
    rules: list[PamLine]
    uses: list[ModuleUse]  # the rules that call the modules a control is about


@dataclass(frozen=True)
class PamFacts:
    """The stacks of the families found in the root; ``missing`` names absent stack files of a family."""

    stacks: list[Stack] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each rule: ``#`` starts a comment, a trailing backslash continues."""
    found: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = raw.split("#", 1)[0]
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        if (pending + line).strip():
            found.append((start, pending + line))
        pending = ""
    if pending.strip():
        found.append((start, pending))
    return found


_RULE = re.compile(r"\s*(-?)(\S+)\s+(\[[^\]]*\]|\S+)\s*(\S*)(.*)")


def parse_rules(text: str, path: str) -> list[PamLine]:
    """The rules of a PAM file; ``@include FILE`` becomes a rule of kind ``@include``. An argument
    in square brackets may hold spaces (the brackets are not part of it)."""
    rules: list[PamLine] = []
    for number, line in logical_lines(text):
        words = line.split()
        if words[0] == "@include":
            rules.append(PamLine(path, number, "@include", "include", words[1] if len(words) > 1 else "", ()))
            continue
        found = _RULE.match(line)
        if found is None:
            continue
        dash, kind, control, module, rest = found.groups()
        if kind.lower() not in KINDS:
            continue  # libpam refuses the line (an illegal module type); it calls no module
        args = tuple(arg[1:-1] if arg.startswith("[") else arg for arg in re.findall(r"\[[^\]]*\]|\S+", rest))
        rules.append(PamLine(path, number, kind.lower(), " ".join(control.split()), module.rsplit("/", 1)[-1]
                             if control not in ("include", "substack") else module, args, bool(dash)))
    return rules


def read_stack(fs: RootFS, path: str, kind: str, depth: int = 0) -> list[PamLine]:
    """The rules of management group ``kind`` in ``path``, with included files expanded in place."""
    if depth > MAX_INCLUDE_DEPTH:
        raise CollectError(f"{path}: PAM includes nested more than {MAX_INCLUDE_DEPTH} deep")
    rules: list[PamLine] = []
    for rule in parse_rules(fs.read_text(path), path):
        if rule.kind == "@include" or (rule.kind == kind and rule.control in ("include", "substack")):
            included = rule.module if rule.module.startswith("/") else f"{PAM_D}/{rule.module}"
            if _is_file(fs, included):  # libpam skips an include it cannot open
                rules += read_stack(fs, included, kind, depth + 1)
            continue
        if rule.kind == kind:
            rules.append(rule)
    return rules


def key_values(text: str, path: str) -> dict[str, Option]:
    """``name = value`` (or a bare ``name`` flag) lines of pwquality.conf and faillock.conf; later wins."""
    values: dict[str, Option] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, value = line.partition("=")
        values[name.strip()] = Option(value.strip() if sep else "", f"{path}:{number}")
    return values


def argument_values(rule: PamLine) -> dict[str, Option]:
    """``name=value`` and flag arguments of a module line; a later argument wins, as the modules parse them."""
    values: dict[str, Option] = {}
    for arg in rule.args:
        name, sep, value = arg.partition("=")
        values[name] = Option(value if sep else "", f"{rule.origin} argument {arg}")
    return values


def _is_file(fs: RootFS, path: str) -> bool:
    return fs.resolve(path).is_file()


def _module_installed(fs: RootFS, module: str) -> bool | None:
    folders = [folder for pattern in MODULE_DIRS for folder in fs.glob(pattern)]
    if not folders:
        return None
    return any(fs.exists(f"{folder}/{module}") for folder in folders)


def _pwquality_files(fs: RootFS) -> dict[str, Option]:
    values: dict[str, Option] = {}
    for path in [*fs.glob(PWQUALITY_CONF_D), PWQUALITY_CONF]:
        if _is_file(fs, path):
            values.update(key_values(fs.read_text(path), path))
    return values


def module_options(fs: RootFS, rule: PamLine, pwquality: dict[str, Option]) -> dict[str, Option]:
    """The settings ``rule``'s module runs with: its configuration file(s), then its arguments."""
    args = argument_values(rule)
    if rule.module == "pam_pwquality.so":
        return {**pwquality, **args}
    if rule.module == "pam_faillock.so":
        conf = args["conf"].value if "conf" in args else FAILLOCK_CONF
        files = key_values(fs.read_text(conf), conf) if _is_file(fs, conf) else {}
        return {**files, **args}
    return args


def _families(fs: RootFS) -> list[str]:
    return [family for family, groups in STACKS.items()
            if any(fs.exists(path) for paths in groups.values() for path in paths)]


def collect_stacks(target: Target, kind: str, modules: tuple[str, ...]) -> PamFacts:
    """Every stack file of management group ``kind`` of the families present, and the uses of ``modules``."""
    fs = target.fs
    families = _families(fs)
    if not families:
        raise CollectError(f"no PAM stack found: none of {', '.join(p for g in STACKS.values() for p in g[kind])}")
    pwquality = _pwquality_files(fs) if "pam_pwquality.so" in modules else {}
    facts = PamFacts()
    for family in families:
        for path in STACKS[family][kind]:
            if not fs.exists(path):
                facts.missing.append(path)
                continue
            rules = read_stack(fs, path, kind)
            uses = [ModuleUse(rule, module_options(fs, rule, pwquality), _module_installed(fs, rule.module))
                    for rule in rules if rule.module in modules]
            facts.stacks.append(Stack(path, family, rules, uses))
    return facts


@collector("pam_password_quality", reads=("PAM password stack (common-password, system-auth, password-auth)", "pwquality.conf(.d)"))
def collect_password_quality(target: Target) -> PamFacts:
    """The password stacks and their pam_pwquality / pam_cracklib lines."""
    return collect_stacks(target, "password", QUALITY_MODULES)


@collector("pam_lockout", reads=("PAM auth stack (common-auth, system-auth, password-auth)", "faillock.conf"))
def collect_lockout(target: Target) -> PamFacts:
    """The auth stacks and their pam_faillock / pam_tally2 lines."""
    return collect_stacks(target, "auth", LOCKOUT_MODULES)
