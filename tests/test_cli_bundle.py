"""``keys``, ``incident`` and ``proposal`` as an operator runs them: exit codes 0/1/2, messages
that name the file and line, and bundles the commands of the next office accept."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from nanbu_secops.timeutil import now
from tests.roots import make_root
from tests.test_cli import cli

FIXTURES = Path(__file__).parent / "fixtures" / "proposals"


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    for name in ("unit", "county", "city"):
        done = cli("keys", "new", name, "--out", str(folder))
        assert done.returncode == 0, done.stderr
    return folder


def collect(keydir: Path, tmp_path: Path, *extra: str, out: str = "inc.nsb") -> tuple[int, str, Path]:
    root = make_root(tmp_path)
    evidence = tmp_path / "evidence-in"
    evidence.mkdir(exist_ok=True)
    (evidence / "web.log").write_text("GET /admin?tel=13812345678 403\n")
    done = cli("incident", "collect", "--root", str(root), "--unit", "大桥镇", "--title", "首页被篡改",
               "--category", "network-attack", "--severity", "IV", "--discovered-at", "2026-11-28 09:30",
               "--measures", "已断网", "-r", str(keydir / "county.recipient"), "-r", str(keydir / "city.recipient"),
               "--sign-key", str(keydir / "unit_ed25519"), "--out", str(tmp_path / out),
               "--include", str(evidence), *extra)
    return done.returncode, done.stdout + done.stderr, tmp_path / out


def test_keys_new_refuses_to_overwrite(keydir: Path) -> None:
    done = cli("keys", "new", "unit", "--out", str(keydir), "--lang", "en")
    assert done.returncode == 2 and "will not overwrite" in done.stderr and "unit.agekey" in done.stderr


def test_collect_verify_open_forward(keydir: Path, tmp_path: Path) -> None:
    code, output, bundle = collect(keydir, tmp_path, "--mask-pii")
    assert code == 0, output
    assert bundle.exists() and Path(f"{bundle}.sig").exists()
    trust = ["--trust", str(keydir / "unit.allowed_signers"), "--trust", str(keydir / "county.allowed_signers")]
    outer = cli("incident", "verify", str(bundle), *trust)
    assert outer.returncode == 0 and "未检查" in outer.stdout  # contents not checked without an identity
    full = cli("incident", "verify", str(bundle), "-i", str(keydir / "county.agekey"), *trust, "--format", "json")
    doc = json.loads(full.stdout)
    assert full.returncode == 0 and doc["ok"] is True, full.stdout
    assert doc["manifest"]["unit"] == "大桥镇" and doc["manifest"]["masking"]["applied"] is True
    opened = tmp_path / "opened"
    done = cli("incident", "open", str(bundle), "-i", str(keydir / "city.agekey"), "--out", str(opened), *trust)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((opened / "report.json").read_text())
    form = report["form"]["表单"]
    assert form["事件名称"] == "首页被篡改" and form["类别"] == "网络攻击事件" and form["级别"] == "一般"
    assert form["发现时间"] == "2026-11-28T09:30:00+08:00" and form["处置措施"] == "已断网" and form["单位"] == "大桥镇"
    assert form["上报时间"].endswith("+08:00") and form["终端"] == "terminal-01"
    assert "| 事件名称 | 首页被篡改 |" in (opened / "report.md").read_text()
    included = next(opened.glob("evidence/files/**/web.log"))
    assert included.read_text() == "GET /admin?tel=138****5678 403\n"
    for part in ("system/host.json", "network/listening.json", "logins/sessions.json", "antivirus/status.json",
                 "check/results.json"):
        assert (opened / "evidence" / part).is_file(), part
    assert json.loads((opened / "evidence/system/processes.json").read_text()) == {"skipped": "not the live system"}
    forwarded = tmp_path / "to-city.nsb"
    done = cli("incident", "forward", str(bundle), "-i", str(keydir / "county.agekey"),
               "--sign-key", str(keydir / "county_ed25519"), "-r", str(keydir / "city.recipient"),
               "--out", str(forwarded), "--note", "已核实，报市网信办", *trust)
    assert done.returncode == 0, done.stdout + done.stderr
    city = cli("incident", "verify", str(forwarded), "-i", str(keydir / "city.agekey"), *trust, "--format", "json")
    doc = json.loads(city.stdout)
    assert city.returncode == 0 and [e["action"] for e in doc["custody"]] == ["collected", "received", "forwarded"]
    assert doc["custody"][2]["note"] == "已核实，报市网信办"
    assert doc["custody"][2]["to"] == [(keydir / "city.recipient").read_text().strip()]


def test_verify_exit_1_names_what_failed(keydir: Path, tmp_path: Path) -> None:
    code, output, bundle = collect(keydir, tmp_path)
    assert code == 0, output
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    done = cli("incident", "verify", str(bundle), "-i", str(keydir / "county.agekey"),
               "--trust", str(keydir / "unit.allowed_signers"), "--lang", "en")
    assert done.returncode == 1
    assert "FAILED" in done.stdout and "outer signature" in done.stdout and "decryption" in done.stdout
    opened = tmp_path / "never"
    done = cli("incident", "open", str(bundle), "-i", str(keydir / "county.agekey"), "--out", str(opened),
               "--trust", str(keydir / "unit.allowed_signers"))
    assert done.returncode == 1 and not opened.exists()
    untrusted = cli("incident", "verify", f"{bundle}", "--trust", str(keydir / "city.allowed_signers"))
    assert untrusted.returncode == 1
    # the officers' default report is Chinese, details included; JSON carries both
    zh = cli("incident", "verify", str(bundle), "-i", str(keydir / "county.agekey"),
             "--trust", str(keydir / "unit.allowed_signers"))
    assert zh.returncode == 1 and "校验失败" in zh.stdout and "解密：age 无法解密" in zh.stdout, zh.stdout
    assert "外层签名：" in zh.stdout and "签名无效" in zh.stdout
    code, output, good = collect(keydir, tmp_path, out="good.nsb")
    assert code == 0, output
    doc = json.loads(cli("incident", "verify", str(good), "--trust", str(keydir / "city.allowed_signers"),
                         "--format", "json").stdout)
    outer = next(c for c in doc["checks"] if c["check"] == "outer signature")
    assert "not in the trusted signers" in outer["detail"] and "不在受信任的签名者中" in outer["detail_zh"]


def test_no_trust_given_is_exit_2_saying_how_to_give_it(keydir: Path, tmp_path: Path) -> None:
    """An outsider's fresh key calling itself by the unit's name must not pass verify, open or forward by default."""
    outsider = tmp_path / "outsider"
    assert cli("keys", "new", "unit", "--sign-only", "--out", str(outsider)).returncode == 0
    code, output, bundle = collect(keydir, tmp_path, "--sign-key", str(outsider / "unit_ed25519"))
    assert code == 0, output
    county = ["-i", str(keydir / "county.agekey")]
    forwarding = ["--sign-key", str(keydir / "county_ed25519"), "-r", str(keydir / "city.recipient"),
                  "--out", str(tmp_path / "fwd.nsb")]
    for kind in ("incident", "proposal"):
        for command in (["verify", str(bundle)], ["verify", str(bundle), *county],
                        ["open", str(bundle), *county, "--out", str(tmp_path / "opened")],
                        ["forward", str(bundle), *county, *forwarding]):
            done = cli(kind, *command, "--lang", "en")
            assert done.returncode == 2, (kind, command, done.stdout, done.stderr)
            assert "--trust ALLOWED_SIGNERS" in done.stderr and "--no-trust" in done.stderr
            assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (tmp_path / "opened").exists() and not (tmp_path / "fwd.nsb").exists()
    # the unit's real allowed-signers line refuses the outsider
    trusted = cli("incident", "verify", str(bundle), *county, "--trust", str(keydir / "unit.allowed_signers"))
    assert trusted.returncode == 1 and "all checks hold" not in trusted.stdout
    both = cli("incident", "verify", str(bundle), "--trust", str(keydir / "unit.allowed_signers"), "--no-trust",
               "--lang", "en")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_no_trust_checks_integrity_and_says_the_signer_was_not_checked(keydir: Path, tmp_path: Path) -> None:
    code, output, bundle = collect(keydir, tmp_path)
    assert code == 0, output
    for extra in ([], ["-i", str(keydir / "county.agekey")]):
        en = cli("incident", "verify", str(bundle), *extra, "--no-trust", "--lang", "en")
        assert en.returncode == 0, en.stdout
        assert "SIGNER WAS NOT CHECKED" in en.stdout and "all checks hold" not in en.stdout
        zh = cli("incident", "verify", str(bundle), *extra, "--no-trust")
        assert zh.returncode == 0 and "未核对签名者" in zh.stdout and "全部通过" not in zh.stdout
        doc = json.loads(cli("incident", "verify", str(bundle), *extra, "--no-trust", "--format", "json").stdout)
        assert doc["signer_checked"] is False
        assert any(c["check"] == "signers trusted" and c["ok"] is None for c in doc["checks"])
    trusted = json.loads(cli("incident", "verify", str(bundle), "--trust", str(keydir / "unit.allowed_signers"),
                             "--format", "json").stdout)
    assert trusted["ok"] is True and trusted["signer_checked"] is True
    # forward under --no-trust records in the custody chain that the signer was not checked
    done = cli("incident", "forward", str(bundle), "-i", str(keydir / "county.agekey"), "--no-trust",
               "--sign-key", str(keydir / "county_ed25519"), "-r", str(keydir / "city.recipient"),
               "--out", str(tmp_path / "fwd.nsb"))
    assert done.returncode == 0, done.stdout + done.stderr
    city = json.loads(cli("incident", "verify", str(tmp_path / "fwd.nsb"), "-i", str(keydir / "city.agekey"),
                          "--trust", str(keydir / "unit.allowed_signers"), "--trust",
                          str(keydir / "county.allowed_signers"), "--format", "json").stdout)
    assert city["ok"] is True
    received = next(e for e in city["custody"] if e["action"] == "received")
    assert "signers trusted: not checked" in received["note"]


@pytest.mark.parametrize("change, message", [
    ({"--category": "burglary"}, "category 'burglary' is not one of"),
    ({"--severity": "V"}, "severity 'V' is not one of"),
    ({"--discovered-at": "yesterday"}, "is not a time"),
    ({"--discovered-at": (now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")}, "in the future"),
    ({"--digest": "sha256,md5"}, "--digest: unknown digest md5"),
    ({"--sign-key": "/nonexistent/key"}, "/nonexistent/key: cannot read signing key"),
    ({"-r": "age1notakey"}, "not an age recipient"),
    ({"--days": "0"}, "--days must be at least 1"),
])
def test_collect_bad_input_is_exit_2(keydir: Path, tmp_path: Path, change: dict[str, str], message: str) -> None:
    root = make_root(tmp_path)
    args = {"--root": str(root), "--unit": "u", "--title": "t", "--category": "other", "--severity": "一般",
            "--discovered-at": "2026-11-28T09:30", "-r": str(keydir / "county.recipient"),
            "--sign-key": str(keydir / "unit_ed25519"), "--out": str(tmp_path / "x.nsb"), **change}
    done = cli("incident", "collect", *[part for pair in args.items() for part in pair], "--lang", "en")
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "x.nsb").exists()


def test_recipient_file_error_names_the_line(keydir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "offices.recipient"
    bad.write_text(f"# county\n{(keydir / 'county.recipient').read_text()}age1broken\n")
    code, output, _ = collect(keydir, tmp_path, "-r", str(bad))
    assert code == 2 and f"{bad}:3: not an age recipient" in output


def test_ssh_recipients_are_refused_for_bundles(keydir: Path, tmp_path: Path) -> None:
    """Bundles are written to age X25519 recipients only (bundle/agefile.py); an SSH key is named."""
    pub = keydir / "unit_ed25519.pub"
    for value, where in ((str(pub), str(pub)), (pub.read_text().strip(), "--recipient")):
        code, output, bundle = collect(keydir, tmp_path, "-r", value, "--lang", "en")
        assert code == 2 and f"{where}: bundles are encrypted to age X25519 recipients" in output, output
        assert not bundle.exists()


def test_existing_bundle_is_never_overwritten(keydir: Path, tmp_path: Path) -> None:
    code, output, bundle = collect(keydir, tmp_path)
    assert code == 0, output
    before = bundle.read_bytes()
    code, output, _ = collect(keydir, tmp_path, "--lang", "en")
    assert code == 2 and "will not overwrite" in output and bundle.read_bytes() == before


def test_sm3_bundle_checks(keydir: Path, tmp_path: Path) -> None:
    code, output, bundle = collect(keydir, tmp_path, "--digest", "sha256,sm3")
    assert code == 0, output
    done = cli("incident", "verify", str(bundle), "-i", str(keydir / "county.agekey"), "--format", "json",
               "--trust", str(keydir / "unit.allowed_signers"))
    assert done.returncode == 0 and json.loads(done.stdout)["manifest"]["digests"] == ["sha256", "sm3"]


# ------------------------------------------------------------------------------ proposals

def test_proposal_new_validate_aggregate_package(keydir: Path, tmp_path: Path) -> None:
    blank = cli("proposal", "new")
    assert blank.returncode == 0 and "标题" in blank.stdout and "类别" in blank.stdout
    forms = tmp_path / "forms"
    shutil.copytree(FIXTURES, forms)
    assert cli("proposal", "validate", *map(str, sorted(forms.rglob("*.yml")))).returncode == 0
    markdown = cli("proposal", "aggregate", str(forms))
    assert markdown.returncode == 0 and "第二十八条" in markdown.stdout
    assert "****" in markdown.stdout
    xlsx = cli("proposal", "aggregate", str(forms), "--format", "xlsx")
    assert xlsx.returncode == 2 and "--output" in xlsx.stderr
    bundle = tmp_path / "p.nsb"
    done = cli("proposal", "package", str(forms), "--unit", "南部县政府办", "-r", str(keydir / "city.recipient"),
               "--sign-key", str(keydir / "county_ed25519"), "--out", str(bundle))
    assert done.returncode == 0, done.stderr
    opened = tmp_path / "opened"
    done = cli("proposal", "open", str(bundle), "-i", str(keydir / "city.agekey"), "--out", str(opened),
               "--trust", str(keydir / "county.allowed_signers"), "--format", "json")
    assert done.returncode == 0, done.stdout
    doc = json.loads(done.stdout)
    assert doc["manifest"]["kind"] == "proposal" and doc["custody"][0]["action"] == "packaged"
    report = json.loads((opened / "report.json").read_text())
    assert report["article"] == "28" and report["proposals"] == len(list(forms.rglob("*.yml")))
    assert (opened / "evidence" / "aggregate.xlsx").stat().st_size > 0
    assert sorted(p.relative_to(opened / "evidence" / "proposals") for p in (opened / "evidence" / "proposals").rglob("*.yml")) \
        == sorted(p.relative_to(forms) for p in forms.rglob("*.yml"))


def test_proposal_with_a_bad_form(keydir: Path, tmp_path: Path) -> None:
    forms = tmp_path / "forms"
    shutil.copytree(FIXTURES, forms)
    bad = forms / "bad.yml"
    bad.write_text("单位: 大桥镇\n标题: 增加栏目\n类别: 娱乐\n描述: x\n预期效益: y\n优先级: 高\n"
                   "联系人:\n  姓名: 张三\n  电话: '13812345678'\n")
    done = cli("proposal", "validate", str(bad))
    assert done.returncode == 2 and f"{bad}:3:" in done.stderr + done.stdout
    aggregated = cli("proposal", "aggregate", str(forms))
    assert aggregated.returncode == 2 and f"{bad}:3:" in aggregated.stderr and "第二十八条" in aggregated.stdout
    package = cli("proposal", "package", str(forms), "--unit", "u", "-r", str(keydir / "city.recipient"),
                  "--sign-key", str(keydir / "county_ed25519"), "--out", str(tmp_path / "p.nsb"))
    assert package.returncode == 2 and not (tmp_path / "p.nsb").exists()


def test_own_private_keys_are_never_packed(keydir: Path, tmp_path: Path) -> None:
    """Including the folder that holds the signing key (or `/`) must not put the key in the bundle."""
    terminal = tmp_path / "terminal-keys"
    done = cli("keys", "new", "term01", "--sign-only", "--out", str(terminal))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in terminal.iterdir()) == ["term01.allowed_signers", "term01_ed25519", "term01_ed25519.pub"]
    (terminal / "old.agekey").write_text("AGE-SECRET-KEY-1XXXX\n")
    (terminal / "notes.txt").write_text("kept\n")
    root = make_root(tmp_path)
    bundle = tmp_path / "k.nsb"
    done = cli("incident", "collect", "--root", str(root), "--unit", "u", "--title", "t", "--category", "other",
               "--severity", "一般", "--discovered-at", "2026-11-28T09:30", "-r", str(keydir / "county.recipient"),
               "--sign-key", str(terminal / "term01_ed25519"), "--out", str(bundle), "--include", str(terminal))
    assert done.returncode == 0, done.stderr
    opened = tmp_path / "opened"
    assert cli("incident", "open", str(bundle), "-i", str(keydir / "county.agekey"), "--out", str(opened),
               "--trust", str(terminal / "term01.allowed_signers")).returncode == 0
    packed = sorted(p.name for p in opened.glob("evidence/files/**/*") if p.is_file())
    assert packed == ["notes.txt", "term01.allowed_signers", "term01_ed25519.pub"]
    skipped = json.loads((opened / "evidence" / "files-skipped.json").read_text())
    assert sorted(Path(s["path"]).name for s in skipped) == ["old.agekey", "term01_ed25519"]


def test_mask_pii_covers_every_field_of_every_file(keydir: Path, tmp_path: Path) -> None:
    """Title, unit, file names and contents, manifest and custody: no phone number or resident ID anywhere
    inside the bundle, and two names that mask alike still make a bundle that opens."""
    phone, other, resident = "13812345678", "13899995678", "11010519491231002X"
    evidence = tmp_path / "evidence-in"
    evidence.mkdir()
    (evidence / f"{phone}.log").write_text(f"call {phone}\n")
    (evidence / f"{other}.log").write_text(f"id {resident}\n")
    bundle = tmp_path / "m.nsb"
    done = cli("incident", "collect", "--root", str(make_root(tmp_path)), "--unit", f"大桥镇 {phone}",
               "--title", f"{phone} 反映首页被篡改，证件 {resident}", "--category", "network-attack", "--severity", "IV",
               "--discovered-at", "2026-11-28 09:30", "--measures", f"已联系 {phone}",
               "-r", str(keydir / "county.recipient"), "--sign-key", str(keydir / "unit_ed25519"),
               "--out", str(bundle), "--include", str(evidence), "--mask-pii")
    assert done.returncode == 0, done.stderr
    plain = subprocess.run(["age", "-d", "-i", str(keydir / "county.agekey"), str(bundle)], capture_output=True)
    assert plain.returncode == 0, plain.stderr
    with tarfile.open(fileobj=io.BytesIO(plain.stdout), mode="r:") as tar:
        members = {info.name: tar.extractfile(info).read() for info in tar}
    everything = "\n".join(members).encode() + b"".join(members.values())
    for secret in (phone, other, resident):
        assert secret.encode() not in everything, secret
    manifest = json.loads(members["manifest.json"])
    assert manifest["title"].startswith("138****5678") and manifest["unit"] == "大桥镇 138****5678"
    assert manifest["masking"]["applied"] is True
    logs = sorted(name for name in members if "evidence-in/" in name)
    assert len(logs) == 2 and logs[0].endswith("138****5678.log") and logs[1].endswith("138****5678.log~2")
    opened = tmp_path / "opened"
    done = cli("incident", "open", str(bundle), "-i", str(keydir / "county.agekey"), "--out", str(opened),
               "--trust", str(keydir / "unit.allowed_signers"))
    assert done.returncode == 0, done.stdout


def test_include_of_a_missing_path_is_exit_2_before_any_work(keydir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-log"
    code, output, bundle = collect(keydir, tmp_path, "--include", str(missing), "--lang", "en")
    assert code == 2 and f"{missing}: --include: no such file or folder" in output and "Traceback" not in output
    assert not bundle.exists()


def test_overlapping_includes_are_folded_into_a_bundle_that_opens(keydir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    logs = tmp_path / "logs"
    (logs / "nginx").mkdir(parents=True)
    (logs / "nginx" / "access.log").write_text("GET /\n")
    (logs / "syslog").write_text("boot\n")
    monkeypatch.chdir(logs / "nginx")
    code, output, bundle = collect(keydir, tmp_path, "--include", str(logs), "--include", str(logs / "nginx"),
                                   "--include", str(logs), "--include", "../nginx/access.log")
    assert code == 0, output
    opened = tmp_path / "opened"
    done = cli("incident", "open", str(bundle), "-i", str(keydir / "county.agekey"), "--out", str(opened),
               "--trust", str(keydir / "unit.allowed_signers"))
    assert done.returncode == 0, done.stdout
    packed = sorted(p.name for p in opened.glob("evidence/files/**/*") if p.is_file())
    assert packed == ["access.log", "syslog", "web.log"]


def test_proc_files_are_packed_to_their_end_not_their_stated_size(keydir: Path, tmp_path: Path) -> None:
    """/proc states size 0; the bundle must hold what reading the file gives (as cat would)."""
    assert Path("/proc/version").stat().st_size == 0
    code, output, bundle = collect(keydir, tmp_path, "--include", "/proc/version", "--include", "/proc/self/limits")
    assert code == 0, output
    opened = tmp_path / "opened"
    done = cli("incident", "open", str(bundle), "-i", str(keydir / "county.agekey"), "--out", str(opened),
               "--trust", str(keydir / "unit.allowed_signers"))
    assert done.returncode == 0, done.stdout
    assert (opened / "evidence/files/proc/version").read_bytes() == Path("/proc/version").read_bytes() != b""
    assert b"Max open files" in (opened / "evidence/files/proc/self/limits").read_bytes()
