"""A safe, controllable network environment on unit terminals (article 5: 安全可控的网络环境).

Six checks: a default-deny host firewall, listening ports within the unit's allow-list, time
synchronisation, approved resolvers, approved default gateways and approved proxies.

Approved lists are policy variables the county states per unit. An empty list of resolvers or
gateways cannot mean "none allowed" (a terminal needs both to work), so it means "not stated yet":
the control then reports ``error`` (cannot be evaluated; never all clear) and names the variable.
An empty proxy list does mean "no proxy allowed", as most terminals reach the platform directly.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from nanbu_secops.checks import Outcome, check, failed, passed, skipped, unverified
from nanbu_secops.collect.firewall import FAMILIES, FirewallFacts
from nanbu_secops.collect.network import Listening, Proxies, Resolvers, Routes, split_proxy
from nanbu_secops.collect.timesync import TimeSync

LIVE_ONLY = "needs the live system: {what} exist only in a running kernel, not in a --root tree"


def _approved_list(description: str) -> dict[str, Any]:
    return {"type": "array", "description": description,
            "items": {"type": "string", "minLength": 1}}


# --- firewall --------------------------------------------------------------------------------

@check("firewall_default_deny", facts=("firewall",))
def firewall_default_deny(firewall: FirewallFacts) -> Outcome:
    """One active firewall must deny inbound IPv4 and IPv6 traffic by default.

    A firewall that is configured but not active protects nothing, and one whose input chain
    accepts by default only blocks what someone thought of; either way the evidence lists every
    front end found, so the operator sees which one to enable or fix. Offline, "active" means
    enabled to start at boot, as the evidence says.
    """
    evidence: dict[str, Any] = {"mode": "live: rules loaded in the kernel" if firewall.live
                                else "offline: configuration enabled at boot",
                                "firewalls": [{"name": f.name, "active": f.active, "how": f.how_active,
                                               "source": f.source, "default_deny": f.deny,
                                               **({"notes": f.notes} if f.notes else {}),
                                               **({"error": f.error} if f.error else {})}
                                              for f in firewall.firewalls]}
    if not firewall.firewalls:
        return failed(**evidence, problem="no host firewall (nftables, iptables, ufw, firewalld) is installed")
    for fw in firewall.firewalls:
        if fw.active and all(family in fw.deny for family in FAMILIES):
            return passed(**evidence, protecting=fw.name)
    unread = [f"{f.name}: {f.error}" for f in firewall.firewalls if f.error]
    if unread:  # the one that could not be read may be the one protecting the host
        return unverified("; ".join(unread), **evidence)
    active = [f for f in firewall.firewalls if f.active]
    if not active:
        return failed(**evidence, problem="no firewall is active")
    open_families = sorted({family for f in active for family in FAMILIES if family not in f.deny})
    return failed(**evidence, problem="no active firewall denies inbound traffic by default for "
                  + " and ".join(open_families))


# --- listening ports -------------------------------------------------------------------------

_PORT = re.compile(r"^([0-9]{1,5})(?:-([0-9]{1,5}))?(?:/(tcp|udp))?$")

PORTS_PARAMS = {
    "type": "object",
    "required": ["allowed"],
    "additionalProperties": False,
    "properties": {
        "allowed": {
            "type": "array",
            "description": "ports that may listen beyond loopback: 22 (TCP), \"22/tcp\", \"123/udp\", \"60000-61000/udp\"",
            "items": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 65535},
                                {"type": "string", "pattern": _PORT.pattern}]},
        },
    },
}


def parse_ports(allowed: list[int | str]) -> set[tuple[str, int, int]]:
    """Allow-list entries as (protocol, first, last); a bare number is a TCP port."""
    ranges = set()
    for entry in allowed:
        m = _PORT.match(str(entry))
        if m is None:  # the schema has already refused it; kept for direct callers
            raise ValueError(f"not a port: {entry!r}")
        first = int(m.group(1))
        ranges.add((m.group(3) or "tcp", first, int(m.group(2) or first)))
    return ranges


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


@check("listening_ports", facts=("listening",), params=PORTS_PARAMS)
def listening_ports(listening: Listening, *, allowed: list[int | str]) -> Outcome:
    """Every port reachable from the network must be on the unit's allow-list.

    A listener on loopback only is not reachable from the network and is ignored. Each finding
    names the process, pid and user, so the operator knows what to stop or to ask about.
    """
    if not listening.live:
        return skipped(LIVE_ONLY.format(what="listening sockets"))
    ranges = parse_ports(allowed)
    exposed = [s for s in listening.listeners if not is_loopback(s.address)]
    outside = [s for s in exposed
               if not any(proto == s.protocol and first <= s.port <= last for proto, first, last in ranges)]
    evidence = {"allowed": [str(a) for a in allowed],
                "listening": [f"{port}/{proto}" for proto, port in sorted({(s.protocol, s.port) for s in exposed})]}
    if outside:
        return failed(**evidence, not_allowed=[
            {"port": s.port, "protocol": s.protocol, "address": s.address, "process": s.process, "pid": s.pid,
             "user": s.user} for s in outside])
    return passed(**evidence)


# --- time synchronisation --------------------------------------------------------------------

def in_approved(value: str, approved: list[str]) -> bool:
    """An address within an approved address or CIDR, or a host name equal to an approved one."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return value.lower().rstrip(".") in {a.lower().rstrip(".") for a in approved}
    for entry in approved:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name entry cannot match an address
    return False


