"""The scenario suite: small shell scripts that make one article-26 control pass or fail.

Each script in ``tests/scenarios/<CONTROL>/`` says what it expects in a header line
(``# expect: pass`` or ``# expect: fail``); ``# families: debian`` or ``redhat`` narrows it to one
family (default both). It runs with ``sh -e`` on a freshly built root of each family
(tests/roots.py: Debian-like and Red Hat-like), inside a private mount namespace where the root's
``etc`` is bind-mounted over ``/etc``: the script edits ``/etc/...`` as an administrator would,
with the real tools (sed, useradd, usermod, chage, utmpdump), and this machine's /etc is never
touched. ``$ROOT`` (the root's path) and ``$FAMILY`` are in its environment for files outside /etc.

Then ``nanbu-secops check --root`` judges the control. Where a real implementation can judge the
same root, it is the oracle and must agree, run in a second namespace of the same kind:
``sshd -T`` (with ``-C`` for each ``# connection:`` header, so Match blocks are applied, and with
the options a RHEL 8-style sshd.service passes, expanded by the shell) for
NS26-SSH-*, ``useradd`` (the ageing fields it writes from login.defs) for NS26-PASS-001..003, and
``sudo -l -U`` for NS26-TERM-002, and libpam running the password stacks (``pamtester ...
chauthtok``) for NS26-PASS-006 and the auth stacks (``pamtester ... authenticate``, wrong
passwords, then the clock moved with faketime) for NS26-PASS-007.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import yaml

from nanbu_secops import audit
from nanbu_secops.policy import load_policies
from tests.roots import AS_OF, make_redhat_root, make_root

SCENARIOS = Path(__file__).parent / "scenarios"
FAMILIES = {"debian": make_root, "redhat": make_redhat_root}
SSHD = "/usr/sbin/sshd"
TOOL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
POLICY_FILE = Path(__file__).parent.parent / "policies" / "article26.yml"
POLICY = yaml.safe_load(POLICY_FILE.read_text())["variables"]

pytestmark = pytest.mark.skipif(not (shutil.which("unshare") and os.geteuid() == 0),
                                reason="the scenarios run in a private mount namespace (root, unshare)")


def headers(script: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in script.read_text().splitlines():
        if line.startswith("# ") and ":" in line:
            key, _, value = line[2:].partition(":")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def cases() -> list[tuple[str, Path, str]]:
    found = []
    for script in sorted(SCENARIOS.glob("*/*.sh")):
        families = headers(script).get("families", ["debian redhat"])[0].split()
        found += [pytest.param(script.parent.name, script, family, id=f"{script.parent.name}/{script.stem}-{family}")
                  for family in families]
    return found


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One built root per family, copied for each scenario (building one writes a signature database)."""
    base = tmp_path_factory.mktemp("templates")
    return {family: make(base / family) for family, make in FAMILIES.items()}


@pytest.fixture(scope="module")
def policies():
    return load_policies(str(POLICY_FILE))


