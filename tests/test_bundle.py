"""Incident and proposal bundles: interoperability with the standard tools, tamper detection,
safe extraction, the custody chain and forwarding.

The standard tools are the real ones (Debian's age, ssh-keygen, sha256sum, tar): an office must
be able to check a bundle without our code.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from contextlib import contextmanager
from pathlib import Path

import pyrage
import pytest

from nanbu_secops.bundle import archive, custody, keys, package, sshsig
from nanbu_secops.bundle.manifest import canonical, decode

PHONE, RESIDENT_ID = "13812345678", "11010519491231002X"


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys of a unit, the county office and the municipal office."""
    folder = tmp_path_factory.mktemp("keys")
    for name in ("unit", "county", "city", "mallory"):
        keys.new_keys(name, folder)
    return folder


def sign_key(office: Path, name: str) -> keys.SignKey:
    return keys.load_sign_key(office / f"{name}_ed25519")


def identity(office: Path, name: str) -> list:
    return keys.read_identities(office / f"{name}.agekey")


def trust(office: Path, *names: str) -> list[keys.Signer]:
    return keys.read_trust([office / f"{name}.allowed_signers" for name in names])


def make(office: Path, out: Path, *, extra: bytes = b"", masking: bool = False, digests: tuple[str, ...] = ("sha256",),
         include: Path | None = None) -> package.Manifest:
    items = [package.Item(archive.REPORT_JSON, data=b'{"title": "test"}\n'),
             package.Item(archive.REPORT_MD, data=f"# 事件\n联系人电话 {PHONE}\n".encode()),
             package.Item("evidence/notes.txt", data=f"身份证 {RESIDENT_ID} 电话 {PHONE}\n".encode() + extra),
             package.Item("evidence/blob.bin", data=bytes(range(256)) * 4 + PHONE.encode())]
    if include is not None:
        items += package.plan_includes([str(include)])[0]
    return package.pack(out, items, kind="incident", unit="测试镇", title="网页被篡改",
                        recipients=keys.recipient_args([str(office / "county.recipient")]),
                        key=sign_key(office, "unit"), digests=digests, masking=masking)


def run(*argv: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=stdin, capture_output=True, cwd=cwd, check=False)


def decrypt(office: Path, bundle: Path, who: str = "county") -> bytes:
    return pyrage.decrypt(bundle.read_bytes(), identity(office, who))


