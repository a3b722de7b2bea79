"""Host firewalls and whether they deny inbound traffic by default (article 5).

Four front ends are read, because a unit's terminal may use any of them: nftables, iptables
(iptables-persistent), ufw and firewalld. For each, the collector reports whether it is active
and, per address family, what makes inbound traffic denied by default (an input chain policy of
drop, or a final catch-all drop/reject rule), so the check can say which family is left open.

On the live system "active" means the rules are loaded in the kernel now (``nft list ruleset``,
``iptables-save``, ``ufw status``, ``firewall-cmd --state``). For a ``--root`` tree there is no
kernel to ask, so "active" means configured *and enabled to start at boot* (a systemd wants link
under ``/etc/systemd/system/*.wants/``); the evidence says which meaning applied.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.etree import ElementTree

from nanbu_secops.collect import CollectError, Target, collector, systemd
from nanbu_secops.collect.rootfs import RootFS
from nanbu_secops.collect.systemd import shell_assignments

COMMAND_TIMEOUT = 15.0
FAMILIES = ("ipv4", "ipv6")
# nftables families whose input hook sees each IP family ("inet" sees both; "bridge"/"arp"/"netdev"
# are not the host's IP input path).
NFT_COVERS = {"inet": FAMILIES, "ip": ("ipv4",), "ip6": ("ipv6",)}
MAX_INCLUDE_DEPTH = 16


@dataclass(frozen=True)
class Firewall:
    """One firewall front end as found on the target."""

    name: str
    installed: bool
    active: bool = False
    how_active: str = ""  # why it counts as active (or not): loaded rules, enable link...
    source: str = ""  # the command or file the rules were read from
    deny: dict[str, str] = field(default_factory=dict)  # family -> what denies inbound by default
    notes: list[str] = field(default_factory=list)
    error: str = ""  # why this front end could not be read (the others still count)


@dataclass(frozen=True)
class FirewallFacts:
    live: bool
    firewalls: list[Firewall]


def _run(argv: list[str], check: bool = True) -> str:
    """Output of a live command; a failure (any exit but 0 when ``check``) is a CollectError."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CollectError(f"{' '.join(argv)}: {exc}") from None
    if check and done.returncode != 0:
        raise CollectError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[:300]}")
    return done.stdout


# --- nftables --------------------------------------------------------------------------------

_VERDICT = re.compile(r"(?:^|\s)(drop|reject(?:\s+with\s+.*)?)$")
# statements that match every packet and so may precede the final verdict of a catch-all rule
_UNCONDITIONAL = re.compile(r'^(?:\s*(?:counter(?:\s+packets\s+\d+\s+bytes\s+\d+)?|log(?:\s+(?:prefix\s+"[^"]*"'
                            r'|level\s+\w+|flags\s+[\w,]+|group\s+\d+))*))*\s*$')


@dataclass
class _Chain:
    family: str
    table: str
    name: str
    origin: str
    hook: str = ""
    kind: str = ""
    policy: str = "accept"
    policy_origin: str = ""
    rules: list[tuple[str, str]] = field(default_factory=list)  # (text, origin)


def _nft_tokens(text: str, where: str) -> list[tuple[str, str]]:
    """nft syntax as tokens (``{``, ``}``, ``;``, a newline, or the text between), each with its
    ``file:line`` origin; comments are cut, except a ``#`` inside a quoted string."""
    out: list[tuple[str, str]] = []
    for number, raw in enumerate(text.replace("\\\n", " ").splitlines(), start=1):
        line, quoted = "", False
        for ch in raw:
            if ch == '"':
                quoted = not quoted
            elif ch == "#" and not quoted:
                break
            line += ch
        origin = f"{where}:{number}"
        out += [(piece.strip(), origin) for piece in re.split(r"([{};])", line) if piece.strip()]
        out.append(("\n", origin))
    return out


