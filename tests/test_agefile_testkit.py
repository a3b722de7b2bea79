"""The age writer (bundle/agefile.py) against the C2SP age test vectors (tests/fixtures/age-testkit).

The vectors cannot check encryption end to end (the X25519 share is random), but with their file
key they fix the rest of what the writer produces: the header MAC over the header as written, and
the STREAM payload, chunk by chunk, with the final flag, from the vector's nonce. The plaintext is
what pyrage (the reader) decrypts, and must match the vector's payload hash first.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from pathlib import Path

import pyrage
import pytest

from nanbu_secops.bundle import agefile

VECTORS = Path(__file__).parent / "fixtures" / "age-testkit"
SUCCESS = sorted(p.name for p in VECTORS.iterdir() if p.name != "README.md" and b"expect: success" in p.read_bytes()[:200])


def vector(name: str) -> tuple[dict[str, str], bytes]:
    raw = (VECTORS / name).read_bytes()
    head, _, body = raw.partition(b"\n\n")
    fields = dict(line.split(": ", 1) for line in head.decode().splitlines())
    return fields, zlib.decompress(body) if fields.get("compressed") == "zlib" else body


def split(age: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """(header up to and including "---", its MAC, the payload nonce, the STREAM chunks)."""
    end = age.index(b"\n---") + 4
    line_end = age.index(b"\n", end)
    mac = base64.b64decode(age[end + 1:line_end] + b"==")
    return age[:end], mac, age[line_end + 1:line_end + 17], age[line_end + 17:]


def test_the_vectors_are_here() -> None:
    assert len(SUCCESS) == 14 and "stream_257_chunks_full" in SUCCESS and "stream_empty_payload" in SUCCESS


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