def tar_members(plain: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
        return [(info, tar.extractfile(info).read() if info.isreg() else b"") for info in tar]


def reseal(office: Path, members: list[tuple[tarfile.TarInfo, bytes]], out: Path, signer: str = "unit") -> Path:
    """A bundle made by hand from tar members: encrypted to the county, the outer signature by
    ``signer`` (a trusted key, so only the inside can give it away)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return seal_bytes(office, buffer.getvalue(), out, signer)


def seal_bytes(office: Path, plain: bytes, out: Path, signer: str = "unit") -> Path:
    sealed = pyrage.encrypt(plain, keys.recipient_args([str(office / "county.recipient")]))
    out.write_bytes(sealed)
    out.with_name(out.name + ".sig").write_text(sshsig.sign(sign_key(office, signer).key, sealed))
    return out


def failed(result: package.Verification) -> dict[str, str]:
    return {check.name: check.detail for check in result.failed()}


@pytest.fixture
def bundle(office: Path, tmp_path: Path) -> Path:
    make(office, tmp_path / "b.nsb")
    return tmp_path / "b.nsb"


# ------------------------------------------------------------------------------ interop

def test_standard_tools_accept_the_bundle(office: Path, bundle: Path, tmp_path: Path) -> None:
    plain = run("age", "-d", "-i", str(office / "county.agekey"), str(bundle))
    assert plain.returncode == 0, plain.stderr
    tree = tmp_path / "tree"
    tree.mkdir()
    assert run("tar", "-xf", "-", "-C", str(tree), stdin=plain.stdout).returncode == 0
    assert sorted(p.name for p in tree.iterdir()) == sorted(
        ["SHA256SUMS", "custody.jsonl", "evidence", "manifest.json", "manifest.json.sig", "report.json", "report.md"])
    sums = run("sha256sum", "-c", "SHA256SUMS", cwd=tree)
    assert sums.returncode == 0 and sums.stdout.count(b": OK") == 4, sums.stdout
    allowed = str(office / "unit.allowed_signers")
    inner = run("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "unit", "-n", "nanbu-secops",
                "-s", str(tree / "manifest.json.sig"), stdin=(tree / "manifest.json").read_bytes())
    assert inner.returncode == 0 and b"Good" in inner.stdout, inner.stderr
    outer = run("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "unit", "-n", "nanbu-secops",
                "-s", f"{bundle}.sig", stdin=bundle.read_bytes())
    assert outer.returncode == 0, outer.stderr
    wrong = run("ssh-keygen", "-Y", "verify", "-f", str(office / "county.allowed_signers"), "-I", "county",
                "-n", "nanbu-secops", "-s", f"{bundle}.sig", stdin=bundle.read_bytes())
    assert wrong.returncode != 0
    # each custody event can be checked the same way: its signature covers the event without "sig"
    event = json.loads((tree / "custody.jsonl").read_text().splitlines()[0])
    (tmp_path / "event.sig").write_text(event.pop("sig"))
    checked = run("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "unit", "-n", "nanbu-secops",
                  "-s", str(tmp_path / "event.sig"), stdin=canonical(event))
    assert checked.returncode == 0, checked.stderr
    manifest = json.loads((tree / "manifest.json").read_text())
    assert manifest["kind"] == "incident" and manifest["created"].endswith("+08:00")
    assert {f["path"] for f in manifest["files"]} == {"report.json", "report.md", "evidence/notes.txt",
                                                      "evidence/blob.bin", "SHA256SUMS"}


def test_files_signed_by_ssh_keygen_verify_here(office: Path, tmp_path: Path) -> None:
    message = tmp_path / "m"
    message.write_bytes(b"x" * 5000)
    assert run("ssh-keygen", "-Y", "sign", "-f", str(office / "county_ed25519"), "-n", "nanbu-secops",
               str(message)).returncode == 0
    parsed = sshsig.verify((tmp_path / "m.sig").read_text(), message.read_bytes())
    assert parsed.algorithm == "sha512" and parsed.fingerprint == sign_key(office, "county").fingerprint
    with pytest.raises(sshsig.SignatureError):
        sshsig.verify((tmp_path / "m.sig").read_text(), b"y" * 5000)


def test_sm3_digests_are_recorded_and_checked(office: Path, tmp_path: Path) -> None:
    manifest = make(office, tmp_path / "s.nsb", digests=("sha256", "sm3"))
    notes = next(f for f in manifest.files if f.path == "evidence/notes.txt")
    from cryptography.hazmat.primitives import hashes

    digest = hashes.Hash(hashes.SM3())
    digest.update(f"身份证 {RESIDENT_ID} 电话 {PHONE}\n".encode())
    assert notes.digests["sm3"] == digest.finalize().hex()
    result = package.verify(tmp_path / "s.nsb", identity(office, "county"), trust(office, "unit"))
    assert result.ok, failed(result)
    assert "sha256, sm3" in next(c.detail for c in result.checks if c.name == "files")


def test_verify_without_identity_checks_only_the_outer_signature(office: Path, bundle: Path) -> None:
    result = package.verify(bundle, None, trust(office, "unit"))
    assert result.ok and [c.name for c in result.checks] == ["outer signature", "contents"]
    assert result.checks[1].ok is None
    untrusted = package.verify(bundle, None, trust(office, "county"))
    assert not untrusted.ok and "not in the trusted signers" in failed(untrusted)["outer signature"]


def test_untrusted_signer_and_wrong_identity_fail(office: Path, bundle: Path) -> None:
    result = package.verify(bundle, identity(office, "county"), trust(office, "county"))
    assert {"outer signature", "manifest signature", "custody chain"} <= failed(result).keys()
    wrong = package.verify(bundle, identity(office, "city"), trust(office, "unit"))
    assert "decryption" in failed(wrong)
    no_trust = package.verify(bundle, identity(office, "county"), None)
    assert no_trust.ok and not no_trust.signer_checked
    assert any(c.name == "signers trusted" and c.ok is None and "NOT CHECKED" in c.detail for c in no_trust.checks)


# ----------------------------------------------------------------------------- tampering

def test_every_single_byte_flip_is_detected(office: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "small.nsb"
    package.pack(bundle, [package.Item("evidence/note.txt", data=b"x\n")], kind="incident", unit="u", title="t",
                 recipients=keys.recipient_args([str(office / "county.recipient")]), key=sign_key(office, "unit"))
    original = bundle.read_bytes()
    assert len(original) < 8192  # small enough to try every byte
    ids, signers = identity(office, "county"), trust(office, "unit")
    flipped = tmp_path / "f.nsb"
    (tmp_path / "f.nsb.sig").write_bytes(Path(f"{bundle}.sig").read_bytes())
    for offset in range(len(original)):
        data = bytearray(original)
        data[offset] ^= 0x01
        flipped.write_bytes(bytes(data))
        result = package.verify(flipped, ids, signers)
        assert not result.ok, f"flip at byte {offset} went unnoticed"
        # the content checks catch it too, not only the outer signature
        assert failed(result).keys() - {"outer signature"}, f"flip at byte {offset}: only the outer signature failed"


def test_truncation_at_every_kib_is_detected(office: Path, tmp_path: Path) -> None:
    make(office, tmp_path / "big.nsb", extra=os.urandom(200 * 1024))
    original = (tmp_path / "big.nsb").read_bytes()
    cut = tmp_path / "cut.nsb"
    (tmp_path / "cut.nsb.sig").write_bytes((tmp_path / "big.nsb.sig").read_bytes())
    ids, signers = identity(office, "county"), trust(office, "unit")
    for length in range(0, len(original), 1024):
        cut.write_bytes(original[:length])
        result = package.verify(cut, ids, signers)
        assert not result.ok and failed(result).keys() - {"outer signature"}, f"cut at {length} went unnoticed"


def test_a_changed_outer_signature_file_is_detected(office: Path, bundle: Path) -> None:
    other = sshsig.sign(sign_key(office, "unit").key, b"something else")
    Path(f"{bundle}.sig").write_text(other)
    result = package.verify(bundle, identity(office, "county"), trust(office, "unit"))
    assert "does not match" in failed(result)["outer signature"]
    Path(f"{bundle}.sig").unlink()
    assert "outer signature" in failed(package.verify(bundle, None, trust(office, "unit")))


# ------------------------------------------------------------------------ safe extraction

def info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, **extra: object) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.size = kind, size
    for key, value in extra.items():
        setattr(member, key, value)
    return member


def genuine(office: Path, tmp_path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    make(office, tmp_path / "g.nsb")
    return tar_members(decrypt(office, tmp_path / "g.nsb"))


EVIL = {
    "parent": lambda: (info("evidence/../../escape.txt", size=3), b"bad"),
    "dotdot": lambda: (info("../escape.txt", size=3), b"bad"),
    "absolute": lambda: (info("/tmp/escape.txt", size=3), b"bad"),
    "symlink": lambda: (info("evidence/link", tarfile.SYMTYPE, linkname="/etc/passwd"), b""),
    "hardlink": lambda: (info("evidence/hard", tarfile.LNKTYPE, linkname="report.md"), b""),
    "chardev": lambda: (info("evidence/null", tarfile.CHRTYPE, devmajor=1, devminor=3), b""),
    "blockdev": lambda: (info("evidence/sda", tarfile.BLKTYPE, devmajor=8, devminor=0), b""),
    "fifo": lambda: (info("evidence/fifo", tarfile.FIFOTYPE), b""),
    "directory": lambda: (info("evidence/dir", tarfile.DIRTYPE), b""),
    "stray": lambda: (info("evil.sh", size=3), b"bad"),
}


@pytest.mark.parametrize("case", sorted(EVIL))
def test_open_refuses_dangerous_members(office: Path, tmp_path: Path, case: str) -> None:
    members = genuine(office, tmp_path)
    members.insert(1, EVIL[case]())
    evil = reseal(office, members, tmp_path / "evil.nsb")
    out = tmp_path / "out"
    result = package.open_bundle(evil, identity(office, "county"), out, trust(office, "unit"))
    assert not result.ok and "archive" in failed(result), failed(result)
    assert not out.exists() and not (tmp_path.parent / "escape.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_open_refuses_a_member_twice(office: Path, tmp_path: Path) -> None:
    members = genuine(office, tmp_path)
    members.insert(1, members[0])
    result = package.open_bundle(reseal(office, members, tmp_path / "dup.nsb"), identity(office, "county"),
                                 tmp_path / "out", trust(office, "unit"))
    assert "appears twice" in failed(result)["archive"] and not (tmp_path / "out").exists()


def test_open_refuses_a_sparse_member(office: Path, tmp_path: Path) -> None:
    """A sparse member stores a few bytes and expands to its full size on extraction."""
    work = tmp_path / "sparse"
    (work / "evidence").mkdir(parents=True)
    with open(work / "evidence" / "huge", "wb") as handle:
        handle.truncate(1 << 40)  # 1 TiB of holes
    for fmt in ("gnu", "posix"):
        made = run("tar", "--sparse", f"--format={fmt}", "-cf", "-", "-C", str(work), "evidence/huge")
        assert made.returncode == 0 and len(made.stdout) < 1 << 20, made.stderr
        out = tmp_path / f"out-{fmt}"
        result = package.open_bundle(seal_bytes(office, made.stdout, tmp_path / f"{fmt}.nsb"),
                                     identity(office, "county"), out, trust(office, "unit"))
        assert "archive" in failed(result) and not out.exists(), (fmt, failed(result))


class Zeros(io.RawIOBase):
    """``size`` zero bytes read in the reader's own pieces: a gigabyte without holding one."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        memoryview(buffer)[:n] = bytes(n)
        self.left -= n
        return n


def test_open_refuses_a_compressed_bomb(office: Path, tmp_path: Path) -> None:
    """A gzip'd tar of a gigabyte of zeros is about a megabyte; it is not a plain tar, so refused."""
    import gzip

    zeros = tmp_path / "zeros.tar.gz"
    with gzip.open(zeros, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        big = info("evidence/zeros", size=1 << 30)
        tar.addfile(big, Zeros(1 << 30))  # type: ignore[arg-type]
    assert zeros.stat().st_size < 8 << 20
    result = package.open_bundle(seal_bytes(office, zeros.read_bytes(), tmp_path / "bomb.nsb"),
                                 identity(office, "county"), tmp_path / "out", trust(office, "unit"))
    assert "archive" in failed(result) and not (tmp_path / "out").exists()


def test_open_refuses_sizes_beyond_the_manifest(office: Path, tmp_path: Path) -> None:
    """A member larger than the (validly signed) manifest says is refused, and nothing is written."""
    members = genuine(office, tmp_path)
    names = [m[0].name for m in members]
    notes = names.index("evidence/notes.txt")
    members[notes] = (info("evidence/notes.txt", size=1 << 20), bytes(1 << 20))
    result = package.open_bundle(reseal(office, members, tmp_path / "grown.nsb"), identity(office, "county"),
                                 tmp_path / "out", trust(office, "unit"))
    assert "the manifest says" in failed(result)["files"] and not (tmp_path / "out").exists()


def test_open_extracts_a_good_bundle_and_checks_with_sha256sum(office: Path, bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "opened"
    result = package.open_bundle(bundle, identity(office, "county"), out, trust(office, "unit"))
    assert result.ok, failed(result)
    assert run("sha256sum", "--quiet", "-c", "SHA256SUMS", cwd=out).returncode == 0
    assert (out / "evidence" / "notes.txt").read_text().startswith("身份证")
    assert oct((out / "evidence" / "notes.txt").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(Exception, match="new or empty folder"):
        package.open_bundle(bundle, identity(office, "county"), out, trust(office, "unit"))


# ------------------------------------------------- open and forward hold to what they verified

def on_second_decryption(monkeypatch: pytest.MonkeyPatch, act) -> None:
    """Run ``act`` as the bundle is decrypted the second time (the copy pass after verification)."""
    real, calls = package.decrypting, []

    @contextmanager
    def hooked(source, identities):
        calls.append(source)
        if len(calls) == 2:
            act()
        with real(source, identities) as plain:
            yield plain

    monkeypatch.setattr(package, "decrypting", hooked)


def rewrite_in_place(path: Path, data: bytes) -> None:
    """Change the file's bytes without a new inode: what an open descriptor sees too."""
    with open(path, "r+b") as handle:
        handle.write(data)
        handle.truncate()


def planted(members: list[tuple[tarfile.TarInfo, bytes]]) -> list[tuple[tarfile.TarInfo, bytes]]:
    return [members[0], (info("evidence/planted.sh", size=9), b"rm -rf /\n"), *members[1:]]


def custody_forged(members: list[tuple[tarfile.TarInfo, bytes]]) -> list[tuple[tarfile.TarInfo, bytes]]:
    *rest, (last, chain) = members
    assert last.name == archive.CUSTODY
    forged = chain + b'{"action": "received", "note": "forged"}\n'
    return [*rest, (info(archive.CUSTODY, size=len(forged)), forged)]


def test_open_extracts_what_it_verified_when_the_path_is_swapped(office: Path, bundle: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify reads one file; the name is then pointed at another (unlisted member planted): still the first is opened."""
    members = tar_members(decrypt(office, bundle))
    other = reseal(office, planted(members), tmp_path / "other.nsb")
    on_second_decryption(monkeypatch, lambda: os.replace(other, bundle))
    out = tmp_path / "opened"
    result = package.open_bundle(bundle, identity(office, "county"), out, trust(office, "unit"))
    assert result.ok, failed(result)
    assert not (out / "evidence" / "planted.sh").exists()
    extracted = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert extracted == sorted(i.name for i, _ in members)
    assert all((out / i.name).read_bytes() == data for i, data in members)


IN_PLACE = {
    "unlisted member": (planted, "evidence/planted.sh: not in the manifest, refused"),
    "custody forged": (custody_forged, "custody.jsonl: not the bytes that were verified"),
    "custody dropped": (lambda m: m[:-1], "custody.jsonl: in the verified bundle, missing now"),
    "listed file dropped": (lambda m: [x for x in m if x[0].name != "evidence/blob.bin"], "not where the verified"),
    "same plaintext, new ciphertext": (lambda m: m, "ciphertext digest differs"),
}


@pytest.mark.parametrize("case", sorted(IN_PLACE))
def test_open_refuses_a_file_changed_in_place_after_verification(office: Path, bundle: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    change, message = IN_PLACE[case]
    members = tar_members(decrypt(office, bundle))
    changed = reseal(office, change(members), tmp_path / "changed.nsb").read_bytes()
    on_second_decryption(monkeypatch, lambda: rewrite_in_place(bundle, changed))
    out = tmp_path / "opened"
    result = package.open_bundle(bundle, identity(office, "county"), out, trust(office, "unit"))
    assert not result.ok and message in failed(result).get("extraction", ""), failed(result)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_forward_refuses_a_file_changed_in_place_after_verification(office: Path, bundle: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    changed = reseal(office, planted(tar_members(decrypt(office, bundle))), tmp_path / "changed.nsb").read_bytes()
    on_second_decryption(monkeypatch, lambda: rewrite_in_place(bundle, changed))
    out = tmp_path / "fwd.nsb"
    result = package.forward(bundle, identity(office, "county"), sign_key(office, "county"),
                             keys.recipient_args([str(office / "city.recipient")]), ["city"], out, "",
                             trust(office, "unit"))
    assert not result.ok and "not in the manifest" in failed(result).get("forwarding", ""), failed(result)
    assert not out.exists() and not out.with_name(out.name + ".sig").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_sm3_pass_refuses_a_file_changed_in_place(office: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SM3 digests come from a second pass; it must read the ciphertext the first pass read."""
    path = tmp_path / "s.nsb"
    make(office, path, digests=("sha256", "sm3"))
    changed = reseal(office, tar_members(decrypt(office, path)), tmp_path / "changed.nsb").read_bytes()
    on_second_decryption(monkeypatch, lambda: rewrite_in_place(path, changed))
    result = package.verify(path, identity(office, "county"), trust(office, "unit"))
    assert not result.ok and "changed while it was being checked" in failed(result).get("files", ""), failed(result)


# ------------------------------------------------------------------- custody and forwarding

def forwarded(office: Path, tmp_path: Path) -> Path:
    make(office, tmp_path / "unit.nsb")
    result = package.forward(tmp_path / "unit.nsb", identity(office, "county"), sign_key(office, "county"),
                             keys.recipient_args([str(office / "city.recipient")]), ["city"],
                             tmp_path / "county.nsb", "转市网信办", trust(office, "unit", "county"))
    assert result.ok, failed(result)
    return tmp_path / "county.nsb"


def test_forward_appends_signed_events_and_keeps_earlier_signatures(office: Path, tmp_path: Path) -> None:
    path = forwarded(office, tmp_path)
    result = package.verify(path, identity(office, "city"), trust(office, "unit", "county"))
    assert result.ok, failed(result)
    assert [(e.fields["action"], e.principal) for e in result.events] == [
        ("collected", "unit"), ("received", "county"), ("forwarded", "county")]
    assert result.events[2].fields["note"] == "转市网信办" and result.events[2].fields["to"] == ["city"]
    before = {i.name: data for i, data in tar_members(decrypt(office, tmp_path / "unit.nsb"))}
    after = {i.name: data for i, data in tar_members(decrypt(office, path, "city"))}
    assert {k: v for k, v in before.items() if k != archive.CUSTODY} == {k: v for k, v in after.items() if k != archive.CUSTODY}
    assert after[archive.CUSTODY].startswith(before[archive.CUSTODY])
    # the county cannot read what it forwarded to the city unless it was a recipient
    assert "decryption" in failed(package.verify(path, identity(office, "county"), trust(office, "unit", "county")))
    # the unit's signature on the manifest still checks with ssh-keygen
    (tmp_path / "m.json").write_bytes(after[archive.MANIFEST])
    (tmp_path / "m.json.sig").write_bytes(after[archive.MANIFEST_SIG])
    good = run("ssh-keygen", "-Y", "verify", "-f", str(office / "unit.allowed_signers"), "-I", "unit", "-n",
               "nanbu-secops", "-s", str(tmp_path / "m.json.sig"), stdin=after[archive.MANIFEST])
    assert good.returncode == 0, good.stderr


def test_forward_refuses_a_bundle_that_does_not_verify(office: Path, bundle: Path, tmp_path: Path) -> None:
    result = package.forward(bundle, identity(office, "county"), sign_key(office, "county"),
                             keys.recipient_args([str(office / "city.recipient")]), ["city"], tmp_path / "x.nsb",
                             "", trust=trust(office, "county"))
    assert not result.ok and not (tmp_path / "x.nsb").exists()


def _with_chain(office: Path, tmp_path: Path, change, name: str, signer: str = "county") -> package.Verification:
    path = forwarded(office, tmp_path)
    members = tar_members(decrypt(office, path, "city"))
    lines = members[-1][1].decode().splitlines()
    chain = ("\n".join(change(lines)) + "\n").encode()
    members[-1] = (info(archive.CUSTODY, size=len(chain)), chain)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data))
    sealed = pyrage.encrypt(buffer.getvalue(), keys.recipient_args([str(office / "city.recipient")]))
    out = tmp_path / name
    out.write_bytes(sealed)
    out.with_name(name + ".sig").write_text(sshsig.sign(sign_key(office, signer).key, sealed))
    return package.verify(out, identity(office, "city"), trust(office, "unit", "county"))


def _edit_note(lines: list[str]) -> list[str]:
    event = json.loads(lines[2])
    event["note"] = "改过的"
    return [lines[0], lines[1], canonical(event).decode()]


@pytest.mark.parametrize("change, why", [
    (lambda lines: [lines[0], lines[2]], "removed"),
    (lambda lines: lines[1:], "removed"),
    (lambda lines: lines[:2], "sealing"),
    (lambda lines: [lines[0], lines[2], lines[1]], "reordered"),
    (_edit_note, "signature"),
], ids=["middle-removed", "first-removed", "last-removed", "reordered", "edited"])
def test_custody_tampering_is_detected(office: Path, tmp_path: Path, change, why: str) -> None:
    """Even when whoever tampers holds the county key and re-signs the encrypted file."""
    result = _with_chain(office, tmp_path, change, "t.nsb")
    assert "custody chain" in failed(result), failed(result)
    assert why in failed(result)["custody chain"] or why == "removed" and "seq" in failed(result)["custody chain"]


def test_custody_event_signed_by_the_wrong_key_is_detected(office: Path, tmp_path: Path) -> None:
    mallory = sign_key(office, "mallory")
    manifest = b"{}"
    chain = custody.append(b"", manifest, action="collected", key=mallory, bundle_id="x")
    event = json.loads(chain)
    event["key"] = sign_key(office, "unit").fingerprint
    with pytest.raises(custody.CustodyError, match="not the key it names|signature"):
        custody.verify(canonical(event) + b"\n", manifest, "x")


# --------------------------------------------------------------------------------- masking

def test_mask_pii_masks_text_evidence_and_reports_and_says_so(office: Path, tmp_path: Path) -> None:
    evidence = tmp_path / "ev"
    evidence.mkdir()
    (evidence / "access.log").write_text(f"用户 {PHONE} 登录；证件 {RESIDENT_ID}\n" * 3)
    (evidence / "image.bin").write_bytes(b"\0\1" + PHONE.encode())
    manifest = make(office, tmp_path / "m.nsb", masking=True, include=evidence)
    assert manifest.masking["applied"] is True and manifest.masking["matches"] >= 8
    files = {i.name: data for i, data in tar_members(decrypt(office, tmp_path / "m.nsb"))}
    text = b"".join(data for name, data in files.items() if name != archive.SUMS)
    assert PHONE.encode() in files[next(n for n in files if n.endswith("image.bin"))]  # binary left alone
    masked = {name: data for name, data in files.items() if not name.endswith(("image.bin", "blob.bin"))}
    assert all(PHONE.encode() not in data and RESIDENT_ID.encode() not in data for data in masked.values())
    assert b"138****5678" in text and b"110105********002X" in text
    assert decode(files[archive.MANIFEST]).masking["applied"] is True
    assert package.verify(tmp_path / "m.nsb", identity(office, "county"), trust(office, "unit")).ok


def test_mask_pii_masks_the_signed_manifest_fields_and_the_custody_note(office: Path, tmp_path: Path) -> None:
    path = tmp_path / "n.nsb"
    package.pack(path, [package.Item("evidence/a.txt", data=b"x\n")], kind="incident", unit=f"镇 {PHONE}",
                 title=f"{PHONE} 来电", recipients=keys.recipient_args([str(office / "county.recipient")]),
                 key=sign_key(office, "unit"), masking=True, note=f"联系人 {PHONE}，证件 {RESIDENT_ID}")
    files = {i.name: data for i, data in tar_members(decrypt(office, path))}
    assert all(PHONE.encode() not in data and RESIDENT_ID.encode() not in data for data in files.values())
    assert "138****5678" in json.loads(files[archive.CUSTODY].splitlines()[0])["note"]
    assert package.verify(path, identity(office, "county"), trust(office, "unit")).ok


# ------------------------------------------------------------------------------ keys

def test_keys_new_writes_standard_files_and_never_overwrites(office: Path, tmp_path: Path) -> None:
    assert oct((office / "unit.agekey").stat().st_mode & 0o777) == "0o600"
    assert oct((office / "unit_ed25519").stat().st_mode & 0o777) == "0o600"
    assert (office / "unit.recipient").read_text().startswith("age1")
    line = (office / "unit.allowed_signers").read_text()
    assert line.startswith('unit namespaces="nanbu-secops" ssh-ed25519 ')
    pub = run("ssh-keygen", "-y", "-f", str(office / "unit_ed25519"))
    assert pub.returncode == 0 and pub.stdout.split()[1].decode() in line
    age_pub = run("age-keygen", "-y", str(office / "unit.agekey"))
    assert age_pub.stdout.decode().strip() == (office / "unit.recipient").read_text().strip()
    with pytest.raises(Exception, match="will not overwrite"):
        keys.new_keys("unit", office)


def test_allowed_signers_parsing(tmp_path: Path, office: Path) -> None:
    key = (office / "county_ed25519.pub").read_text().split()[:2]
    allowed = tmp_path / "allowed"
    allowed.write_text(f"# comment\n\ncounty,county-office {' '.join(key)} note\n"
                       f'city namespaces="git,other" {" ".join(key)}\n')
    signers = keys.read_trust([allowed])
    blob = sign_key(office, "county").blob
    assert [s.principals for s in keys.trusted_lines(signers, blob)] == ["county,county-office"]  # city's: other namespaces
    assert keys.trusts(signers, blob, "county-office") and not keys.trusts(signers, blob, "city")
    allowed.write_text(f"ca cert-authority {' '.join(key)}\n")
    with pytest.raises(Exception, match=r"cert-authority"):
        keys.read_trust([allowed])
    allowed.write_text("someone ssh-rsa AAAAB3NzaC1yc2E\n")
    with pytest.raises(Exception) as caught:
        keys.read_trust([allowed])
    assert caught.value.line == 1
