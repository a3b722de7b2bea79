"""Packing, verifying, opening and forwarding ``.nsb`` bundles.

A bundle is an age-encrypted tar holding the evidence, the reports, ``SHA256SUMS``, the signed
``manifest.json`` and ``custody.jsonl``; ``F.nsb.sig`` beside it is an SSHSIG over the encrypted
file, checkable in transit without the decryption key. Everything streams: evidence of any size
passes through bounded memory, and the ciphertext is hashed for the outer signature as it is
written or read.

Trust is never assumed from the bundle itself. Signatures are checked against the keys they
carry, and each signer's principal must also be listed for that key in the allowed-signers files
given (``--trust``). Checking integrity alone is asked for explicitly (``trust=None``, the CLI's
``--no-trust``), and then the result says in words that the signer was not checked.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from nanbu_secops import __version__, mask
from nanbu_secops.bundle import archive, custody, sshsig
from nanbu_secops.bundle.archive import ArchiveError, TarWriter
from nanbu_secops.bundle.keys import Signer, SignKey, trusted_lines, trusts
from nanbu_secops.bundle.manifest import Digests, FileEntry, Manifest, ManifestError, decode, sums_text
from nanbu_secops.bundle.stream import CHUNK, BundleDecryptError, decrypting, encrypting
from nanbu_secops.errors import InputError
from nanbu_secops.progress import Meter
from nanbu_secops.timeutil import now, rfc3339

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Item:
    """One file to pack: bytes made here (reports, snapshot) or a file on disk (``--include``)."""

    path: str
    data: bytes | None = None
    source: Path | None = None
    size: int = 0

    @property
    def length(self) -> int:
        return len(self.data) if self.data is not None else self.size


def plan_includes(paths: Sequence[str], prefix: str = "evidence/files", base: Path | None = None,
                  secrets: Sequence[Path] = ()) -> tuple[list[Item], list[dict[str, str]]]:
    """The regular files under each ``--include`` path (symlinks are not followed); the rest is
    listed as skipped with the reason, so the bundle says what it left out. Inside the bundle a
    file keeps its absolute path under ``prefix`` (where it was on the terminal), or its path
    relative to ``base``. ``secrets`` (our own private keys) are never packed, even when an
    operator includes ``/``. A path that does not exist is an InputError (a typo must not pass as
    "nothing there"); overlapping paths (a folder and one inside it, a path given twice) are
    folded, each file packed once, since a name twice makes a bundle that cannot be opened."""
    missing = [text for text in paths if not os.path.lexists(text)]
    if missing:
        raise InputError("--include: no such file or folder", missing[0])
    items: list[Item] = []
    packed: set[str] = set()
    skipped: list[dict[str, str]] = []
    never = set()
    for secret in secrets:
        try:
            info = secret.stat()
        except OSError:
            continue
        never.add((info.st_dev, info.st_ino))

    def visit(path: Path) -> None:
        try:
            info = path.lstat()
        except OSError as exc:
            skipped.append({"path": str(path), "reason": exc.strerror or str(exc)})
            return
        if stat.S_ISDIR(info.st_mode):
            try:
                children = sorted(path.iterdir())
            except OSError as exc:
                skipped.append({"path": str(path), "reason": exc.strerror or str(exc)})
                return
            for child in children:
                visit(child)
        elif stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) in never:
            skipped.append({"path": str(path), "reason": "a private key of this tool: never packed"})
        elif stat.S_ISREG(info.st_mode):
            name = path.relative_to(base).as_posix() if base else os.path.abspath(path).lstrip("/")
            inside = f"{prefix}/{name}"
            if inside in packed:
                return
            packed.add(inside)
            if info.st_size == 0 or os.path.abspath(path).startswith(("/proc/", "/sys/")):
                try:  # the stated size of /proc and /sys files is 0 or a page, not their content's
                    items.append(Item(inside, data=_read_to_end(path)))
                except OSError as exc:
                    skipped.append({"path": str(path), "reason": exc.strerror or str(exc)})
                return
            items.append(Item(inside, source=path, size=info.st_size))
        else:
            kind = "symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
            skipped.append({"path": str(path), "reason": kind})

    for text in paths:
        visit(Path(text))
    return items, skipped


PSEUDO_LIMIT = 64 << 20


def _read_to_end(path: Path) -> bytes:
    """A file whose size is known only by reading it (procfs, sysfs, or stated as empty), to its end.

    Read at planning time, before the tar header that needs the size; refused (OSError) above
    PSEUDO_LIMIT, since such a file (/proc/kcore) has no end worth packing."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        parts, total = [], 0
        while block := os.read(fd, CHUNK):
            parts.append(block)
            total += len(block)
            if total > PSEUDO_LIMIT:
                raise OSError(0, f"more than {PSEUDO_LIMIT >> 20} MiB on a file system that states no size")
        return b"".join(parts)
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------ packing

