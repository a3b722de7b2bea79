"""The facts of one site: home-page probes, column list pages, and every link found on the home
page and the site's own pages to ``depth`` (the collect step: no judgement here).

A URL is fetched over IPv4 and, only when its host has no IPv4 address (no A record, an IPv6
literal), over IPv6: a link that works over IPv4 is not dead, and one that fails only over IPv6
is the IPv6 check's finding (article 9(2)), not this one's. Fetches use :func:`http.fetch`, the
IPv6 checks' client, tested against real nginx, Apache and lighttpd.

Depth counts clicks from the home page (distance 0). A page of the site's own origin (the home
page's scheme, host and port, after its redirects) at distance d < N is read, and every link on a
read page is checked: at depth 1 the home page's links, at depth 2 also the links on the own
pages they lead to. Links are ``<a>``/``<area>`` hrefs
(:mod:`nanbu_secops.ipv6.links` rules). Checks run in a thread pool: they wait on the network.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from nanbu_secops.ipv6 import http
from nanbu_secops.site import page as pages

LINK_BODY = 0  # a link is judged on its status: no body is read


@dataclass(frozen=True)
class Settings:
    probes: int = 15
    depth: int = 2
    timeout: float = 10.0
    concurrency: int = 16
    ca_file: str | None = None
    max_pages: int = 5000  # pages read per site at most; the rest are checked but not read


@dataclass(frozen=True)
class Got:
    """One fetch as the inspection needs it: ``status`` is the HTTP status (None when none came),
    ``error`` the failure (``stage: text``) or ``HTTP status N``; None when it worked."""

    url: str
    ok: bool
    status: int | None
    error: str | None
    final_url: str
    content_type: str | None = None
    body: bytes = field(default=b"", repr=False)


def _got(probe: http.Probe) -> Got:
    error = f"{probe.stage}: {probe.error}" if probe.error else (None if probe.ok else f"HTTP status {probe.status}")
    return Got(probe.url, probe.ok, probe.status, error, probe.final_url, probe.content_type, probe.body)


class Fetcher:
    """GETs over IPv4, over IPv6 only when the host has no IPv4 address (see the module doc)."""

    def __init__(self, resolve: http.Resolve, settings: Settings) -> None:
        self.resolve, self.settings = resolve, settings

    def get(self, url: str, read: bool) -> Got:
        kw: dict[str, Any] = {"ca_file": self.settings.ca_file, "timeout": self.settings.timeout}
        if not read:
            kw["max_body"] = LINK_BODY
        v4 = http.fetch(url, 4, self.resolve, **kw)
        if v4.ok or v4.stage != "dns":
            return _got(v4)
        v6 = http.fetch(url, 6, self.resolve, **kw)
        return _got(v6) if v6.stage != "dns" else _got(v4)


@dataclass
class Facts:
    """``checked``: URL → its fetch; ``carriers``: URL → the read pages that link to it, in order;
    ``read``: URL → its :class:`pages.Page` (the home page and the own pages crawled);
    ``column_pages``: the columns' list pages that could be read."""

    home: str
    probes: list[Got]
    columns: dict[str, Got]
    column_pages: dict[str, pages.Page]
    read: dict[str, pages.Page]
    checked: dict[str, Got]
    carriers: dict[str, list[str]]


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port or http.DEFAULT_PORTS.get(parts.scheme)}"


def collect(home: str, column_urls: list[str], fetcher: Fetcher,
            progress: Callable[[int], None] | None = None) -> Facts:
    """Probe the home page, read the column pages, then check links breadth-first to the depth."""
    settings = fetcher.settings
    probes = [fetcher.get(home, True) for _ in range(settings.probes)]
    read: dict[str, pages.Page] = {}
    checked: dict[str, Got] = {}
    carriers: dict[str, list[str]] = {}
    with ThreadPoolExecutor(max_workers=max(1, settings.concurrency)) as pool:
        columns = dict(zip(column_urls, pool.map(lambda u: fetcher.get(u, True), column_urls), strict=True))
        column_pages = {url: pages.read(got.body, got.final_url, got.content_type)
                        for url, got in columns.items() if got.ok}
        first = next((p for p in probes if p.ok), None)
        if first is None or settings.depth < 1:
            return Facts(home, probes, columns, column_pages, read, checked, carriers)
        own = _host(first.final_url)
        checked[home] = first
        frontier = {home: pages.read(first.body, first.final_url, first.content_type)}
        read[home] = frontier[home]
        for distance in range(1, settings.depth + 1):
            found: list[str] = []
            for url, page in frontier.items():
                for link, _text in page.links:
                    carriers.setdefault(link, [])
                    if url not in carriers[link]:
                        carriers[link].append(url)
                    if link not in checked and link not in found:
                        found.append(link)
            deeper = distance < settings.depth
            wanted = {link: deeper and _host(link) == own and len(read) < settings.max_pages for link in found}
            results = pool.map(lambda item: fetcher.get(item[0], item[1]), wanted.items())
            frontier = {}
            for (link, want), got in zip(wanted.items(), results, strict=True):
                checked[link] = Got(got.url, got.ok, got.status, got.error, got.final_url, got.content_type)
                if progress:
                    progress(1)
                if want and got.ok and _host(got.final_url) == own and link not in read:
                    frontier[link] = read[link] = pages.read(got.body, got.final_url, got.content_type)
            if not frontier:
                break
    return Facts(home, probes, columns, column_pages, read, checked, carriers)
