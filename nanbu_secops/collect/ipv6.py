"""A terminal's own IPv6 (article 9(2)): its addresses, its IPv6 default routes, and a name lookup.

Addresses and routes exist only in a running kernel (/proc/net/if_inet6, /proc/net/ipv6_route),
so for a ``--root`` tree that is not the live system these facts come back with ``live=False``
and the checks skip them. Resolvers and listening sockets are the article 5 facts of
:mod:`nanbu_secops.collect.network` (``resolvers``, ``listening``), used as they are.

``collect.network.parse_proc_ipv6_route`` keeps only default routes with a next hop (the
gateways NS05-GW-001 judges); a default route straight out of a device (PPP, a tunnel,
``ip -6 route add default dev wwan0``) also gives IPv6 connectivity, so this module reads the
same file with the route flags and keeps both, while leaving out the kernel's own
``unreachable``/``prohibit`` default routes (RTF_REJECT).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nanbu_secops.collect import CollectError, Target, collector

IF_INET6 = "/proc/net/if_inet6"
IPV6_ROUTE = "/proc/net/ipv6_route"
IPV6_CONF = "/proc/sys/net/ipv6/conf"

# /proc/net/if_inet6 scope and flag values (include/net/ipv6.h, include/uapi/linux/if_addr.h)
SCOPES = {0x00: "global", 0x10: "host", 0x20: "link", 0x40: "site", 0x50: "site", 0x80: "compat"}
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
IFA_F_DEPRECATED = 0x20
# /proc/net/ipv6_route flags (include/uapi/linux/route.h, ipv6_route.h)
RTF_UP = 0x0001
RTF_GATEWAY = 0x0002
RTF_REJECT = 0x0200

GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
ULA = ipaddress.IPv6Network("fc00::/7")  # RFC 4193; in practice fd00::/8


@dataclass(frozen=True)
class Address:
    address: str
    prefixlen: int
    interface: str
    scope: str  # the kernel's: global, link, host, site
    kind: str  # global, ula, link-local, loopback, other
    usable: bool  # not tentative (duplicate address detection pending) and not DAD-failed
    state: str = ""  # "tentative", "dadfailed", "deprecated" or ""


@dataclass(frozen=True)
class Addresses:
    live: bool
    enabled: bool = True  # False: the kernel has no IPv6 (no /proc/net/if_inet6)
    addresses: list[Address] = field(default_factory=list)
    disabled_on: list[str] = field(default_factory=list)  # interfaces with disable_ipv6 = 1


@dataclass(frozen=True)
class DefaultRoute:
    gateway: str  # "" for a route out of a device without a next hop
    interface: str
    metric: int
    source: str = IPV6_ROUTE


@dataclass(frozen=True)
class DefaultRoutes:
    live: bool
    enabled: bool = True
    routes: list[DefaultRoute] = field(default_factory=list)


def address_kind(address: ipaddress.IPv6Address) -> str:
    """global (2000::/3), ula (fc00::/7), link-local, loopback, or other (multicast, mapped, ...)."""
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address in ULA:
        return "ula"
    if address in GLOBAL_UNICAST:
        return "global"
    return "other"


def parse_if_inet6(text: str) -> list[Address]:
    """/proc/net/if_inet6: ``address ifindex prefixlen scope flags name``, all hex but the name."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or len(fields[0]) != 32:
            continue
        address = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
        scope, flags = int(fields[3], 16), int(fields[4], 16)
        state = ("dadfailed" if flags & IFA_F_DADFAILED else "tentative" if flags & IFA_F_TENTATIVE
                 else "deprecated" if flags & IFA_F_DEPRECATED else "")
        found.append(Address(str(address), int(fields[2], 16), fields[5], SCOPES.get(scope, hex(scope)),
                             address_kind(address), state not in ("dadfailed", "tentative"), state))
    return found


