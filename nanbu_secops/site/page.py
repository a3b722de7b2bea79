"""What the inspection reads from one HTML page, in one pass of html.parser (which tolerates
malformed markup): its links with their anchor text, its visible text, and the dated items of a
column's list page.

Dated items are the text inside ``<li>``, ``<td>`` and ``<span>`` elements, where government list
pages put an item's date; a date elsewhere (a clock in the banner, a copyright year in the footer)
is not an item's. A text that is only a year (``2026``, ``2026年``), anywhere, is a year heading: the
short ``[11-28]`` dates after it belong to that year.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

from nanbu_secops.ipv6.http import charset, is_html
from nanbu_secops.ipv6.links import absolute
from nanbu_secops.site import dates

ITEM_TAGS = frozenset({"li", "td", "span"})
HIDDEN_TAGS = frozenset({"script", "style", "template", "noscript"})
VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                       "wbr"})
MAX_TEXT = 200_000  # characters of visible text kept for the advertising keywords


@dataclass
class Page:
    """``links``: (absolute http(s) URL without fragment, anchor text), each URL once, in order."""

    links: list[tuple[str, str]] = field(default_factory=list)
    item_links: set[str] = field(default_factory=set)  # links inside <li>, <td> or <span>: a list's entries
    text: str = ""
    items: list[dates.Found] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # date-shaped texts that are no calendar day
    yearless: list[str] = field(default_factory=list)  # short dates with no year heading before them


class _Reader(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.base: str | None = None
        self.raw_links: list[tuple[str, list[str], bool]] = []
        self.open_link: list[str] | None = None
        self.stack: list[str] = []
        self.text: list[str] = []
        self.size = 0
        self.scanner = dates.Scanner()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = next((v for k, v in attrs if k == "href"), None)
        if tag == "base" and href is not None and self.base is None:
            self.base = href.strip()
        elif tag in ("a", "area") and href is not None:
            self.open_link = [] if tag == "a" else None
            in_item = any(t in ITEM_TAGS for t in self.stack)
            self.raw_links.append((href.strip(), self.open_link if self.open_link is not None else [], in_item))
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS and self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self.open_link = None
        if tag in self.stack:  # close what the page left open inside it, as browsers do
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if any(tag in HIDDEN_TAGS for tag in self.stack):
            return
        if self.open_link is not None:
            self.open_link.append(data)
        if self.size < MAX_TEXT:
            self.text.append(data)
            self.size += len(data)
        self.scanner.feed(data, any(tag in ITEM_TAGS for tag in self.stack))


def read(body: bytes, url: str, content_type: str | None) -> Page:
    """The links, text and dated items of a page; an empty Page for anything that is not HTML."""
    if not is_html(content_type):
        return Page()
    reader = _Reader(url)
    reader.feed(body.decode(charset(body, content_type), "replace"))
    reader.close()
    base = (absolute(reader.base, url) or url) if reader.base else url
    found: dict[str, str] = {}
    in_items: set[str] = set()
    for href, text, in_item in reader.raw_links:
        link = absolute(href, base)
        if link and link not in found:
            found[link] = " ".join("".join(text).split())
        if link and in_item:
            in_items.add(link)
    return Page(links=list(found.items()), item_links=in_items, text=" ".join(" ".join(reader.text).split()),
                items=reader.scanner.found, rejected=reader.scanner.rejected, yearless=reader.scanner.yearless)
