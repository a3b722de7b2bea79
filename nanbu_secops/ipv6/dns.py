"""DNS facts for the IPv6 readiness check (article 9(2)), gathered with dnspython.

For a target name: its A and AAAA records (with query times), the zone holding it (the closest
enclosing name with NS records), and for each of the zone's name servers its addresses and
whether it answers DNS over IPv6 (an SOA query for the zone sent straight to each of its IPv6
addresses, UDP then TCP when truncated): internet.nl's ``ns_address`` and ``ns_reach``.

Every lookup goes to one resolver: the ``--resolver`` address when given, else the servers in
this machine's ``/etc/resolv.conf``. Failures are told apart, because a report must say which:

- :class:`NameMissing` – the name does not exist (NXDOMAIN);
- an empty record list – the name exists but has no records of that type (NODATA);
- :class:`ResolverUnreachable` – no answer from the resolver (timeout, refused, no route);
- :class:`DnsError` – the resolver answered with an error (SERVFAIL, REFUSED...) or garbage.

:class:`Resolver` keeps no mutable state (each query opens its own socket), so one instance may
be shared by the threads of a pool. :func:`inspect` never raises for DNS trouble: it is recorded
in :attr:`DnsFacts.error`.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

__all__ = [
    "Answer",
    "DnsError",
    "DnsFacts",
    "NameMissing",
    "NameServer",
    "Resolver",
    "ResolverUnreachable",
    "format_server",
    "inspect",
    "parse_resolver",
    "zone_of",
]

_MAX_CHAIN = 16  # CNAME links followed inside one answer
_EDNS_PAYLOAD = 1232  # the DNS flag day 2020 size: no fragmentation, TCP when larger
_NAME_TYPES = {dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR, dns.rdatatype.DNAME}


class DnsError(Exception):
    """The resolver answered, but with an error (SERVFAIL, REFUSED, malformed reply...)."""


class NameMissing(DnsError):
    """The name does not exist (NXDOMAIN)."""


class ResolverUnreachable(DnsError):
    """No answer at all from the resolver: timeout, connection refused, no route."""


# ------------------------------------------------------------------------ resolver address


def parse_resolver(text: str) -> tuple[str, int]:
    """``127.0.0.1``, ``::1``, ``[::1]:5353``, ``169.254.77.1:5353`` → (address, port).

    The port defaults to 53. A name instead of an IP address, a bad port, or an IPv6 address
    with a port but without brackets is a ValueError with a plain message.
    """
    raw = text.strip()
    if not raw:
        raise ValueError("resolver address is empty")
    port_text: str | None = None
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep:
            raise ValueError(f"resolver {text!r}: missing ']' after the IPv6 address")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"resolver {text!r}: expected ':PORT' after ']'")
            port_text = rest[1:]
        try:
            addr = ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"resolver {text!r}: {host!r} is not an IPv6 address") from None
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
        try:
            addr = ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"resolver {text!r}: {host!r} is not an IPv4 address "
                             "(write an IPv6 address with a port as [ADDRESS]:PORT)") from None
    else:
        try:
            addr = ipaddress.ip_address(raw)
        except ValueError:
            raise ValueError(f"resolver {text!r} is not an IP address (give the resolver's IPv4 or IPv6 "
                             "address, optionally with :PORT)") from None
    port = 53
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"resolver {text!r}: port must be a number from 1 to 65535")
        port = int(port_text)
    return str(addr), port


def format_server(server: tuple[str, int]) -> str:
    """(address, port) → ``1.2.3.4:53`` or ``[::1]:53``."""
    addr, port = server
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


# ------------------------------------------------------------------------------ Resolver


@dataclass(frozen=True)
class Answer:
    """Records of one type (text; names without the trailing dot) and the query time."""

    records: list[str]
    ms: float


def _name(name: str | dns.name.Name) -> dns.name.Name:
    if isinstance(name, dns.name.Name):
        return name
    text = name.strip()
    if not text or text == ".":
        raise ValueError("empty DNS name")
    try:
        return dns.name.from_text(text)
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise ValueError(f"malformed DNS name {name!r}: {exc}") from None


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower() if name != dns.name.root else "."


def _record_text(rdata: Any) -> str:
    if rdata.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return str(ipaddress.ip_address(rdata.address))
    text = rdata.to_text()
    if rdata.rdtype in _NAME_TYPES:
        return text.lower()[:-1] if text.endswith(".") and text != "." else text.lower()
    return text


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, dns.exception.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__


def _exchange(qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, server: tuple[str, int], timeout: float,
              *, recursion: bool) -> tuple[dns.message.Message, float]:
    """One query to one server, UDP then TCP when truncated. Raises dnspython's or OSError."""
    query = dns.message.make_query(qname, rdtype, use_edns=0, payload=_EDNS_PAYLOAD)
    if not recursion:
        query.flags &= ~dns.flags.RD
    start = time.perf_counter()
    response, _tcp = dns.query.udp_with_fallback(query, server[0], timeout=timeout, port=server[1])
    return response, (time.perf_counter() - start) * 1000