class _Packer:
    """Writes items into the tar while hashing (and masking) them."""

    def __init__(self, tar: TarWriter, digests: tuple[str, ...], masking: bool, progress: Progress | None):
        self.tar, self.digests, self.masking, self.progress = tar, digests, masking, progress
        self.files: list[FileEntry] = []
        self.masked = {"files": 0, "matches": 0}
        self._names: set[str] = set()

    def name(self, path: str) -> str:
        """The member name: masked too when masking (a phone number in a file name is personal data),
        and made unique again if two names mask alike (a name twice makes a bundle unopenable)."""
        if not self.masking:
            return path
        masked, count = mask.mask_text(path)
        self.masked["matches"] += count
        unique, n = masked, 2
        while unique in self._names:
            unique, n = f"{masked}~{n}", n + 1
        self._names.add(unique)
        return unique

    def _emit(self, chunk: bytes | memoryview, hashes: Digests) -> None:
        if chunk:
            hashes.update(chunk)
            self.tar.data(chunk)
            if self.progress:
                self.progress(len(chunk))

    def add_bytes(self, path: str, data: bytes) -> None:
        path = self.name(path)
        if self.masking and mask.looks_textual(data[:8192]):
            data, count = mask.mask_bytes(data)
            self._count(count)
        hashes = Digests(self.digests)
        self.tar.header(path, len(data))
        self._emit(data, hashes)
        self.tar.pad(len(data))
        self.files.append(FileEntry(path, len(data), hashes.result()))

    def _count(self, count: int) -> None:
        if count:
            self.masked["files"] += 1
            self.masked["matches"] += count

    def add_file(self, path: str, source: Path) -> None:
        """Stream a file; the tar header's size is fixed first, so a file that grows or shrinks
        while read is cut or zero-padded to that size and the manifest notes it."""
        path = self.name(path)
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb", buffering=0) as handle:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise OSError(f"{source}: no longer a regular file")
            size, left = info.st_size, info.st_size
            self.tar.header(path, size, info.st_mtime)
            hashes, buffer = Digests(self.digests), bytearray(CHUNK)
            view = memoryview(buffer)
            masker: Any = None
            note = None
            while left:
                n = handle.readinto(view[:min(CHUNK, left)])
                if not n:
                    break
                if masker is None and self.masking:
                    masker = mask.Masker() if mask.looks_textual(bytes(view[:min(n, 8192)])) else False
                self._emit(masker.feed(bytes(view[:n])) if masker else view[:n], hashes)
                left -= n
            if masker:
                self._emit(masker.finish(), hashes)
                self._count(masker.count)
            if left:
                note = f"shrank while read: {size - left} of {size} bytes, zero-padded"
                while left:
                    self._emit(bytes(min(CHUNK, left)), hashes)
                    left -= min(CHUNK, left)
            elif handle.read(1):
                note = f"grew while read: the first {size} bytes are kept"
            self.tar.pad(size)
            self.files.append(FileEntry(path, size, hashes.result(), note))


