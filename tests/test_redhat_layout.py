"""The Red Hat family's layout read offline: the crypto policy sshd really gets (RHEL 9's Include,
RHEL 8's command line), and the ``-o`` options a unit passes. The real sshd judges the same
files in tests/test_scenarios.py (NS26-SSH-005); these tests pin the origins the evidence names."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest

from nanbu_secops.collect import CollectError, Target
from nanbu_secops.collect.rootfs import RootFS
from nanbu_secops.collect.sshd import collect, service_options
from tests.roots import AS_OF, CRYPTO_BACKEND, RHEL8_SSHD_SERVICE, make_redhat_root, make_root

POLICY = ("CRYPTO_POLICY='-oCiphers=aes256-gcm@openssh.com,aes256-ctr -oMACs=hmac-sha2-512-etm@openssh.com "
          "-oPubkeyAcceptedKeyTypes=ssh-ed25519'\n")


def rhel8(base: Path, changes: dict[str, str | None] | None = None) -> Path:
    return make_redhat_root(base, {"etc/ssh/sshd_config.d/50-redhat.conf": None,
                                   "usr/lib/systemd/system/sshd.service": RHEL8_SSHD_SERVICE,
                                   "etc/crypto-policies/back-ends/opensshserver.config": POLICY,
                                   "etc/sysconfig/sshd": "# CRYPTO_POLICY=\n", **(changes or {})})


def test_rhel9_include_follows_the_backend_symlink(tmp_path):
    config = collect(Target(RootFS(make_redhat_root(tmp_path)), AS_OF))
    assert config.origins["ciphers"] == "/etc/crypto-policies/back-ends/opensshserver.config:1"  # a link, read inside the root
    assert config.settings["ciphers"] == CRYPTO_BACKEND.splitlines()[0].split(" ", 1)[1]


def test_rhel8_policy_comes_first_from_the_command_line(tmp_path):
    root = rhel8(tmp_path, {"etc/ssh/sshd_config.d/10-local.conf": "Ciphers +aes128-cbc\n"})
    config = collect(Target(RootFS(root), AS_OF))
    assert config.settings["ciphers"] == "aes256-gcm@openssh.com,aes256-ctr"
    assert config.origins["ciphers"] == ("$CRYPTO_POLICY from /etc/crypto-policies/back-ends/opensshserver.config:1 "
                                         "(sshd -o Ciphers=aes256-gcm@openssh.com,aes256-ctr)")
    # the old keyword name sets the accepted signature algorithms
    assert config.settings["pubkeyacceptedalgorithms"] == "ssh-ed25519"


def test_rhel8_opt_out_and_a_unit_override(tmp_path):
    root = rhel8(tmp_path, {"etc/sysconfig/sshd": 'CRYPTO_POLICY=\nOPTIONS="-oMaxAuthTries=3"\n'})
    assert service_options(Target(RootFS(root), AS_OF)) == [("MaxAuthTries=3", "$OPTIONS from /etc/sysconfig/sshd:2")]
    # an administrator's copy in /etc replaces the unit; a drop-in's empty ExecStart= resets it
    root = rhel8(tmp_path / "2", {
        "etc/systemd/system/sshd.service": RHEL8_SSHD_SERVICE.replace("$OPTIONS $CRYPTO_POLICY", "${CRYPTO_POLICY}"),
    })
    [(option, origin)] = service_options(Target(RootFS(root), AS_OF))
    assert option.startswith("Ciphers=aes256-gcm@openssh.com,aes256-ctr -oMACs=")  # ${VAR} is one word
    assert origin == "$CRYPTO_POLICY from /etc/crypto-policies/back-ends/opensshserver.config:1"
    root = rhel8(tmp_path / "3", {"etc/systemd/system/sshd.service.d/override.conf":
                                  "[Service]\nExecStart=\nExecStart=/usr/sbin/sshd -D\n"})
    assert service_options(Target(RootFS(root), AS_OF)) == []


def test_debian_ssh_service_options(tmp_path):
    root = make_root(tmp_path, {
        "lib/systemd/system/ssh.service": "[Service]\nEnvironmentFile=-/etc/default/ssh\nExecStart=/usr/sbin/sshd -D $SSHD_OPTS\n",
        "etc/default/ssh": 'SSHD_OPTS="-o PermitRootLogin=yes"\n'})
    config = collect(Target(RootFS(root), AS_OF))
    assert config.settings["permitrootlogin"] == "yes"
    assert config.origins["permitrootlogin"] == "$SSHD_OPTS from /etc/default/ssh:1 (sshd -o PermitRootLogin=yes)"


def test_an_invalid_option_on_the_command_line_is_refused(tmp_path):
    root = rhel8(tmp_path, {"etc/crypto-policies/back-ends/opensshserver.config": "CRYPTO_POLICY='-oCiphers=rot13'\n"})
    config = collect(Target(RootFS(root), AS_OF))
    assert config.invalid == ["$CRYPTO_POLICY from /etc/crypto-policies/back-ends/opensshserver.config:1 "
                              "(sshd -o Ciphers=rot13): Ciphers=rot13: bad ciphers name 'rot13' for OpenSSH 9.2"]


@pytest.mark.parametrize("seed", range(10))
def test_hostile_unit_and_environment_files(tmp_path, seed):
    """Random pieces of unit and environment-file syntax: options or an sshd collect error, never a crash."""
    rng = random.Random(seed)
    pieces = ["[Service]", "\n", "ExecStart=", "EnvironmentFile=", "-", "$CRYPTO_POLICY", "${OPTIONS}", "$",
              "-o", "-oCiphers=", "aes256-ctr", "'", '"', " ", "=", "\x00", "/etc/sysconfig/sshd",
              "/etc/crypto-policies/back-ends/opensshserver.config", "CRYPTO_POLICY=", "OPTIONS=", "\\", "#"]

    def junk() -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 300)))

    root = rhel8(tmp_path, {"usr/lib/systemd/system/sshd.service": junk(), "etc/sysconfig/sshd": junk(),
                            "etc/crypto-policies/back-ends/opensshserver.config": junk()})
    target = Target(RootFS(root), AS_OF)
    assert all(isinstance(option, str) and isinstance(origin, str) for option, origin in service_options(target))
    with contextlib.suppress(CollectError):
        collect(target)
