"""Terminals ready for IPv6 (article 9(2): 移动客户端及服务全面支持 IPv6).

Four checks: the terminal has a global IPv6 address, an IPv6 default route, a resolver it can
reach over IPv6 (or that returns AAAA records), and the unit's own services listen on IPv6.

Addresses, routes and sockets exist only in a running kernel: for a ``--root`` tree those
controls are skipped and the reason says they need the live system. Resolvers are read from
files, so NS09-IPV6-003 is judged on a tree too (its AAAA probe is live only).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from nanbu_secops.checks import Outcome, check, failed, passed, skipped, unverified
from nanbu_secops.checks.network import LIVE_ONLY, PORTS_PARAMS, parse_ports
from nanbu_secops.collect import CollectError
from nanbu_secops.collect.ipv6 import Addresses, DefaultRoutes, Lookup
from nanbu_secops.collect.network import Listener, Listening, Resolvers

NO_IPV6 = "IPv6 is off in the kernel: /proc/net/if_inet6 does not exist (ipv6.disable=1 on the kernel command line?)"


def _disabled_note(addresses: Addresses) -> dict[str, Any]:
    return {"disable_ipv6": addresses.disabled_on} if addresses.disabled_on else {}


# --- NS09-IPV6-001 a global address -----------------------------------------------------------

ADDRESS_PARAMS = {
    "type": "object",
    "required": ["accept_ula"],
    "additionalProperties": False,
    "properties": {"accept_ula": {
        "type": "boolean",
        "description": "true: a unique local address (fc00::/7) counts, for a unit on a ULA-only internal network"}},
}


@check("ipv6_global_address", facts=("ipv6_addresses",), params=ADDRESS_PARAMS)
def ipv6_global_address(ipv6_addresses: Addresses, *, accept_ula: bool) -> Outcome:
    """A non-loopback interface must hold a usable global unicast IPv6 address (2000::/3).

    Link-local addresses (fe80::/10) reach only the local link and unique local addresses
    (fc00::/7) only the internal network, so neither lets a client use IPv6 services; a unit
    whose network is IPv6 inside only may accept ULA (``ipv6_accept_ula``). An address still in
    duplicate address detection (tentative) or that failed it is not usable and does not count.
    """
    if not ipv6_addresses.live:
        return skipped(LIVE_ONLY.format(what="IPv6 addresses"))
    if not ipv6_addresses.enabled:
        return failed(problem=NO_IPV6)
    accepted = {"global", "ula"} if accept_ula else {"global"}
    shown = [a for a in ipv6_addresses.addresses if a.kind != "loopback" and a.interface != "lo"]
    listed = [{"address": f"{a.address}/{a.prefixlen}", "interface": a.interface, "kind": a.kind,
               **({"state": a.state} if a.state else {})} for a in shown]
    evidence: dict[str, Any] = {"accepted": sorted(accepted), "addresses": listed, **_disabled_note(ipv6_addresses)}
    good = [f"{a.address} ({a.interface})" for a in shown if a.kind in accepted and a.usable]
    if good:
        return passed(**evidence, ready=good)
    kinds = {a.kind for a in shown}
    if not shown:
        problem = "no IPv6 address on any interface other than loopback"
    elif kinds & accepted:
        problem = "the global IPv6 addresses are not usable yet (duplicate address detection pending or failed)"
    elif "ula" in kinds and not accept_ula:
        problem = ("only unique local (fc00::/7) or link-local IPv6 addresses: no global address "
                   "(a ULA-only internal network: set ipv6_accept_ula: true)")
    else:
        problem = "only link-local (fe80::/10) or other non-global IPv6 addresses: no global address"
    return failed(**evidence, problem=problem)


# --- NS09-IPV6-002 a default route ------------------------------------------------------------

@check("ipv6_default_route", facts=("ipv6_default_routes",))
def ipv6_default_route(ipv6_default_routes: DefaultRoutes) -> Outcome:
    """An IPv6 default route (::/0) must exist, with a next hop or out of a device.

    Without one the terminal reaches only the IPv6 networks it is directly attached to. The
    kernel's own unreachable/prohibit default routes are not routes out and are left out.
    """
    if not ipv6_default_routes.live:
        return skipped(LIVE_ONLY.format(what="routes"))
    if not ipv6_default_routes.enabled:
        return failed(problem=NO_IPV6)
    routes = [{"gateway": r.gateway or "(none: out of the device)", "interface": r.interface, "metric": r.metric,
               "source": r.source} for r in ipv6_default_routes.routes]
    if routes:
        return passed(default_routes=routes)
    return failed(default_routes=[], problem="no IPv6 default route (::/0): only directly connected IPv6 networks "
                                             "are reachable")


# --- NS09-IPV6-003 a resolver usable with IPv6 ------------------------------------------------

RESOLVER_PARAMS = {
    "type": "object",
    "required": ["probe_name"],
    "additionalProperties": False,
    "properties": {"probe_name": {
        "type": "string",
        "description": "a name (e.g. the platform's portal) the system resolver must return AAAA for, on the "
                       "live system only; empty: no lookup"}},
}


def _resolver_family(address: str) -> str:
    """ipv6, ipv4, loopback (a local cache: where it forwards is not known) or unreadable."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "unreadable"
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_unspecified:
        return "loopback"
    return f"ipv{ip.version}"