@contextmanager
def _output(out: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``out``, renamed into place only when the block succeeds."""
    if out.exists() or out.with_name(out.name + ".sig").exists():
        raise InputError("will not overwrite an existing bundle", out)
    if not out.parent.is_dir():
        raise InputError("no such folder for the bundle", out.parent)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
    except BaseException:
        os.unlink(tmp)
        raise
    os.replace(tmp, out)


def _seal(out: Path, recipients: Sequence[Any], key: SignKey, write: Callable[[TarWriter], None]) -> None:
    """Write the tar through age into ``out``; then ``out.sig``, signing the ciphertext's hash.

    Neither is fsynced, unlike the escrow: a bundle is a copy of evidence that still exists, a
    crash leaves at most a bundle that fails ``verify`` and is collected again, and syncing a
    gigabyte would cost seconds on every collection."""
    with _output(out) as handle:
        with encrypting(handle, recipients) as sink:
            tar = TarWriter(sink.write)
            write(tar)
            tar.close()
        signature = sshsig.sign_digest(key.key, sink.sealed.digest)
    with open(out.with_name(out.name + ".sig"), "x", encoding="ascii") as handle:
        handle.write(signature)


def pack(out: Path, items: Iterable[Item], *, kind: str, unit: str, title: str, recipients: Sequence[Any],
         key: SignKey, digests: tuple[str, ...] = ("sha256",), masking: bool = False,
         action: str = "collected", note: str = "", progress: Progress | None = None) -> Manifest:
    """Make a new bundle; its custody chain starts with ``action`` by the signer.

    With ``masking`` every field of every file the bundle carries is masked: file contents and
    names, and the manifest's unit and title and the custody note, which are signed as masked."""
    if masking:
        unit, title, note = (mask.mask_text(text)[0] for text in (unit, title, note))
    manifest = Manifest(id=str(uuid.uuid4()), kind=kind, unit=unit, title=title, created=rfc3339(now()),
                        tool={"name": "nanbu-secops", "version": __version__},
                        signer={"principal": key.principal, "key": key.fingerprint}, digests=digests)

    def write(tar: TarWriter) -> None:
        packer = _Packer(tar, digests, masking, progress)
        for item in items:
            if item.data is not None:
                packer.add_bytes(item.path, item.data)
            else:
                assert item.source is not None
                packer.add_file(item.path, item.source)
        manifest.masking = {"applied": masking, "pii": ["resident-id", "mobile"] if masking else [], **packer.masked}
        sums = sums_text(packer.files)
        _plain(packer, archive.SUMS, sums)
        manifest.files = packer.files
        encoded = manifest.encode()
        tar.add_bytes(archive.MANIFEST, encoded)
        tar.add_bytes(archive.MANIFEST_SIG, sshsig.sign(key.key, encoded).encode())
        tar.add_bytes(archive.CUSTODY, custody.append(b"", encoded, action=action, key=key,
                                                        bundle_id=manifest.id, note=note))

    _seal(out, recipients, key, write)
    return manifest


def _plain(packer: _Packer, path: str, data: bytes) -> None:
    """Add a file exactly as given (never masked): SHA256SUMS holds digests, not personal data."""
    masking, packer.masking = packer.masking, False
    try:
        packer.add_bytes(path, data)
    finally:
        packer.masking = masking


# ---------------------------------------------------------------------------------- verifying

@dataclass
class Check:
    name: str
    ok: bool | None          # None: not checked, and ``detail`` says why
    detail: str
    detail_zh: str = ""      # the same in Chinese, for the officers' report (names and errors stay as they are)

    def as_json(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "detail_zh": self.detail_zh or self.detail}


@dataclass
class Verification:
    path: str
    checks: list[Check] = field(default_factory=list)
    manifest: Manifest | None = None
    events: list[custody.Event] = field(default_factory=list)
    manifest_bytes: bytes = b""
    chain: bytes = b""
    signer_checked: bool = True  # False under --no-trust: integrity only
    # what the verifying pass read, which open and forward hold their own pass to
    cipher_digest: bytes = b""
    order: list[str] = field(default_factory=list)
    metadata: dict[str, bytes] = field(default_factory=dict)
    progress: Meter | None = field(default=None, repr=False, compare=False)  # plaintext bytes, every pass

    @property
    def ok(self) -> bool:
        return all(check.ok is not False for check in self.checks)

    def add(self, name: str, ok: bool | None, detail: str, zh: str = "") -> bool | None:
        self.checks.append(Check(name, ok, detail, zh))
        return ok

    def failed(self) -> list[Check]:
        return [check for check in self.checks if check.ok is False]

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"bundle": self.path, "ok": self.ok, "signer_checked": self.signer_checked,
                               "checks": [c.as_json() for c in self.checks]}
        if self.manifest is not None:
            m = self.manifest
            doc["manifest"] = {"id": m.id, "kind": m.kind, "unit": m.unit, "title": m.title, "created": m.created,
                               "signer": m.signer, "files": len(m.files), "bytes": sum(f.size for f in m.files),
                               "masking": m.masking, "digests": list(m.digests)}
        doc["custody"] = [{k: v for k, v in e.fields.items() if k != "sig"} for e in self.events]
        return doc


