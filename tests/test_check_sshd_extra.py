"""NS26-SSH-003..005 on crafted ``--root`` trees (pass and fail cases), and the pure helpers behind them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nanbu_secops.checks.sshd import sshd_password_authentication, sshd_weak_algorithms, weak_algorithms
from nanbu_secops.cli import main
from nanbu_secops.collect.sshd import SshdConfig, defaults_for, expand_algorithms
from nanbu_secops.policy import load_policies
from tests.roots import AS_OF, SSHD_CONFIG, make_root

PROJECT = Path(__file__).resolve().parents[1]
WEAK = load_policies(PROJECT / "policies").variables({"ssh_weak_algorithms"})[0]["ssh_weak_algorithms"]


def result(tmp_path: Path, capsys: pytest.CaptureFixture[str], control: str, config: str = SSHD_CONFIG,
           dropin: str | None = None) -> dict[str, Any]:
    changes = {"etc/ssh/sshd_config": config}
    if dropin is not None:
        changes["etc/ssh/sshd_config.d/50-local.conf"] = dropin
    root = make_root(tmp_path, changes)
    main(["check", "--root", str(root), "--as-of", AS_OF.isoformat(), "--format", "json", "--only", control])
    [found] = json.loads(capsys.readouterr().out)["results"]
    assert found["control"] == control
    return found


def without(*lines: str) -> str:
    """The compliant sshd_config minus the given lines."""
    text = SSHD_CONFIG
    for line in lines:
        assert f"{line}\n" in text, line
        text = text.replace(f"{line}\n", "")
    return text


KEYS_ONLY = "AuthenticationMethods publickey"

# --- NS26-SSH-003 password authentication ---------------------------------------------------------


@pytest.mark.parametrize("config, dropin, status, methods", [
    (SSHD_CONFIG, None, "pass", []),  # AuthenticationMethods publickey shuts passwords out
    (without(KEYS_ONLY), None, "fail", ["passwordauthentication"]),  # OpenSSH default: yes
    (without(KEYS_ONLY) + "PasswordAuthentication no\n", None, "pass", []),
    (without(KEYS_ONLY), "PasswordAuthentication no\n", "pass", []),
    # a drop-in is included first, and the first value wins over the later "no"
    (without(KEYS_ONLY) + "PasswordAuthentication no\n", "PasswordAuthentication yes\n", "fail",
     ["passwordauthentication"]),
    (without(KEYS_ONLY, "KbdInteractiveAuthentication no") + "PasswordAuthentication no\n", None, "fail",
     ["kbdinteractiveauthentication"]),  # keyboard-interactive asks for the password through PAM
    (SSHD_CONFIG.replace(KEYS_ONLY, "AuthenticationMethods publickey,password"), None, "fail",
     ["passwordauthentication"]),
])
def test_password_authentication(tmp_path, capsys, config, dropin, status, methods):
    found = result(tmp_path, capsys, "NS26-SSH-003", config, dropin)
    assert (found["status"], found["evidence"]["password_methods"]) == (status, methods)
    assert found["evidence"]["required"] == "no"


def test_password_authentication_reenabled_in_a_match_block_fails(tmp_path, capsys):
    config = without(KEYS_ONLY) + "PasswordAuthentication no\nMatch Address 10.0.0.0/8\n  PasswordAuthentication yes\n"
    found = result(tmp_path, capsys, "NS26-SSH-003", config)
    assert found["status"] == "fail"
    assert found["evidence"]["password_methods"] == []  # globally off ...
    assert found["evidence"]["match_blocks"] == [{  # ... but on for these clients
        "match": "Address 10.0.0.0/8", "password_methods": ["passwordauthentication"],
        "origins": ["/etc/ssh/sshd_config:12"]}]


def test_match_block_opening_authentication_methods_fails(tmp_path, capsys):
    found = result(tmp_path, capsys, "NS26-SSH-003", SSHD_CONFIG + "Match User ops\n  AuthenticationMethods password\n")
    assert found["status"] == "fail" and found["evidence"]["match_blocks"][0]["match"] == "User ops"


def test_match_block_that_keeps_passwords_off_passes(tmp_path, capsys):
    found = result(tmp_path, capsys, "NS26-SSH-003", SSHD_CONFIG + "Match User ops\n  PasswordAuthentication no\n")
    assert found["status"] == "pass" and "match_blocks" not in found["evidence"]


def test_policy_yes_reports_the_state_without_failing():
    sshd = SshdConfig(True, "sshd -T", {"passwordauthentication": "yes", "kbdinteractiveauthentication": "no",
                                        "authenticationmethods": "any"})
    allowed = sshd_password_authentication(sshd, value="yes")
    assert allowed.status.value == "pass" and allowed.evidence["password_methods"] == ["passwordauthentication"]
    assert sshd_password_authentication(sshd, value="no").status.value == "fail"


# --- NS26-SSH-004 idle timeout -------------------------------------------------------------------


@pytest.mark.parametrize("interval, countmax, status, seconds", [
    ("300", "3", "pass", 900),
    ("60", None, "pass", 180),  # ClientAliveCountMax default 3
    ("0", "3", "fail", None),
    (None, None, "fail", None),  # default interval 0: never checked
    ("600", "3", "fail", 1800),
    ("300", "0", "fail", None),  # count 0 disables dropping
])
def test_idle_timeout(tmp_path, capsys, interval, countmax, status, seconds):
    config = without("ClientAliveInterval 300", "ClientAliveCountMax 3")
    config += (f"ClientAliveInterval {interval}\n" if interval else "") + (f"ClientAliveCountMax {countmax}\n"
                                                                          if countmax else "")
    found = result(tmp_path, capsys, "NS26-SSH-004", config)
    assert (found["status"], found["evidence"]["timeout_seconds"]) == (status, seconds)
    assert found["evidence"]["required"] == "1..900"
    assert (status == "pass") == ("problem" not in found["evidence"])


def test_idle_timeout_match_block_inherits_the_other_value(tmp_path, capsys):
    found = result(tmp_path, capsys, "NS26-SSH-004", SSHD_CONFIG + "Match Group staff\n  ClientAliveCountMax 12\n")
    assert found["status"] == "fail"
    assert found["evidence"]["timeout_seconds"] == 900
    assert found["evidence"]["match_blocks"] == [{"match": "Group staff", "timeout_seconds": 3600,
                                                  "problem": "longer than 900 s",
                                                  "origins": ["/etc/ssh/sshd_config:12"]}]


def test_idle_timeout_from_a_dropin_wins(tmp_path, capsys):
    found = result(tmp_path, capsys, "NS26-SSH-004", dropin="ClientAliveInterval 0\n")
    assert found["status"] == "fail"
    assert found["evidence"]["clientaliveinterval"] == {"value": "0", "origin": "/etc/ssh/sshd_config.d/50-local.conf:1"}


# --- NS26-SSH-005 weak algorithms ------------------------------------------------------------------


def test_compliant_config_has_no_weak_algorithm(tmp_path, capsys):
    found = result(tmp_path, capsys, "NS26-SSH-005")
    assert found["status"] == "pass" and found["evidence"]["weak"] == {}


def test_openssh_default_macs_are_weak(tmp_path, capsys):
    found = result(tmp_path, capsys, "NS26-SSH-005", without("MACs -hmac-sha1*,umac-64*"))
    assert found["status"] == "fail"
    assert found["evidence"]["weak"] == {"macs": {
        "algorithms": ["umac-64-etm@openssh.com", "hmac-sha1-etm@openssh.com", "umac-64@openssh.com", "hmac-sha1"],
        "origin": "OpenSSH default"}}


@pytest.mark.parametrize("dropin, key, weak", [
    ("Ciphers +aes128-cbc\n", "ciphers", ["aes128-cbc"]),
    ("KexAlgorithms diffie-hellman-group14-sha1,curve25519-sha256\n", "kexalgorithms", ["diffie-hellman-group14-sha1"]),
    ("KexAlgorithms +diffie-hellman-group1-sha1\n", "kexalgorithms", ["diffie-hellman-group1-sha1"]),
    ("HostKeyAlgorithms ^ssh-rsa\n", "hostkeyalgorithms", ["ssh-rsa"]),
    ("PubkeyAcceptedAlgorithms +ssh-rsa,ssh-dss\n", "pubkeyacceptedalgorithms", ["ssh-rsa", "ssh-dss"]),
    ("macs=hmac-sha2-256,hmac-md5-96\n", "macs", ["hmac-md5-96"]),
])
def test_weak_algorithm_in_a_dropin_fails(tmp_path, capsys, dropin, key, weak):
    found = result(tmp_path, capsys, "NS26-SSH-005", dropin=dropin)
    assert found["status"] == "fail"
    assert found["evidence"]["weak"] == {key: {"algorithms": weak, "origin": "/etc/ssh/sshd_config.d/50-local.conf:1"}}


@pytest.mark.parametrize("dropin", [
    "Ciphers aes256-gcm@openssh.com,chacha20-poly1305@openssh.com\n",
    "Ciphers -*-cbc\nKexAlgorithms -*-sha1\nHostKeyAlgorithms -ssh-rsa\n",
    "HostKeyAlgorithms ssh-ed25519,rsa-sha2-512\n",
])
def test_strong_explicit_lists_pass(tmp_path, capsys, dropin):
    assert result(tmp_path, capsys, "NS26-SSH-005", dropin=dropin)["status"] == "pass"


def test_weak_algorithm_in_a_match_block_fails(tmp_path, capsys):
    found = result(tmp_path, capsys, "NS26-SSH-005", SSHD_CONFIG + "Match User legacy\n  PubkeyAcceptedAlgorithms +ssh-rsa\n")
    assert found["status"] == "fail"
    assert found["evidence"]["weak"] == {}
    assert found["evidence"]["match_blocks"] == [{"match": "User legacy", "key": "pubkeyacceptedalgorithms",
                                                  "algorithms": ["ssh-rsa"], "origin": "/etc/ssh/sshd_config:12"}]


def test_sshd_t_lists_are_taken_as_printed():
    settings = {"ciphers": "aes256-ctr,aes128-cbc", "macs": "hmac-sha2-256", "kexalgorithms": "curve25519-sha256",
                "hostkeyalgorithms": "ssh-ed25519", "pubkeyacceptedalgorithms": "ssh-ed25519,future-sig-sha1"}
    outcome = sshd_weak_algorithms(SshdConfig(True, "sshd -T", settings), weak=WEAK)
    assert outcome.status.value == "fail"
    assert outcome.evidence["weak"] == {"ciphers": {"algorithms": ["aes128-cbc"], "origin": "sshd -T"}}


def test_not_installed_is_skipped(tmp_path, capsys):
    root = make_root(tmp_path, {"etc/ssh/sshd_config": None, "usr/sbin/sshd": None})
    main(["check", "--root", str(root), "--format", "json", "--only", "NS26-SSH-003,NS26-SSH-004,NS26-SSH-005"])
    assert {r["status"] for r in json.loads(capsys.readouterr().out)["results"]} == {"skip"}


# --- the helpers ---------------------------------------------------------------------------------


def test_weak_algorithms_matches_patterns_per_key_and_leaves_clean_keys_out():
    offered = {"ciphers": ["aes256-gcm@openssh.com", "aes128-cbc", "3des-cbc"], "macs": ["hmac-sha2-256"],
               "kex": ["diffie-hellman-group14-sha1"], "hostkey": ["ssh-rsa", "rsa-sha2-512", "ssh-rsa-cert-v01@openssh.com"]}
    assert weak_algorithms(offered, WEAK) == {"ciphers": ["aes128-cbc", "3des-cbc"],
                                              "kex": ["diffie-hellman-group14-sha1"],
                                              "hostkey": ["ssh-rsa", "ssh-rsa-cert-v01@openssh.com"]}
    assert weak_algorithms({"ciphers": ["AES128-CBC"]}, {"ciphers": ["*-cbc"]}) == {}  # names are case-sensitive
    assert weak_algorithms({"other": ["x-cbc"]}, {"ciphers": ["*-cbc"]}) == {}


OPENSSH_92 = defaults_for("9.2p1")


@pytest.mark.parametrize("value, expected", [
    ("-hmac-sha1*,umac-64*", ["umac-128-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
                              "hmac-sha2-512-etm@openssh.com", "umac-128@openssh.com", "hmac-sha2-256", "hmac-sha2-512"]),
    ("^hmac-md5", ["hmac-md5"] + OPENSSH_92.algorithms["macs"]),
    ("+hmac-sha1", OPENSSH_92.algorithms["macs"]),  # already there: not repeated
    ("hmac-sha2-512-etm@openssh.com , hmac-sha2-256*", ["hmac-sha2-512-etm@openssh.com", "hmac-sha2-256",
                                                        "hmac-sha2-256-etm@openssh.com"]),
])
def test_expand_algorithms_follows_sshd_config_syntax(value, expected):
    assert expand_algorithms(value, OPENSSH_92.algorithms["macs"], OPENSSH_92.supported["macs"]) == expected
