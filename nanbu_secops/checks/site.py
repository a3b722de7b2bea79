"""Judgements of the platform-use inspection (article 29's quarterly check): pure functions of a
site's collected facts (:mod:`nanbu_secops.site.collect`), its configuration and the policy.

* Columns (article 14): the latest item date on the list page, its age in days at the as-of day
  (county time), against 7 days for a dynamic column and one calendar month for the others.
* Dead links: a link whose fetch failed (HTTP status ≥ 400, DNS, TCP, TLS, timeout), once per
  page carrying it.
* External links (article 18): hosts outside ``gov.cn`` and the allowed suffixes; the site's
  own hosts (its home page's and its columns') are not external whatever their name.
* Advertising suspects (article 12): a link to a listed domain, or a keyword in a link's text or
  in a page's visible text (home, own pages read, column pages). They are for a person to
  review: the inspection never calls them ads.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from nanbu_secops.site.collect import Facts, Got
from nanbu_secops.site.page import Page

POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["site_probes", "site_dynamic_limit_days", "site_other_limit_months", "site_government_suffixes",
                 "site_allowed_external", "site_ad_keywords", "site_ad_domains", "site_score_weights"],
    "properties": {
        "site_probes": {"type": "integer", "minimum": 1, "maximum": 1000},
        "site_dynamic_limit_days": {"type": "integer", "minimum": 1},
        "site_other_limit_months": {"type": "integer", "minimum": 1, "maximum": 120},
        "site_government_suffixes": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "site_allowed_external": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "site_ad_keywords": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "site_ad_domains": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "site_score_weights": {
            "type": "object", "required": ["home", "columns", "dead_links", "external_links"],
            "additionalProperties": False,
            "properties": {k: {"type": "number", "minimum": 0}
                           for k in ("home", "columns", "dead_links", "external_links")}},
    },
}


@dataclass(frozen=True)
class Column:
    name: str
    url: str
    kind: str  # "dynamic" | "other"


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier, the month's last day when it has none
    (one month before 03-31 is 02-28, or 02-29 in a leap year)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def limit_days(kind: str, as_of: dt.date, params: dict[str, Any]) -> int:
    """Article 14: a dynamic column within ``site_dynamic_limit_days``; any other within
    ``site_other_limit_months`` calendar months, counted back from the as-of day."""
    if kind == "dynamic":
        return int(params["site_dynamic_limit_days"])
    return (as_of - months_before(as_of, int(params["site_other_limit_months"]))).days


def _nav(facts: Facts) -> set[str]:
    """Links of the home page: on a list page they are the site's menus, not the column's items."""
    home = facts.read.get(facts.home)
    return {link for link, _ in home.links} if home else set()


def column(col: Column, got: Got | None, page: Page | None, as_of: dt.date, params: dict[str, Any],
           nav: set[str]) -> dict[str, Any]:
    """One column's latest date, age, limit and status (``ok``, ``stale``, ``blank``, ``error``)."""
    limit = limit_days(col.kind, as_of, params)
    doc: dict[str, Any] = {"name": col.name, "url": col.url, "kind": col.kind, "latest": None, "age_days": None,
                           "limit_days": limit, "status": "error", "reason": None}
    if got is None or not got.ok or page is None:
        doc["reason"] = f"list page cannot be fetched: {got.error if got else 'not fetched'}"
        return doc
    dated = [found.date for found in page.items if found.date <= as_of]
    future = [found.text for found in page.items if found.date > as_of]
    if dated:
        latest = max(dated)
        doc.update(latest=latest.isoformat(), age_days=(as_of - latest).days)
        stale = doc["age_days"] > limit
        doc["status"] = "stale" if stale else "ok"
        doc["reason"] = (f"latest item {doc['age_days']} days old, limit {limit} days" if stale else None)
        return doc
    unread = page.rejected + page.yearless + future
    entries = page.item_links - nav
    if unread:
        doc["reason"] = "no date can be read: " + ", ".join(repr(t) for t in unread[:5]) + (
            " (dates after the as-of day)" if future and not page.rejected and not page.yearless else "")
    elif entries:
        doc["reason"] = f"no date can be read in {len(entries)} list entries"
    else:
        doc.update(status="blank", reason="the list page has no items")
    return doc