@pytest.fixture(scope="module")
def host_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("hostkey") / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def in_namespace(root: Path, script: str, *args: str, env: dict[str, str] | None = None,
                 stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``script`` (sh) with ``root``/etc over /etc, a fresh /run, and the root's crypto-policies
    tree at /usr/share/crypto-policies when it has one, in a private mount namespace."""
    setup = 'mount --bind "$ROOT/etc" /etc && mount -t tmpfs none /run && ' \
            'if [ -d "$ROOT/usr/share/crypto-policies" ]; then mount -t tmpfs none /usr/share && ' \
            'mkdir /usr/share/crypto-policies && mount --bind "$ROOT/usr/share/crypto-policies" /usr/share/crypto-policies; fi; '
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", setup + script, "sh", *args],
                          env={"PATH": TOOL_PATH, "ROOT": str(root), **(env or {})},
                          input=stdin, capture_output=True, text=True, timeout=30)


# --- oracles: what the real implementation makes of the same root ---------------------------------

MARK = "@@nanbu-oracle@@"


def answers(stdout: str) -> list[tuple[str, int]]:
    """(output, exit code) of each run a namespace script framed as MARK, output, MARK and the code."""
    parts = stdout.split(MARK)[1:]
    return [(parts[i], int(parts[i + 1].split("\n", 1)[0])) for i in range(0, len(parts) - 1, 2)]

def _interactive(root: Path) -> list[str]:
    users = []
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[2].isdigit() and (int(fields[2]) == 0 or int(fields[2]) >= POLICY["uid_min"]) \
                and fields[6] not in POLICY["nologin_shells"] and os.path.basename(fields[6]) not in ("nologin", "false"):
            users.append(fields[0])
    return users


def useradd_oracle(control: str, root: Path, script: Path, context: Mapping[str, Path]) -> str | None:
    """useradd writes login.defs' ageing values into the new account's shadow fields; an empty
    field is the feature off."""
    done = in_namespace(root, "useradd -M -s /bin/sh nanbuoracle && grep '^nanbuoracle:' /etc/shadow")
    assert done.returncode == 0, done.stderr
    fields = done.stdout.strip().split(":")
    field, ok = {"NS26-PASS-001": (4, lambda n: 0 <= n <= POLICY["pass_max_days"]),
                 "NS26-PASS-002": (3, lambda n: n >= POLICY["pass_min_days"]),
                 "NS26-PASS-003": (5, lambda n: n >= POLICY["pass_warn_age"])}[control]
    value = fields[field]
    return "pass" if value.lstrip("-").isdigit() and ok(int(value)) else "fail"


def _sshd_compliant(control: str, printed: dict[str, str]) -> bool:
    methods = printed.get("authenticationmethods", "any")
    listed = {m.split(":", 1)[0] for chain in methods.split() for m in chain.split(",")}
    passwords = [k for k in ("passwordauthentication", "kbdinteractiveauthentication") if printed.get(k) == "yes"]
    if methods != "any" and not listed & {"password", "keyboard-interactive"}:
        passwords = []
    if control == "NS26-SSH-001":
        return printed["permitrootlogin"] in ("no", "without-password", "forced-commands-only") or not passwords
    if control == "NS26-SSH-002":
        return int(printed["maxauthtries"]) <= POLICY["ssh_max_auth_tries"]
    if control == "NS26-SSH-003":
        return not passwords
    if control == "NS26-SSH-004":
        every, count = int(printed["clientaliveinterval"]), int(printed["clientalivecountmax"])
        return every > 0 and count > 0 and every * count <= POLICY["ssh_idle_timeout_seconds"]
    weak = POLICY["ssh_weak_algorithms"]
    lists = {"kexalgorithms": weak["kex"], "hostkeyalgorithms": weak["hostkey"], "pubkeyacceptedalgorithms":
             weak["hostkey"], "ciphers": weak["ciphers"], "macs": weak["macs"]}
    return not any(fnmatch.fnmatchcase(name, pattern) for key, patterns in lists.items()
                   for name in printed[key].split(",") for pattern in patterns)


def sshd_oracle(control: str, root: Path, script: Path, context: Mapping[str, Path]) -> str | None:
    """sshd -T on the root's own configuration (its Includes resolve inside the root's /etc), once
    globally and once per ``# connection:`` header; sshd refusing the configuration is a fail."""
    if not Path(SSHD).exists():
        pytest.skip("openssh-server's sshd is not installed")
    passwd = root / "etc/passwd"
    if "\nsshd:" not in "\n" + passwd.read_text():  # sshd -T wants its privilege-separation user
        passwd.write_text(passwd.read_text() + "sshd:x:74:74::/run/sshd:/usr/sbin/nologin\n")
    # A RHEL 8-style sshd.service passes options (the crypto policy) on the command line: the shell
    # sources its EnvironmentFile= files in order and expands ExecStart's words, as systemd would.
    service = "$ROOT/usr/lib/systemd/system/sshd.service"
    options = (f'for f in $(sed -n "s/^EnvironmentFile=-\\{{0,1\\}}//p" "{service}"); do '
               'if [ -f "$f" ]; then set -a; . "$f"; set +a; fi; done; '
               f'eval "set -- $(sed -n "s/^ExecStart=[^ ]* //p" "{service}")"; '
               if (root / "usr/lib/systemd/system/sshd.service").exists() else "set --; ")
    # one namespace for every run (the global one, then one per connection), each answer between markers
    runs = " ".join(f"'{c}'" for c in ["", *headers(script).get("connection", [])])
    done = in_namespace(root, f'key="$1"; {options}mkdir -p /run/sshd; for c in {runs}; do echo "{MARK}"; '
                              f'if [ -n "$c" ]; then {SSHD} -T -f /etc/ssh/sshd_config -h "$key" -C "$c" "$@" 2>&1; '
                              f'else {SSHD} -T -f /etc/ssh/sshd_config -h "$key" "$@" 2>&1; fi; echo "{MARK}$?"; done',
                        str(context["host_key"]))
    verdicts = []
    for output, code in answers(done.stdout):
        if code != 0:  # a refused configuration, named by file and line; anything else is a broken oracle
            assert " line " in output or "bad configuration" in output, output
            return "fail"
        printed = dict(line.split(" ", 1) for line in output.splitlines() if " " in line)
        verdicts.append(_sshd_compliant(control, printed))
    assert verdicts, done.stderr
    return "pass" if all(verdicts) else "fail"