def parse_ipv6_default_routes(text: str) -> list[DefaultRoute]:
    """Usable ::/0 routes of /proc/net/ipv6_route, with or without a next hop; reject routes left out."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10 or fields[0] != "0" * 32 or fields[1] != "00":
            continue
        flags = int(fields[8], 16)
        if not flags & RTF_UP or flags & RTF_REJECT or fields[9] == "lo":
            continue
        hop = ipaddress.IPv6Address(bytes.fromhex(fields[4]))
        found.append(DefaultRoute(str(hop) if int(hop) and flags & RTF_GATEWAY else "", fields[9], int(fields[5], 16)))
    return sorted(set(found), key=lambda r: (r.metric, r.interface, r.gateway))


def _disabled_interfaces(conf: Path) -> list[str]:
    """Interfaces whose ``disable_ipv6`` sysctl is 1 (``all`` and ``default`` included)."""
    names = []
    if conf.is_dir():
        for entry in sorted(conf.iterdir()):
            try:
                if (entry / "disable_ipv6").read_text().strip() == "1":
                    names.append(entry.name)
            except OSError:
                continue
    return names


@collector("ipv6_addresses", reads=("/proc/net/if_inet6 (live)",))
def collect_ipv6_addresses(target: Target) -> Addresses:
    """The running kernel's IPv6 addresses; none can be known for a tree that is not live."""
    if not target.live:
        return Addresses(live=False)
    path = Path(IF_INET6)
    if not path.exists():  # ipv6.disable=1 on the kernel command line, or no IPv6 module
        return Addresses(True, enabled=False)
    return Addresses(True, True, parse_if_inet6(path.read_text()), _disabled_interfaces(Path(IPV6_CONF)))


@collector("ipv6_default_routes", reads=("/proc/net/ipv6_route (live)",))
def collect_ipv6_default_routes(target: Target) -> DefaultRoutes:
    """The running kernel's IPv6 default routes (every routing table /proc/net/ipv6_route shows)."""
    if not target.live:
        return DefaultRoutes(live=False)
    path = Path(IPV6_ROUTE)
    if not path.exists():
        return DefaultRoutes(True, enabled=False)
    return DefaultRoutes(True, True, parse_ipv6_default_routes(path.read_text()))


# --- a name lookup through the system resolver ---------------------------------------------

LOOKUP_TIMEOUT = 20.0  # seconds; glibc alone may wait 5 s x 2 attempts per name server


@dataclass(frozen=True)
class Lookup:
    """The system resolver of the live system, for the one name the policy gives.

    Collectors do not see policy parameters, so this fact is the means of asking rather than an
    answer: the check calls :meth:`aaaa` with ``ipv6_probe_name`` (only when that is set), and
    tests hand the check a stub instead.
    """

    live: bool
    resolve: Callable[[str], list[str]] | None = None

    def aaaa(self, name: str) -> list[str]:
        """The IPv6 addresses the resolver returns for ``name``; CollectError when it cannot say."""
        if self.resolve is None:
            raise CollectError("no resolver: not the live system")
        return self.resolve(name)


def getaddrinfo_aaaa(name: str, timeout: float = LOOKUP_TIMEOUT) -> list[str]:
    """AAAA through the C library (hosts file, then DNS, as nsswitch.conf says), bounded in time."""
    outcome: dict[str, object] = {}

    def ask() -> None:
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET6, socket.SOCK_STREAM)
            outcome["addresses"] = sorted({str(info[4][0]).split("%", 1)[0] for info in infos})
        except socket.gaierror as exc:
            outcome["error"] = exc
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=ask, name="nanbu-aaaa-lookup", daemon=True)  # never holds up the exit
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise CollectError(f"no answer for {name} within {timeout:g} s")
    error = outcome.get("error")
    if isinstance(error, socket.gaierror) and error.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
        return []  # the resolver answered: no IPv6 address for the name
    if error is not None:
        raise CollectError(f"lookup of {name} failed: {error}")
    return [a for a in outcome["addresses"] if not ipaddress.IPv6Address(a).ipv4_mapped]  # type: ignore[union-attr]


@collector("name_lookup", reads=("AAAA lookup through the system resolver (live)",))
def collect_name_lookup(target: Target) -> Lookup:
    """The live system's resolver (never used for a --root tree: it would ask this machine's)."""
    return Lookup(True, getaddrinfo_aaaa) if target.live else Lookup(False)
