"""One verdict per portal or app endpoint: is it reachable, and the same, over IPv6 (article 9(2))?

What is measured follows the national IPv6 monitoring of government sites (and internet.nl's
ns_address, ns_reach, ws_address, ws_reach, ws_similar): AAAA records; IPv6 on the zone's
authoritative name servers; the homepage over IPv6 with a success rate over repeated probes;
parity with IPv4 (status, final URL, content); and the share of second- and third-level links
that work over IPv6. Verdicts:

- ``not-ready``: no AAAA, or no successful, verified HTTP(S) response over IPv6 at all;
- ``ready``: everything measured meets the policy;
- ``partial``: reachable over IPv6 but something falls short (reasons listed);
- ``error``: the target cannot be assessed (malformed URL, name does not exist, resolver down, or
  the same error status over IPv4 and IPv6, e.g. a 404 on both: a content fault, not an IPv6 one).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from nanbu_secops.ipv6 import crawl, dns, http

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Settings:
    """Thresholds (policies/article9.yml variables) and how hard to probe."""

    success_rate: float = 1.0      # share of IPv6 homepage probes that must succeed
    link_ratio: float = 0.85       # share of links per level that must work over IPv6
    similarity: float = 0.9        # v4/v6 body similarity at least this
    probes: int = 5
    depth: int = 1
    timeout: float = 10.0
    concurrency: int = 16
    link_limit: int = 2000
    ca_file: str | None = None


def target_url(target: str) -> str:
    """A domain (``www.nanbu.gov.cn``) means its HTTPS homepage; a URL must be http or https
    with a host and no credentials. Anything else is a ValueError naming the problem."""
    text = target.strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError("malformed target: empty or contains spaces")
    if "://" not in text:
        text = f"https://{text}/"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"malformed URL: scheme {parts.scheme!r} is not http or https")
    if "@" in parts.netloc:  # the message must not repeat them
        raise ValueError("URL carries a user name or password: refused, it would be copied into logs and reports")
    try:
        host, _ = parts.hostname, parts.port
    except ValueError as exc:
        raise ValueError(f"malformed URL: {exc}") from None
    if not host:
        raise ValueError("malformed URL: no host")
    if not _is_address(host) and (len(host) > 253 or any(not label or len(label) > 63 for label in host.split("."))):
        raise ValueError(f"malformed URL: {host!r} is not a valid host name")
    return text if parts.path else text + "/"


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolver_function(resolver: dns.Resolver) -> http.Resolve:
    """(host, family) → addresses through the chosen resolver, so HTTP follows the same DNS."""
    def resolve(host: str, family: int) -> list[str]:
        if _is_address(host):
            return [host] if ipaddress.ip_address(host).version == family else []
        try:
            return resolver.query(host, "AAAA" if family == 6 else "A").records
        except dns.DnsError:
            return []
    return resolve


def _error(target: str, url: str | None, reason: str) -> dict[str, Any]:
    return {"target": target, "url": url, "verdict": "error", "reason": reason, "dns": None, "v4": None, "v6": None,
            "parity": None, "success_rate_v6": None, "links": None}


def _parity(v4: http.Probe | None, v6: http.Probe | None) -> dict[str, Any] | None:
    if v4 is None or v6 is None or v4.status is None or v6.status is None:
        return None
    return {"status_match": v4.status == v6.status, "final_url_match": _same_url(v4.final_url, v6.final_url),
            "similarity": round(http.similarity(v4.body, v6.body, v4.content_type, v6.content_type), 3)}


def _same_url(a: str | None, b: str | None) -> bool:
    return (a or "").rstrip("/") == (b or "").rstrip("/")


def assess(target: str, resolver: dns.Resolver, settings: Settings, progress: Progress | None = None) -> dict[str, Any]:
    """Measure one target; never raises for the target's own trouble (that is the ``error`` verdict)."""
    try:
        url = target_url(target)
    except ValueError as exc:
        return _error(target, None, str(exc))
    host = urlsplit(url).hostname or ""
    if _is_address(host):
        facts = None
        has_a, has_aaaa = ipaddress.ip_address(host).version == 4, ipaddress.ip_address(host).version == 6
    else:
        facts = dns.inspect(host, resolver)
        if facts.error:
            return _error(target, url, facts.error)
        has_a, has_aaaa = bool(facts.a), bool(facts.aaaa)
    resolve = resolver_function(resolver)
    fetch_kw = {"ca_file": settings.ca_file, "timeout": settings.timeout}
    v4 = http.fetch(url, 4, resolve, **fetch_kw) if has_a else None
    probes = http.probe_many(url, 6, resolve, settings.probes, **fetch_kw) if has_aaaa else []
    good = [p for p in probes if p.ok]
    v6 = good[0] if good else (probes[0] if probes else None)
    rate = len(good) / len(probes) if probes else 0.0
    parity = _parity(v4 if v4 is not None and v4.ok else None, v6 if good else None)
    links = _links(url, v6 if good else v4, settings, resolver, resolve, progress) if settings.depth > 0 else None
    verdict, reasons = _verdict(facts, has_aaaa, good, rate, parity, links, settings)
    if verdict == "not-ready" and v4 is not None and _content_fault(v4, probes):
        verdict, reasons = "error", [f"HTTP status {v4.status} over IPv4 and IPv6 alike: the page is missing, "
                                     "not an IPv6 fault"]
    return {"target": target, "url": url, "verdict": verdict, "reason": "; ".join(reasons) or None,
            "dns": facts.as_json() if facts else {"a": [host] if has_a else [], "aaaa": [host] if has_aaaa else [], "ns": []},
            "v4": v4.as_json() if v4 else {"ok": False, "error": "no A record"},
            "v6": v6.as_json() if v6 else {"ok": False, "error": "no AAAA record"},
            "v6_probes": [p.as_json() for p in probes],
            "parity": parity, "success_rate_v6": round(rate, 3), "links": links}