def sudo_oracle(control: str, root: Path, script: Path, context: Mapping[str, Path]) -> str | None:
    """``sudo -l -U`` lists each interactive account's rules; NOPASSWD or !authenticate is a fail.
    sudo wants a PAM service to start at all: a permit-only one is given (it lists, never authenticates)."""
    pam = root / "etc/pam.d/sudo"
    if not pam.exists():
        pam.write_text("auth sufficient pam_permit.so\naccount sufficient pam_permit.so\nsession optional pam_permit.so\n")
    users = [u for u in _interactive(root) if u not in POLICY["sudo_nopasswd_allowed"]]
    done = in_namespace(root, f'for u in "$@"; do echo "{MARK}"; sudo -l -U "$u" 2>/dev/null; echo "{MARK}$?"; done',
                        *users)
    found = answers(done.stdout)
    assert len(found) == len(users), done.stderr
    for output, code in found:
        assert code == 0 or "is not allowed to run sudo" in output, output
        if "NOPASSWD" in output or "!authenticate" in output:
            return "fail"
    return "pass"


#: Passwords the PAM oracle offers: one the policy must accept, one a character shorter than
#: password_min_length, one with a class fewer than password_min_classes (none a dictionary word).
STRONG = "Zq7#mW2!kP9@vT4%"
SHORT = STRONG[:POLICY["password_min_length"] - 1]
FEW_CLASSES = "zq7mw2kp9vt4dx8n"[:POLICY["password_min_length"] + 4] if POLICY["password_min_classes"] == 3 else None
PAM_MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/security", "/lib/x86_64-linux-gnu/security")


def pam_oracle(control: str, root: Path, script: Path, context: Mapping[str, Path]) -> str | None:
    """libpam itself runs each password stack file as a service (``pamtester SERVICE alice
    chauthtok``) with this machine's modules and an unpacked pam_pwquality.so mounted over the
    module folder: the stack passes when it takes STRONG and refuses SHORT and FEW_CLASSES.
    pam_pwquality only warns when root changes a password, so ``enforce_for_root`` is added to its
    lines in this copy of the root (the check has already judged it). A stack naming a module this
    machine lacks (pam_cracklib is gone from Debian 12) cannot be run: no verdict. The password is
    typed six times, as a person keeps retyping it at every prompt (pam_pwquality's retries, then
    pam_unix's own prompts when it asks itself)."""
    modules = context.get("pam_modules")
    if modules is None or FEW_CLASSES is None:
        return None
    stacks = [name for name in ("common-password", "system-auth", "password-auth") if (root / "etc/pam.d" / name).exists()]
    for name in stacks:
        path = root / "etc/pam.d" / name
        text = path.read_text()
        if any(not (modules / module).exists() for module in re.findall(r"(pam_\w+\.so)", text)):
            return None
        path.write_text(re.sub(r"(pam_pwquality\.so)", r"\1 enforce_for_root", text))
    runs = [(name, pw) for name in stacks for pw in (STRONG, SHORT, FEW_CLASSES)]
    script_text = (f'mount --bind "$MODULES" "$MODULE_DIR" && while read -r service pw; do echo "{MARK}"; '
                   'for i in 1 2 3 4 5 6; do echo "$pw"; done | pamtester "$service" alice chauthtok 2>&1; '
                   f'echo "{MARK}$?"; '
                   f'done <<RUNS\n' + "".join(f"{n} {pw}\n" for n, pw in runs) + "RUNS\n")
    done = in_namespace(root, script_text, env={"MODULES": str(modules), "MODULE_DIR": context["pam_module_dir"].as_posix()})
    found = answers(done.stdout)
    assert len(found) == len(runs), done.stderr
    for (_name, pw), (_output, code) in zip(runs, found, strict=True):
        if (code == 0) != (pw == STRONG):
            return "fail"
    return "pass"


SECRET = "Zq7#mW2!kP9@vT4%"