class Resolver:
    """Asks one resolver: ``server`` = (address, port), or None for this machine's resolv.conf.

    ``timeout`` is per server and attempt. Thread-safe: nothing is changed after construction.
    """

    def __init__(self, server: tuple[str, int] | None = None, timeout: float = 3.0) -> None:
        self.timeout = float(timeout)
        self.server = server
        self._config_error: str | None = None
        if server is not None:
            ipaddress.ip_address(server[0])  # a ValueError here is the caller's bug
            self.servers: tuple[tuple[str, int], ...] = ((server[0], int(server[1])),)
        else:
            try:
                system = dns.resolver.Resolver(configure=True)
                self.servers = tuple((str(ns), int(system.port)) for ns in system.nameservers
                                     if _is_address(str(ns)))
            except dns.exception.DNSException as exc:  # no or unreadable /etc/resolv.conf
                self.servers, self._config_error = (), str(exc)
            if not self.servers and self._config_error is None:
                self._config_error = "no name server in /etc/resolv.conf"

    def __repr__(self) -> str:
        return f"Resolver({self.describe()}, timeout={self.timeout:g})"

    def describe(self) -> str:
        """``resolver 1.2.3.4:53`` or ``system resolver (…)``, for messages."""
        if self.server is not None:
            return f"resolver {format_server(self.servers[0])}"
        listed = ", ".join(format_server(s) for s in self.servers) or "none configured"
        return f"system resolver ({listed})"

    def ask(self, name: str | dns.name.Name, rdtype: str, *, recursion: bool = True) -> tuple[dns.message.Message, float]:
        """The raw response (rcode NOERROR or NXDOMAIN) and its time in ms.

        Servers are tried in order; a server that does not answer, or answers with another
        rcode, makes the next one be tried. Raises ResolverUnreachable when none answered,
        DnsError when the last answer was an error.
        """
        qname, qtype = _name(name), dns.rdatatype.from_text(rdtype)
        if not self.servers:
            raise ResolverUnreachable(f"{self.describe()} unreachable: {self._config_error}")
        unreachable: list[tuple[str, str]] = []  # (server, why)
        failed: list[str] = []
        for server in self.servers:
            try:
                response, ms = _exchange(qname, qtype, server, self.timeout, recursion=recursion)
            except (dns.exception.Timeout, OSError) as exc:
                unreachable.append((format_server(server), _reason(exc, self.timeout)))
                continue
            except dns.exception.DNSException as exc:
                failed.append(f"{format_server(server)} sent a malformed answer: {_reason(exc, self.timeout)}")
                continue
            rcode = response.rcode()
            if rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                return response, ms
            failed.append(f"{format_server(server)} answered {dns.rcode.to_text(rcode)}")
        what = f"{_text(qname)} {dns.rdatatype.to_text(qtype)}"
        if failed:
            raise DnsError(f"{what}: " + "; ".join(failed + [f"{where}: {why}" for where, why in unreachable]))
        if self.server is not None:
            raise ResolverUnreachable(f"{self.describe()} unreachable: {unreachable[0][1]}")
        raise ResolverUnreachable("system resolver unreachable: " + "; ".join(f"{where}: {why}" for where, why in unreachable))

    def query(self, name: str, rdtype: str) -> Answer:
        """Records of ``rdtype`` for ``name``, following CNAMEs in the answer.

        NXDOMAIN → NameMissing; the name exists without such records → empty list.
        """
        qname, qtype = _name(name), dns.rdatatype.from_text(rdtype)
        owner, total = qname, 0.0
        for _ in range(_MAX_CHAIN):
            response, ms = self.ask(owner, rdtype)
            total += ms
            if response.rcode() == dns.rcode.NXDOMAIN:
                raise NameMissing(f"{_text(qname)} does not exist" if owner == qname
                                  else f"{_text(qname)} is an alias of {_text(owner)}, which does not exist")
            records, end = _records(response, owner, qtype)
            if records or end is None:
                return Answer(records, round(total, 2))
            if end == owner:
                return Answer([], round(total, 2))
            owner = end  # the answer stopped at a CNAME (e.g. into another zone): ask for its target
        raise DnsError(f"{_text(qname)}: CNAME chain longer than {_MAX_CHAIN}")


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _records(response: dns.message.Message, qname: dns.name.Name,
             qtype: dns.rdatatype.RdataType) -> tuple[list[str], dns.name.Name | None]:
    """Follow the CNAME chain from ``qname`` through the answer section: (records at its end,
    None) or, when the chain ends in a CNAME whose target's records are not there, ([], target)."""
    owner = qname
    for _ in range(_MAX_CHAIN):
        rrset = _find(response.answer, owner, qtype)
        if rrset is not None:
            return sorted({_record_text(rd) for rd in rrset}), None
        alias = _find(response.answer, owner, dns.rdatatype.CNAME) if qtype != dns.rdatatype.CNAME else None
        if alias is None:
            # a resolver that did not chase the alias (unbound's local data does not): ask again
            return [], (owner if owner != qname else None)
        owner = next(iter(alias)).target
    raise DnsError(f"{_text(qname)}: CNAME chain longer than {_MAX_CHAIN}")



