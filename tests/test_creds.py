"""Credential generation, the escrow, the key folder and the ``creds`` commands, without hosts.

The playbook's behaviour on real hosts is in tests/test_playbook_rotate.py.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pyrage
import pytest

from nanbu_secops.bundle.keys import read_identities, read_recipient_file
from nanbu_secops.creds import escrow, keys, rotate
from nanbu_secops.creds.generate import AMBIGUOUS, check_alphabet, crypt_hash, hash_salt, new_password, new_ssh_key, sha512_crypt
from nanbu_secops.errors import InputError

CLI = Path(sys.executable).with_name("nanbu-secops")
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789#%+-=?@_"


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def manager(tmp_path: Path) -> tuple[pyrage.x25519.Identity, Path]:
    identity = pyrage.x25519.Identity.generate()
    path = tmp_path / "manager.agekey"
    path.write_text(f"# created for the test\n{identity}\n")
    return identity, path


def test_passwords_follow_the_policy_and_avoid_ambiguous_characters():
    seen = {new_password(20, ALPHABET, 4) for _ in range(200)}
    assert len(seen) == 200
    for password in seen:
        assert len(password) == 20 and set(password) <= set(ALPHABET) and not set(password) & AMBIGUOUS
        assert any(c.islower() for c in password) and any(c.isupper() for c in password)
        assert any(c.isdigit() for c in password) and any(not c.isalnum() for c in password)


@pytest.mark.parametrize("alphabet, message", [
    ("ABCDEFGHJKLMNPQRSTUVWXYZ0", "ambiguous"),
    ("abcdefgh", "at least 16"),
])
def test_unusable_alphabets_are_refused(alphabet, message):
    with pytest.raises(ValueError, match=message):
        check_alphabet(alphabet)


def test_too_many_classes_for_the_alphabet_is_refused():
    with pytest.raises(ValueError, match="character classes"):
        new_password(20, "ABCDEFGHJKLMNPQRSTUVWXYZ", 2)


def test_sha512_crypt_is_what_shadow_expects():
    hashed = sha512_crypt("Secret-pass-42")
    assert hashed.startswith("$6$") and crypt_hash("Secret-pass-42", hashed) == hashed
    assert crypt_hash("Secret-pass-43", hashed) != hashed
    # an independent implementation of SHA-512 crypt (OpenSSL's) makes the same hash from the salt
    salt = hashed.split("$")[2]
    assert len(salt) == 16
    again = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input="Secret-pass-42",
                           capture_output=True, text=True, check=True)
    assert again.stdout.strip() == hashed
    assert hash_salt(hashed) == hashed.rsplit("$", 1)[0] and hash_salt(sha512_crypt("Secret-pass-42")) != hash_salt(hashed)
    assert hash_salt("!") == hash_salt("*") == ""


def test_ssh_keys_load_in_ssh_keygen(tmp_path):
    private, public = new_ssh_key("nanbu-secops:h01:root")
    path = tmp_path / "key"
    path.write_bytes(private)
    path.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True, check=True).stdout
    assert derived.split()[:2] == public.split()[:2] and public.endswith("nanbu-secops:h01:root")


def test_escrow_round_trip_with_pyrage_and_the_age_cli(tmp_path, manager):
    identity, key_file = manager
    hashed = sha512_crypt("Secret-pass-42")
    entry = escrow.deposit(tmp_path, "h01", "clerk", "password", b"Secret-pass-42", [identity.to_public()],
                           new_hash=hashed)
    assert entry.path.parent == tmp_path / "h01" / "clerk" and entry.state == "escrowed"
    assert entry.salt == hash_salt(hashed) and not entry.settled
    assert stat.S_IMODE(entry.path.stat().st_mode) == 0o600 and stat.S_IMODE((tmp_path / "h01").stat().st_mode) == 0o700
    assert b"Secret-pass-42" not in entry.path.read_bytes() and "Secret-pass-42" not in entry.log.read_text()
    assert escrow.open_entry(entry.path, read_identities(key_file))["secret"] == "Secret-pass-42"
    clear = subprocess.run(["age", "-d", "-i", str(key_file), str(entry.path)], capture_output=True, check=True).stdout
    assert json.loads(clear)["secret"] == "Secret-pass-42"


def test_escrow_to_an_ssh_recipient(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "mgr")], check=True)
    (tmp_path / "esc").mkdir()
    recipients = read_recipient_file(tmp_path / "mgr.pub")
    entry = escrow.deposit(tmp_path / "esc", "h01", "clerk", "password", b"pw-1", recipients)
    assert escrow.open_entry(entry.path, read_identities(tmp_path / "mgr"))["secret"] == "pw-1"


def test_the_wrong_identity_cannot_open_an_entry(tmp_path, manager):
    identity, _ = manager
    entry = escrow.deposit(tmp_path, "h01", "clerk", "password", b"pw", [identity.to_public()])
    with pytest.raises(InputError, match="cannot decrypt"):
        escrow.open_entry(entry.path, [pyrage.x25519.Identity.generate()])


def test_a_moved_entry_is_refused(tmp_path, manager):
    identity, _ = manager
    entry = escrow.deposit(tmp_path, "h01", "clerk", "password", b"pw", [identity.to_public()])
    elsewhere = tmp_path / "h02" / "clerk"
    elsewhere.mkdir(parents=True)
    moved = elsewhere / entry.path.name
    entry.path.rename(moved)
    with pytest.raises(InputError, match="do not match"):
        escrow.open_entry(moved, [identity])


@pytest.mark.parametrize("host", ["..", "a/b", "", "h 1", "-rf"])
def test_names_cannot_escape_the_escrow(tmp_path, manager, host):
    with pytest.raises(InputError, match="not a valid name"):
        escrow.deposit(tmp_path, host, "clerk", "password", b"pw", [manager[0].to_public()])


def test_states_and_reconcile(tmp_path, manager):
    identity, _ = manager
    first_hash, second_hash = sha512_crypt("one-pass-1"), sha512_crypt("two-pass-2")
    first = escrow.deposit(tmp_path, "h01", "clerk", "password", b"one", [identity.to_public()], new_hash=first_hash)
    second = escrow.deposit(tmp_path, "h01", "clerk", "password", b"two", [identity.to_public()], new_hash=second_hash)
    escrow.mark(second, "applied")
    changed = escrow.reconcile(tmp_path, "h01", "clerk", second_hash)
    states = {e.path: e.state for e in escrow.entries(tmp_path, "h01", "clerk")}
    assert states == {first.path: "not-applied", second.path: "found-in-use"} and len(changed) == 2
    assert escrow.reconcile(tmp_path, "h01", "clerk", second_hash) == []  # settled entries stay settled
    with (second.log).open("a") as handle:
        handle.write('{"state": "verif')  # a torn last line from a crash
    assert escrow.load(second.path).state == "found-in-use"


def test_status_lists_latest_and_unconfirmed_entries(tmp_path, manager):
    identity, _ = manager
    old = escrow.deposit(tmp_path, "h01", "clerk", "password", b"one", [identity.to_public()])
    new = escrow.deposit(tmp_path, "h01", "clerk", "password", b"two", [identity.to_public()])
    escrow.mark(new, "verified")
    (tmp_path / "h02").mkdir()
    rows = rotate.status(tmp_path)
    assert [(r["host"], r["state"], r.get("latest")) for r in rows] == [
        ("h01", "escrowed", False), ("h01", "verified", True), ("h02", "no-entry", None)]
    assert rows[0]["entry"] == str(old.path)


def test_key_folder_switches_current_atomically(tmp_path):
    private, public = new_ssh_key("a")
    first = keys.store(tmp_path, "h01", "20260101T000000.000000+0800", private, public)
    assert keys.current(tmp_path, "h01") is None
    keys.activate(tmp_path, "h01", first)
    private2, public2 = new_ssh_key("b")
    second = keys.store(tmp_path, "h01", "20260102T000000.000000+0800", private2, public2)
    assert keys.retired(tmp_path, "h01", (second, first)) == []
    keys.activate(tmp_path, "h01", second)
    assert keys.current(tmp_path, "h01") == second and os.readlink(tmp_path / "h01" / "current") == second.name
    assert keys.retired(tmp_path, "h01", (second,)) == [public]
    assert stat.S_IMODE(second.stat().st_mode) == 0o600
    with pytest.raises(InputError, match="not a key of this host"):
        keys.activate(tmp_path, "h02", second)


def test_prepare_key_settles_keys_that_never_became_current(tmp_path, manager):
    identity, _ = manager
    (tmp_path / "esc").mkdir()
    (tmp_path / "keys").mkdir()
    args = (tmp_path / "esc", tmp_path / "keys", "h01", "root", [identity.to_public()])
    abandoned = rotate.prepare_key(*args)  # a run killed before the key was verified
    assert abandoned["previous_public_key"] == "" and abandoned["retired_public_keys"] == []
    later = rotate.prepare_key(*args)
    assert later["retired_public_keys"] == [abandoned["public_key"]]
    [first, second] = escrow.entries(tmp_path / "esc", "h01", "root")
    assert first.state == "not-applied" and second.state == "escrowed"
    assert escrow.open_entry(second.path, [identity])["secret"] == Path(later["key"]).read_text()


def test_cli_password_escrow_open_and_status(tmp_path, manager):
    identity, key_file = manager
    (tmp_path / "esc").mkdir()
    made = cli("creds", "password", "--escrow", str(tmp_path / "esc"), "--host", "h01", "--account", "clerk",
               "--recipient", str(identity.to_public()))
    assert made.returncode == 0, made.stderr
    result = json.loads(made.stdout)
    assert crypt_hash(result["secret"], result["hash"]) == result["hash"]
    opened = cli("creds", "escrow", "open", result["entry"], "-i", str(key_file))
    assert opened.returncode == 0 and opened.stdout == result["secret"] + "\n"
    assert "clerk@h01" in opened.stderr
    out = tmp_path / "secret.txt"
    assert cli("creds", "escrow", "open", result["entry"], "-i", str(key_file), "--output", str(out)).returncode == 0
    assert out.read_text() == result["secret"] + "\n" and stat.S_IMODE(out.stat().st_mode) == 0o600
    status = cli("creds", "status", "--escrow", str(tmp_path / "esc"), "--lang", "en")
    assert status.returncode == 1 and "escrowed, host not changed" in status.stdout
    assert cli("creds", "mark", result["entry"], "verified").returncode == 0
    assert cli("creds", "status", "--escrow", str(tmp_path / "esc")).returncode == 0


@pytest.mark.parametrize("args, message", [
    (["password", "--escrow", "{tmp}/missing", "--host", "h01", "--account", "clerk", "--recipient", "{pub}"],
     "escrow folder does not exist"),
    (["password", "--escrow", "{tmp}", "--host", "h01", "--account", "clerk"], "no escrow recipient"),
    (["password", "--escrow", "{tmp}", "--host", "h01", "--account", "clerk", "--recipient", "age1nope"],
     "not an age recipient"),
    (["password", "--escrow", "{tmp}", "--host", "../etc", "--account", "clerk", "--recipient", "{pub}"],
     "not a valid name"),
    (["password", "--escrow", "{tmp}", "--host", "h01", "--account", "clerk", "--recipients-file", "{tmp}/bad"],
     "{tmp}/bad:2: not an age recipient"),
    (["escrow", "open", "{tmp}/x.age", "-i", "{tmp}/bad"], "{tmp}/bad: no AGE-SECRET-KEY line"),
    (["escrow", "open", "{tmp}/x.age", "-i", "{tmp}/manager.agekey"], "{tmp}/x.age: not an escrow entry"),
    (["mark", "{tmp}/h01/clerk/20260101T000000.000000+0800-password.age", "sideways"], "invalid choice"),
    (["verify", "--address", "127.0.0.1", "--user", "u", "--known-hosts", "{tmp}/none", "--password-stdin"],
     "known_hosts file does not exist"),
])
def test_bad_creds_input_exits_2_with_a_message(tmp_path, manager, args, message):
    identity, _ = manager
    (tmp_path / "bad").write_text(f"# managers\n{identity.to_public()}x\n")
    fill = {"tmp": str(tmp_path), "pub": str(identity.to_public())}
    done = cli("creds", *[a.format(**fill) for a in args], "--lang", "en")
    assert done.returncode == 2, done
    assert message.format(**fill) in done.stderr and "Traceback" not in done.stderr


def test_policy_rules_reach_the_generator(tmp_path, manager):
    policy = Path(__file__).resolve().parents[1] / "policies" / "article26.yml"
    text = policy.read_text().replace("rotation_password_length: 20", "rotation_password_length: 32")
    (tmp_path / "p.yml").write_text(text)
    (tmp_path / "esc").mkdir()
    done = cli("creds", "password", "--escrow", str(tmp_path / "esc"), "--host", "h01", "--account", "clerk",
               "--recipient", str(manager[0].to_public()), "--policy", str(tmp_path / "p.yml"))
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["secret"]) == 32
    bad = text.replace("rotation_password_length: 32", "rotation_password_length: 32\n  rotation_password_alphabet_x: 1")
    bad = bad.replace('rotation_password_alphabet: "ABCDEFGHJK', 'rotation_password_alphabet: "0ABCDEFGHJK')
    (tmp_path / "p.yml").write_text(bad)
    done = cli("creds", "password", "--escrow", str(tmp_path / "esc"), "--host", "h01", "--account", "clerk",
               "--recipient", str(manager[0].to_public()), "--policy", str(tmp_path / "p.yml"))
    assert done.returncode == 2 and "rotation_password_alphabet: alphabet contains ambiguous characters" in done.stderr
