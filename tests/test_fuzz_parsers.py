"""Property-based fuzzing of every parser of untrusted input (Hypothesis, a bounded number of examples).

The property is the same for each: the parser returns, or raises the error type it declares
(which the CLI turns into exit 1 or 2 with a message); never anything else, which would be a
traceback. Inputs are both arbitrary and mutations of valid files, so the fuzzing reaches past
the first check. Each test's number of examples is bounded so the suite stays fast in CI.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

import pyrage
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nanbu_secops.accounts import sources
from nanbu_secops.audit import make_target
from nanbu_secops.bundle import agefile, archive, custody, keys, sshsig
from nanbu_secops.bundle.manifest import ManifestError, decode
from nanbu_secops.collect import CollectError, defender, logindefs, logins, sshd
from nanbu_secops.collect import accounts as unix_accounts
from nanbu_secops.errors import InputError

SCALE = int(os.environ.get("NANBU_FUZZ_SCALE", "1"))  # e.g. 50 for a long hunt; CI runs the bounded default
FAST = settings(max_examples=150 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=40 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_KEY = keys.SignKey(ed25519.Ed25519PrivateKey.generate(), "unit")
_MANIFEST = (b'{"created":"2026-11-28T09:30:00+08:00","digests":["sha256"],"files":[{"path":"report.md",'
             b'"sha256":"00","size":1}],"format":"nanbu-secops-bundle/1","id":"x","kind":"incident",'
             b'"masking":{"applied":false},"signer":{"key":"k","principal":"unit"},"title":"t",'
             b'"tool":{"name":"nanbu-secops","version":"1"},"unit":"u"}')
_CHAIN = custody.append(b"", _MANIFEST, action="collected", key=_KEY, bundle_id="x")
_SIGNATURE = sshsig.sign(_KEY.key, b"message").encode()


def _tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("report.md", b"# r\n"), ("evidence/a b/文件.txt", b"x" * 700), (archive.MANIFEST, b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


_TAR = _tar()


def mutated(valid: bytes) -> st.SearchStrategy[bytes]:
    """``valid`` with a few bytes changed, inserted or cut: inputs that get past the first checks."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(valid)
        for _ in range(draw(st.integers(1, 4))):
            if not data:
                break
            at = draw(st.integers(0, len(data) - 1))
            how = draw(st.sampled_from(("flip", "insert", "cut", "truncate")))
            if how == "flip":
                data[at] ^= draw(st.integers(1, 255))
            elif how == "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=8))
            elif how == "cut":
                del data[at:at + draw(st.integers(1, 16))]
            else:
                del data[at:]
        return bytes(data)

    return build()


TEXT = st.text(st.characters(codec="utf-8"), max_size=400)
LINES = st.lists(st.one_of(TEXT, st.sampled_from(["", "#", "\t", " ", "=", '"', "\\", "Match", "Include"])),
                 max_size=12).map("\n".join)


@FAST
@given(st.one_of(TEXT, LINES))
def test_login_defs_and_passwd_and_shadow_return(text: str) -> None:
    logindefs.parse(text)
    unix_accounts.parse_passwd(text)
    unix_accounts.parse_shadow(text)


@FAST
@given(st.binary(max_size=3 * 384 + 17))
def test_wtmp_returns(data: bytes) -> None:
    notes: list[str] = []
    records = logins.parse_wtmp(data, "wtmp", notes)
    logins.replay(records)


SSHD_KEYS = ["Port", "PermitRootLogin", "PasswordAuthentication", "Ciphers", "MACs", "KexAlgorithms",
             "Include", "Match", "MaxAuthTries", "AllowUsers", "Banner"]


SSHD_VALUES = st.one_of(st.sampled_from(['"unclosed', "'x", "a b", "*", "/etc/ssh/*.conf", "sshd_config",
                                                "+aes128-ctr", "-chacha*", "^x,y", "", "all", "User root"]), TEXT)


@SLOW
@given(st.lists(st.tuples(st.sampled_from(SSHD_KEYS), st.sampled_from([" ", "=", " = ", "\t"]), SSHD_VALUES),
                max_size=10),
       st.one_of(st.just(""), TEXT))
@example([("Include", " ", '"unclosed')], "")  # found by this test: shlex's ValueError was a traceback
def test_sshd_config_returns_or_raises_collect_error(lines: list[tuple[str, str, str]], tail: str) -> None:
    text = "\n".join(f"{key}{sep}{value}" for key, sep, value in lines) + "\n" + tail
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "etc" / "ssh").mkdir(parents=True)
        (Path(root) / "etc" / "ssh" / "sshd_config").write_text(text, encoding="utf-8", errors="surrogateescape")
        with contextlib.suppress(CollectError):
            sshd.collect(make_target(root, dt.date(2026, 11, 28)))