def _find(section: list[Any], owner: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Any:
    for rrset in section:
        if rrset.name == owner and rrset.rdtype == rdtype and rrset.rdclass == dns.rdataclass.IN:
            return rrset
    return None


# ---------------------------------------------------------------------------- zone apex


def zone_of(name: str, resolver: Resolver) -> str | None:
    """The zone holding ``name``: the closest enclosing name that has NS records.

    Walks up from ``name`` itself. A CNAME at a name means that name is not an apex (a CNAME
    cannot sit beside NS), so the walk goes on with its parent and never follows the alias
    into another zone. The SOA a resolver puts in the authority section of a negative answer
    names the apex, so the walk jumps there (and checks its NS) instead of asking every label.
    Returns None when no name below the root has NS records. Raises what ``Resolver.ask`` does.
    """
    return _zone_and_ns(name, resolver)[0]


def _zone_and_ns(name: str, resolver: Resolver) -> tuple[str | None, list[str]]:
    """:func:`zone_of` and the apex's NS names (from the same answer)."""
    current = _name(name)
    while current != dns.name.root:
        response, _ = resolver.ask(current, "NS")
        found = _find(response.answer, current, dns.rdatatype.NS) if response.rcode() == dns.rcode.NOERROR else None
        if found is not None:
            return _text(current), sorted({_record_text(rd) for rd in found})
        parent = current.parent()
        if _find(response.answer, current, dns.rdatatype.CNAME) is None:
            for rrset in response.authority:
                if (rrset.rdtype == dns.rdatatype.SOA and current.is_subdomain(rrset.name)
                        and rrset.name != current and rrset.name != dns.name.root):
                    parent = rrset.name  # the apex as the resolver knows it: verify its NS next
                    break
        current = parent
    return None, []


# ------------------------------------------------------------------------------ facts


@dataclass
class NameServer:
    """One of the zone's name servers; ``answers_v6`` is None when it has no AAAA."""

    name: str
    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    answers_v6: bool | None = None
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "a": list(self.a), "aaaa": list(self.aaaa), "answers_v6": self.answers_v6,
                "detail": self.detail}


