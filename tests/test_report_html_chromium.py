"""The quarterly report's HTML in a real headless Chromium (Debian's ``chromium``).

The page is opened from a file with every network path closed (a proxy at a dead port, every name
resolving to nothing), driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``):
any request other than the file itself, any console message, script exception or log error fails
the test, and the numbers read from the rendered DOM must equal the computed report. A control
page with an external image and a script error proves the harness sees such things. A screenshot
is taken as an operator would, with ``--screenshot``. The quarterly and the account audit pages are
measured in the rendered layout: no table cell narrower than two Chinese characters in its own font
(a name or a unit squeezed to one character per line is unreadable).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from nanbu_secops.fleet import quarter
from nanbu_secops.fleet.inventory import load_inventory
from nanbu_secops.report import annual, quarterly
from nanbu_secops.timeutil import use_clock
from tests.test_annual import ALL_BEGUN, ANNUAL, site  # noqa: F401 (a fixture)
from tests.test_annual import build as annual_report
from tests.test_quarterly import GROUP_VARS, HOSTS, SETTINGS, FakeStore

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium is not installed "
                                "(bash scripts/setup.sh --test installs it; apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--proxy-server=127.0.0.1:9",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1280,2000"]
# What the page shows, read back from the rendered DOM: the rows and bars the report marks.
READ_BACK = """JSON.stringify({
  rows: [...document.querySelectorAll('tr[data-unit]')].map(tr => ({
    unit: tr.dataset.unit, article: tr.dataset.article || null,
    cells: Object.fromEntries([...tr.querySelectorAll('[data-key]')].map(td => [td.dataset.key, td.textContent]))})),
  bars: [...document.querySelectorAll('svg[data-chart] rect[data-value]')].map(r => [
    r.closest('svg').dataset.chart, r.dataset.label, Number(r.dataset.value), r.getBoundingClientRect().width]),
  failing: [...document.querySelectorAll('tr[data-failing]')].map(tr => [
    tr.dataset.failing, tr.querySelector('[data-key=hosts]').textContent]),
  silent: [...document.querySelectorAll('li[data-silent]')].map(li => li.dataset.silent),
  title: document.title, scrollWidth: document.documentElement.scrollWidth})"""


# Every table cell's content width against the width of two Chinese characters in the cell's own
# font, measured by the page's canvas text metrics; the cells narrower than that, with their text.
NARROW_CELLS = """(() => {
  const ctx = document.createElement('canvas').getContext('2d');
  const cells = [...document.querySelectorAll('td, th')];
  const narrow = cells.map(cell => {
    const style = getComputedStyle(cell);
    ctx.font = style.font;
    const two = ctx.measureText('中文').width;
    const inner = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return {text: cell.textContent.slice(0, 40), inner: inner, two: two};
  }).filter(c => c.inner + 0.5 < c.two);
  return JSON.stringify({cells: cells.length, narrow: narrow,
                         fonts: [...new Set(cells.map(c => getComputedStyle(c).fontFamily))]});
})()"""


def home(profile: Path) -> dict[str, str]:
    """Chromium's environment: HOME inside the test's folder, so nothing is left in root's (dconf, caches).

    The browser keeps the machine's real clock when the tests rerun under faketime: libfaketime
    preloaded into Chromium crashes it, and what the page shows is computed by our Python code
    (which does run on the shifted clock), not by the browser's clock."""
    profile.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("FAKETIME")}
    env["LD_PRELOAD"] = " ".join(lib for lib in env.get("LD_PRELOAD", "").split() if "faketime" not in lib)
    return {**env, "HOME": str(profile)}


