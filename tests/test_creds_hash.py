"""Rotated passwords are hashed the way the terminal's own passwd would hash them.

The method comes from pam_unix's password line (then login.defs); the hash from libxcrypt's
crypt_gensalt_rn/crypt_rn. OpenSSL's independent SHA-512 crypt and libxcrypt's own verification
(the stored hash as the setting, as login does) are the oracles for the hashes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyrage
import pytest

from nanbu_secops.creds.generate import HashMethod, check_secret, crypt_hash, make_hash, new_setting
from nanbu_secops.creds.hashmethod import pam_unix_password_line, terminal_method

#: Debian 12's /etc/pam.d/common-password as the installer writes it (comments shortened).
DEBIAN12_PAM = """\
# /etc/pam.d/common-password - password-related modules common to all services
# here are the per-package modules (the "Primary" block)
password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt
# here's the fallback if no module succeeds
password\trequisite\t\t\tpam_deny.so
password\trequired\t\t\tpam_permit.so
"""
DEBIAN12_LOGIN_DEFS = "PASS_MAX_DAYS\t99999\nENCRYPT_METHOD SHA512\n"
PAM = "/etc/pam.d/common-password"
CLI = Path(sys.executable).with_name("nanbu-secops")


def method(pam: str | None, defs: str = "") -> tuple[str, int]:
    found = terminal_method(PAM, pam, defs)
    return found.name, found.count


def test_debian12_writes_yescrypt_although_login_defs_says_sha512():
    found = terminal_method(PAM, DEBIAN12_PAM, DEBIAN12_LOGIN_DEFS)
    assert (found.name, found.prefix, found.count) == ("yescrypt", "$y$", 5)
    assert found.source == f"{PAM}:3 pam_unix.so yescrypt"
    assert new_setting(found).startswith("$y$j9T$")  # the cost Debian 12's own hashes carry


@pytest.mark.parametrize("line, defs, expected", [
    ("password required pam_unix.so sha512 shadow", "", ("sha512", 0)),
    ("password required pam_unix.so sha512 rounds=65536", "", ("sha512", 65536)),
    ("password required pam_unix.so sha512 rounds=500", "", ("sha512", 0)),  # below 1000: libxcrypt's default
    ("password required pam_unix.so sha512 rounds=20000000", "", ("sha512", 9_999_999)),
    ("password required pam_unix.so yescrypt rounds=8", "", ("yescrypt", 8)),
    ("password required pam_unix.so yescrypt rounds=2", "", ("yescrypt", 5)),  # out of 3..11
    ("password required pam_unix.so sha512 yescrypt", "", ("yescrypt", 5)),  # the last hash option wins
    ("password required pam_unix.so yescrypt sha512", "", ("sha512", 0)),
    # no hash option: login.defs ENCRYPT_METHOD, and SHA_CRYPT_MAX_ROUNDS (not MIN) as pam_unix reads it
    ("password required pam_unix.so obscure", "ENCRYPT_METHOD SHA512\nSHA_CRYPT_MIN_ROUNDS 5000\n"
                                               "SHA_CRYPT_MAX_ROUNDS 20000\n", ("sha512", 20000)),
    ("password required pam_unix.so obscure", "ENCRYPT_METHOD yescrypt\n", ("yescrypt", 5)),
    ("password required pam_unix.so sha512", "ENCRYPT_METHOD SHA512\nSHA_CRYPT_MAX_ROUNDS 20000\n", ("sha512", 20000)),
    ("password required pam_unix.so rounds=11 yescrypt", "", ("yescrypt", 11)),
    ("-password [success=1 default=ignore] /lib/x86_64-linux-gnu/security/pam_unix.so yescrypt", "", ("yescrypt", 5)),
    ("password [success=1\tdefault=ignore] pam_unix.so \\\n    sha512 rounds=10000", "", ("sha512", 10000)),
    ("password required pam_unix.so obscure # sha512 rounds=10000 is only a comment\n"
     "password required pam_unix.so yescrypt", "", ("yescrypt", 5)),
])
def test_pam_unix_rules(line, defs, expected):
    assert method(line + "\n", defs) == expected


@pytest.mark.parametrize("pam, defs, expected", [
    # no pam_unix password line: shadow-utils' own rules (login.defs(5))
    (None, "ENCRYPT_METHOD SHA512\nSHA_CRYPT_MIN_ROUNDS 10000\nSHA_CRYPT_MAX_ROUNDS 20000\n", ("sha512", 10000)),
    (None, "ENCRYPT_METHOD SHA512\n", ("sha512", 0)),
    (None, "ENCRYPT_METHOD YESCRYPT\nYESCRYPT_COST_FACTOR 7\n", ("yescrypt", 7)),
    (None, "ENCRYPT_METHOD YESCRYPT\n", ("yescrypt", 5)),
    ("auth required pam_unix.so\npassword required pam_sss.so\n", "ENCRYPT_METHOD SHA256\n", ("sha256", 0)),
])
def test_login_defs_rules_without_pam_unix(pam, defs, expected):
    assert method(pam, defs) == expected


@pytest.mark.parametrize("pam, defs", [
    ("password required pam_unix.so md5\n", ""),
    ("password required pam_unix.so bigcrypt\n", "ENCRYPT_METHOD SHA512\n"),
    ("password required pam_unix.so obscure\n", ""),  # pam_unix's default is DES
    (None, ""),  # shadow-utils' default is DES
    (None, "ENCRYPT_METHOD MD5\n"),
    (None, "ENCRYPT_METHOD ROT13\n"),
])
def test_weak_or_unknown_methods_are_refused_naming_the_file(pam, defs):
    with pytest.raises(ValueError, match="/etc/"):
        terminal_method(PAM, pam, defs)


@pytest.mark.parametrize("text", ["", "\x00\xff garbage", "password", "password required", "\\\n\\\n",
                                  "password [success=1 default=ignore pam_unix.so yescrypt"])
def test_hostile_pam_text_does_not_crash(text):
    result = pam_unix_password_line(text)
    assert result is None or isinstance(result[1], list)


@pytest.mark.parametrize("found", [HashMethod("sha512", "$6$", 0, "t"), HashMethod("sha512", "$6$", 10000, "t"),
                                   HashMethod("yescrypt", "$y$", 5, "t"), HashMethod("yescrypt", "$y$", 9, "t"),
                                   HashMethod("sha256", "$5$", 0, "t")])
def test_hashes_verify_through_libcrypt_as_login_does(found):
    hashed = make_hash("Rotated-pass-2026#", found)
    assert hashed.startswith(found.prefix)
    assert crypt_hash("Rotated-pass-2026#", hashed) == hashed  # the stored hash as the setting
    assert crypt_hash("Rotated-pass-2026?", hashed) != hashed
    assert make_hash("Rotated-pass-2026#", found) != hashed  # a fresh salt every time


@pytest.mark.parametrize("rounds", [0, 10000])
def test_sha512_hashes_match_openssl(rounds):
    hashed = make_hash("Rotated-pass-2026#", HashMethod("sha512", "$6$", rounds, "t"))
    setting = hashed.rsplit("$", 1)[0]
    salt = setting[len("$6$"):]
    assert (f"rounds={rounds}$" in hashed) == bool(rounds)
    again = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input="Rotated-pass-2026#",
                           capture_output=True, text=True, check=True)
    assert again.stdout.strip() == hashed


@pytest.mark.parametrize("secret", ["new\nline", "tab\there", "nul\x00", "esc\x1b[0m", "del\x7f", "c1\x85"])
def test_control_characters_are_refused(secret):
    with pytest.raises(ValueError, match="control characters"):
        check_secret(secret)
    with pytest.raises(ValueError, match="control characters"):
        make_hash(secret, HashMethod("yescrypt", "$y$", 5, "t"))


def test_unicode_letters_are_not_control_characters():
    assert check_secret("口令-Pass-2026") == "口令-Pass-2026"


@pytest.mark.parametrize("current", ["!$6$salt$hash", "!!", "*", "*LK*"])
def test_the_controller_escrows_nothing_for_a_locked_account(tmp_path, current):
    """Defence in depth behind the host-side module: no secret is made for a locked or key-only account."""
    (tmp_path / "esc").mkdir()
    terminal = {"current_hash": current, "pam_path": "/etc/pam.d/common-password", "pam_text": DEBIAN12_PAM,
                "login_defs": DEBIAN12_LOGIN_DEFS}
    done = subprocess.run([str(CLI), "creds", "password", "--lang", "en", "--escrow", str(tmp_path / "esc"), "--host", "h01",
                           "--account", "clerk", "--recipient", str(pyrage.x25519.Identity.generate().to_public()),
                           "--terminal-stdin"], input=json.dumps(terminal), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "never unlocks" in done.stderr and done.stdout == ""
    assert list((tmp_path / "esc").rglob("*")) == []


def test_the_controller_hashes_as_the_terminal_says(tmp_path):
    (tmp_path / "esc").mkdir()
    terminal = {"current_hash": "$6$old$hash", "pam_path": "/etc/pam.d/common-password", "pam_text": DEBIAN12_PAM,
                "login_defs": DEBIAN12_LOGIN_DEFS}
    done = subprocess.run([str(CLI), "creds", "password", "--escrow", str(tmp_path / "esc"), "--host", "h01",
                           "--account", "clerk", "--recipient", str(pyrage.x25519.Identity.generate().to_public()),
                           "--terminal-stdin"], input=json.dumps(terminal), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["hash"].startswith("$y$j9T$") and crypt_hash(result["secret"], result["hash"]) == result["hash"]
    assert result["method"] == {"name": "yescrypt", "cost": 5, "source": "/etc/pam.d/common-password:3 pam_unix.so yescrypt"}
