"""Every covered command speaks the language asked: no English prose in the Chinese output, none of
our own Chinese in the English output (issue 19).

English prose is a run of three or more plain words (``[A-Za-z][a-z]+`` or "a": lower case or
capitalised) with nothing but spaces between them; a single capital letter (terminal "A") is data.
These never count as plain words, by design:
- code-like tokens: anything with a digit, ``/ . _ - = : @ * +`` inside, or a capital after the first
  letter (file paths, URLs, control ids such as NS26-PASS-001, setting names such as
  PasswordAuthentication, versions, addresses, host names);
- upper-case words and abbreviations (IPv6, AAAA, DNS, HTTPS, TLS, VNC);
- the names in :data:`NAMES`: products and commands named as they are (ClamAV's tools, Windows
  Defender, the remote-control products of the policy's catalogue), and every ``nanbu-secops``
  subcommand's name as the parser itself has it (``report quarterly``, ``ssh-probe``).
Punctuation around a word (brackets, commas, colons, quotes) is stripped first, so "is not installed:"
counts as three words.

"Our own Chinese" in English output is any run of CJK characters that is not in the command's
input (names, units and proposal texts are the users' data, shown as given) and not one of
:data:`CJK_DATA` (Chinese that the shipped policies carry as data: a product's Chinese name).
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import http.server
import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pyrage
import pytest

from nanbu_secops.accounts import sources
from nanbu_secops.cli import main
from nanbu_secops.creds import escrow
from tests.roots import AS_OF, make_root
from tests.test_accounts_audit import ACCOUNTS, LOGINS, ROSTER
from tests.test_check_antivirus import NO_CLAMAV

PROJECT = Path(__file__).resolve().parents[1]
NAMES = {"ClamAV", "Windows", "Defender", "ToDesk", "Sunlogin", "AnyDesk", "TeamViewer", "RustDesk", "OpenSSH",
         "clamd", "clamscan", "clamdscan", "freshclam", "sshd", "sudo", "chrony", "nftables", "iptables", "ufw",
         "firewalld", "cron", "apt", "clamav", "systemctl", "av", "scan", "status", "check", "audit", "accounts",
         "root", "alice"}
CJK_DATA = {"向日葵"}
_STRIP = "()（）[]【】,，;；:：.。'\"“”‘’!?、|│┃"
_WORD = re.compile(r"[A-Za-z][a-z]+|a")
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+")
_SPACE = re.compile(r"[\s│┃┆║|─━┏┓┗┛┡┩┣┫╇╋┳┻╭╮╰╯├┤┼┬┴└┘┌┐]+")


def english_runs(text: str) -> list[str]:
    """Runs of three or more plain English words (see the module's docstring)."""
    found: list[str] = []
    run: list[str] = []
    for token in _SPACE.split(_CJK.sub(" # ", text)) + [""]:       # Chinese between words ends a run
        word = token.strip(_STRIP)
        if word and _WORD.fullmatch(word) and word not in NAMES and not (word.isupper() and len(word) > 1):
            run.append(word)
            continue
        if len(run) >= 3:
            found.append(" ".join(run))
        run = []
    return found


def own_chinese(text: str, inputs: str) -> list[str]:
    return [run for run in _CJK.findall(text) if run not in inputs and run not in CJK_DATA
            and not all(ch in "　、。，；：（）“”" for ch in run)]


def visible(page: str) -> str:
    """An HTML page's text as a reader sees it: no style, no tags, entities decoded."""
    page = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def sheet_text(path: Path) -> str:
    book = openpyxl.load_workbook(path)
    return "\n".join(str(cell) for sheet in book for row in sheet.iter_rows(values_only=True)
                     for cell in row if cell is not None) + "\n" + "\n".join(book.sheetnames)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def assert_speaks(lang: str, text: str, inputs: str = "") -> None:
    if lang == "zh":
        assert english_runs(text) == [], text
    else:
        assert own_chinese(text, inputs) == [], text


# --- the detector itself ------------------------------------------------------------------------

def test_the_detector_finds_english_prose_and_lets_code_through():
    assert english_runs("原因：needs the live system: routes") == ["needs the live system routes"]
    assert english_runs("reason=holder not in the roster") == ["not in the roster"]
    assert english_runs("判定：未运行 verdict=not running") == []          # two words only
    assert english_runs("│ employment │ is │ left │") == ["employment is left"]   # across table cells too
    assert english_runs("/etc/ssh/sshd_config:3 PasswordAuthentication NS26-PASS-001 https://a.test/x y") == []
    assert english_runs("ClamAV Windows Defender 未安装; IPv6 AAAA DNS") == []
    assert english_runs("协议 ftp 不是 http 或 https；终端 A、B、C、D") == []
    assert own_chinese("holder 张三 is 离职", "张三,升钟镇") == ["离职"]
    assert own_chinese("Sunlogin (向日葵)", "") == []


# --- the commands -------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["zh", "en"])
def test_check_and_av_status(tmp_path, capsys, lang):
    compliant, broken = make_root(tmp_path / "ok"), make_root(tmp_path / "no-av", NO_CLAMAV)
    bare = make_root(tmp_path / "bare", dict.fromkeys(("usr/sbin/sshd", "etc/nftables.conf", "etc/chrony/chrony.conf",
                                                       "etc/resolv.conf", "var/log/wtmp", "etc/clamav/freshclam.conf",
                                                       "etc/clamav/clamd.conf")))
    outputs = {}
    for root in (compliant, broken, bare):
        for command in (["check"], ["av", "status"]):
            code, out = run(capsys, *command, "--root", str(root), "--as-of", AS_OF.isoformat(), "--lang", lang)
            assert code in (0, 1) and out
            assert_speaks(lang, out)
            outputs[root, command[0]] = out
    for status in sorted((PROJECT / "tests" / "fixtures" / "defender").glob("*.json")):
        if status.name != "malformed.json":
            code, out = run(capsys, "av", "status", "--windows-defender", str(status), "--as-of", AS_OF.isoformat(),
                            "--lang", lang)
            assert code in (0, 1) and out
            assert_speaks(lang, out)
    # the skip reason of a --root run and the antivirus verdict, as sentences
    out = outputs[broken, "check"]
    assert ("须在运行中的系统上检查" in out and "判定：未安装" in out) if lang == "zh" else \
        ("needs the live system" in out and "verdict: absent" in out)


@pytest.fixture
def exports(tmp_path: Path) -> dict[str, Path]:
    files = {"accounts": ACCOUNTS + "bad01,某人,升钟镇,编辑,半开,2025-01-05 09:00,\n",
             "logins": LOGINS + "ghost,2026-11-05 08:00:00,2026-11-05 08:05:00,10.1.1.9,X\n"
                                "lisi,昨天,,10.1.1.6,Y\nlisi,2026-11-05 09:00:00,2026-11-05 08:00:00,10.1.1.6,Y\n",
             "roster": ROSTER + "钱一,S009,升钟镇,在职\n"}
    out = {}
    for name, text in files.items():
        out[name] = tmp_path / f"{name}.csv"
        out[name].write_text(text, encoding="utf-8")
    return out


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_accounts_audit_text_html_xlsx(exports, tmp_path, capsys, lang):
    base = ["accounts", "audit", "--accounts", str(exports["accounts"]), "--logins", str(exports["logins"]),
            "--roster", str(exports["roster"]), "--as-of", "2026-11-28", "--lang", lang]
    # the files' own words, and the Chinese values their columns accept (a row problem lists them)
    inputs = "".join(p.read_text(encoding="utf-8") for p in exports.values()) + " ".join(
        [*sources.STATUS, *sources.EMPLOYMENT, *sources.ESTABLISHMENT])
    code, text = run(capsys, *base)
    assert code == 1 and "!" in text                   # the unusable rows are listed
    assert_speaks(lang, text, inputs)
    assert main([*base, "--format", "html", "--output", str(tmp_path / "a.html")]) == 1
    page = visible((tmp_path / "a.html").read_text(encoding="utf-8"))
    assert_speaks(lang, page, inputs)
    assert main([*base, "--format", "xlsx", "--output", str(tmp_path / "a.xlsx")]) == 1
    assert_speaks(lang, sheet_text(tmp_path / "a.xlsx"), inputs)
    if lang == "zh":
        assert "最后登录 2026-08-27（登录日志），已超过 3 个月未登录（截止 2026-11-28）" in page
        assert "在职状态为离职" in page and "持有人不在花名册中" in page


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_creds_status(tmp_path, capsys, lang):
    identity = pyrage.x25519.Identity.generate()
    escrow.deposit(tmp_path, "h01", "clerk", "password", b"one", [identity.to_public()])
    done = escrow.deposit(tmp_path, "h01", "ops", "ssh-key", b"two", [identity.to_public()])
    escrow.mark(done, "verified")
    (tmp_path / "h02").mkdir()
    code, out = run(capsys, "creds", "status", "--escrow", str(tmp_path), "--lang", lang)
    assert code == 1 and "h02" in out
    assert_speaks(lang, out)
    assert ("口令" in out and "SSH 密钥" in out) if lang == "zh" else ("password" in out)


def _dead_port() -> int:
    """A loopback UDP port nothing answers on: bound, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_ipv6_check_reasons(capsys, lang):
    code, out = run(capsys, "ipv6", "check", "ftp://x.test/", "www.nanbu.test", "http://[::1", "--resolver",
                    f"127.0.0.1:{_dead_port()}", "--timeout", "1", "--probes", "1", "--lang", lang)
    assert code == 1
    assert_speaks(lang, out)
    assert ("协议 ftp 不是 http 或 https" in out and "不可达" in out) if lang == "zh" else "unreachable" in out


def _fleet(tmp_path: Path, title: str) -> tuple[Path, Path]:
    """test_quarterly's inventory and its runs written as collect.yml stores results, every result
    titled ``title`` (stored titles are replaced by the policy's in the language asked)."""
    from tests.test_quarterly import GROUP_VARS, HOSTS, RESULTS, RUNS

    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(HOSTS, encoding="utf-8")
    for group, text in GROUP_VARS.items():
        (inventory / "group_vars" / f"{group}.yml").write_text(text, encoding="utf-8")
    collected = tmp_path / "collected"
    for r in RUNS:
        rows = [{"control": x.control, "article": x.article, "title": title, "status": x.status, "severity": x.severity}
                for x in RESULTS if x.run_id == r.id]
        (collected / r.host).mkdir(parents=True, exist_ok=True)
        (collected / r.host / f"run{r.id}.json").write_text(
            json.dumps({"host": r.host, "generated": r.generated, "policy_version": "t", "results": rows}),
            encoding="utf-8")
    return inventory, collected


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_report_quarterly_html(tmp_path, capsys, lang):
    from nanbu_secops.store import ingest
    from tests.test_quarterly import GROUP_VARS, HOSTS

    inventory, collected = _fleet(tmp_path, "检查项" if lang == "en" else "a check")
    ingest(collected, tmp_path / "fleet.db")
    page = tmp_path / "q.html"
    assert main(["report", "quarterly", "--db", str(tmp_path / "fleet.db"), "--quarter", "2026Q4", "--inventory",
                 str(inventory), "--policy", str(PROJECT / "policies"), "--lang", lang, "--output", str(page)]) == 1
    shown = visible(page.read_text(encoding="utf-8"))
    # stored titles are in the other language: the page shows the policy's title in the language asked
    inputs = HOSTS + "".join(GROUP_VARS.values())
    assert_speaks(lang, shown, inputs)
    assert ("口令最长使用期限" in shown) if lang == "zh" else ("PASS_MAX_DAYS" in shown and "检查项" not in shown)
    assert str(tmp_path) not in shown                  # the inventory's files named relative to it


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_proposal_aggregate(capsys, lang):
    folder = PROJECT / "tests" / "fixtures" / "proposals"
    code, out = run(capsys, "proposal", "aggregate", str(folder), "--lang", lang)
    assert code == 0
    inputs = "".join(p.read_text(encoding="utf-8") for p in folder.rglob("*.yml"))
    assert_speaks(lang, out, inputs)


# --- --help, argument errors and refused input, for every command the parser has -----------------

def _commands() -> list[tuple[str, ...]]:
    """Every command path of the parser itself, so a new command is covered the day it is added."""
    from nanbu_secops import clihelp
    from nanbu_secops.cli import build_parser

    return [(), *(tuple(key.split()) for key, _, action in clihelp.walk(build_parser()) if action is None)]


def _leaves() -> list[tuple[str, ...]]:
    from nanbu_secops import clihelp
    from nanbu_secops.cli import build_parser

    return [tuple(key.split()) for key, parser, action in clihelp.walk(build_parser())
            if action is None and parser.get_default("handler") is not None]


def _command_words() -> set[str]:
    """The subcommands' own names (``register``, ``find``...): command names, not prose."""
    return {word for path in _commands() for part in path for word in part.split("-")} | set(
        part for path in _commands() for part in path)


NAMES |= _command_words()


def exit_of(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """main() run to its end, also when argparse ends it (--help, a bad argument)."""
    try:
        code = main(list(args))
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_every_argument_with_help_has_its_chinese_and_no_chinese_is_stale():
    from nanbu_secops import clihelp
    from nanbu_secops.cli import build_parser

    keys = set()
    for key, parser, action in clihelp.walk(build_parser("en")):
        keys.add(key)
        helped = action.help if action is not None else parser.description
        if helped and (action is None or clihelp.key_of(action) != "--lang"):
            assert key in clihelp.HELP_ZH, f"no Chinese help for {key!r}: add it to clihelp.HELP_ZH"
    assert set(clihelp.HELP_ZH) - keys - {"", " --lang"} == set()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_help_of_every_command(capsys, monkeypatch, lang):
    from nanbu_secops.clihelp import width

    monkeypatch.setenv("COLUMNS", "80")
    commands = _commands()
    assert ("report", "quarterly") in commands and ("ssh-probe",) in commands and ("keys", "new") in commands
    for path in commands:
        code, out, err = exit_of(capsys, *path, "--help", "--lang", lang)
        assert code == 0 and err == "" and out, path
        assert ("用法：" in out and "显示本帮助并退出" in out) if lang == "zh" else "usage:" in out, out
        # Chinese wraps by terminal columns too; only a single unbreakable token (a list of choices) may overflow
        assert all(width(line) <= 80 or " " not in line.strip() for line in out.splitlines()), out
        assert_speaks(lang, out)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_argument_errors_of_every_command_are_one_line(capsys, lang):
    for path in _leaves():
        code, out, err = exit_of(capsys, *path, "--no-such-option", "--lang", lang)
        assert code == 2 and out == "" and err.count("\n") == 1, (path, err)
        assert_speaks(lang, err)        # required arguments are named first, else the unknown option
        assert "--no-such-option" in err or ("缺少必需的参数" if lang == "zh" else "arguments are required") in err
    code, _, err = exit_of(capsys, "check", "--no-such-option", "--lang", lang)
    assert code == 2 and ("无法识别的参数：--no-such-option" if lang == "zh" else "unrecognized arguments") in err
    code, _, err = exit_of(capsys, "accounts", "audit", "--lang", lang)
    assert code == 2 and ("缺少必需的参数：--accounts" if lang == "zh" else "required: --accounts") in err
    code, _, err = exit_of(capsys, "check", "--format", "pdf", "--lang", lang)
    assert code == 2 and err.count("\n") == 1 and "'pdf'" in err
    assert_speaks(lang, err)


def test_the_language_comes_from_the_command_line_then_the_environment():
    from nanbu_secops.clihelp import choose_lang

    assert choose_lang(["check"], {}) == "zh"
    assert choose_lang(["check"], {"NANBU_SECOPS_LANG": "en"}) == "en"
    assert choose_lang(["check", "--lang", "zh"], {"NANBU_SECOPS_LANG": "en"}) == "zh"
    assert choose_lang(["--lang=en", "check"], {}) == "en"
    assert choose_lang(["check", "--lang", "fr"], {"NANBU_SECOPS_LANG": "xx"}) == "zh"     # argparse refuses fr
    assert choose_lang(["proposal", "validate", "--", "--lang", "en"], {}) == "zh"         # after --: a file name


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_refused_input_of_every_kind_is_one_line_in_the_language(tmp_path, capsys, lang):
    missing = str(tmp_path / "missing")
    cases = [
        ["check", "--root", missing], ["check", "--output", f"{missing}/r.txt"], ["check", "--policy", missing],
        ["check", "--as-of", "2026-13-01"], ["check", "--only", "NS99-NOPE-001"],
        ["policy", "validate", missing], ["av", "status", "--windows-defender", missing],
        ["av", "scan", missing], ["ssh-probe", "127.0.0.1", "--timeout", "0"],
        ["accounts", "audit", "--accounts", missing, "--logins", missing, "--roster", missing],
        ["accounts", "register", "verify", "--register", missing], ["accounts", "register", "find"],
        ["creds", "status", "--escrow", missing], ["keys", "new", "a b", "--out", str(tmp_path)],
        ["incident", "verify", missing], ["incident", "verify", missing, "--no-trust"],
        ["proposal", "validate", missing], ["proposal", "aggregate", str(tmp_path), "--similarity", "2"],
        ["proposal", "aggregate", str(tmp_path), "--format", "xlsx"],
        ["ipv6", "check"], ["site", "inspect"], ["site", "inspect", "https://a.test/", "--depth", "-1"],
        ["ingest", missing, "--db", str(tmp_path / "f.db")],
        ["report", "quarterly", "--db", missing, "--quarter", "2026Q9"],
        ["report", "quarterly", "--db", missing, "--quarter", "2026Q4", "--inventory", missing],
        ["report", "annual", "--db", missing, "--year", "1900"],
        ["spool", "run", "--keep", "0"], ["spool", "newest", "--max-age-hours", "-1"],
    ]
    for args in cases:
        code, out, err = exit_of(capsys, *args, "--lang", lang)
        assert code == 2 and err.count("\n") == 1, (args, out, err)
        assert err.startswith("nanbu-secops：错误：" if lang == "zh" else "nanbu-secops: error: "), err
        assert_speaks(lang, err, missing)


# --- the outputs of every other command -----------------------------------------------------------

def _said(capsys: pytest.CaptureFixture[str], lang: str, inputs: str, *args: str, codes: tuple[int, ...] = (0, 1)
          ) -> tuple[str, str]:
    """Run a command in ``lang``; its standard output and error must speak it (and it must end as expected).
    JSON on standard output is machine-readable, keys and values as documented, and not held to the rule."""
    code, out, err = exit_of(capsys, *args, "--lang", lang)
    assert code in codes, (args, code, out, err)
    if not _is_json(out):
        assert_speaks(lang, out, inputs)
    assert_speaks(lang, err, inputs)
    return out, err


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_keys_bundles_forms_and_escrow(tmp_path, capsys, lang):
    keys, forms = tmp_path / "keys", PROJECT / "tests" / "fixtures" / "proposals"
    for name in ("unit", "county", "city"):
        _said(capsys, lang, "", "keys", "new", name, "--out", str(keys))
    root = make_root(tmp_path / "root")
    unit, title, note = "大桥镇", "首页被篡改", "已核实"
    inputs = unit + title + note + "".join(p.read_text(encoding="utf-8") for p in forms.rglob("*.yml"))
    seal = ["--unit", unit, "-r", str(keys / "county.recipient"), "--sign-key", str(keys / "unit_ed25519")]
    trust = ["--trust", str(keys / "unit.allowed_signers"), "--trust", str(keys / "county.allowed_signers")]
    out, _ = _said(capsys, lang, inputs, "incident", "collect", "--root", str(root), "--title", title, "--category",
                   "malware", "--severity", "IV", "--discovered-at", "2026-11-28 09:30", *seal,
                   "--out", str(tmp_path / "i.nsb"))
    assert ("事件数据包" if lang == "zh" else "incident bundle") in out
    out, _ = _said(capsys, lang, "", "proposal", "new")
    (tmp_path / "blank.yml").write_text(out, encoding="utf-8")
    _said(capsys, lang, inputs + out, "proposal", "validate", str(tmp_path / "blank.yml"), codes=(2,))
    _said(capsys, lang, inputs, "proposal", "validate", *map(str, sorted(forms.rglob("*.yml"))))
    _said(capsys, lang, inputs, "proposal", "package", str(forms), *seal, "--out", str(tmp_path / "p.nsb"))
    for kind, bundle in (("incident", tmp_path / "i.nsb"), ("proposal", tmp_path / "p.nsb")):
        county = ["-i", str(keys / "county.agekey")]
        for fmt in ("text", "json"):
            _said(capsys, lang, inputs, kind, "verify", str(bundle), *county, *trust, "--format", fmt)
        _said(capsys, lang, inputs, kind, "verify", str(bundle), "--no-trust")
        _said(capsys, lang, inputs, kind, "open", str(bundle), *county, *trust, "--out", str(tmp_path / f"{kind}-o"))
        _said(capsys, lang, inputs, kind, "forward", str(bundle), *county, "--sign-key", str(keys / "county_ed25519"),
              "-r", str(keys / "city.recipient"), "--out", str(tmp_path / f"{kind}-f.nsb"), "--note", note, *trust)
    # the escrow: a credential marked, opened by its manager
    identity = keys / "county.agekey"
    (tmp_path / "escrow").mkdir()
    entry = escrow.deposit(tmp_path / "escrow", "h01", "clerk", "password", b"s3cret",
                           [pyrage.x25519.Identity.from_str(next(
                               line for line in identity.read_text().splitlines() if line.startswith("AGE-"))).to_public()])
    _said(capsys, lang, "", "creds", "mark", str(entry.path), "applied")
    _, err = _said(capsys, lang, "", "creds", "escrow", "open", str(entry.path), "-i", str(identity))
    assert ("口令" if lang == "zh" else "password") in err


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_ingest_reports_and_the_register(tmp_path, capsys, lang):
    from tests.test_quarterly import GROUP_VARS, HOSTS, RUNS

    inventory, collected = _fleet(tmp_path, "t")
    (collected / RUNS[0].host / "broken.json").write_text("{", encoding="utf-8")               # skipped
    (collected / "no-such-host").mkdir()
    (collected / "no-such-host" / "x.json").write_text(json.dumps(
        {"host": "no-such-host", "generated": RUNS[0].generated, "policy_version": "t", "results": []}),
        encoding="utf-8")                                                                         # not stored
    inputs = HOSTS + "".join(GROUP_VARS.values())
    db = tmp_path / "fleet.db"
    for dry in (["--dry-run"], []):
        out, err = _said(capsys, lang, inputs, "ingest", str(collected), "--db", str(db), "--inventory", str(inventory),
                         *dry)
        assert ("已跳过" in err and "未入库" in err) if lang == "zh" else ("skipped" in err and "not stored" in err)
    base = ["--db", str(db), "--inventory", str(inventory), "--policy", str(PROJECT / "policies")]
    for fmt in ("html", "xlsx", "json"):
        target = tmp_path / f"q.{fmt}"
        _said(capsys, lang, inputs, "report", "quarterly", *base, "--quarter", "2026Q4", "--format", fmt,
              "--output", str(target))
        shown = {"html": lambda p: visible(p.read_text(encoding="utf-8")), "xlsx": sheet_text,
                 "json": lambda p: _json_prose(json.loads(p.read_text(encoding="utf-8")))}[fmt](target)
        assert_speaks(lang, shown, inputs)
        target = tmp_path / f"a.{fmt}"
        _said(capsys, lang, inputs, "report", "annual", *base, "--year", "2026", "--format", fmt,
              "--output", str(target))
        if fmt != "json":
            assert_speaks(lang, visible(target.read_text(encoding="utf-8")) if fmt == "html" else sheet_text(target),
                          inputs)
    register = tmp_path / "reg.jsonl"
    explanation = tmp_path / "why.txt"
    explanation.write_text("已核实本人仍在岗", encoding="utf-8")
    inputs += explanation.read_text(encoding="utf-8") + "局长"
    _said(capsys, lang, inputs, "accounts", "reinstate", "lisi", "--explanation", str(explanation), "--approved-by",
          "局长", "--register", str(register))
    _said(capsys, lang, inputs, "accounts", "register", "verify", "--register", str(register))
    _said(capsys, lang, inputs, "accounts", "register", "find", "--register", str(register), "--account", "lisi")
    register.write_text(register.read_text(encoding="utf-8").replace("lisi", "lisi2"), encoding="utf-8")  # an edit
    _, err = _said(capsys, lang, inputs, "accounts", "register", "verify", "--register", str(register))
    assert ("哈希不符" in err) if lang == "zh" else ("hash mismatch" in err)
    _said(capsys, lang, inputs, "accounts", "register", "find", "--register", str(register), "--account", "lisi",
          codes=(2,))
    _said(capsys, lang, "", "policy", "validate", str(PROJECT / "policies"))


def _is_json(text: str) -> bool:
    """A JSON document, or JSON lines (the register's entries, creds' records)."""
    try:
        json.loads(text)
    except ValueError:
        try:
            return bool(text.strip()) and all(json.loads(line) is not None for line in text.splitlines() if line)
        except ValueError:
            return False
    return True


def _json_prose(doc: object) -> str:
    """The human-readable strings a JSON report carries for display (titles, names, sentences), not its keys
    or codes: the values under keys that name prose. Codes (status, severity, verdict) stay English by design."""
    prose = {"title", "name", "label", "reason", "sentence", "text", "message", "note", "action"}
    found: list[str] = []

    def walk(node: object, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and key in prose:
            found.append(node)
    walk(doc)
    return "\n".join(found)


class _Site(http.server.SimpleHTTPRequestHandler):
    """A home page with a dead link and an advertisement, served from the test's folder."""

    def log_message(self, *args: object) -> None:     # quiet: the test reads the command's output, not the server's
        pass


@pytest.fixture
def loopback_site(tmp_path: Path) -> Iterator[str]:
    """http://127.0.0.1:PORT/ served by Python's own HTTP server, stopped however the test ends."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text('<html><head><title>南部县人民政府</title></head><body><a href="/dead.html">死链</a>'
                                     '<a href="https://shop.nanbu.test/x">广告</a></body></html>', encoding="utf-8")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Site, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_site_inspect_and_ipv6_check_in_every_format(tmp_path, capsys, loopback_site, lang):
    resolver = ["--resolver", f"127.0.0.1:{_dead_port()}", "--timeout", "1"]
    inputs = "南部县人民政府死链广告"
    for fmt in ("text", "html", "xlsx", "json"):
        target = tmp_path / f"s.{fmt}"
        _said(capsys, lang, inputs, "site", "inspect", loopback_site, "--probes", "1", "--as-of", AS_OF.isoformat(),
              *resolver, "--format", fmt, "--output", str(target))
        shown = {"text": lambda p: p.read_text(encoding="utf-8"), "html": lambda p: visible(p.read_text(encoding="utf-8")),
                 "xlsx": sheet_text, "json": lambda p: ""}[fmt](target)
        assert_speaks(lang, shown, inputs)
        if fmt == "text":
            assert ("链接文字含“广告”" if lang == "zh" else "link text contains '广告'") in shown
    page = tmp_path / "v6.html"
    _said(capsys, lang, "", "ipv6", "check", "www.nanbu.test", "ftp://x.test/", *resolver, "--probes", "1",
          "--format", "html", "--output", str(page))
    assert_speaks(lang, visible(page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_ssh_probe_against_a_loopback_sshd(tmp_path, capsys, lang):
    from tests.test_ssh_probe import WEAK, start_sshd, stop

    server = start_sshd(tmp_path / "sshd", WEAK, "rsa")
    try:
        for fmt in ("text", "json"):
            out, _ = _said(capsys, lang, "", "ssh-probe", f"127.0.0.1:{server.port}", f"127.0.0.1:{_dead_port()}",
                           "--timeout", "5", "--format", fmt)
        # a credential check against it: the key is refused, said in the language (the record is JSON)
        key = tmp_path / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True,
                       stdin=subprocess.DEVNULL)
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{server.port} " + (tmp_path / "sshd" / "host_rsa_key.pub").read_text(),
                         encoding="utf-8")
        _said(capsys, lang, "", "creds", "verify", "--address", "127.0.0.1", "--port", str(server.port), "--user",
              "nobody", "--known-hosts", str(known), "--key", str(key), "--timeout", "5")
    finally:
        stop(server)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_av_scan_with_clamscan_and_the_spool(tmp_path, capsys, lang):
    """``av scan`` with a real clamscan (the project's test signatures: EICAR; test_av_scan.agent gives it them
    in a private mount namespace), then the spool."""
    from tests.clamdb import EICAR, write_cud
    from tests.test_av_scan import agent

    database = tmp_path / "clamdb"
    database.mkdir()
    write_cud(database, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "eicar.txt").write_bytes(EICAR)
    for fmt in ("text", "json"):
        done = agent(database, "--log", str(tmp_path / "log.jsonl"), "--format", fmt, "--lang", lang,
                     str(tmp_path / "files"))
        assert done.returncode == 1, done.stderr
        if fmt == "text":
            assert_speaks(lang, done.stdout)
        assert_speaks(lang, done.stderr)
    root = make_root(tmp_path / "root")
    out, _ = _said(capsys, lang, "", "spool", "run", "--dir", str(tmp_path / "spool"), "--root", str(root))
    assert _said(capsys, lang, "", "spool", "newest", "--dir", str(tmp_path / "spool"))[0] == out


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_credential_rotation_steps(tmp_path, capsys, lang):
    identity = pyrage.x25519.Identity.generate()
    escrow_dir, key_dir = tmp_path / "escrow", tmp_path / "keys"
    escrow_dir.mkdir(mode=0o700)
    key_dir.mkdir(mode=0o700)
    target = ["--escrow", str(escrow_dir), "--host", "h01", "--account", "ops", "--recipient", str(identity.to_public())]
    out, _ = _said(capsys, lang, "", "creds", "password", *target, "--policy", str(PROJECT / "policies"))
    out, _ = _said(capsys, lang, "", "creds", "ssh-key", *target, "--key-dir", str(key_dir))
    _said(capsys, lang, "", "creds", "activate-key", "--key-dir", str(key_dir), "--host", "h01",
          json.loads(out)["key"])


# Which test above runs each command in both languages. A command the parser has and this table
# does not fails the test below: add it to a language test when you add the command.
COVERAGE: dict[str, str] = {
    "check": "test_check_and_av_status", "av status": "test_check_and_av_status",
    "av scan": "test_av_scan_with_clamscan_and_the_spool",
    "spool run": "test_av_scan_with_clamscan_and_the_spool", "spool newest": "test_av_scan_with_clamscan_and_the_spool",
    "accounts audit": "test_accounts_audit_text_html_xlsx", "creds status": "test_creds_status",
    "ipv6 check": "test_site_inspect_and_ipv6_check_in_every_format",
    "site inspect": "test_site_inspect_and_ipv6_check_in_every_format",
    "ssh-probe": "test_ssh_probe_against_a_loopback_sshd", "creds verify": "test_ssh_probe_against_a_loopback_sshd",
    "creds password": "test_credential_rotation_steps", "creds ssh-key": "test_credential_rotation_steps",
    "creds activate-key": "test_credential_rotation_steps",
    "keys new": "test_keys_bundles_forms_and_escrow", "creds mark": "test_keys_bundles_forms_and_escrow",
    "creds escrow open": "test_keys_bundles_forms_and_escrow",
    **{f"{kind} {command}": "test_keys_bundles_forms_and_escrow" for kind in ("incident", "proposal")
       for command in ("verify", "open", "forward")},
    "incident collect": "test_keys_bundles_forms_and_escrow", "proposal new": "test_keys_bundles_forms_and_escrow",
    "proposal validate": "test_keys_bundles_forms_and_escrow", "proposal package": "test_keys_bundles_forms_and_escrow",
    "proposal aggregate": "test_proposal_aggregate",
    "ingest": "test_ingest_reports_and_the_register", "report quarterly": "test_ingest_reports_and_the_register",
    "report annual": "test_ingest_reports_and_the_register", "policy validate": "test_ingest_reports_and_the_register",
    "accounts reinstate": "test_ingest_reports_and_the_register",
    "accounts register verify": "test_ingest_reports_and_the_register",
    "accounts register find": "test_ingest_reports_and_the_register",
}


def test_every_command_has_a_language_test():
    import inspect

    leaves = {" ".join(path) for path in _leaves()}
    assert leaves - set(COVERAGE) == set(), "commands without a language test: add them to a test and COVERAGE"
    assert set(COVERAGE) - leaves == set(), "COVERAGE names commands the parser no longer has"
    for command, test in COVERAGE.items():
        source = inspect.getsource(globals()[test])
        assert all(f'"{word}"' in source for word in command.split()) or f"``{command}``" in source, (command, test)


def _refusals() -> list[tuple[str, int, str]]:
    """Every message the package raises as bad input (InputError), as a result file it will not
    store (NotAResult, Misattributed) or as a fault the register's check finds (its ``bad``), as
    written, each ``{value}`` of an f-string standing as "x1"."""
    import ast

    def text(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "x1" for v in node.values)
        return None

    found = []
    for path in sorted((PROJECT / "nanbu_secops").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("InputError", "NotAResult",
                                                                                 "Misattributed", "bad") and node.args:
                message = text(node.args[-1] if node.func.id == "bad" else node.args[0])   # bad(line, message)
                if message is not None:
                    found.append((str(path.relative_to(PROJECT)), node.lineno, message))
    return found


def test_every_refusal_the_package_raises_has_its_chinese():
    from nanbu_secops.report.i18n import problem

    refusals = _refusals()
    assert len(refusals) > 150                       # the sampler sees the package's messages
    untranslated = [(where, line, message) for where, line, message in refusals
                    if english_runs(problem(message, "zh")) or problem(message, "en") != message]
    assert untranslated == [], "add these to nanbu_secops/report/i18n.py ERRORS"


def test_the_environment_sets_the_language_of_reports_and_messages(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("NANBU_SECOPS_LANG", "en")
    code, _, err = exit_of(capsys, "proposal", "validate", str(tmp_path / "none.yml"))
    assert code == 2 and err.startswith("nanbu-secops: error: ") and "no such form" in err
    code, out, _ = exit_of(capsys, "creds", "status", "--escrow", str(tmp_path))
    assert code == 0 and own_chinese(out, "") == [], out
    code, out, _ = exit_of(capsys, "creds", "status", "--escrow", str(tmp_path), "--lang", "zh")
    assert code == 0 and english_runs(out) == [] and own_chinese(out, "") != [], out
    monkeypatch.delenv("NANBU_SECOPS_LANG")
    code, _, err = exit_of(capsys, "accounts", "--lang", "en", "register", "find")        # --lang at any level
    assert code == 2 and err == "nanbu-secops: error: find: give --account, --host or both\n"