@dataclass
class DnsFacts:
    """What DNS says about one target name; ``error`` is set when it could not all be found."""

    name: str
    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    a_ms: float | None = None
    aaaa_ms: float | None = None
    zone: str | None = None
    ns: list[NameServer] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"a": list(self.a), "aaaa": list(self.aaaa), "ns": [s.as_json() for s in self.ns], "zone": self.zone,
                "a_ms": self.a_ms, "aaaa_ms": self.aaaa_ms}


def probe_v6(zone: str, address: str, *, port: int = 53, timeout: float = 2.0) -> tuple[bool, str]:
    """Does the server at ``address`` answer an SOA query for ``zone`` with that SOA? (ok, detail)."""
    qname = _name(zone)
    where = format_server((address, port))
    try:
        response, ms = _exchange(qname, dns.rdatatype.SOA, (address, port), timeout, recursion=False)
    except (dns.exception.Timeout, OSError) as exc:
        return False, f"{where}: {_reason(exc, timeout)}"
    except dns.exception.DNSException as exc:
        return False, f"{where}: malformed answer: {_reason(exc, timeout)}"
    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        return False, f"{where}: answered {dns.rcode.to_text(rcode)}"
    if _find(response.answer, qname, dns.rdatatype.SOA) is None:
        return False, f"{where}: answered without the SOA of {_text(qname)}"
    return True, f"{where}: answered in {ms:.1f} ms"


def _name_server(ns_name: str, zone: str, resolver: Resolver, probe_timeout: float, ns_port: int) -> NameServer:
    server = NameServer(ns_name)
    try:
        server.a = resolver.query(ns_name, "A").records
        server.aaaa = resolver.query(ns_name, "AAAA").records
    except NameMissing:
        server.detail = "name server name does not exist"
        return server
    except DnsError as exc:
        server.detail = f"addresses unknown: {exc}"
        return server
    if not server.aaaa:
        server.detail = "no AAAA record"
        return server
    results = [probe_v6(zone, addr, port=ns_port, timeout=probe_timeout) for addr in server.aaaa]
    server.answers_v6 = any(ok for ok, _ in results)
    server.detail = "; ".join(detail for _, detail in results)
    return server


def inspect(name: str, resolver: Resolver, *, probe_timeout: float = 2.0, ns_port: int = 53) -> DnsFacts:
    """A/AAAA of ``name``, its zone, and each name server's IPv6 reachability (DNS over IPv6
    on ``ns_port``, 53 in real use). DNS trouble is put in ``error``, never raised."""
    facts = DnsFacts(name.strip().rstrip(".").lower() or name)
    try:
        _name(name)
    except ValueError as exc:
        facts.error = str(exc)
        return facts
    try:
        found = resolver.query(name, "A")
        facts.a, facts.a_ms = found.records, found.ms
        found = resolver.query(name, "AAAA")
        facts.aaaa, facts.aaaa_ms = found.records, found.ms
    except NameMissing:
        facts.error = "name does not exist"
        return facts
    except ResolverUnreachable as exc:
        facts.error = str(exc)
        return facts
    except DnsError as exc:
        facts.error = f"lookup failed: {exc}"
        return facts
    try:
        facts.zone, ns_names = _zone_and_ns(name, resolver)
    except ResolverUnreachable as exc:
        facts.error = str(exc)
        return facts
    except DnsError as exc:
        facts.error = f"name servers of {facts.zone or name} unknown: {exc}"
        return facts
    if not ns_names:
        return facts
    zone = facts.zone
    assert zone is not None
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(ns_names))) as pool:
        facts.ns = list(pool.map(lambda ns: _name_server(ns, zone, resolver, probe_timeout, ns_port), sorted(ns_names)))
    return facts