@dataclass
class _Seen:
    """What one decrypting pass found: members' sizes and digests, and the metadata bytes."""

    sizes: dict[str, int] = field(default_factory=dict)
    digests: dict[str, dict[str, str]] = field(default_factory=dict)
    metadata: dict[str, bytes] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)


def _read_pass(plain: Any, algorithms: tuple[str, ...], progress: Meter | None) -> _Seen:
    seen = _Seen()
    for info, reader in archive.members(plain.stream):
        seen.order.append(info.name)
        if info.name in archive.METADATA and info.name != archive.SUMS:
            seen.metadata[info.name] = archive.read_limited(info, reader)
            continue
        hashes = Digests(algorithms)
        for chunk in archive.chunks(info, reader):
            hashes.update(chunk)
            if progress is not None:
                progress(len(chunk))
            if info.name == archive.SUMS:
                seen.metadata.setdefault(archive.SUMS, b"")
                if len(seen.metadata[archive.SUMS]) + len(chunk) > archive.METADATA_LIMIT[archive.SUMS]:
                    raise ArchiveError("refused SHA256SUMS: too large")
                seen.metadata[archive.SUMS] += chunk
        seen.sizes[info.name] = info.size
        seen.digests[info.name] = hashes.result()
    plain.finish()
    return seen


def _outer(result: Verification, signature_path: Path, digest: bytes, trust: Sequence[Signer] | None,
           source: BinaryIO) -> bytes | None:
    """Check ``F.sig`` against the ciphertext's digest; return the signing key's blob."""
    try:
        parsed = sshsig.parse(signature_path.read_bytes())
        if parsed.algorithm != "sha256":
            digest = sshsig.digest_of(_chunks(source), parsed.algorithm)
        sshsig.verify_digest(parsed, digest)
    except OSError as exc:
        result.add("outer signature", False, f"{signature_path}: {exc.strerror or exc}",
                   f"{signature_path}：无法读取（{exc.strerror or exc}）")
        return None
    except sshsig.SignatureError as exc:
        result.add("outer signature", False, f"{signature_path}: {exc}", f"{signature_path}：签名无效（{exc}）")
        return None
    who, who_zh = f"by key {parsed.fingerprint}", f"密钥 {parsed.fingerprint}"
    if trust is not None:
        names = list(dict.fromkeys(line.principals for line in trusted_lines(trust, parsed.key_blob)))
        if not names:
            result.add("outer signature", False, f"valid, but {who} is not in the trusted signers",
                       f"签名有效，但 {who_zh} 不在受信任的签名者中")
            return parsed.key_blob
        who, who_zh = f"by {', '.join(names)} ({parsed.fingerprint})", f"{'、'.join(names)}（{parsed.fingerprint}）"
    result.add("outer signature", True, f"the encrypted file is signed {who}", f"加密文件由 {who_zh} 签名")
    return parsed.key_blob


def _chunks(source: BinaryIO, progress: Meter | None = None) -> Iterator[bytes]:
    """The open bundle from its first byte (positioned reads: the passes share the descriptor)."""
    offset = 0
    while chunk := os.pread(source.fileno(), CHUNK, offset):
        offset += len(chunk)
        if progress is not None:
            progress(len(chunk))
        yield chunk


def verify(path: Path, identities: Sequence[Any] | None, trust: Sequence[Signer] | None,
           signature: Path | None = None, progress: Meter | None = None) -> Verification:
    """Check a bundle. Without identities only the outer signature can be checked; with them,
    also decryption, the tar's members, the manifest and its signature, every file's digests,
    SHA256SUMS and the custody chain. ``trust`` has no default: None (integrity only) must be
    asked for, and the result then carries a "signers trusted: not checked" line."""
    if not path.is_file():
        raise InputError("no such bundle file", path)
    with open(path, "rb") as source:
        return _verify_open(source, path, identities, trust, signature, progress)