def parse_nft(text: str, where: str, read: Callable[[str], list[tuple[str, str]]] | None = None) -> list[_Chain]:
    """Chains declared in nft ruleset syntax (``nft list ruleset`` output or a configuration file).

    Inside a chain every brace belongs to a rule (an anonymous set or verdict map), so a rule is
    read up to its end whatever sets it holds; elsewhere braces open blocks (table, chain, set).
    ``read`` expands a configuration file's ``include "glob"`` into tokens.
    """
    tokens = _nft_tokens(text, where)
    chains: list[_Chain] = []
    stack: list[str] = []  # "table", "chain" or "other" (set, map, flowtable...)
    table: tuple[str, str] | None = None
    words: list[str] = []
    origin = where
    depth = 0  # braces open inside the current rule
    i = 0

    def finish() -> None:
        nonlocal words
        stmt = " ".join(words)
        words = []
        if not stmt or not stack or stack[-1] != "chain":
            return
        chain = chains[-1]
        hook = re.fullmatch(r"type\s+(\w+)\s+hook\s+(\w+)(?:\s+device\s+\S+)?\s+priority\s+.+", stmt)
        if hook:
            chain.kind, chain.hook = hook.group(1), hook.group(2)
        elif re.fullmatch(r"policy\s+\w+", stmt):
            chain.policy, chain.policy_origin = stmt.split()[1], origin
        elif stmt.split()[0] not in ("comment", "devices", "flags"):
            chain.rules.append((stmt, origin))

    while i < len(tokens):
        tok, where_tok = tokens[i]
        i += 1
        in_chain = bool(stack) and stack[-1] == "chain"
        if in_chain and (tok == "{" or (tok == "}" and depth) or (tok == "\n" and depth)):
            depth += {"{": 1, "}": -1}.get(tok, 0)
            if tok != "\n":
                words.append(tok)
            continue
        if tok in (";", "\n"):
            if words and words[0] == "include" and read is not None and not stack:
                tokens[i:i] = read(" ".join(words[1:]).strip('"'))
                words = []
            finish()
            continue
        if tok == "}":
            finish()
            kind = stack.pop() if stack else ""
            if kind == "table":
                table = None
            continue
        if tok == "{":
            head, words = words, []
            if head and head[0] == "table" and len(head) in (2, 3) and not stack:
                table = (head[1], head[2]) if len(head) == 3 else ("ip", head[1])
                stack.append("table")
            elif head and head[0] == "chain" and len(head) == 2 and table is not None and stack == ["table"]:
                chains.append(_Chain(table[0], table[1], head[1], origin))
                stack.append("chain")
            else:
                stack.append("other")
            continue
        if not words:
            origin = where_tok
        words += tok.split()
    finish()
    return chains


def nft_deny(chains: list[_Chain]) -> dict[str, str]:
    """Per IP family, the first input base chain that denies by default, described for evidence.

    In nftables a packet must get through every base chain on a hook; a drop in any is final,
    so one denying input chain per family is enough.
    """
    deny: dict[str, str] = {}
    for chain in chains:
        if chain.kind != "filter" or chain.hook != "input" or chain.family not in NFT_COVERS:
            continue
        label = f"chain {chain.family} {chain.table} {chain.name}"
        reason = ""
        if chain.policy == "drop":  # nft base chains know only accept and drop
            reason = f"{label}: policy {chain.policy} ({chain.policy_origin or chain.origin})"
        elif chain.rules:
            last, origin = chain.rules[-1]
            verdict = _VERDICT.search(last)
            if verdict and _UNCONDITIONAL.fullmatch(last[:verdict.start()]):
                reason = f"{label}: final rule '{last}' ({origin})"
        if reason:
            for family in NFT_COVERS[chain.family]:
                deny.setdefault(family, reason)
    return deny


NFT_CONF = "/etc/nftables.conf"
NFT_BINARIES = ("/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft")


