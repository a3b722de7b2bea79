"""The item-date reader of ``site inspect`` (nanbu_secops/site/dates.py, page.py) on the forms
Chinese government list pages use, and on hostile input: impossible days, years out of range,
numbers that only look like dates, huge and malformed pages, markup that never closes."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from nanbu_secops.checks.site import months_before
from nanbu_secops.site import dates, page


def _dates(texts: list[tuple[str, bool]]) -> list[dt.date]:
    return [f.date for f in dates.scan(texts).found]


@pytest.mark.parametrize("text,expected", [
    ("2026-11-28", dt.date(2026, 11, 28)),
    ("2026/11/28", dt.date(2026, 11, 28)),
    ("2026.11.28", dt.date(2026, 11, 28)),
    ("2026-1-2", dt.date(2026, 1, 2)),
    ("2026年11月28日", dt.date(2026, 11, 28)),
    ("2026 年 1 月 2 日", dt.date(2026, 1, 2)),
    ("发布时间：2026-11-28 09:30:00", dt.date(2026, 11, 28)),
    ("２０２６－１１－２８", dt.date(2026, 11, 28)),  # full-width digits and dash
    ("２０２６年１１月２８日", dt.date(2026, 11, 28)),
    ("2024-02-29", dt.date(2024, 2, 29)),  # a leap day
])
def test_full_forms(text: str, expected: dt.date) -> None:
    assert _dates([(text, True)]) == [expected]


@pytest.mark.parametrize("text", [
    "2026-13-01", "2026-00-10", "2026-02-30", "2025-02-29", "2026/11/31", "2026年13月1日",  # no such day
    "1899-01-01", "2999-12-31",  # years that are no publication date
])
def test_impossible_days_are_rejected_not_guessed(text: str) -> None:
    scanned = dates.scan([(text, True)])
    assert scanned.found == [] and len(scanned.rejected) == 1


@pytest.mark.parametrize("text", [
    "2026-11/28",  # mixed separators
    "12026-11-28",  # digits run into the year
    "电话 0817-5521234", "第2026-11号文件", "v1.2.3", "11-28-2026", "十一月二十八日", "昨天", "2026", "2026年",
    "192.168.1.10",
])
def test_things_that_are_not_dates(text: str) -> None:
    assert _dates([(text, True)]) == []


def test_short_dates_take_the_year_heading_before_them() -> None:
    texts = [("2026年", False), ("[11-28]", True), ("【11-27】", True), ("(11-26)", True), ("2025", False),
             ("12-31", True), ("12月30日", True)]
    assert _dates(texts) == [dt.date(2026, 11, 28), dt.date(2026, 11, 27), dt.date(2026, 11, 26),
                             dt.date(2025, 12, 31), dt.date(2025, 12, 30)]


def test_short_dates_without_a_year_are_not_guessed() -> None:
    scanned = dates.scan([("[11-28]", True), ("2026年", False), ("[02-30]", True)])
    assert scanned.found == [] and scanned.yearless == ["[11-28]"] and scanned.rejected == ["[02-30]"]


def test_only_dates_in_items_count() -> None:
    body = ("<html><body><div>今天是2026年12月5日</div><p>2026-12-04</p><ul><li>a <span>2026-11-01</span></li></ul>"
            "<table><tr><td>2026/10/01</td></tr></table><script>var d='2026-12-03'</script>"
            "<!-- 2026-12-02 --><footer>版权所有 2019-2026</footer></body></html>").encode()
    got = page.read(body, "http://h/", "text/html; charset=utf-8")
    assert [f.date for f in got.items] == [dt.date(2026, 11, 1), dt.date(2026, 10, 1)]


def test_gbk_page_and_entities() -> None:
    body = "<meta charset='gbk'><li><a href='/x'>通知</a>&nbsp;2026&#24180;11&#26376;28&#26085;</li>".encode("gbk")
    got = page.read(body, "http://h/", "text/html")
    assert [f.date for f in got.items] == [dt.date(2026, 11, 28)] and got.links == [("http://h/x", "通知")]


def test_unclosed_and_malformed_markup() -> None:
    body = b"<ul><li><span>2026-11-28<li><a href='http://[::1'>x</a><li><td>2026.11.27</ul></div></div><a href=:80>"
    got = page.read(body, "http://h/", "text/html")
    assert [f.date for f in got.items] == [dt.date(2026, 11, 28), dt.date(2026, 11, 27)]
    # a broken IPv6 literal leads nowhere; ":80" is a relative path, as browsers resolve it
    assert got.links == [("http://h/:80", "")]


def test_not_html_is_read_as_nothing() -> None:
    assert page.read(b"<li>2026-11-28</li>", "http://h/", "text/plain").items == []
    assert page.read(b"\x00\xff" * 1000, "http://h/", "text/html").items == []


def test_huge_pages_stay_fast() -> None:
    hostile = [
        b"<li>" + b"2026-" * 200_000 + b"</li>",  # a run of almost-dates
        b"<li>" + b"1" * 1_000_000 + b"</li>",  # one enormous number
        b"<span>" * 50_000 + b"2026-11-28",  # deep nesting that never closes
        b"<li>" + "年月日".encode() * 200_000 + b"</li>",
    ]
    for body in hostile:
        started = time.monotonic()
        page.read(body, "http://h/", "text/html")
        assert time.monotonic() - started < 10, body[:20]


@pytest.mark.parametrize("day,expected", [
    (dt.date(2026, 3, 31), dt.date(2026, 2, 28)), (dt.date(2024, 3, 31), dt.date(2024, 2, 29)),
    (dt.date(2027, 1, 15), dt.date(2026, 12, 15)), (dt.date(2026, 12, 31), dt.date(2026, 11, 30)),
    (dt.date(2026, 5, 1), dt.date(2026, 4, 1)),
])
def test_one_calendar_month_before(day: dt.date, expected: dt.date) -> None:
    assert months_before(day, 1) == expected