TIME_PARAMS = {
    "type": "object",
    "required": ["approved_servers"],
    "additionalProperties": False,
    "properties": {"approved_servers": _approved_list(
        "time servers (names, addresses or CIDRs) the unit uses; empty: any configured server")},
}


@check("time_sync", facts=("timesync",), params=TIME_PARAMS)
def time_sync(timesync: TimeSync, *, approved_servers: list[str]) -> Outcome:
    """A time daemon must have servers configured and run (offline: be enabled at boot).

    Whether it runs can be seen only on the live system; for a --root tree the daemon must be
    enabled to start at boot instead, and the evidence says ``running: not checked (offline)``.
    With approved servers stated, a configured server outside them fails the control: time from
    an uncontrolled source is not a controllable network environment.
    """
    daemons = []
    good = []
    for daemon in timesync.daemons:
        servers = [{"server": s.name, "kind": s.kind, "origin": s.origin} for s in daemon.servers]
        unapproved = [s for s in servers if approved_servers and not in_approved(s["server"], approved_servers)]
        entry: dict[str, Any] = {"daemon": daemon.name, "config": daemon.config, "servers": servers,
                                 "enabled_at_boot": daemon.enabled or "no"}
        if timesync.live:
            entry["running"] = f"yes (pid {', '.join(map(str, daemon.running))})" if daemon.running else "no"
        else:
            entry["running"] = "not checked (offline)"
        if unapproved:
            entry["unapproved_servers"] = unapproved
        if daemon.notes:
            entry["notes"] = daemon.notes
        daemons.append(entry)
        active = bool(daemon.running) if timesync.live else daemon.enabled is not None
        if servers and active and not unapproved:
            good.append(daemon.name)
    evidence: dict[str, Any] = {"daemons": daemons}
    if approved_servers:
        evidence["approved_servers"] = approved_servers
    if good:
        return passed(**evidence, synchronised_by=good[0])
    if not daemons:
        return failed(**evidence, problem="no time synchronisation daemon (chrony, systemd-timesyncd, ntpd) is installed")
    state = "running" if timesync.live else "enabled at boot"
    return failed(**evidence, problem=f"no daemon is {state} with only approved servers configured")


# --- resolvers and gateways ------------------------------------------------------------------

NETWORKS_PARAMS = {
    "type": "object",
    "required": ["approved"],
    "additionalProperties": False,
    "properties": {"approved": _approved_list("addresses or CIDRs; empty: not stated by the unit (error)")},
}


@check("resolvers_approved", facts=("resolvers",), params=NETWORKS_PARAMS)
def resolvers_approved(resolvers: Resolvers, *, approved: list[str]) -> Outcome:
    """Every name server the terminal asks must be one the unit approved.

    A name server outside the list sees every name the terminal looks up and can answer with
    any address; systemd-resolved's local stub is followed to the upstreams it forwards to.
    """
    evidence: dict[str, Any] = {"approved": approved,
                                "resolvers": [{"address": r.address, "origin": r.origin, **({"via": r.via} if r.via else {})}
                                              for r in resolvers.resolvers]}
    if resolvers.notes:
        evidence["notes"] = resolvers.notes
    if not approved:
        return unverified("the policy variable approved_resolvers is empty: state the unit's resolvers", **evidence)
    outside = [r for r in evidence["resolvers"] if not in_approved(r["address"], approved)]
    return failed(**evidence, not_approved=outside) if outside else passed(**evidence)


@check("gateways_approved", facts=("routes",), params=NETWORKS_PARAMS)
def gateways_approved(routes: Routes, *, approved: list[str]) -> Outcome:
    """Every default gateway must be one the unit approved: a rogue gateway sees all traffic."""
    if not routes.live:
        return skipped(LIVE_ONLY.format(what="routes"))
    evidence: dict[str, Any] = {"approved": approved, "default_gateways": [
        {"gateway": g.address, "interface": g.interface, "source": g.source} for g in routes.gateways]}
    if not approved:
        return unverified("the policy variable approved_gateways is empty: state the unit's gateways", **evidence)
    if not routes.gateways:
        return passed(**evidence, note="no default route: the terminal reaches only its directly connected networks")
    outside = [g for g in evidence["default_gateways"] if not in_approved(g["gateway"], approved)]
    return failed(**evidence, not_approved=outside) if outside else passed(**evidence)


# --- proxies ---------------------------------------------------------------------------------

PROXY_PARAMS = {
    "type": "object",
    "required": ["approved"],
    "additionalProperties": False,
    "properties": {"approved": _approved_list("proxy URLs or host:port; empty: no proxy allowed")},
}


@check("proxies_approved", facts=("proxies",), params=PROXY_PARAMS)
def proxies_approved(proxies: Proxies, *, approved: list[str]) -> Outcome:
    """System-wide proxies (shell environment, apt, the agent's own environment) must be approved.

    A proxy sees, and can alter, every request sent through it. An approved entry without a port
    matches the host on any port. Values are shown with credentials masked.
    """
    allowed = []
    for entry in approved:
        _, host, port = split_proxy(entry)
        allowed.append((host, port))
    settings = [{"setting": p.setting, "value": p.value, "origin": p.origin} for p in proxies.proxies]
    outside = [s for s, p in zip(settings, proxies.proxies, strict=False)
               if not any(p.host == host and port in (None, p.port) for host, port in allowed)]
    evidence: dict[str, Any] = {"approved": [split_proxy(a)[0] for a in approved], "proxies": settings}
    if not proxies.live:
        evidence["note"] = "offline: the environment of running processes is not checked"
    return failed(**evidence, not_approved=outside) if outside else passed(**evidence)