def _nftables(target: Target) -> Firewall:
    fs = target.fs
    installed = any(fs.exists(b) for b in NFT_BINARIES)
    if target.live:
        binary = shutil.which("nft")
        if binary is None:
            return Firewall("nftables", installed=False)
        chains = parse_nft(_run([binary, "list", "ruleset"]), "nft list ruleset")
        loaded = any(c.hook == "input" for c in chains)
        notes = []
        link = systemd.enabled(fs, "nftables.service")
        if loaded and link is None:
            notes.append("nftables.service is not enabled: the loaded rules are lost at the next boot")
        return Firewall("nftables", True, loaded,
                        "input chain loaded in the kernel" if loaded else "no input chain loaded in the kernel",
                        "nft list ruleset", nft_deny(chains), notes)
    if not fs.exists(NFT_CONF):
        return Firewall("nftables", installed, how_active=f"{NFT_CONF} does not exist")
    depth = [0]

    def read(pattern: str) -> list[tuple[str, str]]:
        depth[0] += 1
        if depth[0] > MAX_INCLUDE_DEPTH:
            raise CollectError(f"{NFT_CONF}: include nested or repeated more than {MAX_INCLUDE_DEPTH} times")
        pattern = pattern if pattern.startswith("/") else f"/etc/{pattern}"
        return [t for path in fs.glob(pattern) for t in _nft_tokens(fs.read_text(path), path)]

    chains = parse_nft(fs.read_text(NFT_CONF), NFT_CONF, read)
    link = systemd.enabled(fs, "nftables.service")
    how = (f"offline: enabled at boot by {link}" if link
           else "offline: nftables.service is not enabled at boot (no wants link), so the file is not loaded")
    return Firewall("nftables", True, link is not None, how, NFT_CONF, nft_deny(chains))


# --- iptables --------------------------------------------------------------------------------

IPTABLES_FILES = {"ipv4": "/etc/iptables/rules.v4", "ipv6": "/etc/iptables/rules.v6"}
IPTABLES_COMMANDS = {"ipv4": "iptables-save", "ipv6": "ip6tables-save"}


def iptables_deny(text: str, where: str) -> tuple[str | None, bool]:
    """What makes the filter table's INPUT deny by default in ``iptables-save`` text, and whether
    the filter table has any INPUT state at all (a policy line or rule)."""
    table, policy, last = "", None, None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("*"):
            table = line[1:]
        elif table != "filter":
            continue
        elif line.startswith(":INPUT "):
            policy = (line.split()[1], f"{where}:{number}")
        elif line.startswith("-A INPUT "):
            last = (line, f"{where}:{number}")
    if policy and policy[0] == "DROP":
        return f"filter INPUT policy DROP ({policy[1]})", True
    if last and re.fullmatch(r"-A INPUT(?: -m comment --comment (?:\"[^\"]*\"|\S+))? -j (DROP|REJECT)(?: .*)?", last[0]):
        return f"filter INPUT final rule '{last[0]}' ({last[1]})", True
    return None, policy is not None or last is not None


def _iptables(target: Target) -> Firewall:
    fs = target.fs
    deny: dict[str, str] = {}
    if target.live:
        binaries = {f: shutil.which(cmd) for f, cmd in IPTABLES_COMMANDS.items()}
        if not any(binaries.values()):
            return Firewall("iptables", installed=False)
        loaded = False
        for family, binary in binaries.items():
            if binary:
                reason, has_rules = iptables_deny(_run([binary, "-t", "filter"]), IPTABLES_COMMANDS[family])
                loaded = loaded or has_rules
                if reason:
                    deny[family] = reason
        return Firewall("iptables", True, loaded, "filter INPUT state read from the kernel",
                        " and ".join(IPTABLES_COMMANDS[f] for f, b in binaries.items() if b), deny)
    present = {f: p for f, p in IPTABLES_FILES.items() if fs.exists(p)}
    if not present:
        return Firewall("iptables", installed=False)
    for family, path in present.items():
        reason, _ = iptables_deny(fs.read_text(path), path)
        if reason:
            deny[family] = reason
    link = systemd.enabled(fs, "netfilter-persistent.service")
    how = (f"offline: enabled at boot by {link}" if link
           else "offline: netfilter-persistent.service is not enabled at boot, so the rules files are not loaded")
    return Firewall("iptables", True, link is not None, how, ", ".join(present.values()), deny)