def _suffix(host: str, suffixes: list[str]) -> str | None:
    host = host.lower().rstrip(".")
    for suffix in suffixes:
        suffix = suffix.lower().strip(".")
        if host == suffix or host.endswith("." + suffix):
            return suffix
    return None


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def dead_links(facts: Facts) -> list[dict[str, Any]]:
    """Every failed link, once per page carrying it, sorted by URL and page."""
    rows = [{"url": url, "from": page, "status": got.status if got.status is not None and got.status >= 400
             else got.error}
            for url, got in facts.checked.items() if not got.ok and url != facts.home
            for page in facts.carriers.get(url, [])]
    return sorted(rows, key=lambda r: (r["url"], r["from"]))


def external_links(facts: Facts, own_hosts: set[str], allowed: list[str]) -> list[dict[str, Any]]:
    """Links whose host is not the site's own and ends in none of ``allowed`` (gov.cn included)."""
    rows = []
    for url, carriers in facts.carriers.items():
        host = _host(url)
        if host in own_hosts or _suffix(host, allowed):
            continue
        rows += [{"url": url, "from": page, "host": host} for page in carriers]
    return sorted(rows, key=lambda r: (r["url"], r["from"]))


def ad_suspects(facts: Facts, keywords: list[str], domains: list[str]) -> list[dict[str, Any]]:
    """Links to a listed domain or whose text holds a keyword, and pages whose text holds one."""
    rows: list[dict[str, Any]] = []
    for page_url, page in [*facts.read.items(), *facts.column_pages.items()]:
        in_links: set[str] = set()
        for link, text in page.links:
            domain = _suffix(_host(link), domains)
            words = [k for k in keywords if k in text]
            in_links.update(words)
            why = ([f"domain {domain}"] if domain else []) + [f"link text contains {k!r}" for k in words]
            if why:
                rows.append({"url": link, "from": page_url, "why": "; ".join(why)})
        # a keyword already shown by a link of this page is not repeated for the page's text
        words = [k for k in keywords if k in page.text and k not in in_links]
        if words:
            rows.append({"url": page_url, "from": page_url,
                         "why": "page text contains " + ", ".join(repr(k) for k in words)})
    unique = {(r["url"], r["from"], r["why"]): r for r in rows}
    return sorted(unique.values(), key=lambda r: (r["url"], r["from"], r["why"]))


def _failure(i: int, got: Got) -> dict[str, Any]:
    return {"probe": i, "reason": got.error}


def judge(unit: str, facts: Facts, columns: list[Column], allowed_external: list[str], as_of: dt.date,
          params: dict[str, Any]) -> dict[str, Any]:
    """The site's part of the report, in the JSON form of issue 21."""
    nav = _nav(facts)
    own = {_host(facts.home), *(_host(c.url) for c in columns)}
    own |= {_host(got.final_url) for got in facts.probes if got.ok}
    allowed = [*params["site_government_suffixes"], *params["site_allowed_external"], *allowed_external]
    return {
        "unit": unit,
        "home": {"url": facts.home, "probes": len(facts.probes), "ok": sum(p.ok for p in facts.probes),
                 "failures": [_failure(i, p) for i, p in enumerate(facts.probes, 1) if not p.ok]},
        "columns": [column(c, facts.columns.get(c.url), facts.column_pages.get(c.url), as_of, params, nav)
                    for c in columns],
        "dead_links": dead_links(facts),
        "external_links": external_links(facts, own, allowed),
        "ad_suspects": ad_suspects(facts, params["site_ad_keywords"], params["site_ad_domains"]),
    }


def has_findings(site: dict[str, Any]) -> bool:
    """Anything a person must act on or review."""
    return (site["home"]["ok"] < site["home"]["probes"] or any(c["status"] != "ok" for c in site["columns"])
            or bool(site["dead_links"] or site["external_links"] or site["ad_suspects"]))


def score(site: dict[str, Any], weights: dict[str, float]) -> dict[str, float]:
    """The unit's platform-use points, per part and in total (the weights are the maximum of each
    part): home page by its share of good probes, columns by their share ``ok``, dead and external
    links full marks when none, else nothing. Advertising suspects await a person: no points."""
    home = site["home"]
    cols = site["columns"]
    parts = {
        "home": weights["home"] * (home["ok"] / home["probes"] if home["probes"] else 0.0),
        "columns": weights["columns"] * (sum(c["status"] == "ok" for c in cols) / len(cols) if cols else 1.0),
        "dead_links": weights["dead_links"] * (0.0 if site["dead_links"] else 1.0),
        "external_links": weights["external_links"] * (0.0 if site["external_links"] else 1.0),
    }
    parts = {k: round(v, 1) for k, v in parts.items()}
    return {**parts, "total": round(sum(parts.values()), 1), "max": round(sum(weights.values()), 1)}
