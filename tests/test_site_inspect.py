"""``site inspect`` against a generated portal served by real nginx (tests/webservers.py) on lab
addresses: every outcome below is worked out by hand from the pages written in :func:`portal`.

The portal is ``http://A4:8029/`` (A4: the IPv4 address of the lab site www.web.test), so the
URLs are the same to us and to LinkChecker (tests/test_site_linkchecker.py), which runs in a lab
namespace with no name server. On the same nginx: ``http://B4:8029/`` a shop (the commercial
link), and ``http://A4:8031/`` a home page that fails two connections in every fifteen (nginx's
``$connection`` counter: numbers ≡ 4 answer 503, ≡ 11 are closed without an answer, mod 15).
Nothing listens on ``B4:8030`` (a dead external link); ``missing.nanbu.test`` is NXDOMAIN;
``https://A4:8029/`` is the portal's plain-HTTP port, so the TLS handshake fails; on ``B4:8032`` a
socket listens and never accepts, so a request there times out (``--timeout 5``).

The as-of day is today (county time), passed with ``--as-of``; every date on the pages is
derived from it, so the outcome is the same on any day.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nanbu_secops.timeutil import today
from tests.ipv6lab import World, netns_listener
from tests.test_cli import cli
from tests.webservers import VHost, running, web_folder

PROJECT = Path(__file__).resolve().parent.parent
PORT, FLAKY_PORT, DEAD_PORT, SILENT_PORT = 8029, 8031, 8030, 8032
NAV = [("要闻动态", "/zwdt/"), ("通知公告", "/tzgg/"), ("政策文件", "/zcwj/"), ("机构职能", "/jgzn/"),
       ("专题专栏", "/ztzl/"), ("办事指南", "/bszn/")]


def _html(title: str, body: str) -> bytes:
    nav = "".join(f'<li><a href="{href}">{name}</a></li>' for name, href in NAV)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<div class='top'>今天是{AS_OF.year}年{AS_OF.month}月{AS_OF.day}日</div>"  # a banner clock: not an item
            f"<ul class='nav'><li><a href='/'>首页</a></li>{nav}</ul><h1>{title}</h1>{body}"
            f"<div class='foot'>版权所有 2019-{AS_OF.year} 南部县人民政府</div></body></html>\n").encode()


AS_OF = today()


def one_month_before(day: dt.date) -> dt.date:
    """Same day of the previous month, that month's last day when it has none (worked by hand
    here, independently of the product's months_before)."""
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


OTHER_LIMIT = (AS_OF - one_month_before(AS_OF)).days  # 28..31 days


def ago(days: int) -> dt.date:
    return AS_OF - dt.timedelta(days=days)


@dataclass
class Portal:
    world: World
    work: Path
    vhosts: list[VHost]
    netns: str
    a4: str
    b4: str

    @property
    def home(self) -> str:
        return f"http://{self.a4}:{PORT}/"

    def url(self, path: str) -> str:
        return f"http://{self.a4}:{PORT}{path}"


def _year_grouped(days: list[int]) -> str:
    """机构职能: ``[MM-DD]`` items under year headings, as many county sites list them."""
    out, year = [], None
    for n in days:
        day = ago(n)
        if day.year != year:
            year = day.year
            out.append(f"<h3>{year}年</h3>")
        out.append(f"<ul><li><a href='/article.html'>机构调整</a> [{day.month:02d}-{day.day:02d}]</li></ul>")
    return "".join(out)