def lockout_oracle(control: str, root: Path, script: Path, context: Mapping[str, Path]) -> str | None:
    """libpam runs each auth stack file as a service (``pamtester SERVICE alice authenticate``):
    the right password is taken at first; after ``lockout_max_deny`` wrong ones it is refused, and
    still refused ``lockout_min_unlock_seconds`` - 1 seconds later (faketime moves the clock
    pam_faillock compares its records with). The tally lives in the namespace's fresh /run and is
    cleared before each stack file.
    pam_unix's and pam_faillock's two-second delay after a failure is switched off (``nodelay``) in
    this copy of the root, and alice gets a known password; a module this machine lacks (pam_tally2 left Linux-PAM
    in 1.5) means no verdict."""
    modules = context.get("pam_modules")
    if modules is None or not shutil.which("faketime", path=TOOL_PATH):
        return None
    stacks = [name for name in ("common-auth", "system-auth", "password-auth") if (root / "etc/pam.d" / name).exists()]
    for name in stacks:
        path = root / "etc/pam.d" / name
        text = path.read_text()
        if any(not (modules / module).exists() for module in re.findall(r"(pam_\w+\.so)", text)):
            return None
        path.write_text(re.sub(r"(pam_unix\.so|pam_faillock\.so)", r"\1 nodelay", text))
    done = in_namespace(root, 'usermod -p "$(openssl passwd -6 "$SECRET")" alice', env={"SECRET": SECRET})
    assert done.returncode == 0, done.stderr
    later = POLICY["lockout_min_unlock_seconds"] - 1
    wrong = POLICY["lockout_max_deny"]
    script_text = (f'mount --bind "$MODULES" "$MODULE_DIR" && mkdir -p /run/faillock && for service in "$@"; do '
                   f'rm -f /run/faillock/*; echo "{MARK}"; '
                   f'echo "$SECRET" | pamtester "$service" alice authenticate 2>&1; echo "{MARK}$?"; '
                   f'i=0; while [ $i -lt {wrong} ]; do echo wrong-password | pamtester "$service" alice authenticate '
                   f'>/dev/null 2>&1; i=$((i+1)); done; '
                   f'echo "{MARK}"; echo "$SECRET" | pamtester "$service" alice authenticate 2>&1; echo "{MARK}$?"; '
                   f'echo "{MARK}"; echo "$SECRET" | faketime -f "+{later}s" pamtester "$service" alice authenticate 2>&1; '
                   f'echo "{MARK}$?"; done')
    done = in_namespace(root, script_text, *stacks, env={"MODULES": str(modules), "SECRET": SECRET,
                                                        "MODULE_DIR": context["pam_module_dir"].as_posix()})
    found = answers(done.stdout)
    assert len(found) == 3 * len(stacks), done.stderr
    for i in range(0, len(found), 3):
        first, locked, later_on = (code for _, code in found[i:i + 3])
        if first != 0 or locked == 0 or later_on == 0:
            return "fail"
    return "pass"


ORACLES: dict[str, tuple[str, Callable[[str, Path, Path, Mapping[str, Path]], str | None]]] = {
    "NS26-PASS-006": ("pamtester", pam_oracle),
    "NS26-PASS-007": ("pamtester", lockout_oracle),
    **{f"NS26-PASS-00{n}": ("useradd", useradd_oracle) for n in (1, 2, 3)},
    **{f"NS26-SSH-00{n}": ("sshd", sshd_oracle) for n in range(1, 6)},
    "NS26-TERM-002": ("sudo", sudo_oracle),
}


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory, host_key: Path) -> dict[str, Path]:
    """What the oracles need: sshd's host key, and for the PAM oracle a copy of this machine's
    module folder with pam_pwquality.so added (scripts/setup.sh --test unpacks it)."""
    found: dict[str, Path] = {"host_key": host_key}
    unpacked = Path(__file__).parent.parent / ".pam-modules" / "pam_pwquality.so"
    module_dir = next((Path(d) for d in PAM_MODULE_DIRS if Path(d, "pam_unix.so").exists()), None)
    if unpacked.exists() and module_dir is not None:
        copy = tmp_path_factory.mktemp("pam-modules")
        shutil.copytree(module_dir, copy, dirs_exist_ok=True)
        shutil.copy(unpacked, copy)
        found.update(pam_modules=copy, pam_module_dir=module_dir.resolve())
    return found


@pytest.mark.parametrize("control, script, family", cases())
def test_scenario(tmp_path, policies, templates, context, control, script, family):
    root = tmp_path / "root"
    shutil.copytree(templates[family], root, symlinks=True)
    applied = in_namespace(root, 'exec sh -e "$1"', str(script), env={"FAMILY": family})
    assert applied.returncode == 0, f"{script.name} failed on the {family} root: {applied.stderr}"
    [expected] = headers(script)["expect"]
    # what `nanbu-secops check --root ROOT --as-of AS_OF --only CONTROL` runs, the policy loaded once
    [result] = audit.run(policies, audit.make_target(str(root), AS_OF), [control], "en").as_json()["results"]
    assert result["status"] == expected, json.dumps(result["evidence"], ensure_ascii=False)[:1500]
    if control in ORACLES and shutil.which(ORACLES[control][0], path=TOOL_PATH):
        verdict = ORACLES[control][1](control, root, script, context)
        assert verdict in (expected, None), f"{ORACLES[control][0]} disagrees"


def test_every_article_26_control_has_three_of_each():
    controls = [c["id"] for c in yaml.safe_load(POLICY_FILE.read_text())["controls"]]
    for control in controls:
        expects = [headers(s)["expect"][0] for s in (SCENARIOS / control).glob("*.sh")]
        assert expects.count("pass") >= 3 and expects.count("fail") >= 3, control
