"""``check --root`` on crafted trees for the login-terminal controls NS26-TERM-001..003."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.roots import DPKG_STATUS, GROUP, PASSWD, SUDOERS, make_root
from tests.test_check_root import results

REMOTE, SUDO, PATH = "NS26-TERM-001", "NS26-TERM-002", "NS26-TERM-003"


def result(tmp_path: Path, capsys: pytest.CaptureFixture[str], control: str,
           changes: dict[str, str | None] | None = None) -> dict[str, Any]:
    return results(make_root(tmp_path, changes), capsys)[control]


# --- NS26-TERM-001 remote-control software ------------------------------------------------------

def test_compliant_tree_has_no_remote_control_and_says_running_was_not_checked(tmp_path, capsys):
    found = result(tmp_path, capsys, REMOTE)
    assert found["status"] == "pass"
    assert found["evidence"]["found"] == []
    assert "not checked" in found["evidence"]["running"] and "live" in found["evidence"]["running"]


def test_installed_package_fails_with_status_line(tmp_path, capsys):
    status = DPKG_STATUS + "\nPackage: anydesk\nStatus: install ok installed\nVersion: 6.3.0\n"
    found = result(tmp_path, capsys, REMOTE, {"var/lib/dpkg/status": status})
    assert found["status"] == "fail"
    assert found["evidence"]["found"] == [{"product": "AnyDesk", "running": [], "installed": [
        {"package": "anydesk", "version": "6.3.0", "origin": "/var/lib/dpkg/status:9"}]}]


def test_removed_package_with_config_files_left_is_not_installed(tmp_path, capsys):
    status = DPKG_STATUS + "\nPackage: x11vnc\nStatus: deinstall ok config-files\nVersion: 0.9.16\n"
    assert result(tmp_path, capsys, REMOTE, {"var/lib/dpkg/status": status})["status"] == "pass"


@pytest.mark.parametrize("path, folder, product", [
    ("opt/todesk/bin/ToDesk", "/opt/todesk", "ToDesk"),
    ("usr/local/sunlogin/bin/sunloginclient", "/usr/local/sunlogin", "Sunlogin (向日葵)"),
    ("opt/apps/com.oray.sunlogin.client/files/bin/sunloginclient", "/opt/apps/com.oray.sunlogin.client",
     "Sunlogin (向日葵)"),
    ("opt/teamviewer/tv_bin/teamviewerd", "/opt/teamviewer", "TeamViewer"),
    ("usr/share/rustdesk/files/rustdesk", "/usr/share/rustdesk", "RustDesk"),
])
def test_install_folder_fails(tmp_path, capsys, path, folder, product):
    found = result(tmp_path, capsys, REMOTE, {path: ""})
    assert found["status"] == "fail"
    assert found["evidence"]["found"] == [{"product": product, "installed": [{"path": folder}], "running": []}]


def test_desktop_launcher_fails_by_its_exec_program(tmp_path, capsys):
    found = result(tmp_path, capsys, REMOTE, {
        "etc/xdg/autostart/remote.desktop": "[Desktop Entry]\nName=Remote\nExec=env DISPLAY=:0 /usr/bin/x11vnc -forever\n"})
    assert found["status"] == "fail"
    assert found["evidence"]["found"][0]["installed"] == [
        {"desktop": "/etc/xdg/autostart/remote.desktop", "origin": "/etc/xdg/autostart/remote.desktop:3",
         "program": "x11vnc"}]


def test_allowed_product_is_reported_but_passes(tmp_path, capsys):
    policy = (Path(__file__).resolve().parents[1] / "policies" / "article26.yml").read_text(encoding="utf-8")
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "t.yml").write_text(policy.replace("remote_control_allowed: []", 'remote_control_allowed: ["VNC server"]'),
                                  encoding="utf-8")
    from tests.test_check_root import run_check

    root = make_root(tmp_path / "root", {"usr/bin/x11vnc": ""})
    _, report = run_check(root, capsys, "--policy", str(folder))
    found = {r["control"]: r for r in report["results"]}[REMOTE]
    assert found["status"] == "pass"
    assert found["evidence"]["allowed"] == [{"product": "VNC server", "installed": [{"path": "/usr/bin/x11vnc"}],
                                             "running": []}]


# --- NS26-TERM-002 passwordless sudo --------------------------------------------------------------

def test_compliant_sudoers_passes_and_service_account_nopasswd_is_no_finding(tmp_path, capsys):
    found = result(tmp_path, capsys, SUDO)
    assert found["status"] == "pass"
    assert found["evidence"]["files"] == ["/etc/sudoers", "/etc/sudoers.d/README"]
    assert "svc" not in found["evidence"]["sudo_users_checked"]  # /bin/bash but UID 998 < uid_min
    assert found["evidence"]["sudo_users_checked"] == ["root", "alice"]


def fails(tmp_path, capsys, changes: dict[str, str | None]) -> dict[str, Any]:
    found = result(tmp_path, capsys, SUDO, changes)
    assert found["status"] == "fail", found
    return found["evidence"]


def test_direct_user_rule_in_includedir(tmp_path, capsys):
    evidence = fails(tmp_path, capsys, {"etc/sudoers.d/90-alice": "# ops\n\nalice ALL=(ALL) NOPASSWD: ALL\n"})
    assert evidence["accounts"] == ["alice"]
    assert [(r["origin"], r["accounts"]) for r in evidence["nopasswd_rules"]] == [("/etc/sudoers.d/90-alice:3", ["alice"])]


def test_files_with_a_dot_or_tilde_in_includedir_are_not_read(tmp_path, capsys):
    changes = {"etc/sudoers.d/90-alice.bak": "alice ALL=(ALL) NOPASSWD: ALL\n",
               "etc/sudoers.d/90-alice~": "alice ALL=(ALL) NOPASSWD: ALL\n"}
    assert result(tmp_path, capsys, SUDO, changes)["status"] == "pass"


def test_group_rule_via_group_file_and_primary_group(tmp_path, capsys):
    passwd = PASSWD + "bob:x:1001:1500:Bob:/home/bob:/bin/bash\ncarol:x:1002:1002::/home/carol:/bin/bash\n"
    evidence = fails(tmp_path, capsys, {
        "etc/passwd": passwd,
        "etc/group": GROUP + "ops:x:1500:\nwheel:x:10:carol\n",
        "etc/sudoers.d/ops": "%ops ALL = NOPASSWD: /usr/bin/apt\n%wheel,%#1500 ALL=(ALL) PASSWD: /bin/ls, NOPASSWD: /bin/cat\n"})
    assert evidence["accounts"] == ["bob", "carol"]
    assert [(r["origin"], r["accounts"]) for r in evidence["nopasswd_rules"]] == [
        ("/etc/sudoers.d/ops:1", ["bob"]), ("/etc/sudoers.d/ops:2", ["bob", "carol"])]


def test_user_alias_with_continuation_and_negation(tmp_path, capsys):
    passwd = PASSWD + "bob:x:1001:1001:Bob:/home/bob:/bin/bash\n"
    sudoers = SUDOERS + "User_Alias ADMINS = alice, \\\n    bob, !bob\n# a comment\nADMINS ALL=(ALL) \\\n NOPASSWD: ALL\n"
    evidence = fails(tmp_path, capsys, {"etc/passwd": passwd, "etc/sudoers": sudoers})
    assert evidence["accounts"] == ["alice"]  # the last match for bob is the negation
    assert evidence["nopasswd_rules"][0]["origin"] == "/etc/sudoers:10"


def test_all_users_rule_and_include_relative_to_the_file(tmp_path, capsys):
    evidence = fails(tmp_path, capsys, {"etc/sudoers.d/README": "#include extra/more\n",
                                        "etc/sudoers.d/extra/more": "ALL ALL=(ALL) NOPASSWD:ALL\n"})
    assert evidence["accounts"] == ["alice", "root"]
    assert evidence["nopasswd_rules"][0]["origin"] == "/etc/sudoers.d/extra/more:1"


def test_defaults_not_authenticate_counts(tmp_path, capsys):
    evidence = fails(tmp_path, capsys, {"etc/sudoers.d/lazy": "Defaults:%sudo !authenticate\n"})
    assert evidence["accounts"] == ["alice"]
    assert evidence["nopasswd_rules"][0]["why"] == "Defaults !authenticate (/etc/sudoers.d/lazy:1)"
    assert evidence["nopasswd_rules"][0]["origin"] == "/etc/sudoers:4"


def test_authenticate_set_again_for_the_user_passes(tmp_path, capsys):
    changes = {"etc/sudoers.d/lazy": "Defaults !authenticate\nDefaults:alice authenticate\n",
               "etc/sudoers": SUDOERS.replace("root\tALL=(ALL:ALL) ALL\n", "")}
    assert result(tmp_path, capsys, SUDO, changes)["status"] == "pass"


def test_command_scoped_not_authenticate_is_shown_not_judged(tmp_path, capsys):
    found = result(tmp_path, capsys, SUDO, {"etc/sudoers.d/cmd": "Defaults!/usr/bin/apt !authenticate\n"})
    assert found["status"] == "pass"
    assert found["evidence"]["command_or_runas_scoped_no_authenticate"] == ["/etc/sudoers.d/cmd:1"]


def test_commented_out_nopasswd_and_nologin_account_pass(tmp_path, capsys):
    passwd = PASSWD + "deploy:x:1003:1003::/srv:/usr/sbin/nologin\n"
    changes = {"etc/passwd": passwd, "etc/sudoers.d/x": "#alice ALL=(ALL) NOPASSWD: ALL\ndeploy ALL=NOPASSWD: ALL\n"}
    assert result(tmp_path, capsys, SUDO, changes)["status"] == "pass"


def test_allowed_account_is_listed_not_failed(tmp_path, capsys):
    policy = (Path(__file__).resolve().parents[1] / "policies" / "article26.yml").read_text(encoding="utf-8")
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "t.yml").write_text(policy.replace("sudo_nopasswd_allowed: []", "sudo_nopasswd_allowed: [alice]"),
                                  encoding="utf-8")
    from tests.test_check_root import run_check

    root = make_root(tmp_path / "root", {"etc/sudoers.d/alice": "alice ALL=NOPASSWD: ALL\n"})
    _, report = run_check(root, capsys, "--policy", str(folder))
    found = {r["control"]: r for r in report["results"]}[SUDO]
    assert (found["status"], found["evidence"]["allowed"]) == ("pass", ["alice"])


def test_no_sudoers_means_no_sudo(tmp_path, capsys):
    found = result(tmp_path, capsys, SUDO, {"etc/sudoers": None})
    assert found["status"] == "pass"
    assert "not installed" in found["evidence"]["sudoers"]


# --- NS26-TERM-003 root's PATH ----------------------------------------------------------------

def path_result(tmp_path, capsys, changes, modes: dict[str, int] | None = None, owners=None) -> dict[str, Any]:
    root = make_root(tmp_path, changes)
    for rel, mode in (modes or {}).items():
        (root / rel).mkdir(parents=True, exist_ok=True)
        os.chmod(root / rel, mode)
    for rel, (uid, gid) in (owners or {}).items():
        (root / rel).mkdir(parents=True, exist_ok=True)
        os.chown(root / rel, uid, gid)
    return results(root, capsys)[PATH]


def test_safe_path_passes_and_missing_dirs_are_noted(tmp_path, capsys):
    found = path_result(tmp_path, capsys, {}, modes={"usr/local/bin": 0o755})
    assert found["status"] == "pass"
    sources = {s["source"]: s for s in found["evidence"]["sources"]}
    assert sources["ENV_SUPATH"]["origin"] == "built-in default"
    assert sources["sudo secure_path"]["origin"] == "/etc/sudoers:2"
    missing = {(m["source"], m["entry"]) for m in found["evidence"]["missing"]}
    assert ("sudo secure_path", "/usr/local/sbin") in missing
    assert ("sudo secure_path", "/usr/local/bin") not in missing


def test_world_writable_dir_in_secure_path_fails(tmp_path, capsys):
    found = path_result(tmp_path, capsys, {}, modes={"usr/local/sbin": 0o777})
    assert found["status"] == "fail"
    assert found["evidence"]["unsafe"] == [{"source": "sudo secure_path", "origin": "/etc/sudoers:2",
                                            "entry": "/usr/local/sbin", "mode": "0777", "uid": 0, "gid": 0,
                                            "problems": ["world-writable"]}]


def test_group_writable_by_root_group_is_fine_but_other_group_or_owner_fails(tmp_path, capsys):
    login_defs = "ENV_SUPATH PATH=/opt/a:/opt/b:/opt/c\n"
    found = path_result(tmp_path, capsys, {"etc/login.defs": login_defs}, modes={"opt/a": 0o775, "opt/b": 0o775},
                        owners={"opt/b": (0, 50), "opt/c": (1000, 0)})
    assert found["status"] == "fail"
    assert [(u["entry"], u["problems"], u["origin"]) for u in found["evidence"]["unsafe"]] == [
        ("/opt/b", ["group-writable by gid 50"], "/etc/login.defs:1"), ("/opt/c", ["owned by uid 1000"], "/etc/login.defs:1")]


def test_relative_entries_and_environment_and_profile_sources(tmp_path, capsys):
    found = path_result(tmp_path, capsys, {
        "etc/environment": 'LANG=C\nPATH="/usr/bin:.:/bin"\n',
        "root/.profile": "export PATH=$PATH:/root/bin:$HOME/x\n",
        "root/.bashrc": "PATH=/usr/sbin::/usr/bin\n"}, modes={"root/bin": 0o1777})
    assert found["status"] == "fail"
    assert [(u["origin"], u["entry"], u["problems"]) for u in found["evidence"]["unsafe"]] == [
        ("/etc/environment:2", ".", ["relative entry: the current folder"]),
        ("/root/.profile:1", "/root/bin", ["world-writable"]),
        ("/root/.bashrc:1", "(empty)", ["relative entry: the current folder"])]
    assert found["evidence"]["not_evaluated"] == [{"source": "/root/.profile", "origin": "/root/.profile:1",
                                                   "entries": ["$HOME/x"]}]


def test_symlinked_path_dir_is_judged_inside_the_root(tmp_path, capsys):
    root = make_root(tmp_path)
    (root / "real").mkdir()
    os.chmod(root / "real", 0o777)
    (root / "usr/local").mkdir(parents=True)
    (root / "usr/local/sbin").symlink_to("/real")
    found = results(root, capsys)[PATH]
    assert found["status"] == "fail"
    assert found["evidence"]["unsafe"][0]["entry"] == "/usr/local/sbin"