def write_portal(root: Path, a4: str, b4: str) -> None:
    """The pages; see the module docstring and the expectations in the tests."""
    files: dict[str, bytes] = {
        "index.html": _html("南部县示范镇人民政府", (
            "<ul class='links'>"
            "<li><a href='/missing.html'>已删除的页面</a></li>"  # dead internal: 404
            "<li><a href='/broken.html'>出错的页面</a></li>"  # dead internal: 500
            "<li><a href='http://missing.nanbu.test/'>某网站</a></li>"  # dead external: NXDOMAIN
            f"<li><a href='http://{b4}:{DEAD_PORT}/'>另一网站</a></li>"  # dead external: refused
            f"<li><a href='https://{a4}:{PORT}/tls.html'>加密页面</a></li>"  # dead: TLS to a plain-HTTP port
            f"<li><a href='http://{b4}:{SILENT_PORT}/'>无响应网站</a></li>"  # dead external: times out
            f"<li><a href='http://{b4}:{PORT}/'>限时抢购</a></li>"  # a commercial site: external and an ad suspect
            "<li><a href='mailto:office@example.gov.cn'>联系我们</a></li>"  # no page: not a link to check
            "</ul>")),
        # 要闻动态 (dynamic): spans in two formats, newest 3 days old: ok
        "zwdt/index.html": _html("要闻动态", "<ul>" + "".join(
            f"<li><a href='/zwdt/a1.html'>要闻{n}</a><span>{d}</span></li>"
            for n, d in [(1, ago(3).strftime("%Y-%m-%d")), (2, ago(9).strftime("%Y.%m.%d")),
                         (3, ago(40).strftime("%Y-%m-%d"))])
            + "<li><a href='/zwdt/old.html'>旧闻</a></li></ul>"),  # dead, only on this page
        # two clicks away (home → 要闻动态 → here): its dead link is three clicks away
        "zwdt/a1.html": _html("示范镇召开会议", "<p>正文</p><a href='/deep-missing.html'>相关阅读</a>"),
        # 通知公告 (dynamic): a table, newest 12 days old: stale
        "tzgg/index.html": _html("通知公告", "<table>" + "".join(
            f"<tr><td><a href='/article.html'>通知{n}</a></td><td>{ago(d).strftime('%Y/%m/%d')}</td></tr>"
            for n, d in [(1, 12), (2, 30)]) + "</table>"),
        # 政策文件 (other): 2026年11月28日 forms, newest one day beyond a calendar month: stale
        "zcwj/index.html": _html("政策文件", "<ul>" + "".join(
            f"<li><a href='/article.html'>文件{n}</a> {ago(d).year}年{ago(d).month}月{ago(d).day}日</li>"
            for n, d in [(1, OTHER_LIMIT + 1), (2, OTHER_LIMIT + 60)]) + "</ul>"),
        # 机构职能 (other): [MM-DD] under year headings, newest 5 days old: ok
        "jgzn/index.html": _html("机构职能", _year_grouped([5, 20, 400])),
        # 专题专栏 (other): nothing but the menus: blank
        "ztzl/index.html": _html("专题专栏", "<p>暂无内容</p>"),
        # 办事指南 (dynamic): entries whose dates are in Chinese numerals: no date can be read
        "bszn/index.html": _html("办事指南", "<ul>" + "".join(
            f"<li><a href='/bszn/{n}.html'>指南{n}</a><span>十一月二十{n}日</span></li>" for n in (1, 2, 3)) + "</ul>"),
        "article.html": _html("正文", "<p>正文内容</p>"),
        **{f"bszn/{n}.html": _html(f"指南{n}", "<p>办事指南</p>") for n in (1, 2, 3)},
    }
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        path.write_bytes(body)
        path.chmod(0o644)


def flaky_lines() -> tuple[str, ...]:
    """Connections ≡ 4 (mod 15) get 503, ≡ 11 are closed unanswered: any 15 in a row fail twice."""
    n503 = "|".join(str(n) for n in range(4, 3000, 15))
    n444 = "|".join(str(n) for n in range(11, 3000, 15))
    return (f'if ($connection ~ "^({n503})$") {{ return 503; }}', f'if ($connection ~ "^({n444})$") {{ return 444; }}')