def _verify_open(source: BinaryIO, path: Path, identities: Sequence[Any] | None, trust: Sequence[Signer] | None,
                 signature: Path | None = None, progress: Meter | None = None) -> Verification:
    """:func:`verify` of the bundle open as ``source``; every pass over it reads this one descriptor."""
    result = Verification(str(path), signer_checked=trust is not None, progress=progress)
    signature = signature or path.with_name(path.name + ".sig")
    try:
        _verify(result, source, identities, trust, signature)
    finally:
        if trust is None:
            result.add("signers trusted", None, "NOT CHECKED (--no-trust): every signature was checked only "
                                                "against the key it carries; anyone could have made this bundle",
                       "未核对（--no-trust）：每个签名只按它自带的密钥核验，未核对签名者；任何人都可能制作此数据包")
    return result


def _verify(result: Verification, source: BinaryIO, identities: Sequence[Any] | None, trust: Sequence[Signer] | None,
            signature: Path) -> None:
    if not identities:
        result.cipher_digest = sshsig.digest_of(_chunks(source, result.progress))
        _outer(result, signature, result.cipher_digest, trust, source)
        result.add("contents", None, "not checked: give --identity to decrypt and check the contents",
                   "给出 --identity 解密后才能检查包内内容")
        return
    seen: _Seen | None = None
    try:
        with decrypting(source, identities) as plain:
            try:
                seen = _read_pass(plain, ("sha256",), result.progress)
            except ArchiveError:
                plain.finish()  # a damaged ciphertext explains a broken archive: say that instead
                raise
        cipher_digest = plain.cipher_digest
    except BundleDecryptError as exc:
        result.add("decryption", False, f"age could not decrypt it: {exc}", f"age 无法解密：{exc}")
    except ArchiveError as exc:
        result.add("decryption", True, "decrypted with the given identity", "已用所给身份密钥解密")
        result.add("archive", False, str(exc), f"归档被拒绝：{exc}")
    result.cipher_digest = cipher_digest if seen is not None else sshsig.digest_of(_chunks(source))
    outer_key = _outer(result, signature, result.cipher_digest, trust, source)
    if seen is None:
        return
    result.add("decryption", True, "decrypted with the given identity; age authenticated every chunk",
               "已用所给身份密钥解密，age 认证了每个数据块")
    result.order, result.metadata = seen.order, seen.metadata
    _check_contents(result, seen, source, identities, trust, outer_key)


def _check_contents(result: Verification, seen: _Seen, source: BinaryIO, identities: Sequence[Any],
                    trust: Sequence[Signer] | None, outer_key: bytes | None) -> None:
    missing = [name for name in archive.METADATA if name not in seen.metadata]
    if missing:
        result.add("archive", False, f"missing {', '.join(missing)}", f"缺少 {'、'.join(missing)}")
        return
    if seen.order[-len(archive.METADATA):] != list(archive.METADATA):
        result.add("archive", False, "metadata files are not last, in order " + ", ".join(archive.METADATA),
                   "元数据文件不在末尾或顺序不对，应依次为 " + "、".join(archive.METADATA))
        return
    result.add("archive", True, f"{len(seen.order)} members, all regular files with safe names",
               f"{len(seen.order)} 个成员，均为名称安全的普通文件")
    data = seen.metadata[archive.MANIFEST]
    try:
        manifest = decode(data)
    except ManifestError as exc:
        result.add("manifest", False, str(exc), f"清单无法解析：{exc}")
        return
    result.manifest, result.manifest_bytes, result.chain = manifest, data, seen.metadata[archive.CUSTODY]
    manifest_key = _manifest_signature(result, manifest, data, seen.metadata[archive.MANIFEST_SIG], trust)
    _check_files(result, manifest, seen, source, identities)
    try:
        result.events = custody.verify(seen.metadata[archive.CUSTODY], data, manifest.id)
    except custody.CustodyError as exc:
        result.add("custody chain", False, str(exc), f"保管链不成立：{exc}")
        return
    _check_custody(result, manifest_key, outer_key, trust)


