"""Issue 19 (3): the long jobs show progress on standard error when, and only when, it is a terminal.

Each command runs as an operator runs it, twice: once with standard error on a pseudo-terminal
(standard output a file), once with both plain files. The terminal's bytes go through pyte, a
VT100 terminal emulator, so "the bar is gone at the end" is what a screen would show, not a guess
about escape codes. Standard output must be the same bytes both times, and off a terminal nothing
may reach standard error. The reports stamp their generation time, so those two runs go through
``main`` with the clock pinned (``-c`` below); the other commands run as the installed script.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pyte
import pytest

from nanbu_secops.fleet import quarter
from nanbu_secops.fleet.inventory import load_inventory
from nanbu_secops.timeutil import COUNTY_TZ
from tests.roots import make_root
from tests.test_annual import ARTICLE, RUNS, write_inventory

PROJECT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("nanbu-secops")
COLUMNS, LINES = 120, 30
PINNED = dt.datetime(2026, 12, 15, 10, 0, tzinfo=COUNTY_TZ)
# main() with the clock pinned: the reports carry their generation time
PINNED_MAIN = ("import sys, datetime as dt; from nanbu_secops.cli import main; "
               "from nanbu_secops.timeutil import use_clock; "
               f"clock = dt.datetime.fromisoformat({PINNED.isoformat()!r})\n"
               "with use_clock(clock):\n    code = main(sys.argv[1:])\nsys.exit(code)")
AMOUNT = {"bytes": re.compile(r"(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?) (?:bytes|kB|MB|GB)"),  # rich's DownloadColumn
          "items": re.compile(r"(?<![\d.])(\d+)/(\d+)(?![\d.])")}                           # MofNCompleteColumn


def _env() -> dict[str, str]:
    """The environment of an operator's terminal: no overrides of rich's own terminal detection."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "TERM")}
    env["TERM"] = "xterm-256color"
    return env