@pytest.fixture(scope="module")
def portal(ipv6_lab: World) -> Iterator[Portal]:
    www, parity = ipv6_lab.sites["www.web.test"], ipv6_lab.sites["parity.web.test"]
    assert www.netns == parity.netns
    work = web_folder()
    try:
        roots = {n: work / n for n in ("portal", "shop", "flaky")}
        for root in roots.values():
            root.mkdir(mode=0o755)
        write_portal(roots["portal"], www.ipv4, parity.ipv4)
        (roots["shop"] / "index.html").write_bytes(_html("商城", "<p>特价商品 限时抢购</p>"))
        (roots["flaky"] / "index.html").write_bytes(_html("时好时坏的首页", "<p>首页</p>"))
        for root in roots.values():
            for path in root.rglob("*.html"):
                path.chmod(0o644)
        vhosts = [
            VHost(("portal",), (www.ipv4,), PORT, root=roots["portal"],
                  nginx_lines=("location = /broken.html { return 500; }",)),
            VHost(("shop",), (parity.ipv4,), PORT, root=roots["shop"]),
            VHost(("flaky",), (www.ipv4,), FLAKY_PORT, root=roots["flaky"], nginx_lines=flaky_lines()),
        ]
        portal = Portal(ipv6_lab, work, vhosts, www.netns, www.ipv4, parity.ipv4)
        silent = netns_listener(www.netns, parity.ipv4, SILENT_PORT)  # the kernel completes handshakes; nobody answers
        try:
            with running("nginx", www.netns, vhosts, work):
                yield portal
        finally:
            silent.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def inventory(tmp: Path, portal: Portal) -> Path:
    folder = tmp / "inventory"
    (folder / "group_vars").mkdir(parents=True)
    (folder / "hosts.yml").write_text("all:\n  children:\n    u_demo:\n      hosts:\n        t1: {}\n")
    columns = [("要闻动态", "/zwdt/", "dynamic"), ("通知公告", "/tzgg/", "dynamic"), ("政策文件", "/zcwj/", "other"),
               ("机构职能", "/jgzn/", "other"), ("专题专栏", "/ztzl/", "other"), ("办事指南", "/bszn/", "dynamic"),
               ("互动交流", "/hdjl/", "other")]
    lines = [f"    - {{name: {n}, url: '{portal.url(p)}', kind: {k}}}" for n, p, k in columns]
    (folder / "group_vars" / "u_demo.yml").write_text(
        "unit:\n  code: u_demo\n  name: 示范镇人民政府\n  site:\n"
        f"    home: '{portal.home}'\n    allowed_external: [people.com.cn]\n    columns:\n" + "\n".join(lines) + "\n")
    return folder