# --- ufw ---------------------------------------------------------------------------------------

UFW_CONF = "/etc/ufw/ufw.conf"
UFW_DEFAULTS = "/etc/default/ufw"


def _ufw(target: Target) -> Firewall:
    fs = target.fs
    if not fs.exists(UFW_CONF):
        return Firewall("ufw", installed=False)
    conf = shell_assignments(fs.read_text(UFW_CONF), UFW_CONF)
    defaults = shell_assignments(fs.read_text(UFW_DEFAULTS), UFW_DEFAULTS) if fs.exists(UFW_DEFAULTS) else {}
    enabled, enabled_at = conf.get("ENABLED", ("no", f"{UFW_CONF} (ENABLED unset)"))
    policy, policy_at = defaults.get("DEFAULT_INPUT_POLICY", ("", f"{UFW_DEFAULTS} (unset)"))
    deny: dict[str, str] = {}
    if policy.upper() in ("DROP", "REJECT"):
        families = FAMILIES if defaults.get("IPV6", ("yes", ""))[0].lower() == "yes" else ("ipv4",)
        for family in families:
            deny[family] = f"DEFAULT_INPUT_POLICY={policy} ({policy_at})"
    if target.live and shutil.which("ufw"):
        status = _run([shutil.which("ufw") or "ufw", "status"]).splitlines()
        active = bool(status) and status[0].strip().lower() == "status: active"
        return Firewall("ufw", True, active, f"ufw status: {status[0].strip() if status else 'no output'}",
                        f"{UFW_CONF}, {UFW_DEFAULTS}", deny)
    link = systemd.enabled(fs, "ufw.service")
    active = enabled.lower() == "yes" and link is not None
    how = f"ENABLED={enabled} ({enabled_at}); " + (f"enabled at boot by {link}" if link else "ufw.service not enabled at boot")
    return Firewall("ufw", True, active, ("offline: " if not target.live else "") + how,
                    f"{UFW_CONF}, {UFW_DEFAULTS}", deny)


# --- firewalld ---------------------------------------------------------------------------------

FIREWALLD_CONF = "/etc/firewalld/firewalld.conf"
ZONE_DIRS = ("/etc/firewalld/zones", "/usr/lib/firewalld/zones")
# Zone targets that reject what no service/port of the zone allows ("default" rejects too).
DENYING_TARGETS = frozenset({"DROP", "REJECT", "%%REJECT%%", "default"})


NM_CONNECTIONS = "/etc/NetworkManager/system-connections/*.nmconnection"
IFCFG = "/etc/sysconfig/network-scripts/ifcfg-*"


def _zones(fs: RootFS) -> dict[str, str]:
    """Zone name -> its file; a zone in /etc/firewalld/zones replaces the shipped one of that name."""
    zones: dict[str, str] = {}
    for folder in reversed(ZONE_DIRS):
        for path in fs.glob(f"{folder}/*.xml"):
            zones[path.rsplit("/", 1)[1][:-4]] = path
    return zones


