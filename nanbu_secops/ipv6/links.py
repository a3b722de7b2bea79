"""The links of an HTML page, as the level-2 and level-3 link ratios of article 9(2) count them.

A link is where a visitor can go: the ``href`` of ``<a>`` and ``<area>``, resolved against the
page (or its first ``<base href>``, which browsers apply to every link in the document). Only
``http``/``https`` links are kept; ``mailto:``, ``tel:``, ``javascript:``, ``data:``, empty hrefs
and in-page anchors (``#top``) lead to no other page. The fragment is dropped, so ``/a#x`` and
``/a#y`` are one link, and each link counts once, in the order of its first appearance.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

from nanbu_secops.ipv6.http import charset, is_html

SCHEMES = ("http", "https")


class _Hrefs(HTMLParser):
    """Collects raw hrefs and the first base href; html.parser tolerates malformed markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("a", "area", "base"):
            return
        href = next((value for name, value in attrs if name == "href"), None)
        if href is None:
            return
        if tag == "base":
            self.base = self.base if self.base is not None else href.strip()
        else:
            self.hrefs.append(href.strip())


def absolute(href: str, base: str) -> str | None:
    """The link ``href`` leads to, without fragment; None when it leads to no other web page."""
    if not href or href.startswith("#"):
        return None
    try:
        url = urldefrag(urljoin(base, href)).url
        parts = urlsplit(url)
        _ = parts.port  # only to raise ValueError for a port that is not a number up to 65535
    except ValueError:  # e.g. "http://[::1" or a port that is not a number
        return None
    return url if parts.scheme in SCHEMES and parts.hostname else None


def extract(body: bytes, base_url: str, content_type: str | None) -> list[str]:
    """Distinct http(s) links of an HTML page; [] for anything that is not HTML."""
    if not is_html(content_type):
        return []
    parser = _Hrefs()
    parser.feed(body.decode(charset(body, content_type), "replace"))
    parser.close()
    base = base_url
    if parser.base:
        base = absolute(parser.base, base_url) or base_url
    links = (absolute(href, base) for href in dict.fromkeys(parser.hrefs))  # a menu repeated on a page: resolved once
    return list(dict.fromkeys(link for link in links if link))
