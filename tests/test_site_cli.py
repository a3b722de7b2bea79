"""``site inspect``'s input handling (exit 2, one line naming the file and line) and its pure
judgements of external links and advertising suspects, on facts written here."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from nanbu_secops.checks import site as judge
from nanbu_secops.policy import load_policies, require_variables
from nanbu_secops.site.collect import Facts, Got
from nanbu_secops.site.page import Page
from tests.test_cli import cli

PROJECT = Path(__file__).resolve().parent.parent
PARAMS = require_variables(load_policies(PROJECT / "policies"), judge.POLICY_SCHEMA)


def _inventory(tmp: Path, site: str) -> Path:
    (tmp / "group_vars").mkdir()
    (tmp / "hosts.yml").write_text("all:\n  children:\n    u_x:\n      hosts:\n        t1: {}\n")
    (tmp / "group_vars" / "u_x.yml").write_text("unit:\n  code: u_x\n" + site)
    return tmp


@pytest.mark.parametrize("site,line,words", [
    ("", 1, "unit.site is missing"),
    ("  site:\n    home: ftp://x/\n", 4, "unit.site.home: not an http(s) URL"),
    ("  site:\n    home: http://a/\n    columns:\n      - {name: 新闻, url: 'http://a/x/', kind: weekly}\n", 6,
     "kind must be dynamic or other"),
    ("  site:\n    home: http://a/\n    columns:\n      - {name: 新闻, url: 'http://[::1/x/', kind: other}\n", 6,
     "not an http(s) URL"),
    ("  site:\n    home: http://a/\n    allowed_external: people.com.cn\n", 5, "allowed_external must be a list"),
])
def test_bad_site_entries_exit_2_naming_the_line(tmp_path: Path, site: str, line: int, words: str) -> None:
    folder = _inventory(tmp_path, site)
    done = cli("site", "inspect", "--inventory", str(folder), "--unit", "u_x", "--lang", "en")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"u_x.yml:{line}:" in done.stderr and words in done.stderr, done.stderr


@pytest.mark.parametrize("args,words", [
    ([], "give --inventory DIR --unit U, --site FILE, or one or more URLs"),
    (["http://a/", "--as-of", "2026-02-30"], "not a date"),
    (["http://a/", "--depth", "-1"], "--depth"),
    (["http://a/", "--resolver", "not-an-address"], "is not an IP address"),
    (["mailto:x@y"], "not an http(s) URL"),
    (["--inventory", "/nonexistent", "--unit", "u"], "nonexistent"),
])
def test_bad_arguments_exit_2(args: list[str], words: str) -> None:
    done = cli("site", "inspect", *args, "--lang", "en")
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_site_url_with_credentials_is_refused_without_repeating_them() -> None:
    """site_inspection.yml hands unit.site to the agent as module input, which Ansible logs: a
    site entry can therefore never carry a password, and the refusal does not repeat it."""
    exe = Path(sys.executable).with_name("nanbu-secops")
    done = subprocess.run([str(exe), "site", "inspect", "--site", "-", "--lang", "en"],
                          input="unit: u\nhome: 'https://editor:s3cret-pw@www.nanbu.gov.cn/'\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "<stdin>:2: site.home: URL carries a user name or password" in done.stderr, done.stderr
    assert "s3cret-pw" not in done.stderr and "editor" not in done.stderr and done.stdout == ""


def test_site_on_standard_input_is_checked_too() -> None:
    exe = Path(sys.executable).with_name("nanbu-secops")
    done = subprocess.run([str(exe), "site", "inspect", "--site", "-", "--lang", "en"],
                          input="unit: u\nhome: http://a/\ncolumns: 3\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "<stdin>:3: site.columns must be a list" in done.stderr


def _facts(links: dict[str, list[tuple[str, str]]], text: str = "") -> Facts:
    home = "https://www.nanbu.gov.cn/"
    pages = {url: Page(links=found, text=text if url == home else "") for url, found in links.items()}
    carriers: dict[str, list[str]] = {}
    for url, found in links.items():
        for link, _ in found:
            carriers.setdefault(link, []).append(url)
    ok = Got(home, True, 200, None, home)
    return Facts(home, [ok], {}, {}, pages, {link: ok for link in carriers}, carriers)


def test_external_links_by_suffix() -> None:
    home = "https://www.nanbu.gov.cn/"
    facts = _facts({home: [(u, "") for u in (
        "https://www.nanbu.gov.cn/a", "http://www.sc.gov.cn/", "http://gov.cn.evil.com/", "http://xgov.cn/",
        "http://www.people.com.cn/n/1.html", "http://people.com.cn.example.org/", "http://news.example.com/",
        "http://WWW.XINHUANET.COM./x", "http://192.0.2.1/")]})
    hosts = {x["host"] for x in judge.external_links(facts, {"www.nanbu.gov.cn"},
                                                     ["gov.cn", *PARAMS["site_allowed_external"]])}
    assert hosts == {"gov.cn.evil.com", "xgov.cn", "people.com.cn.example.org", "news.example.com", "192.0.2.1"}


def test_ad_suspects_are_listed_with_why() -> None:
    home = "https://www.nanbu.gov.cn/"
    facts = _facts({home: [("https://item.taobao.com/1", "农产品"), ("https://x.example/", "限时抢购 优惠"),
                           ("https://www.nanbu.gov.cn/n", "新闻")]}, text="新闻 限时抢购 优惠 网贷")
    assert judge.ad_suspects(facts, PARAMS["site_ad_keywords"], PARAMS["site_ad_domains"]) == [
        {"url": "https://item.taobao.com/1", "from": home, "why": "domain taobao.com"},
        {"url": home, "from": home, "why": "page text contains '网贷'"},  # not again for words its links showed
        {"url": "https://x.example/", "from": home, "why": "link text contains '优惠'; link text contains '限时抢购'"},
    ]


def test_limits_and_stale_boundary() -> None:
    col = judge.Column("政策", "http://a/", "other")
    as_of = dt.date(2027, 3, 31)
    assert judge.limit_days("other", as_of, PARAMS) == 31  # back to 2027-02-28
    assert judge.limit_days("dynamic", as_of, PARAMS) == 7
    got = Got("http://a/", True, 200, None, "http://a/")
    from nanbu_secops.site.dates import Found

    at_limit = Page(items=[Found(dt.date(2027, 2, 28), "2027-02-28")])
    beyond = Page(items=[Found(dt.date(2027, 2, 27), "2027-02-27"), Found(dt.date(2027, 4, 1), "2027-04-01")])
    assert judge.column(col, got, at_limit, as_of, PARAMS, set())["status"] == "ok"
    doc = judge.column(col, got, beyond, as_of, PARAMS, set())
    assert (doc["status"], doc["latest"], doc["age_days"]) == ("stale", "2027-02-27", 32)  # a future date is ignored