def _accepting_bindings(fs: RootFS, default: str) -> list[tuple[str, tuple[str, ...]]]:
    """Interfaces and sources bound to a zone other than the default one whose target is ACCEPT,
    with the address families they open: firewalld puts their traffic in that zone, which accepts
    everything. Bindings come from the zone files (``<interface>``, ``<source>``), NetworkManager
    keyfiles (``zone=``) and ifcfg files (``ZONE=``, RHEL 8-style network-scripts)."""
    zones = _zones(fs)
    targets: dict[str, str] = {}
    bound: list[tuple[str, str, tuple[str, ...]]] = []  # zone, what, families
    for name, path in zones.items():
        try:
            tree = ElementTree.fromstring(fs.read_text(path))
        except ElementTree.ParseError as exc:
            raise CollectError(f"{path}: not valid XML: {exc}") from None
        targets[name] = tree.get("target", "default")
        for iface in tree.findall("interface"):
            bound.append((name, f"interface {iface.get('name')} ({path})", FAMILIES))
        for source in tree.findall("source"):
            address = source.get("address") or source.get("ipset") or source.get("mac") or "?"
            families = ("ipv6",) if ":" in address and source.get("mac") is None else \
                ("ipv4",) if source.get("address") else FAMILIES
            bound.append((name, f"source {address} ({path})", families))
    for path in fs.glob(NM_CONNECTIONS):
        section = ""
        for number, raw in enumerate(fs.read_text(path).splitlines(), start=1):
            line = raw.strip()
            if line.startswith("["):
                section = line.strip("[]")
            elif section == "connection":
                key, _, zone = (part.strip() for part in line.partition("="))
                if key == "zone" and zone:
                    bound.append((zone, f"connection {path}:{number}", FAMILIES))
    for path in fs.glob(IFCFG):
        zone = shell_assignments(fs.read_text(path), path).get("ZONE")
        if zone and zone[0]:
            bound.append((zone[0], f"interface of {zone[1]}", FAMILIES))
    return [(f"{what} is in zone {zone}, whose target ACCEPT accepts all its traffic", families)
            for zone, what, families in bound if zone != default and targets.get(zone) == "ACCEPT"]


def _firewalld(target: Target) -> Firewall:
    fs = target.fs
    if not fs.exists(FIREWALLD_CONF):
        return Firewall("firewalld", installed=False)
    conf = shell_assignments(fs.read_text(FIREWALLD_CONF), FIREWALLD_CONF)
    zone, zone_at = conf.get("DefaultZone", ("public", "firewalld built-in default"))
    deny: dict[str, str] = {}
    notes: list[str] = []
    zone_file = next((f"{d}/{zone}.xml" for d in ZONE_DIRS if fs.exists(f"{d}/{zone}.xml")), None)
    if zone_file is None:
        notes.append(f"default zone {zone!r} ({zone_at}) has no zone file in {' or '.join(ZONE_DIRS)}")
    else:
        try:
            zone_target = ElementTree.fromstring(fs.read_text(zone_file)).get("target", "default")
        except ElementTree.ParseError as exc:
            raise CollectError(f"{zone_file}: not valid XML: {exc}") from None
        if zone_target in DENYING_TARGETS:
            for family in FAMILIES:
                deny[family] = f"default zone {zone} ({zone_at}) has target {zone_target} ({zone_file})"
        else:
            notes.append(f"default zone {zone} ({zone_at}) has target {zone_target} ({zone_file}): accepts by default")
    for binding, families in _accepting_bindings(fs, zone):
        notes.append(binding)
        for family in families:
            deny.pop(family, None)
    if target.live and shutil.which("firewall-cmd"):
        # exits 252 with "not running" on stdout when the daemon is down: that is an answer
        state = _run([shutil.which("firewall-cmd") or "firewall-cmd", "--state"], check=False).strip()
        return Firewall("firewalld", True, state == "running", f"firewall-cmd --state: {state or 'not running'}",
                        FIREWALLD_CONF, deny, notes)
    link = systemd.enabled(fs, "firewalld.service")
    how = f"offline: enabled at boot by {link}" if link else "offline: firewalld.service is not enabled at boot"
    return Firewall("firewalld", True, link is not None, how, FIREWALLD_CONF, deny, notes)


@collector("firewall", reads=("nftables", "iptables", "ufw", "firewalld: loaded rules (live) or config enabled at boot"))
def collect(target: Target) -> FirewallFacts:
    """Every firewall front end the target has, active or not, with what each denies."""
    firewalls = []
    for name, read in (("nftables", _nftables), ("iptables", _iptables), ("ufw", _ufw), ("firewalld", _firewalld)):
        try:
            firewalls.append(read(target))
        except (CollectError, OSError) as exc:  # one unreadable front end must not hide another that protects
            firewalls.append(Firewall(name, installed=True, how_active="could not be read", error=str(exc)))
    return FirewallFacts(target.live, [f for f in firewalls if f.installed])
