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
    """One link checked over IPv6."""

    url: str
    host: str
    has_aaaa: bool
    status_v6: int | None
    ok: bool
    error: str | None


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


def link_checker(resolve_aaaa: Callable[[str], list[str]], resolve: http.Resolve,
                 **fetch_kw: Any) -> Callable[[str], LinkResult]:
    """A ``check_link`` for :func:`crawl`: AAAA through ``resolve_aaaa``, then a GET over IPv6
    with :func:`http.fetch` (``fetch_kw`` passed on). Results are kept per URL and AAAA answers
    per host, since a portal links to the same few hosts many times. The caches are plain dicts:
    two threads asking at once at worst both look up, and the answers are the same."""
    fetch_kw = {"max_body": LINK_BODY, **fetch_kw}
    results: dict[str, LinkResult] = {}
    aaaa: dict[str, bool] = {}

    def check(url: str) -> LinkResult:
        if url in results:
            return results[url]
        host = (urlsplit(url).hostname or "").lower()
        if host not in aaaa:
            aaaa[host] = bool(resolve_aaaa(host))
        if not aaaa[host]:
            result = LinkResult(url, host, False, None, False, f"no AAAA record for {host}")
        else:
            got = http.fetch(url, 6, resolve, **fetch_kw)
            error = got.error or (None if got.ok else f"HTTP status {got.status}")
            result = LinkResult(url, host, True, got.status, got.ok, error)
        results[url] = result
        return result

    return check


def _check_all(pool: Executor, urls: list[str], check_link: Callable[[str], LinkResult],
               progress: Callable[[int], None] | None) -> list[LinkResult]:
    """Results in the order of ``urls``; ``progress(1)`` as each check ends."""
    futures = [pool.submit(check_link, url) for url in urls]
    for future in as_completed(futures):
        if progress:
            progress(1)
    return [future.result() for future in futures]


def _level(found: list[str], checked: list[LinkResult], unfetched: Iterable[str] = ()) -> Level:
    good = sum(link.ok for link in checked)
    return Level(total=len(checked), ipv6=good, ratio=good / len(checked) if checked else None, links=checked,
                 found=len(found), unfetched=list(unfetched))


def crawl(home_url: str, home_body: bytes, home_content_type: str | None, depth: int,
          check_link: Callable[[str], LinkResult], fetch_page: Callable[[str], tuple[bytes, str | None] | None], *,
          concurrency: int = 16, progress: Callable[[int], None] | None = None, limit: int = 2000) -> Crawl:
    """Check the links of the homepage (depth ≥ 1) and of its own level-2 pages (depth ≥ 2).
    ``fetch_page`` returns a page's body and content type, or None when it cannot be read."""
    if depth < 1:
        return Crawl({})
    home = links.extract(home_body, home_url, home_content_type)
    level2 = [url for url in home if url != home_url]
    own_host = urlsplit(home_url).hostname
    own_pages = [url for url in level2[:limit] if urlsplit(url).hostname == own_host] if depth >= 2 else []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        pages = [pool.submit(fetch_page, url) for url in own_pages]
        checked2 = _check_all(pool, level2[:limit], check_link, progress)
        levels = {"level2": _level(level2, checked2)}
        if depth >= 2:
            seen = {home_url, *level2}
            level3, unfetched = [], []
            for url, page in zip(own_pages, (future.result() for future in pages)):
                if page is None:
                    unfetched.append(url)
                    continue
                for link in links.extract(page[0], url, page[1]):
                    if link not in seen:
                        seen.add(link)
                        level3.append(link)
            levels["level3"] = _level(level3, _check_all(pool, level3[:limit], check_link, progress), unfetched)
    return Crawl(levels)
