"""The age writer (nanbu_secops/bundle/agefile.py and stream.encrypting) against two independent
readers: pyrage (Rust) and Debian's age (Go). Sizes sit on every chunk and block boundary, where
a wrong final-chunk flag or counter would show; the plaintext is written in uneven pieces, as
the tar writer does."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from pathlib import Path

import pyrage
import pytest

from nanbu_secops.bundle import agefile, keys, stream

KIB = 1024
CHUNK = agefile.CHUNK
BLOCK = stream.CHUNK


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("agekeys")
    for name in ("county", "city"):
        keys.new_keys(name, folder)
    return folder


def recipients(office: Path, *names: str) -> list:
    return keys.recipient_args([str(office / f"{name}.recipient") for name in names])


def encrypt(path: Path, plain: bytes, recips: list, piece: int = 7 * KIB + 3) -> stream.Sealed:
    with open(path, "wb") as out, stream.encrypting(out, recips) as sink:
        view = memoryview(plain)
        for start in range(0, len(plain), piece):
            sink.write(view[start:start + piece])
    return sink.sealed


def go_age_decrypt(path: Path, identity_file: Path) -> bytes:
    done = subprocess.run(["age", "-d", "-i", str(identity_file), str(path)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 2 * BLOCK + CHUNK,
         3 * BLOCK + 5]


@pytest.mark.parametrize("size", SIZES)
def test_both_readers_decrypt_every_boundary(office: Path, tmp_path: Path, size: int) -> None:
    plain = os.urandom(size)
    path = tmp_path / "x.age"
    sealed = encrypt(path, plain, recipients(office, "county"))
    data = path.read_bytes()
    assert sealed.size == len(data)
    assert sealed.digest == hashlib.sha256(data).digest()
    assert pyrage.decrypt(data, keys.read_identities(office / "county.agekey")) == plain
    assert go_age_decrypt(path, office / "county.agekey") == plain
    # the payload is exactly the chunks the specification prescribes: none empty unless all is
    header_end = data.index(b"\n", data.index(b"\n--- ") + 1) + 1
    chunks = max(1, -(-size // CHUNK))
    assert len(data) - header_end == 16 + size + 16 * chunks


def test_every_recipient_opens_it_and_each_file_is_fresh(office: Path, tmp_path: Path) -> None:
    plain = os.urandom(BLOCK + 9)
    first, second = tmp_path / "a.age", tmp_path / "b.age"
    encrypt(first, plain, recipients(office, "county", "city"))
    encrypt(second, plain, recipients(office, "county", "city"))
    for name in ("county", "city"):
        assert go_age_decrypt(first, office / f"{name}.agekey") == plain
    head_a, head_b = (p.read_bytes().split(b"\n---")[0].decode() for p in (first, second))
    lines = head_a.splitlines()
    assert lines[0] == "age-encryption.org/v1"
    shares = [line.split()[2] for line in lines if line.startswith("-> X25519 ")]
    assert len(shares) == 2 and len(set(shares)) == 2  # one ephemeral key per stanza
    assert not set(shares) & {line.split()[2] for line in head_b.splitlines() if line.startswith("->")}
    assert first.read_bytes()[-100:] != second.read_bytes()[-100:]  # a new file key and nonce per file


def test_a_cut_at_a_chunk_boundary_is_refused(office: Path, tmp_path: Path) -> None:
    """The final flag sits on the last chunk only: a file cut after a whole chunk must fail."""
    path = tmp_path / "x.age"
    encrypt(path, os.urandom(3 * CHUNK), recipients(office, "county"))
    data = path.read_bytes()
    cut = tmp_path / "cut.age"
    cut.write_bytes(data[:len(data) - (CHUNK + 16)])
    done = subprocess.run(["age", "-d", "-i", str(office / "county.agekey"), str(cut)], capture_output=True, check=False)
    # age opens the header and authenticates the whole chunks, then meets the end of the file where
    # the final chunk should be: the cut, not a key or header problem
    assert done.returncode == 1 and b"age: error: unexpected EOF" in done.stderr, done.stderr
    whole = subprocess.run(["age", "-d", "-i", str(office / "county.agekey"), str(path)], capture_output=True, check=False)
    assert whole.returncode == 0 and len(whole.stdout) == 3 * CHUNK
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(cut.read_bytes(), keys.read_identities(office / "county.agekey"))


def test_recipient_keys_are_decoded_and_checked(office: Path) -> None:
    text = (office / "county.recipient").read_text().split()[-1]
    key = agefile.x25519_key(text)
    assert len(key) == 32 and agefile.x25519_key(recipients(office, "county")[0]) == key
    flipped = text[:-1] + ("q" if text[-1] != "q" else "p")
    for bad in (flipped, text.upper(), text[:-10], "age1", "ssh-ed25519 AAAA", text.replace("age1", "agf1", 1)):
        with pytest.raises(agefile.RecipientKeyError):
            agefile.x25519_key(bad)


def test_the_sealer_refuses_misuse() -> None:
    head, sealer = agefile.start([bytes(range(1, 33))])
    assert head.startswith(agefile.VERSION_LINE)
    with pytest.raises(ValueError):
        sealer.seal(b"x" * (CHUNK + 1), final=False)
    sealer.seal(b"x", final=True)
    with pytest.raises(ValueError):
        sealer.seal(b"", final=True)


def test_a_write_failure_is_reported_and_nothing_hangs(office: Path) -> None:
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    with (pytest.raises(stream.BundleEncryptError, match="No space left"), open("/dev/full", "wb") as out,
          stream.encrypting(out, recipients(office, "county")) as sink):
        for _ in range(64):
            sink.write(bytes(BLOCK))


def our_decrypt(data: bytes, identity_file: Path, read: int = agefile.READ) -> bytes:
    """The bundle reader (agefile.decrypt_stream), fed ``read`` bytes at a time at most."""
    view, out, at = memoryview(data), bytearray(), 0

    def take(n: int) -> bytes:
        nonlocal at
        piece = bytes(view[at:at + min(n, read)])
        at += len(piece)
        return piece

    agefile.decrypt_stream(take, out.extend, keys.read_identities(identity_file))
    return bytes(out)


def go_age_encrypt(path: Path, plain: bytes, recipient_file: Path) -> bytes:
    done = subprocess.run(["age", "-R", str(recipient_file), "-o", str(path)], input=plain, capture_output=True,
                          check=False)
    assert done.returncode == 0, done.stderr.decode()
    return path.read_bytes()


@pytest.mark.parametrize("size", SIZES)
def test_our_reader_opens_what_go_age_and_our_writer_write(office: Path, tmp_path: Path, size: int) -> None:
    """Go age (an independent writer) and ours, at every chunk and block boundary, read whole and
    in reads that split chunks and headers anywhere (7 bytes, 1 MiB + 3)."""
    plain = os.urandom(size)
    theirs = go_age_encrypt(tmp_path / "go.age", plain, office / "county.recipient")
    encrypt(tmp_path / "ours.age", plain, recipients(office, "county"))
    ours = (tmp_path / "ours.age").read_bytes()
    for data in (theirs, ours):
        assert our_decrypt(data, office / "county.agekey") == plain
        assert our_decrypt(data, office / "county.agekey", read=BLOCK + 3) == plain
    if size <= 3 * CHUNK:
        assert our_decrypt(theirs, office / "county.agekey", read=7) == plain
    with pytest.raises(agefile.AgeDecryptError, match="no identity given matches"):
        our_decrypt(theirs, office / "city.agekey")


def test_our_reader_refuses_what_age_refuses(office: Path, tmp_path: Path) -> None:
    """A cut at a chunk boundary, a flipped byte in the header, the payload or the last tag, and
    bytes appended: Go age refuses each, and so must the bundle reader."""
    path = tmp_path / "x.age"
    encrypt(path, os.urandom(3 * CHUNK + 5), recipients(office, "county"))
    data = path.read_bytes()
    header_end = data.index(b"\n", data.index(b"\n--- ") + 1) + 1

    def flip(at: int) -> bytes:
        return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]

    damaged = {"cut": data[:header_end + 16 + CHUNK + 16], "header": flip(30), "mac": flip(header_end - 5),
               "nonce": flip(header_end + 3), "payload": flip(header_end + 16 + 2 * CHUNK),
               "last tag": flip(len(data) - 1), "appended": data + b"\0", "no payload": data[:header_end + 16]}
    for name, bad in damaged.items():
        path.write_bytes(bad)
        done = subprocess.run(["age", "-d", "-i", str(office / "county.agekey"), str(path)], capture_output=True,
                              check=False)
        assert done.returncode == 1, name
        with pytest.raises(agefile.AgeDecryptError):
            our_decrypt(bad, office / "county.agekey")


def test_an_openssh_identity_is_refused_in_words(office: Path, tmp_path: Path) -> None:
    """Bundles are encrypted to X25519 recipients only, so an OpenSSH key can never open one."""
    path = tmp_path / "x.age"
    encrypt(path, b"evidence", recipients(office, "county"))
    with pytest.raises(agefile.AgeDecryptError, match="no age X25519 identity"):
        agefile.decrypt_stream(io.BytesIO(path.read_bytes()).read, bytearray().extend, [object()])