def _manifest_signature(result: Verification, manifest: Manifest, data: bytes, sig: bytes,
                        trust: Sequence[Signer] | None) -> bytes | None:
    try:
        parsed = sshsig.verify(sig, data)
    except sshsig.SignatureError as exc:
        result.add("manifest signature", False, str(exc), f"签名无效：{exc}")
        return None
    if parsed.fingerprint != manifest.signer.get("key"):
        result.add("manifest signature", False, f"signed by {parsed.fingerprint}, not the signer the manifest names",
                   f"签名密钥 {parsed.fingerprint} 不是清单所写的签名者")
        return None
    principal = manifest.signer.get("principal", "")
    if trust is not None and not trusts(trust, parsed.key_blob, principal):
        result.add("manifest signature", False, f"valid, but {principal!r} with key {parsed.fingerprint} is not trusted",
                   f"签名有效，但 {principal!r}（密钥 {parsed.fingerprint}）不受信任")
        return parsed.key_blob
    trusted, trusted_zh = ("", "") if trust is not None else (" (signer not checked against a trust list)",
                                                              "（签名者未与信任列表核对）")
    result.add("manifest signature", True, f"signed by {principal} ({parsed.fingerprint}){trusted}",
               f"由 {principal}（{parsed.fingerprint}）签名{trusted_zh}")
    return parsed.key_blob


def _check_files(result: Verification, manifest: Manifest, seen: _Seen, source: BinaryIO,
                 identities: Sequence[Any]) -> None:
    listed = {entry.path: entry for entry in manifest.files}
    content = {name for name in seen.sizes if name not in archive.METADATA or name == archive.SUMS}
    problems = [(f"{name}: in the archive but not in the manifest", f"{name}：在归档中，清单里没有")
                for name in sorted(content - listed.keys())]
    problems += [(f"{name}: in the manifest but not in the archive", f"{name}：清单里有，归档中没有")
                 for name in sorted(listed.keys() - content)]
    if "sm3" in manifest.digests and not problems:
        try:
            seen_sm3 = _sm3_pass(source, identities, result.cipher_digest, result.progress)
        except (ArchiveError, BundleDecryptError) as exc:
            seen_sm3 = {}
            problems.append((f"second pass (SM3): {exc}", f"第二遍（SM3）：{exc}"))
        for name in seen.digests:
            seen.digests[name].update(seen_sm3.get(name, {}))
    for name in sorted(listed.keys() & content):
        entry = listed[name]
        if seen.sizes[name] != entry.size:
            problems.append((f"{name}: {seen.sizes[name]} bytes, the manifest says {entry.size}",
                             f"{name}：{seen.sizes[name]} 字节，清单记为 {entry.size}"))
        for algorithm in manifest.digests:
            if seen.digests[name].get(algorithm) != entry.digests[algorithm]:
                problems.append((f"{name}: {algorithm} does not match the manifest", f"{name}：{algorithm} 与清单不符"))
    if problems:
        more = len(problems) - 20
        result.add("files", False, "; ".join(en for en, _ in problems[:20]) + (f"; and {more} more" if more > 0 else ""),
                   "；".join(zh for _, zh in problems[:20]) + (f"；另有 {more} 处" if more > 0 else ""))
    else:
        result.add("files", True, f"{len(listed)} files match the manifest ({', '.join(manifest.digests)})",
                   f"{len(listed)} 个文件与清单一致（{'、'.join(manifest.digests)}）")
    if seen.metadata.get(archive.SUMS) != sums_text([f for f in manifest.files if f.path != archive.SUMS]):
        result.add("SHA256SUMS", False, "does not list exactly the manifest's files and digests",
                   "所列文件和摘要与清单不完全一致")
    else:
        result.add("SHA256SUMS", True, "lists the manifest's files and digests", "所列文件和摘要与清单一致")


