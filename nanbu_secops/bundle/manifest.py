"""The manifest: what a bundle holds, signed once by whoever packed it.

Canonical JSON as RFC 8785 (JCS) defines it, written by the ``rfc8785`` library (keys sorted by
UTF-16 code units, ECMAScript number forms, UTF-8, no spaces, no trailing newline), so the bytes
that were signed are the bytes anyone re-derives with any JCS implementation; a manifest that is
not in canonical form is refused rather than interpreted. Digests: SHA-256 always; SM3 (GM/T 0004) on request for offices that must show
national algorithms (slower, about 180 MB/s here against SHA-256's 1.4 GB/s).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from cryptography.hazmat.primitives import hashes

FORMAT = "nanbu-secops-bundle/1"
KINDS = ("incident", "proposal")
DIGESTS = ("sha256", "sm3")


class ManifestError(Exception):
    """A manifest we cannot accept; the message says what is wrong."""


def canonical(value: Any) -> bytes:
    """RFC 8785 bytes of ``value``; ValueError (rfc8785.CanonicalizationError) for what JCS cannot hold:
    lone surrogates, integers beyond 2**53, NaN and infinities."""
    return rfc8785.dumps(value)


class Digests:
    """Running digests of one file, for the algorithms asked for."""

    def __init__(self, algorithms: tuple[str, ...]):
        self.sha256 = hashlib.sha256()
        self.sm3 = hashes.Hash(hashes.SM3()) if "sm3" in algorithms else None

    def update(self, chunk: bytes | memoryview) -> None:
        self.sha256.update(chunk)
        if self.sm3 is not None:
            self.sm3.update(bytes(chunk))

    def result(self) -> dict[str, str]:
        found = {"sha256": self.sha256.hexdigest()}
        if self.sm3 is not None:
            found["sm3"] = self.sm3.finalize().hex()
        return found


def parse_digests(text: str) -> tuple[str, ...]:
    """``--digest sha256,sm3`` → ("sha256", "sm3"); sha256 is always included."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in DIGESTS]
    if unknown:
        raise ValueError(f"unknown digest {', '.join(unknown)} (choose from {', '.join(DIGESTS)})")
    return ("sha256", *[name for name in names if name != "sha256"])


@dataclass
class FileEntry:
    path: str
    size: int
    digests: dict[str, str]
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": self.path, "size": self.size, **self.digests}
        if self.note:
            entry["note"] = self.note
        return entry


@dataclass
class Manifest:
    id: str
    kind: str
    unit: str
    created: str
    tool: dict[str, str]
    signer: dict[str, str]
    digests: tuple[str, ...]
    files: list[FileEntry] = field(default_factory=list)
    masking: dict[str, Any] = field(default_factory=lambda: {"applied": False})
    title: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "id": self.id, "kind": self.kind, "unit": self.unit, "title": self.title,
                "created": self.created, "tool": self.tool, "signer": self.signer,
                "digests": list(self.digests), "masking": self.masking,
                "files": [entry.as_json() for entry in sorted(self.files, key=lambda e: e.path)]}

    def encode(self) -> bytes:
        return canonical(self.as_json())


def sums_text(files: list[FileEntry]) -> bytes:
    """``SHA256SUMS`` in coreutils format (two spaces, text mode), sorted by path."""
    return "".join(f"{entry.digests['sha256']}  {entry.path}\n" for entry in sorted(files, key=lambda e: e.path)).encode()


def decode(data: bytes) -> Manifest:
    """Parse and check a manifest's shape; refuse anything not canonical."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest is not JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ManifestError(f"manifest format is not {FORMAT}")
    try:
        again = canonical(raw)
    except rfc8785.CanonicalizationError as exc:  # e.g. "\ud800": a lone surrogate is JSON but no UTF-8 text
        raise ManifestError(f"manifest holds what canonical JSON cannot (a lone UTF-16 surrogate, a number out of "
                            f"range): {exc}") from None
    if again != data:
        raise ManifestError("manifest is not in canonical form")
    try:
        digests = tuple(raw["digests"])
        if "sha256" not in digests or any(d not in DIGESTS for d in digests):
            raise ManifestError(f"manifest digests {digests} not understood")
        if raw["kind"] not in KINDS:
            raise ManifestError(f"manifest kind {raw['kind']!r} is not one of {', '.join(KINDS)}")
        files = []
        for item in raw["files"]:
            if not isinstance(item["size"], int) or item["size"] < 0:
                raise ManifestError(f"manifest size of {item['path']!r} is not a size")
            files.append(FileEntry(str(item["path"]), item["size"], {d: str(item[d]) for d in digests}, item.get("note")))
        return Manifest(id=str(raw["id"]), kind=raw["kind"], unit=str(raw["unit"]), created=str(raw["created"]),
                        tool=dict(raw["tool"]), signer=dict(raw["signer"]), digests=digests, files=files,
                        masking=dict(raw["masking"]), title=str(raw.get("title", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"manifest is missing or has a malformed field: {exc}") from None