def run(args: list[str], cwd: Path, *, tty: bool, pinned: bool = False) -> tuple[int, bytes, bytes]:
    """(exit code, standard output, standard error) of the command; standard error on a
    pseudo-terminal of COLUMNS x LINES when ``tty``."""
    command = [sys.executable, "-c", PINNED_MAIN, *args] if pinned else [str(SCRIPT), *args]
    out_path = cwd / f".stdout-{os.getpid()}"
    with open(out_path, "wb") as out:
        if not tty:
            done = subprocess.run(command, cwd=cwd, env=_env(), stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.PIPE, timeout=300, check=False)
            code, err = done.returncode, done.stderr
        else:
            master, slave = os.openpty()
            try:
                fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
                child = subprocess.Popen(command, cwd=cwd, env=_env(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=slave)
                os.close(slave)
                slave = -1
                chunks = []
                while True:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # EIO: every writer of the terminal has closed it
                        break
                    if not chunk:
                        break
                    chunks.append(chunk)
                code, err = child.wait(timeout=300), b"".join(chunks)
            finally:
                os.close(master)
                if slave >= 0:
                    os.close(slave)
    data = out_path.read_bytes()
    out_path.unlink()
    return code, data, err


def screen_of(raw: bytes) -> list[str]:
    """What a terminal shows once these bytes are written to it."""
    screen = pyte.Screen(COLUMNS, LINES)
    pyte.ByteStream(screen).feed(raw)
    return [line.rstrip() for line in screen.display]


def text_of(raw: bytes) -> str:
    """Every character written, escape sequences removed (the bar's frames, one after the other)."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|[\r\x07]", "", raw.decode("utf-8", "replace"))


def check_progress(args: list[str], cwd: Path, label: str, unit: str, *, pinned: bool = False,
                   cwd_plain: Path | None = None) -> tuple[int, bytes, float]:
    """Run with and without a terminal; the bar shows ``label`` and done/total in ``unit``,
    starting at 0 and ending at the total (bytes: within the tar's headers and padding, which are
    not counted), and is erased at the end; standard output is the same both times; off a
    terminal standard error stays empty. ``cwd_plain`` is where the second run goes when the
    first made its output file or folder (a relative name, so the standard output can be the same).
    Returns the exit code, standard output and the total the bar showed last."""
    code, out, err = run(args, cwd, tty=True, pinned=pinned)
    written = text_of(err)
    assert label in written, written[:2000]
    frames = [(float(done), float(total)) for done, total in AMOUNT[unit].findall(written)]
    assert frames and frames[0][0] == 0, written[:2000]
    done, total = frames[-1]
    assert total > 0 and (0.97 <= done / total <= 1 if unit == "bytes" else done == total), written[-2000:]
    assert not any(screen_of(err)), screen_of(err)         # the bar is gone: a blank screen is left
    plain_code, plain_out, plain_err = run(args, cwd_plain or cwd, tty=False, pinned=pinned)
    assert plain_err == b"", plain_err.decode()
    assert (plain_code, plain_out) == (code, out)
    return code, out, total


# --- bundles ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real incident bundle of about 6 MiB (a random file included: no compression makes it smaller)."""
    folder = tmp_path_factory.mktemp("progress-bundle")
    for name in ("unit", "county", "city"):
        subprocess.run([str(SCRIPT), "keys", "new", name, "--out", str(folder)], check=True, capture_output=True)
    evidence = folder / "evidence-in"
    evidence.mkdir()
    (evidence / "disk.img").write_bytes(os.urandom(6 << 20))
    root = make_root(folder)
    for name, digests in (("big.nsb", "sha256"), ("sm3.nsb", "sha256,sm3")):
        done = subprocess.run([str(SCRIPT), "incident", "collect", "--root", str(root), "--unit", "大桥镇",
                               "--title", "首页被篡改", "--category", "network-attack", "--severity", "IV",
                               "--discovered-at", "2026-11-28 09:30", "--measures", "已断网",
                               "-r", str(folder / "county.recipient"), "--sign-key", str(folder / "unit_ed25519"),
                               "--out", str(folder / name), "--include", str(evidence), "--digest", digests],
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    for side in ("a", "b"):
        (folder / side).mkdir()
    return folder


def trust(folder: Path) -> list[str]:
    return ["--trust", str(folder / "unit.allowed_signers"), "-i", str(folder / "county.agekey")]


@pytest.mark.parametrize(("lang", "label"), [("zh", "校验 ../big.nsb"), ("en", "checking ../big.nsb")])
def test_incident_verify_shows_bytes_in_the_language_asked(bundle: Path, lang: str, label: str) -> None:
    code, out, _ = check_progress(["incident", "verify", "../big.nsb", *trust(bundle), "--lang", lang], bundle / "a",
                               label, "bytes")
    assert code == 0 and out
    assert ("签名" in out.decode()) == (lang == "zh")


def test_incident_open_and_forward(bundle: Path) -> None:
    code, out, _ = check_progress(["incident", "open", "../big.nsb", *trust(bundle), "--out", "opened"], bundle / "a",
                               "校验并解包 ../big.nsb", "bytes", cwd_plain=bundle / "b")
    assert code == 0 and "opened" in out.decode()
    for side in ("a", "b"):
        assert (bundle / side / "opened" / "evidence").is_dir()
    code, out, _ = check_progress(["incident", "forward", "../big.nsb", *trust(bundle), "--sign-key",
                                str(bundle / "county_ed25519"), "-r", str(bundle / "city.recipient"), "--out", "fwd.nsb",
                                "--lang", "en", "--format", "json"],
                               bundle / "a", "checking and forwarding ../big.nsb", "bytes", cwd_plain=bundle / "b")
    assert code == 0 and json.loads(out)["ok"] is True
    assert (bundle / "a" / "fwd.nsb").stat().st_size > 6 << 20


def test_a_second_pass_for_sm3_grows_the_total(bundle: Path) -> None:
    code, out, total = check_progress(["incident", "verify", "../sm3.nsb", *trust(bundle), "--format", "json"],
                                      bundle / "a", "校验 ../sm3.nsb", "bytes")
    assert code == 0 and json.loads(out)["manifest"]["digests"] == ["sha256", "sm3"]
    assert abs(total - 2 * (bundle / "sm3.nsb").stat().st_size / 1e6) < 0.1  # MB: read twice


def test_verify_without_an_identity_counts_the_ciphertext(bundle: Path) -> None:
    args = ["incident", "verify", "../big.nsb", "--trust", str(bundle / "unit.allowed_signers"), "--format", "json"]
    code, out, _ = check_progress(args, bundle / "a", "校验 ../big.nsb", "bytes")
    assert code == 0 and json.loads(out)["ok"] is True


# --- accounts audit --------------------------------------------------------------------------------

def test_accounts_audit_shows_bytes_read(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(PROJECT / "bench" / "gen_accounts.py"), "--accounts", "2000", "--events",
                    "100000", "--out", str(tmp_path), "--seed", "7"], check=True, capture_output=True, timeout=300)
    args = ["accounts", "audit", "--accounts", "accounts.csv", "--logins", "logins.csv", "--roster", "roster.csv",
            "--as-of", "2026-11-30"]
    code, text, _ = check_progress(args, tmp_path, "读取账号、登录和花名册文件", "bytes")
    assert code == 1 and "休眠" in text.decode()
    code, out, _ = check_progress([*args, "--lang", "en", "--format", "json"], tmp_path,
                               "reading the account, login and roster files", "bytes")
    assert code == 1 and json.loads(out)["summary"]
    header, *rows = (tmp_path / "logins.csv").read_bytes().splitlines(keepends=True)
    (tmp_path / "logins.csv").write_bytes(header + b"".join(rows[1:] + rows[:1]))  # out of order at the end
    code, again, total = check_progress(args, tmp_path, "读取账号、登录和花名册文件", "bytes")
    assert code == 1 and again == text
    log = (tmp_path / "logins.csv").stat().st_size / 1e6
    sizes = sum((tmp_path / f"{name}.csv").stat().st_size for name in ("accounts", "roster")) / 1e6 + log
    assert total > sizes + 0.9 * log  # MB: the log read to its last row, then again to sort it


# --- ingest and the reports ------------------------------------------------------------------------

@pytest.fixture
def results(tmp_path: Path) -> Path:
    """test_annual's year of runs as result files, as collect.yml fetches them, and its inventory."""
    write_inventory(tmp_path / "inventory")
    for n, (host, generated, statuses) in enumerate(RUNS):
        rows = [{"control": c, "article": ARTICLE[c[:4]], "title": c, "status": s, "severity": "high"}
                for c, s in statuses.items()]
        path = (tmp_path / "results" / str(quarter.Quarter.of(dt.datetime.fromisoformat(generated)).label) / host
                / f"r{n}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"host": host, "generated": generated, "policy_version": "t", "results": rows}),
                        encoding="utf-8")
    assert load_inventory(tmp_path / "inventory").host_units()
    return tmp_path


def test_ingest_counts_the_files(results: Path) -> None:
    args = ["ingest", "results", "--db", "fleet.db", "--inventory", "inventory", "--dry-run"]
    code, out, _ = check_progress(args, results, "导入检查结果", "items")
    assert code == 0 and f"{len(RUNS)} 个文件，新增 {len(RUNS)} 次检查" in out.decode()
    code, out, _ = check_progress([*args, "--lang", "en"], results, "loading check results", "items")
    assert code == 0 and f"{len(RUNS)} files, {len(RUNS)} runs added" in out.decode()


@pytest.mark.parametrize(("report", "label"), [
    (["quarterly", "--quarter", "2026Q4"], "生成季度报告"), (["annual", "--year", "2026"], "生成年度报告"),
    (["quarterly", "--quarter", "2026Q4", "--lang", "en"], "building the quarterly report"),
    (["annual", "--year", "2026", "--lang", "en", "--format", "json"], "building the annual report")])
def test_reports_count_their_steps(results: Path, report: list[str], label: str) -> None:
    loaded = subprocess.run([str(SCRIPT), "ingest", "results", "--db", "fleet.db", "--inventory", "inventory"],
                            cwd=results, capture_output=True, text=True, timeout=120, check=False)
    assert loaded.returncode == 0, loaded.stderr
    args = ["report", *report, "--db", "fleet.db", "--inventory", "inventory", "--policy", str(PROJECT / "policies")]
    code, out, _ = check_progress(args, results, label, "items", pinned=True)
    assert code == 1 and out


def test_accounts_audit_of_workbooks_shows_bytes_read(tmp_path: Path) -> None:
    """The workbooks as Excel users send them (written by openpyxl): the bytes the zip reader takes."""
    import csv

    import openpyxl

    subprocess.run([sys.executable, str(PROJECT / "bench" / "gen_accounts.py"), "--accounts", "500", "--events",
                    "20000", "--out", str(tmp_path), "--seed", "7"], check=True, capture_output=True, timeout=300)
    for name in ("accounts", "logins", "roster"):
        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet(name)
        with open(tmp_path / f"{name}.csv", encoding="utf-8", newline="") as rows:
            for row in csv.reader(rows):
                sheet.append(row)
        book.save(tmp_path / f"{name}.xlsx")
    args = ["accounts", "audit", "--accounts", "accounts.xlsx", "--logins", "logins.xlsx", "--roster", "roster.xlsx",
            "--as-of", "2026-11-30", "--format", "json"]
    code, out, _ = check_progress(args, tmp_path, "读取账号、登录和花名册文件", "bytes")
    assert code == 1 and json.loads(out)["summary"]


def test_incident_collect_bar_follows_lang_and_logs_tenths_off_a_terminal(bundle: Path) -> None:
    """collect's bar (older than issue 19) speaks the language asked too; off a terminal, under
    Ansible, it keeps its line at every tenth of the way."""
    args = ["incident", "collect", "--root", str(make_root(bundle / "root2")), "--unit", "大桥镇", "--title", "t",
            "--category", "network-attack", "--severity", "IV", "--discovered-at", "2026-11-28 09:30", "--measures", "m",
            "-r", str(bundle / "county.recipient"), "--sign-key", str(bundle / "unit_ed25519"),
            "--include", str(bundle / "evidence-in")]
    code, _, err = run([*args, "--out", "tty.nsb"], bundle / "a", tty=True)
    assert code == 0 and "打包 tty.nsb" in text_of(err) and not any(screen_of(err))
    code, _, err = run([*args, "--out", "log.nsb", "--lang", "en"], bundle / "a", tty=False)
    lines = err.decode().splitlines()
    assert code == 0 and lines[-1].startswith("packing log.nsb: 100% (") and len(lines) <= 10, lines
