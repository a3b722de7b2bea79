"""The age writer and reader (bundle/agefile.py) against the C2SP age test vectors (tests/fixtures/age-testkit).

The vectors cannot check encryption end to end (the X25519 share is random), but with their file
key they fix the rest of what the writer produces: the header MAC over the header as written, and
the STREAM payload, chunk by chunk, with the final flag, from the vector's nonce. The plaintext is
what pyrage decrypts, and must match the vector's payload hash first.

The reader meets every vector for X25519 identities (not armored, no passphrase, no post-quantum
identity: bundles use none of those): it must open each "success" to the vector's payload hash
and refuse every other with an error naming the vector's kind of failure, and the Go ``age``
tool (the reference implementation) must agree on each. pyrage is not that oracle: it opens
two vectors the specification refuses (a stanza without its final short body line).
"""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import zlib
from pathlib import Path

import pyrage
import pytest

from nanbu_secops.bundle import agefile

VECTORS = Path(__file__).parent / "fixtures" / "age-testkit"
ALL = sorted(p.name for p in VECTORS.iterdir() if p.name != "README.md")
SUCCESS = [name for name in ALL if b"expect: success" in (VECTORS / name).read_bytes()[:200]]


def vector(name: str) -> tuple[dict[str, str], bytes]:
    raw = (VECTORS / name).read_bytes()
    head, _, body = raw.partition(b"\n\n")
    fields: dict[str, str] = {}
    for line in head.decode().splitlines():
        key, value = line.split(": ", 1)
        fields[key] = f"{fields[key]}\n{value}" if key in fields else value  # several identities
    return fields, zlib.decompress(body) if fields.get("compressed") == "zlib" else body


def split(age: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """(header up to and including "---", its MAC, the payload nonce, the STREAM chunks)."""
    end = age.index(b"\n---") + 4
    line_end = age.index(b"\n", end)
    mac = base64.b64decode(age[end + 1:line_end] + b"==")
    return age[:end], mac, age[line_end + 1:line_end + 17], age[line_end + 17:]


def test_the_vectors_are_here() -> None:
    assert len(SUCCESS) == 14 and "stream_257_chunks_full" in SUCCESS and "stream_empty_payload" in SUCCESS
    assert len(ALL) == 66 and {"x25519_low_order", "hmac_bad", "stream_two_final_chunks", "x25519_no_match"} <= set(ALL)


# the words the reader's error must hold for each kind of failure the testkit names
FAILURE_WORDS = {"header failure": ("header", "not an age v1 file"), "HMAC failure": ("MAC is wrong",),
                 "no match": ("no identity given matches",), "payload failure": ("payload",)}


@pytest.mark.parametrize("name", ALL)
def test_reader_meets_every_vector_and_go_age_agrees(name: str, tmp_path: Path) -> None:
    fields, age = vector(name)
    identities = fields["identity"].split("\n")
    assert "armored" not in fields and "passphrase" not in fields
    out = bytearray()
    try:
        agefile.decrypt_stream(io.BytesIO(age).read, out.extend, identities)
        got = "success"
    except agefile.AgeDecryptError as exc:
        got = str(exc)
    keyfile = tmp_path / "key.txt"
    keyfile.write_text("\n".join(identities) + "\n")
    theirs = subprocess.run(["age", "-d", "-i", str(keyfile)], input=age, capture_output=True, check=False)
    if fields["expect"] == "success":
        assert got == "success" and hashlib.sha256(out).hexdigest() == fields["payload"]
        assert theirs.returncode == 0 and theirs.stdout == bytes(out)
    else:
        assert any(word in got for word in FAILURE_WORDS[fields["expect"]]), (fields["expect"], got)
        assert theirs.returncode != 0


@pytest.mark.parametrize("name", SUCCESS)
def test_writer_reproduces_header_mac_and_payload_of_the_vector(name: str) -> None:
    fields, age = vector(name)
    file_key = bytes.fromhex(fields["file key"])
    plain = pyrage.decrypt(age, [pyrage.x25519.Identity.from_str(fields["identity"])])
    assert hashlib.sha256(plain).hexdigest() == fields["payload"]
    head, mac, nonce, payload = split(age)
    assert agefile.header_mac(file_key, head) == mac
    sealer = agefile.payload_sealer(file_key, nonce)
    whole = len(plain) - len(plain) % agefile.CHUNK
    if whole == len(plain) and plain:  # the last chunk is full: it is the final one, not an empty one after it
        whole -= agefile.CHUNK
    written = (sealer.seal(plain[:whole], final=False) if whole else []) + sealer.seal(plain[whole:], final=True)
    assert b"".join(written) == payload


def test_the_empty_final_chunk_vector_is_refused_by_the_reader_and_never_written() -> None:
    fields, age = vector("stream_last_chunk_empty")
    assert fields["expect"] == "payload failure"
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(age, [pyrage.x25519.Identity.from_str(fields["identity"])])
    _, _, nonce, _ = split(age)
    sealer = agefile.payload_sealer(bytes.fromhex(fields["file key"]), nonce)
    sealer.seal(bytes(agefile.CHUNK), final=False)
    with pytest.raises(ValueError, match="empty final chunk"):
        sealer.seal(b"", final=True)
