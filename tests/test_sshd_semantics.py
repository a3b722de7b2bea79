"""sshd_config read as sshd reads it, with this machine's real sshd as the oracle.

``sshd -t -f FILE`` decides whether a configuration is accepted at all, and ``sshd -T -f FILE``
prints the effective values; both run on files in a temporary folder with a temporary host key,
inside a private mount namespace whose /run is a fresh tmpfs (sshd insists on /run/sshd), so
the real /etc/ssh and /run are never touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nanbu_secops.cli import main
from nanbu_secops.collect import Target
from nanbu_secops.collect.rootfs import RootFS
from nanbu_secops.collect.sshd import SshdConfig, collect, defaults_for
from tests.roots import AS_OF, make_root

SSHD = "/usr/sbin/sshd"
needs_sshd = pytest.mark.skipif(not (Path(SSHD).exists() and shutil.which("unshare") and os.geteuid() == 0),
                                reason="needs root, unshare and openssh-server's sshd")


def installed_version() -> str:
    return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "openssh-server"], capture_output=True,
                          text=True, check=True).stdout


@pytest.fixture(scope="module")
def host_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("hostkey") / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def real_sshd(mode: str, config: Path, host_key: Path) -> subprocess.CompletedProcess[str]:
    """``sshd -t`` or ``-T`` on ``config``, in a private mount namespace with its own /run."""
    script = f"mount -t tmpfs none /run && mkdir -p /run/sshd && exec {SSHD} {mode} -f \"$1\" -h \"$2\""
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                           str(config), str(host_key)], capture_output=True, text=True, timeout=30)


def collected(tmp_path: Path, config: str, dpkg_version: str | None = None, os_id: str | None = None) -> SshdConfig:
    changes: dict[str, str | None] = {"etc/ssh/sshd_config": config}
    if dpkg_version is not None:
        changes["var/lib/dpkg/status"] = f"Package: openssh-server\nStatus: install ok installed\nVersion: {dpkg_version}\n"
    if os_id is not None:
        changes["etc/os-release"] = f'ID={os_id}\nVERSION_ID="12"\n'
    root = make_root(tmp_path / "root", changes)
    return collect(Target(RootFS(root), AS_OF))


# Every keyword the controls read, valid and invalid, in the places sshd looks: duplicates (the
# first wins but every one must parse), Match blocks, Keyword=value, quotes, comments, case.
CONFIGS = [
    "PermitRootLogin no\nPermitRootLogin wrong_value\n",
    "PermitRootLogin no\nPermitRootLogin yes\n",
    "PermitRootLogin YES\n",
    'PermitRootLogin "no"\n',
    "PermitRootLogin 'no\n",
    "PermitRootLogin\n",
    "permitrootlogin=without-password\n",
    "PermitRootLogin forced-commands-only # a comment\n",
    "PasswordAuthentication yes no\n",
    "PasswordAuthentication maybe\n",
    "PasswordAuthentication no\nMatch User alice\n  PasswordAuthentication perhaps\n",
    "Match Address 10.0.0.0/8\n  PermitRootLogin yes\nMatch all\nPermitRootLogin bogus\n",
    "KbdInteractiveAuthentication no\nChallengeResponseAuthentication sure\n",
    "PubkeyAuthentication 1\n",
    "PermitEmptyPasswords no\nUsePAM yes\nX11Forwarding no\n",
    "X11Forwarding y\n",
    "MaxAuthTries 4\nMaxAuthTries -1\n",
    "MaxAuthTries 3x\n",
    "MaxSessions 2147483647\n",
    "MaxSessions 2147483648\n",
    "ClientAliveInterval 5m30s\nClientAliveCountMax 0\n",
    "ClientAliveInterval 5M\n",
    "ClientAliveInterval 1.5\n",
    "ClientAliveInterval five\n",
    "LoginGraceTime 1h\nLoginGraceTime 2x\n",
    "Port 22\nPort 2222\n",
    "Port 0\n",
    "Port 65536\n",
    "AuthenticationMethods publickey,password publickey\n",
    "AuthenticationMethods any publickey\n",
    "AuthenticationMethods publickey:x\n",
    "AuthenticationMethods pubkey\n",
    "Ciphers aes128-ctr,aes256-gcm@openssh.com\n",
    "Ciphers aes*\n",
    "Ciphers +aes128-cbc\n",
    "Ciphers -foo*\n",
    "Ciphers aes128-ctr,rot13\n",
    "MACs ^hmac-md5\n",
    "MACs hmac-sha2-256,\n",
    "KexAlgorithms +diffie-hellman-group1-sha1\n",
    "KexAlgorithms curve25519-sha256,ecdh-sha2-nistp999\n",
    "HostKeyAlgorithms ssh-ed*\n",
    "HostKeyAlgorithms ssh-nothing*\n",
    "PubkeyAcceptedAlgorithms +ssh-rsa,ssh-dss\n",
    "PubkeyAcceptedAlgorithms +ssh-rsa,ssh-rsb\n",
    # every keyword, read or not: unknown to this version, or not allowed in a Match block
    "PermitRootLogin no\nPermitRootLogins yes\n",
    "Match User alice\n  Port 2222\n",
    "Match User alice\n  UsePAM no\n",
    "Match User alice\n  ChallengeResponseAuthentication no\n",
    "Protocol 2\nUsePrivilegeSeparation sandbox\n",  # deprecated: only a warning
    "PubkeyAcceptedKeyTypes +ssh-rsa\n",  # the old name, still accepted
    "Match User alice\n  Banner none\n  AllowTcpForwarding no\n",
    "=\n", '"\n', " = yes\n", "Foo bar\n", "a\x00b\n", "\x00\n",
]


@needs_sshd
@pytest.mark.parametrize("config", CONFIGS)
def test_invalid_lines_match_sshd_t(tmp_path, host_key, config):
    """The collector flags a configuration exactly when the real sshd -t refuses it, on the same line."""
    path = tmp_path / "sshd_config"
    path.write_text(config)
    oracle = real_sshd("-t", path, host_key)
    found = collected(tmp_path, config, installed_version(), "debian")
    assert (oracle.returncode == 0) == (found.invalid == []), (oracle.stderr, found.invalid)
    if found.invalid:
        [line] = re.findall(r" line (\d+)", oracle.stderr)[:1]
        assert found.invalid[0].startswith(f"/etc/ssh/sshd_config:{line}: ")


@needs_sshd
def test_defaults_match_sshd_T_of_an_empty_file(tmp_path, host_key):
    """This machine's OpenSSH build (found in dpkg's status file) against its own sshd -T."""
    path = tmp_path / "sshd_config"
    path.write_text("")
    oracle = real_sshd("-T", path, host_key)
    assert oracle.returncode == 0, oracle.stderr
    printed = dict(line.split(" ", 1) for line in oracle.stdout.splitlines() if " " in line)
    found = collected(tmp_path, "", installed_version(), "debian")
    assert found.defaults.note.startswith(f"OpenSSH {found.defaults.table_version}")
    aliases = {"prohibit-password": "without-password"}  # sshd -T prints the old name
    for key in ("permitrootlogin", "passwordauthentication", "kbdinteractiveauthentication", "pubkeyauthentication",
                "permitemptypasswords", "usepam", "x11forwarding", "clientaliveinterval", "clientalivecountmax",
                "logingracetime", "maxauthtries", "maxsessions", "port", "authenticationmethods", "ciphers", "macs",
                "kexalgorithms", "hostkeyalgorithms", "pubkeyacceptedalgorithms"):
        value, origin = found.get(key)
        assert origin == "OpenSSH default"
        assert aliases.get(value, value) == printed[key], key


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], control: str, config: str,
          version: str | None) -> dict[str, Any]:
    changes: dict[str, str | None] = {"etc/ssh/sshd_config": config}
    changes["var/lib/dpkg/status"] = (f"Package: openssh-server\nStatus: install ok installed\nVersion: {version}\n"
                                      if version else None)
    root = make_root(tmp_path, changes)
    main(["check", "--root", str(root), "--as-of", AS_OF.isoformat(), "--format", "json", "--only", control])
    [found] = json.loads(capsys.readouterr().out)["results"]
    return found


def test_a_valid_line_does_not_hide_an_invalid_one(tmp_path, capsys):
    found = check(tmp_path, capsys, "NS26-SSH-001", "PermitRootLogin no\nPermitRootLogin wrong_value\n", "1:9.2p1-2")
    assert found["status"] == "fail"
    assert found["evidence"]["invalid"] == [
        "/etc/ssh/sshd_config:2: PermitRootLogin wrong_value: unsupported option 'wrong_value'"]


def test_an_invalid_line_in_a_dropin_fails_every_sshd_control(tmp_path, capsys):
    root = make_root(tmp_path, {"etc/ssh/sshd_config.d/50-local.conf": "Match User bob\n  MaxAuthTries lots\n"})
    main(["check", "--root", str(root), "--as-of", AS_OF.isoformat(), "--format", "json", "--only", "26"])
    results = {r["control"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    sshd_controls = [c for c, r in results.items() if c.startswith("NS26-SSH-")]
    assert len(sshd_controls) == 5
    for control in sshd_controls:
        assert results[control]["status"] == "fail"
        assert results[control]["evidence"]["invalid"][0].startswith("/etc/ssh/sshd_config.d/50-local.conf:2: ")


@pytest.mark.parametrize("version, table, status", [
    ("1:6.6p1-2ubuntu1", "6.6", "fail"),  # before 7.0 root may log in with a password by default
    ("1:5.3p1-104.el6", "6.6", "fail"),  # older than any in the table: the oldest, and said so
    ("7.4p1-21.el7", "7.4", "pass"),  # prohibit-password from 7.0 on
    ("1:8.0p1-6", "7.9", "pass"),  # not in the table: the nearest older one
    ("1:9.9p1-3", "9.6", "pass"),
    (None, "9.2", "pass"),  # no version found: Debian 12's, and said so
])
def test_defaults_follow_the_openssh_version(tmp_path, capsys, version, table, status):
    found = check(tmp_path, capsys, "NS26-SSH-001", "# everything at its default\n", version)
    assert found["status"] == status
    assert found["evidence"]["permitrootlogin"]["origin"] == "OpenSSH default"
    note = found["evidence"]["openssh"]
    if version is None:
        assert note == "OpenSSH version not found; the defaults of OpenSSH 9.2 (Debian 12) are assumed"
    elif version.split(":")[-1].startswith(table):
        assert note.startswith(f"OpenSSH {table} (") and note.endswith("its defaults")
    else:
        assert f"the defaults of {table}" in note or f"the nearest older version, {table}" in note


@pytest.mark.parametrize("version, kex", [
    ("7.4p1", "diffie-hellman-group14-sha1"),  # still offered by default in 7.4 (CentOS 7)
    ("8.2p1", None),
])
def test_default_algorithms_are_the_versions_own(tmp_path, capsys, version, kex):
    found = check(tmp_path, capsys, "NS26-SSH-005", "# defaults\n", version)
    weak = found["evidence"].get("weak", {})
    assert (kex in weak["kexalgorithms"]["algorithms"]) if kex else "kexalgorithms" not in weak


def test_version_table_covers_the_platforms():
    for version in ("7.4", "7.9", "8.2", "8.4", "8.9", "9.2", "9.6"):
        assert defaults_for(f"{version}p1").table_version == version
    assert defaults_for("6.9p1").values["permitrootlogin"] == "yes"
    assert defaults_for("7.4p1").values["clientalivecountmax"] == "3"


@pytest.mark.parametrize("garbage", ["PermitRootLogin \x00\xff\n", "Ciphers " + "a" * 100000 + "\n",
                                     'PasswordAuthentication "no\n', "Port =\n", "MaxAuthTries 9" * 50 + "\n"])
def test_hostile_lines_are_refused_not_crashed_on(tmp_path, garbage):
    found = collected(tmp_path, garbage, "1:9.2p1-2")
    assert found.invalid and found.invalid[0].startswith("/etc/ssh/sshd_config:1: ")


@pytest.mark.parametrize("config", ["Match\n", "Include\n", "Match User x\nMatch all\n"])
def test_match_and_include_without_arguments_do_not_crash(tmp_path, config):
    assert collected(tmp_path, config, "1:9.2p1-2").installed


@pytest.mark.parametrize("config, version, invalid", [
    ("PubkeyAcceptedAlgorithms +ssh-rsa\n", "7.4p1-21.el7", True),  # a keyword 8.5 introduced
    ("PubkeyAcceptedKeyTypes +ssh-rsa\n", "7.4p1-21.el7", False),
    ("HostKeyAlgorithms +sk-ssh-ed25519@openssh.com\n", "7.4p1-21.el7", True),  # security keys came in 8.2
    ("HostKeyAlgorithms +sk-ssh-ed25519@openssh.com\n", "1:8.2p1-4ubuntu0.11", False),
    ("Match User x\n  ChallengeResponseAuthentication no\n", "1:8.4p1-5+deb11u3", True),  # global only before 8.7
    ("Match User x\n  ChallengeResponseAuthentication no\n", "1:9.2p1-2", False),
])
def test_keywords_and_names_are_the_versions_own(tmp_path, config, version, invalid):
    assert bool(collected(tmp_path, config, version).invalid) == invalid



@pytest.mark.parametrize("config, version, status", [
    # before 8.7 ChallengeResponseAuthentication (default yes) turns keyboard-interactive on (sshd.c)
    ("PasswordAuthentication no\nKbdInteractiveAuthentication no\n", "1:8.4p1-5+deb11u3", "fail"),
    ("PasswordAuthentication no\nChallengeResponseAuthentication no\n", "1:8.4p1-5+deb11u3", "pass"),
    ("PasswordAuthentication no\nKbdInteractiveAuthentication no\nChallengeResponseAuthentication no\n", "7.4p1-21.el7",
     "pass"),
    ("PasswordAuthentication no\nKbdInteractiveAuthentication yes\nChallengeResponseAuthentication no\n", "7.4p1-21.el7",
     "fail"),
    # from 8.7 it is an alias: the first of the two wins
    ("PasswordAuthentication no\nKbdInteractiveAuthentication no\n", "1:9.2p1-2", "pass"),
    ("PasswordAuthentication no\nChallengeResponseAuthentication no\n", "1:9.2p1-2", "pass"),
])
def test_challenge_response_before_and_after_8_7(tmp_path, capsys, config, version, status):
    found = check(tmp_path, capsys, "NS26-SSH-003", "AuthenticationMethods any\n" + config, version)
    assert found["status"] == status, found["evidence"]


@pytest.mark.parametrize("value, version, invalid, read", [
    ("3x", "7.4p1-21.el7", False, "3"),  # atoi() before 7.9: the leading digits
    ("lots", "7.4p1-21.el7", False, "0"),
    ("3x", "1:7.9p1-10+deb10u2", True, "3x"),  # atoi_err() from 7.9: refused
    ("4", "1:7.9p1-10+deb10u2", False, "4"),
])
def test_integers_as_each_version_reads_them(tmp_path, value, version, invalid, read):
    found = collected(tmp_path, f"MaxAuthTries {value}\n", version)
    assert bool(found.invalid) == invalid
    assert found.get("maxauthtries")[0] == read