def _sm3_pass(source: BinaryIO, identities: Sequence[Any], cipher_digest: bytes,
              progress: Meter | None) -> dict[str, dict[str, str]]:
    """SM3 digests need a second pass: which digests to compute is known only from the manifest,
    which comes last. It must read the ciphertext the first pass read."""
    if progress is not None:  # a pass nobody could count on before the manifest was read
        progress.expect(os.fstat(source.fileno()).st_size)
    with decrypting(source, identities) as plain:
        digests = _read_pass(plain, ("sha256", "sm3"), progress).digests
    if plain.cipher_digest != cipher_digest:
        raise ArchiveError("the bundle file changed while it was being checked")
    return digests


def _check_custody(result: Verification, manifest_key: bytes | None, outer_key: bytes | None,
                   trust: Sequence[Signer] | None) -> None:
    events = result.events
    problems = []
    if manifest_key is not None and events[0].key_blob != manifest_key:
        problems.append(("the first event is not signed by the manifest's signer", "第一个事件不是清单的签名者签的"))
    if outer_key is not None and events[-1].key_blob != outer_key:
        problems.append(("the last event is not signed by whoever signed the encrypted file (an event removed?)",
                         "最后一个事件不是加密文件的签名者签的（有事件被删除？）"))
    if trust is not None:
        for number, event in enumerate(events, 1):
            if not trusts(trust, event.key_blob, event.principal):
                problems.append((f"line {number}: {event.principal!r} with key {event.fields.get('key')} is not trusted",
                                 f"第 {number} 行：{event.principal!r}（密钥 {event.fields.get('key')}）不受信任"))
    if problems:
        result.add("custody chain", False, "; ".join(en for en, _ in problems), "；".join(zh for _, zh in problems))
        return
    steps = ", ".join(f"{e.fields['action']} by {e.principal} at {e.fields['at']}" for e in events)
    steps_zh = "，".join(f"{e.fields['at']} {e.principal} {custody.ACTIONS_ZH.get(e.fields['action'], e.fields['action'])}"
                        for e in events)
    result.add("custody chain", True, f"{len(events)} events, every link and signature holds: {steps}",
               f"{len(events)} 个事件，每一环和每个签名都成立：{steps_zh}")


# ------------------------------------------------------------------------- opening, forwarding

def _copy_pass(source: BinaryIO, identities: Sequence[Any], result: Verification,
               take: Callable[[str, int, Iterator[bytes]], None]) -> None:
    """Decrypt the verified file again (the same descriptor) and hand each member's data to
    ``take``, holding it to what the verifying pass saw: the same members in the same order (so
    none unlisted and every listed one), each listed file's size and digest as the manifest says,
    the manifest, its signature and the custody chain byte for byte, and at the end the same
    ciphertext digest, which the outer signature covers. Anything else raises ArchiveError;
    ``take`` writes only where nothing is visible until this returns."""
    assert result.manifest is not None
    listed = {entry.path: entry for entry in result.manifest.files}
    expected, progress = iter(result.order), result.progress
    with decrypting(source, identities) as plain:
        for info, reader in archive.members(plain.stream):
            if info.name not in listed and info.name not in result.metadata:
                raise ArchiveError(f"{info.name}: not in the manifest, refused")
            if info.name != next(expected, None):
                raise ArchiveError(f"{info.name}: not where the verified bundle had it")
            entry = listed.get(info.name)
            if entry is None:  # manifest, its signature, custody: the verified bytes or nothing
                data = archive.read_limited(info, reader)
                if data != result.metadata[info.name]:
                    raise ArchiveError(f"{info.name}: not the bytes that were verified")
                take(info.name, info.size, iter([data]))
                continue
            if info.size != entry.size:
                raise ArchiveError(f"{info.name}: {info.size} bytes, not the manifest's {entry.size}")
            hashes = Digests(("sha256",))

            def hashed(info: tarfile.TarInfo = info, reader: BinaryIO = reader,
                       hashes: Digests = hashes) -> Iterator[bytes]:
                for chunk in archive.chunks(info, reader):
                    hashes.update(chunk)
                    if progress is not None:
                        progress(len(chunk))
                    yield chunk

            take(info.name, info.size, hashed())
            if hashes.result()["sha256"] != entry.digests["sha256"]:
                raise ArchiveError(f"{info.name}: changed since it was verified")
        missing = list(expected)
        if missing:
            raise ArchiveError(f"{', '.join(missing[:5])}: in the verified bundle, missing now")
        plain.finish()
    if plain.cipher_digest != result.cipher_digest:
        raise ArchiveError("the bundle file changed since it was verified (ciphertext digest differs)")