@check("ipv6_resolver", facts=("resolvers", "name_lookup"), params=RESOLVER_PARAMS)
def ipv6_resolver(resolvers: Resolvers, name_lookup: Lookup, *, probe_name: str) -> Outcome:
    """A configured name server must have an IPv6 address, or the resolver must return AAAA.

    The name servers are the ones NS05-DNS-001 reads (resolv.conf, systemd-resolved's upstreams
    behind its stub). A loopback server (a local cache) does not count: where it forwards is
    not known here. With ``ipv6_probe_name`` set, the live system's resolver (the C library:
    hosts file, then DNS) is also asked for that name's AAAA records; an answer with one passes
    even when every name server is an IPv4 address. The probe is never made for a --root tree.
    """
    servers = [{"address": r.address, "origin": r.origin, "family": _resolver_family(r.address),
                **({"via": r.via} if r.via else {})} for r in resolvers.resolvers]
    evidence: dict[str, Any] = {"resolvers": servers}
    if resolvers.notes:
        evidence["notes"] = resolvers.notes
    ipv6 = [s["address"] for s in servers if s["family"] == "ipv6"]
    if ipv6:
        evidence["ipv6_resolvers"] = ipv6
    if not probe_name:
        return passed(**evidence) if ipv6 else failed(
            **evidence, problem="no name server with an IPv6 address (and no ipv6_probe_name to ask for AAAA)")
    if not name_lookup.live:
        if ipv6:
            return passed(**evidence, probe=f"AAAA of {probe_name}: not asked (offline)")
        return skipped(f"needs the live system: no name server has an IPv6 address, and the AAAA lookup of "
                       f"{probe_name} is made only on the live system, not for a --root tree", **evidence)
    try:
        answer = name_lookup.aaaa(probe_name)
    except CollectError as exc:
        evidence["probe"] = {"name": probe_name, "error": str(exc)}
        return passed(**evidence) if ipv6 else unverified(f"AAAA lookup of {probe_name}: {exc}", **evidence)
    evidence["probe"] = {"name": probe_name, "aaaa": answer}
    if ipv6 or answer:
        return passed(**evidence)
    return failed(**evidence, problem=f"no name server with an IPv6 address, and the resolver returned no AAAA "
                                      f"record for {probe_name}")


# --- NS09-IPV6-004 services listen on IPv6 ----------------------------------------------------

SERVICE_PARAMS = {
    **PORTS_PARAMS,
    "required": ["ports"],
    "properties": {"ports": {**PORTS_PARAMS["properties"]["allowed"],
                             "description": "the unit's service ports: 443 (TCP), \"443/tcp\", \"443/udp\", "
                                            "\"8000-8010\""}},
}


def _family(address: str) -> str:
    """How a listener's address is reached: ipv6, ipv4, loopback or link-local (this link only)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "unknown"
    if ip.version == 6 and ip.ipv4_mapped:  # an IPv6 socket bound to an IPv4 address serves IPv4
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.version == 6 and ip.is_link_local:
        return "link-local"
    return f"ipv{ip.version}"


def _listener(s: Listener) -> dict[str, Any]:
    return {"address": s.address, "process": s.process, "pid": s.pid, "user": s.user}


@check("ipv6_service_listeners", facts=("listening",), params=SERVICE_PARAMS)
def ipv6_service_listeners(listening: Listening, *, ports: list[int | str]) -> Outcome:
    """Each of the unit's service ports that listens beyond loopback must listen on IPv6 too.

    ``::`` (every address; with IPV6_V6ONLY off it takes IPv4 as well) or a specific IPv6
    address counts; ``0.0.0.0``, IPv4 addresses and IPv4-mapped ones (``::ffff:10.0.0.5``) do
    not, nor does a link-local address, which reaches this link only. A port that nothing
    listens on, or only loopback, serves no client, so it passes with a note saying so: the
    control is about services the terminal offers, not about requiring them. The evidence
    names each port's address, process, pid and user.
    """
    if not listening.live:
        return skipped(LIVE_ONLY.format(what="listening sockets"))
    report = []
    ipv4_only = []
    for proto, first, last in sorted(parse_ports(ports)):
        label = f"{first}/{proto}" if first == last else f"{first}-{last}/{proto}"
        found = [s for s in listening.listeners if s.protocol == proto and first <= s.port <= last]
        for port in sorted({s.port for s in found}) or [None]:
            on_port = [s for s in found if s.port == port]
            families = {_family(s.address) for s in on_port}
            entry: dict[str, Any] = {"port": f"{port}/{proto}" if port is not None else label,
                                     "listeners": [_listener(s) for s in on_port]}
            if not on_port:
                entry["result"] = "not listening: nothing to serve"
            elif "ipv6" in families:
                entry["result"] = "ipv6" + (" and ipv4" if "ipv4" in families else "")
            elif "ipv4" in families:
                entry["result"] = "ipv4 only"
                ipv4_only.append(entry["port"])
            else:
                entry["result"] = "loopback or link-local only: not served to the network"
            report.append(entry)
    evidence: dict[str, Any] = {"ports": report}
    if not report:
        return passed(**evidence, note="no service ports in ipv6_service_ports: nothing to check")
    if ipv4_only:
        return failed(**evidence, ipv4_only=ipv4_only)
    if all(e["result"].startswith(("not listening", "loopback")) for e in report):
        evidence["note"] = "none of the service ports is served to the network: nothing to serve over IPv6"
    return passed(**evidence)
