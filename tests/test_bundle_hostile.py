"""Hostile input to the bundle's parts (issue 16, section 5 and 6): each case is refused with the
module's own error and a message, never a traceback, and no message quotes key material.
Where a standard tool reads the same thing (ssh-keygen, age) it is asked too."""

from __future__ import annotations

import base64
import io
import json
import struct
import subprocess
import tarfile
from pathlib import Path

import pyrage
import pytest

from nanbu_secops.bundle import agefile, archive, keys, sshsig
from nanbu_secops.bundle.manifest import ManifestError, decode
from nanbu_secops.errors import InputError
from tests.roots import make_root
from tests.test_cli import cli


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile-keys")
    keys.new_keys("unit", folder)
    return folder


def bech32_age(key: bytes) -> str:
    """``age1…`` for 32 raw bytes (BIP 173 encoding, with agefile's checksum function)."""
    acc = bits = 0
    data = []
    for byte in key:
        acc, bits = (acc << 8) | byte, bits + 8
        while bits >= 5:
            bits -= 5
            data.append((acc >> bits) & 31)
    if bits:
        data.append((acc << (5 - bits)) & 31)
    hrp = [ord(c) >> 5 for c in "age"] + [0] + [ord(c) & 31 for c in "age"]
    check = agefile._polymod(hrp + data + [0] * 6) ^ 1
    data += [(check >> 5 * (5 - i)) & 31 for i in range(6)]
    return "age1" + "".join(agefile._BECH32[d] for d in data)


def test_sealer_refuses_an_empty_final_chunk_after_data() -> None:
    sealer = agefile.Sealer(bytes(32))
    assert len(sealer.seal(bytes(agefile.CHUNK), final=False)) == 1
    with pytest.raises(ValueError, match="empty final chunk"):
        sealer.seal(b"", final=True)
    empty = agefile.Sealer(bytes(32))
    assert len(empty.seal(b"", final=True)) == 1  # an empty payload is one empty final chunk, as age writes it


def test_low_order_recipient_is_refused_before_any_work(office: Path, tmp_path: Path) -> None:
    zero = bech32_age(bytes(32))
    assert agefile.x25519_key(zero) == bytes(32)  # the encoding is right: only the point is wrong
    with pytest.raises(InputError, match="low-order point"):
        keys.recipient_args([zero])
    done = cli("incident", "collect", "--root", str(make_root(tmp_path)), "--unit", "u", "--title", "t",
               "--category", "other", "--severity", "一般", "--discovered-at", "2026-11-28T09:30", "-r", zero,
               "--sign-key", str(office / "unit_ed25519"), "--out", str(tmp_path / "x.nsb"))
    assert done.returncode == 2 and "low-order point" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "x.nsb").exists()


def test_a_lone_surrogate_in_a_manifest_is_a_manifest_error() -> None:
    data = b'{"format":"nanbu-secops-bundle/1","title":"\\ud800"}'
    with pytest.raises(ManifestError, match="surrogate|non-UTF-8"):
        decode(data)


@pytest.mark.parametrize("name", ["evidence//x", "evidence/x/", "evidence/./x", "evidence/", "//evidence/x"])
def test_member_names_with_empty_or_dot_parts_are_refused(name: str) -> None:
    with pytest.raises(archive.ArchiveError):
        archive.check_name(name)


def test_two_spellings_of_one_member_are_refused_when_read() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("evidence/x", "evidence//x"):
            member = tarfile.TarInfo(name)
            member.size = 1
            tar.addfile(member, io.BytesIO(b"a"))
    buffer.seek(0)
    with pytest.raises(archive.ArchiveError, match="evidence//x"):
        for _info, reader in archive.members(buffer):
            reader.read()


def _armor(blob: bytes) -> str:
    text = base64.b64encode(blob).decode()
    return "\n".join([sshsig.BEGIN, *[text[i:i + 70] for i in range(0, len(text), 70)], sshsig.END]) + "\n"