def inspect(portal: Portal, *args: str) -> tuple[int, dict]:
    done = cli("site", "inspect", *args, "--as-of", AS_OF.isoformat(), "--resolver", portal.world.resolver,
               "--timeout", "5", "--policy", str(PROJECT / "policies"), "--format", "json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_columns_links_and_ads(portal: Portal, tmp_path: Path) -> None:
    rc, doc = inspect(portal, "--inventory", str(inventory(tmp_path, portal)), "--unit", "u_demo", "--probes", "3")
    assert rc == 1
    assert doc["as_of"] == AS_OF.isoformat()
    [site] = doc["sites"]
    assert site["unit"] == "u_demo"
    assert site["home"] == {"url": portal.home, "probes": 3, "ok": 3, "failures": []}
    columns = {c["name"]: c for c in site["columns"]}
    expect = {
        "要闻动态": (ago(3).isoformat(), 3, 7, "ok"),
        "通知公告": (ago(12).isoformat(), 12, 7, "stale"),
        "政策文件": (ago(OTHER_LIMIT + 1).isoformat(), OTHER_LIMIT + 1, OTHER_LIMIT, "stale"),
        "机构职能": (ago(5).isoformat(), 5, OTHER_LIMIT, "ok"),
        "专题专栏": (None, None, OTHER_LIMIT, "blank"),
        "办事指南": (None, None, 7, "error"),
        "互动交流": (None, None, OTHER_LIMIT, "error"),
    }
    got = {n: (c["latest"], c["age_days"], c["limit_days"], c["status"]) for n, c in columns.items()}
    assert got == expect
    assert columns["通知公告"]["reason"] == "latest item 12 days old, limit 7 days"
    assert columns["办事指南"]["reason"] == "no date can be read in 3 list entries"
    assert columns["互动交流"]["reason"] == "list page cannot be fetched: HTTP status 404"
    assert columns["要闻动态"]["url"] == portal.url("/zwdt/") and columns["要闻动态"]["kind"] == "dynamic"
    assert columns["专题专栏"]["reason"] == "the list page has no items"

    home, b4 = portal.home, portal.b4
    dead = {(d["url"], d["from"]): d["status"] for d in site["dead_links"]}
    assert set(dead) == {
        (portal.url("/missing.html"), home), (portal.url("/broken.html"), home),
        ("http://missing.nanbu.test/", home), (f"http://{b4}:{DEAD_PORT}/", home),
        (f"https://{portal.a4}:{PORT}/tls.html", home), (f"http://{b4}:{SILENT_PORT}/", home),
        (portal.url("/zwdt/old.html"), portal.url("/zwdt/")),  # on a column page, one click away
    }
    assert dead[(portal.url("/missing.html"), home)] == 404
    assert dead[(portal.url("/broken.html"), home)] == 500
    assert dead[("http://missing.nanbu.test/", home)].startswith("dns: ")
    assert dead[(f"http://{b4}:{DEAD_PORT}/", home)].startswith("tcp: ")
    assert dead[(f"https://{portal.a4}:{PORT}/tls.html", home)].startswith("tls: ")
    assert dead[(f"http://{b4}:{SILENT_PORT}/", home)] == "http: timed out"
    # depth 2 does not reach /deep-missing.html (three clicks away)
    assert not any("deep-missing" in url for url, _ in dead)

    external = {(x["url"], x["from"], x["host"]) for x in site["external_links"]}
    assert external == {("http://missing.nanbu.test/", home, "missing.nanbu.test"),
                        (f"http://{b4}:{DEAD_PORT}/", home, b4), (f"http://{b4}:{PORT}/", home, b4),
                        (f"http://{b4}:{SILENT_PORT}/", home, b4)}
    assert site["ad_suspects"] == [{"url": f"http://{b4}:{PORT}/", "from": home,
                                    "why": "link text contains '限时抢购'"}]


def test_depth_three_reaches_the_deep_dead_link(portal: Portal) -> None:
    _, doc = inspect(portal, portal.home, "--probes", "1", "--depth", "3")
    dead = {(d["url"], d["from"]) for d in doc["sites"][0]["dead_links"]}
    assert (portal.url("/deep-missing.html"), portal.url("/zwdt/a1.html")) in dead
    _, doc = inspect(portal, portal.home, "--probes", "1", "--depth", "1")
    dead = {(d["url"], d["from"]) for d in doc["sites"][0]["dead_links"]}
    assert {url for url, _ in dead} == {portal.url("/missing.html"), portal.url("/broken.html"),
                                        "http://missing.nanbu.test/", f"http://{portal.b4}:{DEAD_PORT}/",
                                        f"https://{portal.a4}:{PORT}/tls.html", f"http://{portal.b4}:{SILENT_PORT}/"}


def test_home_page_failing_two_of_fifteen_probes(portal: Portal) -> None:
    flaky = f"http://{portal.a4}:{FLAKY_PORT}/"
    rc, doc = inspect(portal, flaky, "--depth", "0")  # the policy's 15 probes
    home = doc["sites"][0]["home"]
    assert rc == 1
    assert (home["probes"], home["ok"], len(home["failures"])) == (15, 13, 2)
    reasons = sorted(f["reason"] for f in home["failures"])
    assert reasons[0] == "HTTP status 503"
    assert reasons[1].startswith("http: ")  # closed without an answer
    # the two failures are seven probes apart (connections 4 and 11 mod 15), in either order
    assert abs(home["failures"][1]["probe"] - home["failures"][0]["probe"]) in (7, 8)


def test_text_html_and_xlsx_cite_the_articles(portal: Portal, tmp_path: Path) -> None:
    folder = inventory(tmp_path, portal)
    common = ("site", "inspect", "--inventory", str(folder), "--unit", "u_demo", "--probes", "1", "--as-of",
              AS_OF.isoformat(), "--resolver", portal.world.resolver, "--timeout", "5")
    text = cli(*common)
    assert text.returncode == 1, text.stderr
    for words in ("第十四条", "第十八条", "第十二条", "未按时更新", "空白栏目", "限时抢购", "最近一条已 12 天，超过 7 天的时限",
                  "列表页没有内容", "3 条列表项均无法识别发布日期", "列表页无法访问：HTTP status 404"):
        assert words in text.stdout
    english = cli(*common, "--lang", "en")
    assert "Article 14" in english.stdout and "latest item 12 days old, limit 7 days" in english.stdout
    page = tmp_path / "r.html"
    assert cli(*common, "--format", "html", "--output", str(page)).returncode == 1
    assert "第二十九条" in page.read_text()
    book = tmp_path / "r.xlsx"
    assert cli(*common, "--format", "xlsx", "--output", str(book)).returncode == 1
    from openpyxl import load_workbook

    sheets = load_workbook(book).sheetnames
    assert len(sheets) == 5 and "第十四条" in sheets[1]
