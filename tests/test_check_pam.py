"""NS26-PASS-006/007: the PAM stacks of both families, read offline, with libpwquality as the oracle.

``pwscore`` (libpwquality-tools) is libpwquality judging a password against the pwquality.conf
files it finds; it runs in a private mount namespace where the crafted root's /etc/security is
bind-mounted over this machine's, so it reads exactly the files the collector read and the real
/etc/security is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nanbu_secops.checks.pam import login_lockout, password_complexity, quality_settings
from nanbu_secops.collect import CollectError, Target
from nanbu_secops.collect.pam import collect_lockout, collect_password_quality, parse_rules
from nanbu_secops.collect.rootfs import RootFS
from nanbu_secops.results import Status
from tests.roots import AS_OF, COMMON_PASSWORD, REDHAT_AUTH, make_redhat_root, make_root

needs_pwscore = pytest.mark.skipif(not (shutil.which("pwscore") and shutil.which("unshare") and os.geteuid() == 0),
                                   reason="needs root, unshare and libpwquality-tools' pwscore")


def quality(root: Path):
    return password_complexity(collect_password_quality(Target(RootFS(root), AS_OF)), min_length=8, min_classes=3)


def lockout(root: Path):
    return login_lockout(collect_lockout(Target(RootFS(root), AS_OF)), max_deny=5, min_unlock_seconds=600)


def test_rules_parse_as_libpam_splits_them():
    text = ("# comment\n-password [success=1 default=ignore\tnew_authtok_reqd=ok] /lib/security/pam_unix.so a \\\n"
            "  b=[x y] [c=d e] # tail\n@include common-auth\n  auth\n\x00\xff garbage\npassword include system-auth\n")
    rules = parse_rules(text, "/etc/pam.d/x")
    assert [(r.line, r.kind, r.control, r.module, r.args, r.optional_module) for r in rules] == [
        (2, "password", "[success=1 default=ignore new_authtok_reqd=ok]", "pam_unix.so", ("a", "b=[x", "y]", "c=d e"), True),
        (4, "@include", "include", "common-auth", (), False),
        (7, "password", "include", "system-auth", (), False),
    ]


def test_include_loop_is_an_error_not_a_hang(tmp_path):
    root = make_root(tmp_path, {"etc/pam.d/common-password": "@include common-password\n"})
    with pytest.raises(CollectError, match="nested more than"):
        collect_password_quality(Target(RootFS(root), AS_OF))


def test_no_stack_at_all_is_an_error(tmp_path):
    root = make_root(tmp_path, {"etc/pam.d/common-password": None, "etc/pam.d/common-auth": None})
    with pytest.raises(CollectError, match="no PAM stack found"):
        collect_lockout(Target(RootFS(root), AS_OF))


def test_arguments_override_the_files_which_override_conf_d(tmp_path):
    root = make_root(tmp_path, {
        "etc/security/pwquality.conf.d/10-a.conf": "minlen = 20\nminclass=1\n",
        "etc/security/pwquality.conf.d/20-b.conf": "minclass = 2\n",
        "etc/security/pwquality.conf": "minlen = 14\n",
        "etc/pam.d/common-password": COMMON_PASSWORD.replace("retry=3", "retry=3 minclass=4 minlen=7 minlen=9"),
    })
    [stack] = quality(root).evidence["stacks"]
    assert stack["minlen"] == {"value": 9, "origin": "/etc/pam.d/common-password:1 argument minlen=9"}
    assert stack["minclass"]["value"] == 4
    root2 = make_root(tmp_path / "2", {"etc/security/pwquality.conf.d/10-a.conf": "minclass=1\n",
                                       "etc/security/pwquality.conf.d/20-b.conf": "minclass = 2\n",
                                       "etc/security/pwquality.conf": "minlen = 14\n"})
    [stack] = quality(root2).evidence["stacks"]
    assert stack["minclass"] == {"value": 2, "origin": "/etc/security/pwquality.conf.d/20-b.conf:1"}
    assert quality(root2).status is Status.FAIL  # 2 classes < 3


def test_faillock_reads_its_conf_argument_and_arguments_win(tmp_path):
    root = make_redhat_root(tmp_path, {
        "etc/security/other.conf": "deny=9\nunlock_time = 60\n",
        "etc/pam.d/password-auth": REDHAT_AUTH.replace(
            "pam_faillock.so authfail", "pam_faillock.so authfail conf=/etc/security/other.conf deny=4"),
    })
    found = lockout(root)
    assert found.status is Status.FAIL
    [_, stack] = found.evidence["stacks"]
    assert stack["rules"][0]["deny"] == {"value": 4, "origin": "/etc/pam.d/password-auth:4 argument deny=4"}
    assert stack["problems"] == ["/etc/security/other.conf:2: unlock_time=60 s (policy: at least 600 s)"]


@pytest.mark.parametrize("maker", [make_root, make_redhat_root])
def test_shipped_roots_pass_both(tmp_path, maker):
    root = maker(tmp_path)
    assert quality(root).status is Status.PASS
    assert lockout(root).status is Status.PASS


def test_redhat_password_auth_alone_weak_fails(tmp_path):
    """sshd goes through password-auth: a strong system-auth does not cover it."""
    root = make_redhat_root(tmp_path, {"etc/pam.d/password-auth": REDHAT_AUTH.replace(
        "password    requisite     pam_pwquality.so local_users_only\n", "")})
    found = quality(root)
    assert found.status is Status.FAIL
    assert found.evidence["stacks"][1] == {"stack": "/etc/pam.d/password-auth",
                                           "problem": "no pam_pwquality.so or pam_cracklib.so in the password stack"}


def test_tally2_missing_from_a_pam_1_5_root(tmp_path):
    root = make_root(tmp_path, {
        "etc/pam.d/common-auth": "auth required pam_tally2.so deny=3 unlock_time=900\nauth required pam_unix.so\n",
        "usr/lib/x86_64-linux-gnu/security/pam_unix.so": "",
    })
    found = lockout(root)
    assert found.status is Status.FAIL
    assert any("pam_tally2 was removed" in p for p in found.evidence["stacks"][0]["problems"])


# --- libpwquality as the oracle of what pwquality.conf demands --------------------------------------

CLASSES = ("0123456789", "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnpqrstuvwxyz", "#%+-=?@_!$^&*()[]{}")


def candidate(length: int, classes: int) -> str:
    """A password of ``length`` distinct-looking characters from the first ``classes`` classes
    (digits, upper, lower, other), spread round-robin so every class used appears early."""
    pools = [CLASSES[(i + 2) % 4] for i in range(classes)]  # lower first, then other, digits, upper
    return "".join(pools[i % classes][(i * 7) % len(pools[i % classes])] for i in range(length))


def pwscore(root: Path, password: str) -> bool:
    script = 'mount --bind "$1/etc/security" /etc/security && exec pwscore'
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(root)],
                          input=password + "\n", capture_output=True, text=True, timeout=30)
    return done.returncode == 0


# This machine has no cracklib dictionary; the dictionary check is not what the control reads.
NO_DICTIONARY = "dictcheck = 0\n"
CONFS = [
    "minlen = 12\nminclass = 3\n",
    "minlen = 8\n",
    "# minlen = 20\nminlen=10\nminclass = 2\n",
    "minlen = 4\n",  # below the floor of 6
    "minlen = 14\nminlen = 9\nminclass = 4\n",  # the later line wins
]


@needs_pwscore
@pytest.mark.parametrize("conf", CONFS)
def test_shortest_password_and_classes_match_pwscore(tmp_path, conf):
    root = make_root(tmp_path, {"etc/security/pwquality.conf": conf + NO_DICTIONARY})
    [stack] = quality(root).evidence["stacks"]
    shortest, classes = stack["shortest_password"], stack["classes_required"]
    assert pwscore(root, candidate(shortest, 4)), (shortest, candidate(shortest, 4))
    assert not pwscore(root, candidate(shortest - 1, 4))
    if classes > 1:
        assert pwscore(root, candidate(shortest + 2, classes))
        assert not pwscore(root, candidate(shortest + 2, classes - 1))


@needs_pwscore
def test_conf_d_order_matches_pwscore(tmp_path):
    """pwquality.conf.d/*.conf first in ASCII order, then pwquality.conf: the main file wins."""
    root = make_root(tmp_path, {"etc/security/pwquality.conf.d/b.conf": "minlen = 16\n",
                                "etc/security/pwquality.conf.d/a.conf": "minlen = 30\n",
                                "etc/security/pwquality.conf": "minclass = 1\n" + NO_DICTIONARY})
    [stack] = quality(root).evidence["stacks"]
    assert stack["shortest_password"] == 16
    assert pwscore(root, candidate(16, 4)) and not pwscore(root, candidate(15, 4))


def test_quality_settings_hostile_numbers(tmp_path):
    root = make_root(tmp_path, {"etc/security/pwquality.conf": "minlen = twelve\nminclass=\n\x00=\n"})
    facts = collect_password_quality(Target(RootFS(root), AS_OF))
    settings = quality_settings(facts.stacks[0].uses[0])
    assert settings["problems"] == ["/etc/security/pwquality.conf:1: minlen is not a number",
                                    "/etc/security/pwquality.conf:2: minclass is not a number"]
    assert quality(root).status is Status.FAIL


@pytest.mark.parametrize("seed", range(12))
def test_hostile_files_give_a_verdict_or_a_collect_error(tmp_path, seed):
    """Random bytes, NULs, unbalanced brackets, endless continuations and huge lines in every file
    the PAM collectors read: a pass, a fail or a CollectError, never a crash."""
    import random

    rng = random.Random(seed)
    pieces = [b"password", b"auth", b"requisite", b"[", b"]", b"\\\n", b"\x00", b"=", b"#", b"pam_pwquality.so",
              b"pam_faillock.so", b"minlen=", b"deny=", b"@include ", b"include", b"common-password", b"\n",
              b" ", b"\xff\xfe", b"-", b"9" * 30, b"authfail", b"preauth", b"conf=/etc/security/faillock.conf"]

    def junk() -> bytes:
        return b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 400)))

    changes = {path: junk() for path in ("etc/pam.d/common-password", "etc/pam.d/common-auth",
                                         "etc/security/pwquality.conf", "etc/security/faillock.conf")}
    root = make_root(tmp_path, changes)
    for collect, judge in ((collect_password_quality, quality), (collect_lockout, lockout)):
        try:
            collect(Target(RootFS(root), AS_OF))
        except CollectError:
            continue
        assert judge(root).status in (Status.PASS, Status.FAIL, Status.ERROR)