def _inner_changed(armored: str, change) -> str:
    """The signature with its inner ``string(key type) string(signature)`` blob rewritten by ``change``."""
    blob = base64.b64decode("".join(armored.strip().splitlines()[1:-1]))
    reader = sshsig._Reader(blob)
    reader.take(10)
    for _ in range(4):
        reader.string()
    start = reader.at
    inner = reader.string()
    new = change(inner)
    return _armor(blob[:start] + struct.pack(">I", len(new)) + new)


SSHSIG_CASES = {
    "trailing bytes in the inner blob": lambda inner: inner + b"\0\0\0\0",
    "signature of 65 bytes": lambda inner: inner[:-68] + struct.pack(">I", 65) + inner[-64:] + b"\0",
    "signature of 63 bytes": lambda inner: inner[:-68] + struct.pack(">I", 63) + inner[-64:-1],
}


@pytest.mark.parametrize("case", sorted(SSHSIG_CASES))
def test_sshsig_inner_blob_is_read_to_its_end_as_ssh_keygen_does(office: Path, tmp_path: Path, case: str) -> None:
    key = keys.load_sign_key(office / "unit_ed25519")
    message = b"message\n"
    good = sshsig.sign(key.key, message)
    bad = _inner_changed(good, SSHSIG_CASES[case])
    allowed = office / "unit.allowed_signers"
    for armored, expect in ((good, True), (bad, False)):
        (tmp_path / "m.sig").write_text(armored)
        oracle = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "unit", "-n",
                                 sshsig.NAMESPACE, "-s", str(tmp_path / "m.sig")], input=message, capture_output=True)
        assert (oracle.returncode == 0) is expect, oracle.stderr
        if expect:
            sshsig.verify(armored, message)
        else:
            with pytest.raises(sshsig.SignatureError):
                sshsig.verify(armored, message)


def test_no_error_message_echoes_a_private_key(office: Path, tmp_path: Path) -> None:
    """An .agekey (or its secret line) given where a recipient belongs: refused, the secret never printed."""
    secret_line = next(line for line in (office / "unit.agekey").read_text().splitlines()
                       if line.startswith("AGE-SECRET-KEY-"))
    secret_body = secret_line[len("AGE-SECRET-KEY-"):]
    ssh_private = (office / "unit_ed25519").read_text()
    root = make_root(tmp_path)
    for value in (str(office / "unit.agekey"), secret_line, str(office / "unit_ed25519"), ssh_private.strip()):
        done = cli("incident", "collect", "--root", str(root), "--unit", "u", "--title", "t", "--category", "other",
                   "--severity", "一般", "--discovered-at", "2026-11-28T09:30", "-r", value,
                   "--sign-key", str(office / "unit_ed25519"), "--out", str(tmp_path / "x.nsb"))
        said = done.stdout + done.stderr
        assert done.returncode == 2 and "Traceback" not in said, said
        assert secret_body[:8] not in said and secret_body[-8:] not in said
        assert not any(line in said for line in ssh_private.splitlines()[1:-1])
    creds = cli("creds", "password", "--escrow", str(tmp_path), "--host", "h01", "--account", "clerk",
                "--recipient", secret_line)
    assert creds.returncode == 2 and secret_body[:8] not in creds.stdout + creds.stderr
    assert "private key" in creds.stderr
    with pytest.raises(InputError) as caught:
        keys.parse_recipients([secret_line])
    assert secret_body[:8] not in str(caught.value) and "private key" in str(caught.value)
    assert isinstance(pyrage.x25519.Identity.from_str(secret_line), pyrage.x25519.Identity)  # it was a real secret


def test_manifest_canonical_form_is_rfc_8785() -> None:
    """The RFC's own examples (test vectors are data): keys sorted by UTF-16 code units, ES6 numbers."""
    from nanbu_secops.bundle.manifest import canonical

    sorting = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
               "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control",
               "\u00f6": "Latin Small Letter O With Diaeresis"}
    order = [key for key in json.loads(canonical(sorting))]
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]  # RFC 8785, 3.2.3
    numbers = canonical({"numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001, 1e-7]})
    assert numbers == b'{"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27,1e-7]}'
    assert canonical({"literals": [None, True, False]}) == b'{"literals":[null,true,false]}'