@SLOW
@given(st.one_of(st.binary(max_size=600), mutated(json.dumps({"AMServiceEnabled": True, "AntivirusEnabled": True,
                                                                "AntivirusSignatureLastUpdated": "2026-11-27T10:00:00",
                                                                "AntivirusSignatureAge": 1}).encode()),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
                              lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                                  st.sampled_from(["AMServiceEnabled", "AntivirusEnabled", "AntivirusSignatureAge",
                                                   "AntivirusSignatureLastUpdated", "QuickScanEndTime",
                                                   "RealTimeProtectionEnabled"]), inner, max_size=6),
                              max_leaves=10).map(lambda v: json.dumps(v).encode())))
def test_defender_json_returns_or_raises_input_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "defender.json"
        path.write_bytes(data)
        with contextlib.suppress(InputError):
            defender.load(path)


CSV_HEAD = "账号,使用人,所属单位,状态,开通时间\n".encode()


@SLOW
@given(st.one_of(st.binary(max_size=400).map(lambda b: CSV_HEAD + b),
                 mutated(CSV_HEAD + "zhangsan,张三,大桥镇,正常,2026-01-02\n".encode()),
                 mutated(b"PK\x03\x04" + bytes(60))),
       st.sampled_from([".csv", ".xlsx"]))
def test_account_exports_return_or_raise_input_error(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"accounts{suffix}"
        path.write_bytes(data)
        with contextlib.suppress(InputError):
            list(sources.read_accounts(path))


@FAST
@given(st.one_of(mutated(_MANIFEST), st.binary(max_size=300),
                 st.dictionaries(TEXT, st.one_of(TEXT, st.integers(), st.lists(TEXT, max_size=3)), max_size=6)
                 .map(lambda d: json.dumps({"format": "nanbu-secops-bundle/1", **d}, sort_keys=True,
                                           separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))))
def test_manifest_returns_or_raises_manifest_error(data: bytes) -> None:
    with contextlib.suppress(ManifestError):
        decode(data)


@FAST
@given(st.one_of(mutated(_CHAIN), st.binary(max_size=300)))
def test_custody_returns_or_raises_custody_error(data: bytes) -> None:
    with contextlib.suppress(custody.CustodyError):
        custody.verify(data, _MANIFEST, "x")


@FAST
@given(st.one_of(mutated(_SIGNATURE), st.binary(max_size=300)))
def test_sshsig_returns_or_raises_signature_error(data: bytes) -> None:
    with contextlib.suppress(sshsig.SignatureError):
        sshsig.verify(data, b"message")


_PUBLIC = sshsig.openssh_public(_KEY.blob)


@SLOW
@given(st.lists(st.one_of(TEXT, st.tuples(TEXT, st.sampled_from(["", 'namespaces="nanbu-secops"', "cert-authority",
                                                                   'valid-before="20261201"', 'valid-after="x"',
                                                                   'namespaces="a,b",valid-after="20200101Z"']))
                          .map(lambda t: f"{t[0]} {t[1]} {_PUBLIC}")), max_size=5).map("\n".join))
def test_allowed_signers_return_or_raise_input_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "allowed"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            signers = keys.read_trust([path])
        except InputError:
            return
        keys.trusts(signers, _KEY.blob, "unit")


@FAST
@given(st.one_of(mutated(_TAR), st.binary(max_size=2048)))
def test_tar_members_return_or_raise_archive_error(data: bytes) -> None:
    try:
        for info, reader in archive.members(io.BytesIO(data)):
            for _ in archive.chunks(info, reader):
                pass
    except archive.ArchiveError:
        pass


_AGE_IDENTITY = pyrage.x25519.Identity.generate()


def _age_file() -> bytes:
    """Two chunks (the first full, the final short) to one recipient: every part of the format."""
    head, sealer = agefile.start([agefile.x25519_key(_AGE_IDENTITY.to_public())])
    return head + b"".join(sealer.seal(bytes(agefile.CHUNK), final=False) + sealer.seal(b"x" * 100, final=True))


_AGE = _age_file()


@SLOW
@given(st.one_of(mutated(_AGE), mutated(_AGE[:400]), st.binary(max_size=300).map(agefile.VERSION_LINE.__add__)))
def test_age_reader_returns_or_raises_age_decrypt_error(data: bytes) -> None:
    with contextlib.suppress(agefile.AgeDecryptError):
        agefile.decrypt_stream(io.BytesIO(data).read, bytearray().extend, [_AGE_IDENTITY])