def _links(url: str, home: http.Probe | None, settings: Settings, resolver: dns.Resolver, resolve: http.Resolve,
           progress: Progress | None) -> dict[str, Any] | None:
    if home is None or not home.ok:
        return None

    def aaaa(host: str) -> list[str]:
        return resolve(host, 6)

    checker = crawl.link_checker(aaaa, resolve, ca_file=settings.ca_file, timeout=settings.timeout)
    found = crawl.crawl(home.final_url or url, home.body, home.content_type, settings.depth, checker,
                        concurrency=settings.concurrency, progress=progress, limit=settings.link_limit)
    return found.as_json()


def _content_fault(v4: http.Probe, probes: list[http.Probe]) -> bool:
    """Every answer, over both families, is the same error status (a 404 on both): the target
    itself is wrong (a content fault), so its IPv6 readiness cannot be judged from it."""
    return (v4.status is not None and v4.status >= 400 and bool(probes)
            and all(p.status == v4.status and p.error is None for p in probes))


def _verdict(facts: dns.DnsFacts | None, has_aaaa: bool, good: list[http.Probe], rate: float,
             parity: dict[str, Any] | None, links: dict[str, Any] | None, settings: Settings) -> tuple[str, list[str]]:
    if not has_aaaa:
        return "not-ready", ["no AAAA record"]
    if not good:
        return "not-ready", ["no successful HTTP(S) response over IPv6"]
    reasons = []
    if rate < settings.success_rate:
        reasons.append(f"IPv6 success rate {rate:.0%} below {settings.success_rate:.0%}")
    if parity is None:
        reasons.append("no IPv4 response to compare with")
    else:
        if not parity["status_match"]:
            reasons.append("status code differs between IPv4 and IPv6")
        if not parity["final_url_match"]:
            reasons.append("final URL differs between IPv4 and IPv6")
        if parity["similarity"] < settings.similarity:
            reasons.append(f"content similarity {parity['similarity']:.2f} below {settings.similarity:.2f}")
    for server in facts.ns if facts else []:
        if server.answers_v6 is None:
            reasons.append(f"name server {server.name} has no IPv6 address")
        elif not server.answers_v6:
            reasons.append(f"name server {server.name} does not answer over IPv6")
    for level in ("level2", "level3"):
        ratio = (links or {}).get(level, {}).get("ratio")
        if ratio is not None and ratio < settings.link_ratio:
            reasons.append(f"{level} IPv6 link ratio {ratio:.0%} below {settings.link_ratio:.0%}")
    return ("partial" if reasons else "ready"), reasons


def client_readiness(client: str, endpoints: list[str], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A mobile client works on an IPv6-only network when every endpoint has AAAA and answered
    over IPv6; dual-stack health (every endpoint ``ready``) is reported apart."""
    missing = []
    for endpoint in endpoints:
        result = results[endpoint]
        if not (result.get("dns") or {}).get("aaaa") or not (result.get("v6") or {}).get("ok"):
            missing.append(endpoint)
    return {"client": client, "endpoints": endpoints, "ipv6_only": not missing,
            "dual_stack": all(results[e]["verdict"] == "ready" for e in endpoints),
            "reason": f"not usable over IPv6: {', '.join(missing)}" if missing else None}


POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ipv6_success_rate", "ipv6_link_ratio", "ipv6_similarity"],
    "properties": {
        "ipv6_success_rate": {"type": "number", "minimum": 0, "maximum": 1},
        "ipv6_link_ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "ipv6_similarity": {"type": "number", "minimum": 0, "maximum": 1},
        "ipv6_mobile_clients": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
}
