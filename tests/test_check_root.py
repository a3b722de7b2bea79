"""``check --root`` on crafted trees: a pass and a fail case for every article 26 control."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from nanbu_secops.cli import main
from tests.roots import AS_OF, LOGIN_DEFS, SSHD_CONFIG, days_ago, make_root, shadow


def run_check(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(["check", "--root", str(root), "--as-of", AS_OF.isoformat(), "--format", "json", *extra])
    out = capsys.readouterr().out
    return code, json.loads(out)


def results(root: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    _, report = run_check(root, capsys)
    return {r["control"]: r for r in report["results"]}


def status_of(tmp_path: Path, capsys: pytest.CaptureFixture[str], control: str,
              changes: dict[str, str | None] | None = None) -> dict[str, Any]:
    return results(make_root(tmp_path, changes), capsys)[control]


def test_compliant_root_passes_everything(tmp_path, capsys):
    code, report = run_check(make_root(tmp_path), capsys)
    statuses = {r["control"]: r["status"] for r in report["results"]}
    assert {c: statuses[c] for c in (
        "NS26-PASS-001", "NS26-PASS-002", "NS26-PASS-003", "NS26-PASS-004", "NS26-PASS-005", "NS26-ACCT-001",
        "NS26-SSH-001", "NS26-SSH-002", "NS26-ACCT-010", "NS26-ACCT-011", "NS26-ACCT-012")} == {
        "NS26-PASS-001": "pass", "NS26-PASS-002": "pass", "NS26-PASS-003": "pass", "NS26-PASS-004": "pass",
        "NS26-PASS-005": "pass", "NS26-ACCT-001": "pass", "NS26-SSH-001": "pass", "NS26-SSH-002": "pass",
        "NS26-ACCT-010": "pass", "NS26-ACCT-011": "pass", "NS26-ACCT-012": "pass"}
    # Everything else passes too, or is skipped because it can only be seen on a live system
    # (processes, sockets, routes): a --root tree has none of those.
    others = {r["control"]: r for r in report["results"] if r["status"] != "pass"}
    assert all(r["status"] == "skip" and "live" in r["evidence"]["reason"] for r in others.values()), others
    assert code == 0
    assert report["host"] == "terminal-01"


# --- login.defs -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, status, value", [
    (LOGIN_DEFS, "pass", "90"),
    (LOGIN_DEFS.replace("PASS_MAX_DAYS   90", "PASS_MAX_DAYS   91"), "fail", "91"),
    (LOGIN_DEFS.replace("PASS_MAX_DAYS   90", "#PASS_MAX_DAYS   90"), "fail", None),  # absent: never expires
    (LOGIN_DEFS.replace("PASS_MAX_DAYS   90", "PASS_MAX_DAYS   -1"), "fail", None),  # negative: never expires
    (LOGIN_DEFS + "PASS_MAX_DAYS 120\n", "fail", "120"),  # the last occurrence applies
    (LOGIN_DEFS.replace("PASS_MAX_DAYS   90", "PASS_MAX_DAYS 120") + "PASS_MAX_DAYS\t60\n", "pass", "60"),
    (LOGIN_DEFS.replace("PASS_MAX_DAYS   90", "PASS_MAX_DAYS ninety"), "fail", "ninety"),
])
def test_pass_max_days(tmp_path, capsys, text, status, value):
    result = status_of(tmp_path, capsys, "NS26-PASS-001", {"etc/login.defs": text})
    assert (result["status"], result["evidence"]["value"]) == (status, value)


def test_pass_max_days_default_is_reported_as_builtin(tmp_path, capsys):
    result = status_of(tmp_path, capsys, "NS26-PASS-001",
                       {"etc/login.defs": LOGIN_DEFS.replace("PASS_MAX_DAYS   90\n", "")})
    assert result["evidence"]["origin"] == "built-in default"


@pytest.mark.parametrize("line, status", [("PASS_MIN_DAYS   1", "pass"), ("PASS_MIN_DAYS   0", "fail"),
                                          ("PASS_MIN_DAYS   3", "pass"), ("", "fail")])
def test_pass_min_days(tmp_path, capsys, line, status):
    text = LOGIN_DEFS.replace("PASS_MIN_DAYS   1", line)
    assert status_of(tmp_path, capsys, "NS26-PASS-002", {"etc/login.defs": text})["status"] == status


@pytest.mark.parametrize("line, status", [("PASS_WARN_AGE   7", "pass"), ("PASS_WARN_AGE   6", "fail"),
                                          ("PASS_WARN_AGE   14", "pass"),
                                          ("", "fail"), ("#PASS_WARN_AGE   7", "fail"),  # absent: no warning at all
                                          ("PASS_WARN_AGE   -1", "fail")])  # negative: no warning
def test_pass_warn_age(tmp_path, capsys, line, status):
    text = LOGIN_DEFS.replace("PASS_WARN_AGE   7", line)
    result = status_of(tmp_path, capsys, "NS26-PASS-003", {"etc/login.defs": text})
    assert result["status"] == status
    if status == "fail" and "6" not in line:
        assert result["evidence"]["value"] is None and "no warning" in result["evidence"]["meaning"]


@pytest.mark.parametrize("key, line, field", [("PASS_WARN_AGE", "PASS_WARN_AGE   7", 5),
                                              ("PASS_MAX_DAYS", "PASS_MAX_DAYS   90", 4)])
@pytest.mark.parametrize("how", ["absent", "commented", "negative"])
def test_ageing_defaults_match_what_useradd_writes(tmp_path, capsys, key, line, field, how):
    """shadow-utils' useradd is the oracle: it writes an empty shadow field (the feature off)
    exactly when the check reads the key as off. useradd --prefix works on a copy of /etc."""
    import shutil
    import subprocess
    if shutil.which("useradd") is None or os.geteuid() != 0:
        pytest.skip("useradd --prefix needs root and shadow-utils")
    replacement = {"absent": "", "commented": "#" + line, "negative": f"{key}   -1"}[how]
    text = LOGIN_DEFS.replace(line, replacement)
    prefix = tmp_path / "prefix"
    (prefix / "etc").mkdir(parents=True)
    for name, body in (("passwd", "root:x:0:0:root:/root:/bin/bash\n"), ("group", "root:x:0:\n"),
                       ("shadow", "root:*:19000:0:99999:7:::\n"), ("gshadow", "root:*::\n"), ("login.defs", text)):
        (prefix / "etc" / name).write_text(body)
    done = subprocess.run(["useradd", "--prefix", str(prefix), "-M", "oracle"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = next(row for row in (prefix / "etc" / "shadow").read_text().splitlines() if row.startswith("oracle:"))
    assert written.split(":")[field] == ""  # useradd: the feature is off
    control = {"PASS_WARN_AGE": "NS26-PASS-003", "PASS_MAX_DAYS": "NS26-PASS-001"}[key]
    result = status_of(tmp_path / "root", capsys, control, {"etc/login.defs": text})
    assert result["status"] == "fail" and result["evidence"]["value"] is None


# --- password age in /etc/shadow ----------------------------------------------------------------

@pytest.mark.parametrize("changes, status", [
    ({"alice": days_ago(90)}, "pass"),       # exactly the maximum age
    ({"alice": days_ago(91)}, "fail"),
    ({"root": days_ago(200)}, "fail"),       # root is interactive whatever its UID
    ({"svc": days_ago(4000)}, "pass"),       # UID 998 < uid_min: not a person's account
    ({"alice": ""}, "fail"),                 # ageing disabled
    ({"alice": 0}, "fail"),                  # change forced at next login
    ({"alice": days_ago(-3)}, "fail"),       # last change after the as-of date
])
def test_password_age(tmp_path, capsys, changes, status):
    result = status_of(tmp_path, capsys, "NS26-PASS-004", {"etc/shadow": shadow(**changes)})
    assert result["status"] == status
    if status == "fail":
        assert [o["account"] for o in result["evidence"]["overdue"]] == list(changes)


def test_password_age_reports_age_in_days(tmp_path, capsys):
    result = status_of(tmp_path, capsys, "NS26-PASS-004", {"etc/shadow": shadow(alice=days_ago(120))})
    assert result["evidence"]["overdue"] == [
        {"account": "alice", "last_change": "2026-07-31", "age_days": 120}]


def test_locked_and_nologin_accounts_are_not_judged(tmp_path, capsys):
    old = days_ago(500)
    text = shadow(alice=old).replace("alice:$6$", "alice:!$6$")
    result = status_of(tmp_path, capsys, "NS26-PASS-004", {
        "etc/shadow": text + f"bob:$6$x$y:{old}:1:90:7:::\n",
        "etc/passwd": make_root(tmp_path / "ref").joinpath("etc/passwd").read_text()
        + "bob:x:1001:1001::/home/bob:/usr/sbin/nologin\n"})
    assert result["status"] == "pass"
    assert "alice" in result["evidence"]["locked"]
    assert "bob" not in result["evidence"]["checked"]


def test_empty_shell_field_counts_as_interactive(tmp_path, capsys):
    passwd = "root:x:0:0:root:/root:/bin/bash\ncarol:x:1002:1002::/home/carol:\n"
    result = status_of(tmp_path, capsys, "NS26-PASS-004", {
        "etc/passwd": passwd,
        "etc/shadow": f"root:*:{days_ago(1)}::::::\ncarol:$6$a$b:{days_ago(365)}:::::: \n".replace(" \n", "\n")})
    assert result["status"] == "fail"
    assert result["evidence"]["overdue"][0]["account"] == "carol"


# --- empty passwords and UID 0 ------------------------------------------------------------------

def test_empty_password_in_shadow_fails(tmp_path, capsys):
    text = shadow().replace("svc:$6$salt$abcdefghijklmnopqrstuvwxyz0123456789", "svc:")
    result = status_of(tmp_path, capsys, "NS26-PASS-005", {"etc/shadow": text})
    assert (result["status"], result["evidence"]["accounts"]) == ("fail", ["svc"])


def test_empty_password_in_passwd_fails(tmp_path, capsys):
    passwd = make_root(tmp_path / "ref").joinpath("etc/passwd").read_text() + "guest::1003:1003::/tmp:/bin/sh\n"
    result = status_of(tmp_path, capsys, "NS26-PASS-005", {"etc/passwd": passwd})
    assert (result["status"], result["evidence"]["accounts"]) == ("fail", ["guest"])


def test_second_uid0_account_fails(tmp_path, capsys):
    passwd = make_root(tmp_path / "ref").joinpath("etc/passwd").read_text() + "toor:x:0:0::/root:/bin/bash\n"
    result = status_of(tmp_path, capsys, "NS26-ACCT-001", {"etc/passwd": passwd})
    assert result["status"] == "fail"
    assert result["evidence"]["uid0_accounts"] == [{"account": "toor", "line": 7}]


# --- sshd ---------------------------------------------------------------------------------------

# The shipped test config allows keys only (AuthenticationMethods publickey); without that line
# the password methods are at their defaults.
ANY_METHOD = SSHD_CONFIG.replace("AuthenticationMethods publickey\n", "")


@pytest.mark.parametrize("config, dropin, status", [
    (SSHD_CONFIG, None, "pass"),
    (ANY_METHOD.replace("PermitRootLogin prohibit-password", "PermitRootLogin yes"), None, "fail"),
    (ANY_METHOD.replace("PermitRootLogin prohibit-password", "permitrootlogin=yes"), None, "fail"),
    # yes is harmless while every password method is off: both flags off, or AuthenticationMethods
    # listing none (sshd -T agrees: tests/scenarios/NS26-SSH-001)
    (ANY_METHOD.replace("PermitRootLogin prohibit-password", "PermitRootLogin yes\nPasswordAuthentication no"),
     None, "pass"),
    (SSHD_CONFIG.replace("PermitRootLogin prohibit-password", "PermitRootLogin yes"), None, "pass"),
    # deprecated alias turns keyboard-interactive (a password method) back on, first value wins
    (ANY_METHOD.replace("PermitRootLogin prohibit-password",
                        "PermitRootLogin yes\nPasswordAuthentication no\nChallengeResponseAuthentication yes"),
     None, "fail"),
    # an Include at the top overrides the later line: the first value obtained wins
    (ANY_METHOD, "PermitRootLogin yes\n", "fail"),
    (SSHD_CONFIG.replace("PermitRootLogin prohibit-password", ""), None, "pass"),  # default prohibit-password
    (ANY_METHOD + "Match Address 10.0.0.0/8\n    PermitRootLogin yes\n", None, "fail"),
    # the block inherits AuthenticationMethods publickey: root still has no password way in
    (SSHD_CONFIG + "Match Address 10.0.0.0/8\n    PermitRootLogin yes\n", None, "pass"),
    (SSHD_CONFIG + "Match Address 10.0.0.0/8\n    PermitRootLogin yes\n    AuthenticationMethods any\n", None, "fail"),
])
def test_sshd_root_password_login(tmp_path, capsys, config, dropin, status):
    changes = {"etc/ssh/sshd_config": config}
    if dropin is not None:
        changes["etc/ssh/sshd_config.d/50-local.conf"] = dropin
    assert status_of(tmp_path, capsys, "NS26-SSH-001", changes)["status"] == status


def test_include_origin_is_reported(tmp_path, capsys):
    result = status_of(tmp_path, capsys, "NS26-SSH-001", {
        "etc/ssh/sshd_config.d/50-local.conf": "# local\nPermitRootLogin yes\n"})
    assert result["evidence"]["permitrootlogin"] == {
        "value": "yes", "origin": "/etc/ssh/sshd_config.d/50-local.conf:2"}


@pytest.mark.parametrize("config, status, value", [
    (SSHD_CONFIG, "pass", "4"),
    (SSHD_CONFIG.replace("MaxAuthTries 4", "MaxAuthTries 3"), "pass", "3"),
    (SSHD_CONFIG.replace("MaxAuthTries 4", "MaxAuthTries 5"), "fail", "5"),
    (SSHD_CONFIG.replace("MaxAuthTries 4", ""), "fail", "6"),  # OpenSSH default
    (SSHD_CONFIG.replace("MaxAuthTries 4", "maxauthtries = 2"), "pass", "2"),
    (SSHD_CONFIG + "Match User ops\n  MaxAuthTries 10\n", "fail", "4"),
])
def test_sshd_max_auth_tries(tmp_path, capsys, config, status, value):
    result = status_of(tmp_path, capsys, "NS26-SSH-002", {"etc/ssh/sshd_config": config})
    assert (result["status"], result["evidence"]["value"]) == (status, value)


def test_sshd_not_installed_is_skipped(tmp_path, capsys):
    found = results(make_root(tmp_path, {"etc/ssh/sshd_config": None, "usr/sbin/sshd": None}), capsys)
    assert found["NS26-SSH-001"]["status"] == found["NS26-SSH-002"]["status"] == "skip"


def test_sshd_installed_without_config_is_an_error(tmp_path, capsys):
    found = results(make_root(tmp_path, {"etc/ssh/sshd_config": None}), capsys)
    assert found["NS26-SSH-001"]["status"] == "error"
    assert "sshd_config is missing" in found["NS26-SSH-001"]["evidence"]["error"]


# --- robustness ---------------------------------------------------------------------------------

def test_missing_shadow_gives_errors_and_the_rest_still_runs(tmp_path, capsys):
    code, report = run_check(make_root(tmp_path, {"etc/shadow": None}), capsys)
    status = {r["control"]: r["status"] for r in report["results"]}
    assert status["NS26-PASS-004"] == status["NS26-PASS-005"] == "error"
    assert status["NS26-PASS-001"] == status["NS26-ACCT-001"] == status["NS26-SSH-001"] == "pass"
    assert code == 1  # an unverified control is not all clear
    error = {r["control"]: r for r in report["results"]}["NS26-PASS-005"]["evidence"]["error"]
    assert "shadow" in error and "No such file" in error


def test_unreadable_shadow_is_an_error_not_a_crash(tmp_path, capsys):
    root = make_root(tmp_path)
    (root / "etc/shadow").unlink()
    (root / "etc/shadow").mkdir()  # a directory where a file should be
    found = results(root, capsys)
    assert found["NS26-PASS-004"]["status"] == "error"


def test_malformed_lines_do_not_crash(tmp_path, capsys):
    found = results(make_root(tmp_path, {
        "etc/passwd": "root:x:0:0:root:/root:/bin/bash\nbroken line\nx:y:notanumber:1:::\n",
        "etc/shadow": f"root:*:{days_ago(1)}:::::\nalice:$6$a:abc:1:90:7:::\n",
        "etc/ssh/sshd_config": "\x00\xff garbage\nMaxAuthTries\n"}), capsys)
    assert {r["status"] for r in found.values()} <= {"pass", "fail", "skip"}


def test_absolute_symlinks_resolve_inside_the_root(tmp_path, capsys):
    root = make_root(tmp_path)
    real = root / "usr/share/base/login.defs"
    real.parent.mkdir(parents=True)
    real.write_text(LOGIN_DEFS.replace("PASS_MAX_DAYS   90", "PASS_MAX_DAYS   33"))
    (root / "etc/login.defs").unlink()
    os.symlink("/usr/share/base/login.defs", root / "etc/login.defs")  # absolute, as in an image
    assert results(root, capsys)["NS26-PASS-001"]["evidence"]["value"] == "33"


def test_symlink_escaping_with_dotdot_stays_inside(tmp_path, capsys):
    root = make_root(tmp_path / "img")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/login.defs").write_text("PASS_MAX_DAYS 1\n")  # outside the root: must not be read
    (root / "etc/login.defs").unlink()
    os.symlink("../../../../etc/login.defs", root / "etc/login.defs")
    result = results(root, capsys)["NS26-PASS-001"]
    assert result["status"] == "error"  # resolves to <root>/etc/login.defs itself -> loop/missing, never outside