def open_bundle(path: Path, identities: Sequence[Any], out: Path, trust: Sequence[Signer] | None,
                progress: Meter | None = None) -> Verification:
    """Verify, then extract into ``out`` (which must not exist or be empty). Nothing is written
    unless verification passes; extraction goes to a hidden folder renamed into place at the end."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("--out must be a new or empty folder", out)
    if not path.is_file():
        raise InputError("no such bundle file", path)
    with open(path, "rb") as source:
        return _open_verified(source, path, identities, out, trust, progress)


def _open_verified(source: BinaryIO, path: Path, identities: Sequence[Any], out: Path,
                   trust: Sequence[Signer] | None, progress: Meter | None = None) -> Verification:
    result = _verify_open(source, path, identities, trust, progress=progress)
    if not result.ok or result.manifest is None:
        return result
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".partial"))

    def take(name: str, size: int, chunks: Iterator[bytes]) -> None:
        target = staging.joinpath(*name.split("/"))
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)

    try:
        _copy_pass(source, identities, result, take)
    except (ArchiveError, BundleDecryptError) as exc:
        shutil.rmtree(staging)
        result.add("extraction", False, f"stopped, nothing kept: {exc}", f"已停止，未保留任何文件：{exc}")
        return result
    except BaseException:
        shutil.rmtree(staging)
        raise
    if out.exists():
        out.rmdir()
    os.replace(staging, out)
    result.add("extraction", True, f"extracted to {out}", f"已解包到 {out}")
    return result


def forward(path: Path, identities: Sequence[Any], key: SignKey, recipients: Sequence[Any],
            recipient_names: Sequence[str], out: Path, note: str, trust: Sequence[Signer] | None,
            progress: Meter | None = None) -> Verification:
    """Verify, then re-encrypt for the next office with two more custody events (received, with
    what was verified; forwarded, with the note and the recipients). Earlier signatures are kept
    byte for byte, so they stay valid."""
    if not path.is_file():
        raise InputError("no such bundle file", path)
    with open(path, "rb") as source:
        return _forward_verified(source, path, identities, key, recipients, recipient_names, out, note, trust,
                                 progress)


def _forward_verified(source: BinaryIO, path: Path, identities: Sequence[Any], key: SignKey,
                      recipients: Sequence[Any], recipient_names: Sequence[str], out: Path, note: str,
                      trust: Sequence[Signer] | None, progress: Meter | None = None) -> Verification:
    result = _verify_open(source, path, identities, trust, progress=progress)
    if not result.ok or result.manifest is None:
        return result
    manifest = result.manifest
    received = "; ".join(f"{c.name}: {'ok' if c.ok else 'not checked'}" for c in result.checks)
    chain = custody.append(result.chain, result.manifest_bytes, action="received", key=key,
                           bundle_id=manifest.id, note=f"verified before forwarding ({received})")
    chain = custody.append(chain, result.manifest_bytes, action="forwarded", key=key, bundle_id=manifest.id,
                           note=note, extra={"to": list(recipient_names)})

    def write(tar: TarWriter) -> None:
        def take(name: str, size: int, chunks: Iterator[bytes]) -> None:
            if name == archive.CUSTODY:
                for _ in chunks:
                    pass
                return
            tar.header(name, size)
            for chunk in chunks:
                tar.data(chunk)
            tar.pad(size)

        _copy_pass(source, identities, result, take)
        tar.add_bytes(archive.CUSTODY, chain)

    try:
        _seal(out, recipients, key, write)
    except (ArchiveError, BundleDecryptError) as exc:
        result.add("forwarding", False, f"stopped, nothing written: {exc}", f"已停止，未写入任何文件：{exc}")
        return result
    result.add("forwarding", True, f"re-encrypted to {len(recipients)} recipient(s) as {out}, custody event added",
               f"已重新加密给 {len(recipients)} 个接收方，写入 {out}，并加入保管事件")
    return result