class Browser:
    """Chromium with the DevTools protocol on fds 3 (to Chromium) and 4 (from it), NUL-framed JSON."""

    def __init__(self, profile: Path) -> None:
        to_chrome, self._send_fd = os.pipe()
        self._recv_fd, from_chrome = os.pipe()

        def pipes_at_3_and_4() -> None:      # in the child, before exec
            a, b = os.dup(to_chrome), os.dup(from_chrome)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=pipes_at_3_and_4, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=home(profile))
        os.close(to_chrome)
        os.close(from_chrome)
        self.events: list[dict[str, Any]] = []
        self._buffer = b""
        self._next = 0

    def _receive(self, done, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                self.events.append(message)
                if done(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                raise TimeoutError("chromium did not answer")
            if select.select([self._recv_fd], [], [], min(left, 1))[0]:
                self._buffer += os.read(self._recv_fd, 1 << 20)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._send_fd, json.dumps(message).encode() + b"\0")
        answer = self._receive(lambda m: m.get("id") == message["id"])
        assert "error" not in answer, answer
        return answer["result"]

    def open(self, url: str) -> str:
        """Load ``url`` in a new tab watched from before its first request; return the session."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Runtime", "Log", "Page"):
            self.call(f"{domain}.enable", session=session)
        self.call("Page.navigate", {"url": url}, session)
        self._receive(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session)
        return session

    def evaluate(self, expression: str, session: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        return result["result"]["value"]

    def problems(self) -> list[str]:
        """Requests beyond the file, failed loads, console output, exceptions, logged errors."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent" and not params["request"]["url"].startswith(("file:", "about:")):
                found.append(f"request {params['request']['url']}")
            elif method == "Network.loadingFailed":
                found.append(f"load failed {params['errorText']}")
            elif method == "Runtime.consoleAPICalled":
                found.append(f"console.{params['type']} {[a.get('value') for a in params['args']]}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception {params['exceptionDetails'].get('text')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"log {params['entry']['text']}")
        return found

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self.process.wait(10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            os.close(self._send_fd)
            os.close(self._recv_fd)


@pytest.fixture
def browser(tmp_path: Path):
    opened = Browser(tmp_path / "profile")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def report(tmp_path: Path) -> dict[str, Any]:
    folder = tmp_path / "inventory"
    (folder / "group_vars").mkdir(parents=True)
    (folder / "hosts.yml").write_text(HOSTS, encoding="utf-8")
    for group, text in GROUP_VARS.items():
        (folder / "group_vars" / f"{group}.yml").write_text(text, encoding="utf-8")
    return quarterly.build(FakeStore(), quarter.parse("2026Q4"), load_inventory(folder), SETTINGS)


def test_the_page_shows_the_computed_numbers_and_fetches_nothing(report, browser, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(quarterly.render_html(report), encoding="utf-8")
    shown = json.loads(browser.evaluate(READ_BACK, browser.open(page.as_uri())))
    assert browser.problems() == []
    assert shown["title"] == "南部县政府网站集约化平台季度安全检查报告（2026Q4）"
    assert shown["scrollWidth"] <= 1280            # nothing overflows the window sideways

    overview = {r["unit"]: r["cells"] for r in shown["rows"] if r["article"] is None}
    articles = {(r["unit"], r["article"]): r["cells"] for r in shown["rows"] if r["article"]}
    for unit in report["units"]:
        judged = unit["passed"] + unit["failed"]
        change = unit["trend"]["pass_rate_change"]
        assert overview[unit["unit"]] == {
            "hosts": str(unit["hosts"]), "reporting_hosts": str(unit["reporting_hosts"]),
            "silent_hosts": str(len(unit["silent_hosts"])), "passed": str(unit["passed"]),
            "failed": str(unit["failed"]), "errors": str(unit["errors"]),
            "pass_rate": f"{unit['pass_rate'] * 100:.1f}%" if judged else "—", "score": f"{unit['score']:.1f}",
            "pass_rate_change": "—" if change is None else f"{change * 100:+.1f}%"}
        for article, counts in unit["articles"].items():
            cells = articles.pop((unit["unit"], article))
            assert [int(cells[k]) for k in ("passed", "failed", "errors", "skipped")] == [
                counts[k] for k in ("passed", "failed", "errors", "skipped")]
    assert articles == {}                          # no row the report does not have
    assert overview["u_a"]["pass_rate"] == "37.5%" and overview["u_a"]["score"] == "29.3"

    failing = [(c["control"], ", ".join(c["hosts"])) for u in report["units"] for c in u["failing"]]
    assert [tuple(f) for f in shown["failing"]] == failing
    assert shown["silent"] == [h for u in report["units"] for h in u["silent_hosts"]] == ["a3"]
    bars = {(chart, label): (value, width) for chart, label, value, width in shown["bars"]}
    assert {label: value for (chart, label), (value, _) in bars.items() if chart == "units"} == {
        u["name"]: u["pass_rate"] for u in report["units"] if u["passed"] + u["failed"]}
    assert all(abs(width - 400 * value) < 1 for value, width in bars.values())     # drawn to scale


def test_the_harness_sees_requests_and_errors(browser, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><img src="http://example.com/logo.png">'
                   '<script>console.error("boom"); missing();</script></body></html>', encoding="utf-8")
    browser.open(bad.as_uri())
    found = browser.problems()
    assert "request http://example.com/logo.png" in found
    assert any(p.startswith("load failed net::ERR_") for p in found)
    assert "console.error ['boom']" in found and "exception Uncaught" in found


def test_screenshot(report, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(quarterly.render_html(report), encoding="utf-8")
    shot = tmp_path / "report.png"
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
                           "--v=0", f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120, env=home(tmp_path / "profile"))
    assert done.returncode == 0, done.stderr[-2000:]
    logged = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "net::ERR" in line]
    assert logged == []
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1280, 2000)


def test_the_annual_page_shows_the_computed_numbers_and_fetches_nothing(site, browser, tmp_path):
    """The annual report's page (issue 18), checked as the quarterly one: numbers read back from the DOM."""
    with use_clock(ALL_BEGUN):
        report = annual_report(site)
    page = tmp_path / "annual.html"
    page.write_text(annual.render_html(report, ANNUAL), encoding="utf-8")
    shown = json.loads(browser.evaluate(READ_BACK, browser.open(page.as_uri())))
    assert browser.problems() == []
    assert shown["title"] == "南部县政府网站集约化平台年度安全考核报告（2026）"
    assert shown["scrollWidth"] <= 1280
    rows = {r["unit"]: r["cells"] for r in shown["rows"]}
    for unit in report["units"]:
        found = annual.trend(unit["quarters"], ANNUAL.trend_threshold)
        assert rows.pop(unit["unit"]) == {
            **{label: "无上报" if value is None else f"{value:.1f}" for label, value in unit["quarters"].items()},
            "annual_score": "—" if unit["annual_score"] is None else f'{unit["annual_score"]:.1f}',
            "trend": "—" if found is None else f'{annual.WORDS["zh"][found["direction"]]} {found["change"]:+.1f}',
            "silent_hosts": str(len(unit["silent_hosts"])),
            "persistent_failures": str(len(unit["persistent_failures"])),
            "metadata_findings": str(len(unit["metadata_findings"]))}
    assert rows == {}
    assert shown["silent"] == ["a3"]
    bars = {label: (value, width) for chart, label, value, width in shown["bars"] if chart == "annual_score"}
    assert {label: value for label, (value, _) in bars.items()} == {
        u["name"]: round(u["annual_score"] / 100, 4) for u in report["units"] if u["annual_score"] is not None}
    assert all(abs(width - 400 * value) < 1 for value, width in bars.values())


NARROW_WINDOW = 800   # CSS pixels: half a laptop screen, where a table squeezes its columns first


def narrow_cells(browser: Browser, page: Path) -> dict[str, Any]:
    """The page laid out in a window NARROW_WINDOW wide, then measured."""
    session = browser.open(page.as_uri())
    browser.call("Emulation.setDeviceMetricsOverride", {"width": NARROW_WINDOW, "height": 1000,
                                                        "deviceScaleFactor": 1, "mobile": False}, session)
    assert browser.evaluate("window.innerWidth", session) == NARROW_WINDOW
    measured = json.loads(browser.evaluate(NARROW_CELLS, session))
    assert browser.problems() == []
    assert measured["cells"] > 20                  # the page has its tables
    return measured


def test_quarterly_cells_are_at_least_two_chinese_characters_wide(report, browser, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(quarterly.render_html(report), encoding="utf-8")
    assert narrow_cells(browser, page)["narrow"] == []


def test_account_audit_cells_are_at_least_two_chinese_characters_wide(browser, tmp_path):
    from nanbu_secops.cli import main
    from tests.test_accounts_audit import ACCOUNTS, LOGINS, ROSTER

    files = {}
    for name, text in {"accounts": ACCOUNTS, "logins": LOGINS, "roster": ROSTER}.items():
        files[name] = tmp_path / f"{name}.csv"
        files[name].write_text(text, encoding="utf-8")
    page = tmp_path / "accounts.html"
    assert main(["accounts", "audit", "--accounts", str(files["accounts"]), "--logins", str(files["logins"]),
                 "--roster", str(files["roster"]), "--as-of", "2026-11-28", "--format", "html",
                 "--output", str(page)]) == 1
    assert narrow_cells(browser, page)["narrow"] == []
    session = browser.open(page.as_uri())
    browser.call("Emulation.setDeviceMetricsOverride", {"width": NARROW_WINDOW, "height": 1000,
                                                        "deviceScaleFactor": 1, "mobile": False}, session)
    # the short cells (rule, account, name, unit, severity, article) keep their text on one line
    folded = json.loads(browser.evaluate(
        "JSON.stringify([...document.querySelectorAll('td.n')].filter(td => {"
        " const range = document.createRange(); range.selectNodeContents(td);"
        " return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1;"
        "}).map(td => td.textContent))", session))
    assert folded == []
