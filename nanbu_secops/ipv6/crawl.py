"""The share of a portal's links that work over IPv6, level by level (article 9(2)).

Level 2 is the links on the homepage; level 3 the links on the level-2 pages of the portal's own
host (the homepage's host name: other sites' pages are theirs to measure). A level-3 link is one
not already counted at level 2 and not the homepage, so each link counts once, at the level a
visitor first meets it; the homepage itself is not a level-2 link either. A link works over IPv6
when its host has an AAAA record and a GET over IPv6 answers with a status below 400.

Checks run in a thread pool (they wait on the network, not the CPU). At most ``limit`` links are
checked per level, the first ones found; the level then says how many were found and that it was
capped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from nanbu_secops.ipv6 import http, links

LINK_BODY = 0  # a link check is judged on the status alone, so no body is read


@dataclass(frozen=True)
class LinkResult:
    """One link checked over IPv6; ``stage`` is the step that failed (``dns`` for no AAAA,
    ``http`` for an error status; the others as in :class:`http.Probe`)."""

    url: str
    host: str
    has_aaaa: bool
    status_v6: int | None
    ok: bool
    error: str | None
    stage: str | None = None


@dataclass(frozen=True)
class Level:
    """The links of one level that were checked; ``found`` counts them before the ``limit``."""

    total: int
    ipv6: int
    ratio: float | None  # None when the level has no link
    links: list[LinkResult]
    found: int
    unfetched: list[str] = field(default_factory=list)  # level-2 pages that could not be read (level 3 only)

    @property
    def capped(self) -> bool:
        return self.found > self.total

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "total": self.total, "ipv6": self.ipv6, "ratio": None if self.ratio is None else round(self.ratio, 3),
            "found": self.found, "capped": self.capped,
            "failing": [{k: v for k, v in asdict(link).items() if k != "ok"} for link in self.links if not link.ok]}
        if self.unfetched:
            doc["unfetched_pages"] = self.unfetched
        return doc


@dataclass(frozen=True)
class Crawl:
    """``levels`` has "level2" when depth ≥ 1 and "level3" when depth ≥ 2."""

    levels: dict[str, Level]

    def as_json(self) -> dict[str, Any]:
        return {name: level.as_json() for name, level in self.levels.items()}


Page = tuple[bytes, str | None]  # a page's body and content type


class LinkChecker:
    """Checks links over IPv6: AAAA through ``resolve_aaaa``, then a GET over IPv6 with
    :func:`http.fetch` (``fetch_kw`` passed on). Results are kept per URL and AAAA answers per
    host, since a portal links to the same few hosts many times. The caches are plain dicts:
    two threads asking at once at worst both look up, and the answers are the same.

    Calling it checks a link on its status alone (no body read). :meth:`page` checks a link
    *and* reads the page, so a level-2 page of the portal, whose links are level 3, is fetched
    once over IPv6, not once to check and again to read."""

    def __init__(self, resolve_aaaa: Callable[[str], list[str]], resolve: http.Resolve, **fetch_kw: Any) -> None:
        self._resolve_aaaa, self._resolve = resolve_aaaa, resolve
        self._fetch_kw = {"max_body": LINK_BODY, **fetch_kw}
        self._page_kw = {k: v for k, v in fetch_kw.items() if k != "max_body"}
        self._results: dict[str, LinkResult] = {}
        self._aaaa: dict[str, bool] = {}

    def __call__(self, url: str) -> LinkResult:
        if url not in self._results:
            self._results[url] = self._check(url, self._fetch_kw)[0]
        return self._results[url]

    def page(self, url: str) -> tuple[LinkResult, Page | None]:
        """The link's result and its page, None when it cannot be read over either family
        (over IPv4 only when IPv6 fails: its links still count at level 3)."""
        result, got = self._check(url, self._page_kw)
        self._results[url] = result
        if got is not None and got.ok:
            return result, (got.body, got.content_type)
        fallback = http.fetch(url, 4, self._resolve, **self._page_kw)
        return result, (fallback.body, fallback.content_type) if fallback.ok else None

    def _check(self, url: str, fetch_kw: dict[str, Any]) -> tuple[LinkResult, http.Probe | None]:
        host = (urlsplit(url).hostname or "").lower()
        if host not in self._aaaa:
            self._aaaa[host] = bool(self._resolve_aaaa(host))
        if not self._aaaa[host]:
            return LinkResult(url, host, False, None, False, f"no AAAA record for {host}", stage="dns"), None
        got = http.fetch(url, 6, self._resolve, **fetch_kw)
        error = got.error or (None if got.ok else f"HTTP status {got.status}")
        stage = got.stage or (None if got.ok else "http")
        return LinkResult(url, host, True, got.status, got.ok, error, stage=stage), got


def link_checker(resolve_aaaa: Callable[[str], list[str]], resolve: http.Resolve, **fetch_kw: Any) -> LinkChecker:
    """A :class:`LinkChecker` for :func:`crawl`."""
    return LinkChecker(resolve_aaaa, resolve, **fetch_kw)


def _check_all(pool: Executor, urls: list[str], check_link: Callable[[str], LinkResult],
               progress: Callable[[int], None] | None) -> list[LinkResult]:
    """Results in the order of ``urls``; ``progress(1)`` as each check ends."""
    futures = [pool.submit(check_link, url) for url in urls]
    for _future in as_completed(futures):
        if progress:
            progress(1)
    return [future.result() for future in futures]


def _level(found: list[str], checked: list[LinkResult], unfetched: Iterable[str] = ()) -> Level:
    good = sum(link.ok for link in checked)
    return Level(total=len(checked), ipv6=good, ratio=good / len(checked) if checked else None, links=checked,
                 found=len(found), unfetched=list(unfetched))


def crawl(home_url: str, home_body: bytes, home_content_type: str | None, depth: int, checker: LinkChecker, *,
          concurrency: int = 16, progress: Callable[[int], None] | None = None, limit: int = 2000) -> Crawl:
    """Check the links of the homepage (depth ≥ 1) and of its own level-2 pages (depth ≥ 2).
    At depth 2 the portal's own level-2 pages are read by the same request that checks them."""
    if depth < 1:
        return Crawl({})
    home = links.extract(home_body, home_url, home_content_type)
    level2 = [url for url in home if url != home_url]
    own_host = urlsplit(home_url).hostname
    own_pages = [url for url in level2[:limit] if urlsplit(url).hostname == own_host] if depth >= 2 else []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        pages = {url: pool.submit(checker.page, url) for url in own_pages}
        checks = {url: pool.submit(checker, url) for url in level2[:limit] if url not in pages}
        for _ in as_completed([*pages.values(), *checks.values()]):
            if progress:
                progress(1)
        checked2 = [pages[url].result()[0] if url in pages else checks[url].result() for url in level2[:limit]]
        levels = {"level2": _level(level2, checked2)}
        if depth >= 2:
            seen = {home_url, *level2}
            level3, unfetched = [], []
            for url, future in pages.items():
                page = future.result()[1]
                if page is None:
                    unfetched.append(url)
                    continue
                for link in links.extract(page[0], url, page[1]):
                    if link not in seen:
                        seen.add(link)
                        level3.append(link)
            levels["level3"] = _level(level3, _check_all(pool, level3[:limit], checker, progress), unfetched)
    return Crawl(levels)
