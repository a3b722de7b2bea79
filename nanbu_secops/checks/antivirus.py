"""Antivirus on terminals (article 27: 定期对终端进行杀毒): one verdict, and the scans behind it.

``antivirus_status`` gives each terminal ONE verdict, ``protected`` / ``stale`` / ``not running``
/ ``absent`` / ``unknown``, from the same facts for ClamAV (``collect/antivirus``) and Windows
Defender (``collect/defender``). protected is ``pass``; stale, not running and absent are
``fail``; unknown is ``error``, so a terminal whose protection cannot be verified is never all
clear. Three more controls judge what keeps the protection current, one question each: signature
updates (freshclam), a completed scan within the period, and scheduled or on-access scanning.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from nanbu_secops.checks import Outcome, check, failed, passed, skipped, unverified
from nanbu_secops.collect.antivirus import AntivirusFacts
from nanbu_secops.collect.software import Software
from nanbu_secops.timeutil import COUNTY_TZ, rfc3339

PROTECTED, STALE, NOT_RUNNING, ABSENT, UNKNOWN = "protected", "stale", "not running", "absent", "unknown"
OTHER_NOT_VERIFIED = ("signature age cannot be verified; whether it runs, is up to date and scans is not "
                      "reported by the product in a form the agent reads")

PATTERNS = {"type": "array", "items": {"type": "string", "minLength": 1}}
PRODUCTS = {
    "type": "array",
    "description": "antivirus products other than ClamAV and Defender: name and fnmatch patterns "
                   "(case-insensitive) of dpkg packages, systemd units, processes and install paths",
    "items": {"type": "object", "additionalProperties": False, "required": ["name"],
              "properties": {"name": {"type": "string", "minLength": 1}, "packages": PATTERNS,
                             "units": PATTERNS, "processes": PATTERNS, "paths": PATTERNS}},
}
DAYS = {"type": "integer", "minimum": 0}
STATUS_PARAMS: Mapping[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["max_signature_age_days", "products"],
    "properties": {"max_signature_age_days": DAYS, "products": PRODUCTS},
}
SCAN_PARAMS: Mapping[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["scan_period_days"],
    "properties": {"scan_period_days": DAYS},
}


def age_days(moment: dt.datetime, as_of: dt.date) -> int:
    """Whole days from ``moment``'s date in the county's zone to the as-of date."""
    return (as_of - moment.astimezone(COUNTY_TZ).date()).days


@functools.lru_cache(maxsize=256)
def _pattern(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regular expression for a catalogue entry's globs: every installed package is matched
    against every product, so one match per value instead of one per glob."""
    if not patterns:
        return None
    return re.compile("|".join(fnmatch.translate(p.lower()) for p in patterns))


def _match(value: str, patterns: Sequence[str]) -> bool:
    """Case-insensitive fnmatch: vendors spell the same binary HipsDaemon and hipsdaemon."""
    pattern = _pattern(tuple(patterns))
    return bool(value) and pattern is not None and pattern.match(value.lower()) is not None


def other_products(software: Software, products: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Catalogue products found installed (package, unit, path) or running, with what is unverified."""
    found = []
    for product in products:
        installed: list[str] = [f"package {p.name} {p.version} ({p.origin})"
                                for p in software.packages.values() if _match(p.name, product.get("packages", []))]
        installed += [f"unit {path}" for path in software.paths
                      if "/systemd/system/" in path and _match(path.rsplit("/", 1)[1], product.get("units", []))]
        installed += [f"path {path}" for path in software.paths if _match(path, product.get("paths", []))]
        running = [f"pid {p.pid} {p.name} ({p.exe or p.cmdline})" for p in software.processes
                   if _match(p.name, product.get("processes", [])) or
                   _match(p.exe.rsplit("/", 1)[-1], product.get("processes", []))]
        if installed or running:
            found.append({"product": product["name"], "installed": installed, "running": running,
                          "not_verified": OTHER_NOT_VERIFIED})
    return found


def _signature_age(av: AntivirusFacts, as_of: dt.date) -> int | None:
    if av.signatures_updated is not None:
        return age_days(av.signatures_updated, as_of)
    return av.signature_age_days


def _scan_age(av: AntivirusFacts, as_of: dt.date) -> int | None:
    return age_days(av.last_scan, as_of) if av.last_scan is not None else av.last_scan_age_days


def describe(av: AntivirusFacts, as_of: dt.date, max_age: int | None = None) -> dict[str, Any]:
    """The evidence every antivirus control shows, so each result stands on its own in a ticket."""
    evidence: dict[str, Any] = {"engine": av.engine, "source": av.source}
    if not av.installed:
        return {**evidence, "installed": False}
    signatures: dict[str, Any] = {"version": av.signatures_version or None}
    if av.signatures_updated is not None:
        signatures["built"] = rfc3339(av.signatures_updated.astimezone(COUNTY_TZ))
    signatures["age_days"] = _signature_age(av, as_of)
    if max_age is not None:
        signatures["max_age_days"] = max_age
    if av.signatures_problem:
        signatures["problem"] = av.signatures_problem
    scan: dict[str, Any] = {"finished": rfc3339(av.last_scan.astimezone(COUNTY_TZ)) if av.last_scan else None,
                            "age_days": _scan_age(av, as_of), "source": av.last_scan_source}
    evidence.update({
        "version": av.version or None, "installed": av.installed_evidence,
        "mode": "live" if av.live else "offline (--root): running means enabled at boot",
        "running": av.running_detail, "signatures": signatures,
        "databases": [{"path": d.path, "version": d.version, "signatures": d.signatures,
                       "built": rfc3339(d.built.astimezone(COUNTY_TZ)) if d.built else None,
                       **({"problem": d.problem} if d.problem else {})} for d in av.databases],
        "updates": {"configured": av.updates.configured, "mirrors": av.updates.mirrors, "how": av.updates.how,
                    **({"problems": av.updates.problems} if av.updates.problems else {})},
        "last_scan": scan, "scheduled": av.scheduled, "on_access": av.on_access,
    })
    if av.other_primary:
        evidence["other_primary"] = av.other_primary
    for key, notes in (("notes", av.notes), ("scan_notes", av.scan_notes), ("schedule_notes", av.schedule_notes)):
        if notes:
            evidence[key] = notes
    return evidence


def verdict(av: AntivirusFacts, software: Software, as_of: dt.date, max_signature_age_days: int,
            products: Sequence[Mapping[str, Any]]) -> tuple[str, list[str], dict[str, Any]]:
    """(verdict, reasons, evidence) for one terminal; see :func:`antivirus_status` for the rules."""
    evidence = describe(av, as_of, max_signature_age_days)
    others = other_products(software, products)
    if others:
        evidence["other_products"] = others
        if not software.live:
            evidence["other_products_running"] = "not checked (offline: processes need the live system)"
    if not av.installed:
        if others:
            return UNKNOWN, [f"{av.engine} is not installed; {', '.join(o['product'] for o in others)} found: "
                             f"{OTHER_NOT_VERIFIED}"], evidence
        return ABSENT, [f"no antivirus: {av.engine} is not installed and no product of the catalogue was found"], evidence
    not_running, stale, unknown = [], [], []
    if av.running is False:
        not_running.append(f"{av.engine} is not running: {av.running_detail}")
    elif av.running is None:
        unknown.append(f"whether {av.engine} runs could not be established: {av.running_detail}")
    age = _signature_age(av, as_of)
    if av.signatures_problem:
        unknown.append(f"signature database age cannot be read: {av.signatures_problem}")
    elif age is None:
        stale.append("; ".join(["no signature database", *av.notes]))
    elif age < -1:  # a day of slack for clocks on either side of midnight
        unknown.append(f"signatures built {-age} days after the as-of date {as_of}: the clock or the header is wrong")
    elif age > max_signature_age_days:
        stale.append(f"signatures are {age} days old (maximum {max_signature_age_days})")
    if av.other_primary:
        unknown.append(f"{av.other_primary}: {OTHER_NOT_VERIFIED}")
    if not_running:
        return NOT_RUNNING, not_running + stale + unknown, evidence
    if stale:
        return STALE, stale + unknown, evidence
    if unknown:
        return UNKNOWN, unknown, evidence
    return PROTECTED, [], evidence


@check("antivirus_status", facts=("antivirus", "software", "as_of"), params=STATUS_PARAMS)
def antivirus_status(antivirus: AntivirusFacts, software: Software, as_of: dt.date, *,
                     max_signature_age_days: int, products: Sequence[Mapping[str, Any]]) -> Outcome:
    """One verdict per terminal, first rule that applies:

    1. absent (fail): ClamAV (or Defender) is not installed and no catalogue product is found;
       unknown (error) when a catalogue product is found instead: the agent cannot read its
       signature age, so it is reported as present and unverified, never as a pass.
    2. not running (fail): clamd is not installed, not configured, or does not answer PING with
       PONG (Defender: AMServiceEnabled, AntivirusEnabled or RealTimeProtectionEnabled false).
       Offline (--root) nothing runs to be asked: clamd must be enabled at boot instead, and the
       evidence says running was not checked.
    3. stale (fail): no signature database, or the newest daily's build time (header stime) is
       more than ``max_signature_age_days`` before the as-of date.
    4. unknown (error): the socket could not be asked (permission, timeout, another reply), a
       database header is truncated or not ClamAV's, the build time lies in the future, or
       Defender is in passive mode behind another product.
    5. protected (pass) otherwise. Other catalogue products found beside a protected engine are
       listed in the evidence with what could not be verified.
    """
    result, reasons, evidence = verdict(antivirus, software, as_of, max_signature_age_days, products)
    evidence = {"verdict": result, **({"reasons": reasons} if reasons else {}), **evidence}
    if result == PROTECTED:
        return passed(**evidence)
    if result == UNKNOWN:
        return unverified("; ".join(reasons), **evidence)
    return failed(**evidence)


def _not_installed(antivirus: AntivirusFacts) -> Outcome:
    return skipped(f"{antivirus.engine} is not installed: the antivirus verdict (antivirus_status) reports it",
                   engine=antivirus.engine, source=antivirus.source)


@check("antivirus_updates", facts=("antivirus",))
def antivirus_updates(antivirus: AntivirusFacts) -> Outcome:
    """Signature updates are configured: freshclam has a mirror (DatabaseMirror or PrivateMirror)
    and runs, is enabled at boot, or is in a cron job. Signatures that are fresh today go stale
    within days without it. Defender updates through Windows Update, which its status does not
    show: skipped, its signature age is judged by the verdict."""
    if not antivirus.installed:
        return _not_installed(antivirus)
    updates = antivirus.updates
    evidence = {"engine": antivirus.engine, "mirrors": updates.mirrors, "how": updates.how}
    if updates.configured is None:
        return skipped(f"{antivirus.engine}: the update source is not in its status ({', '.join(updates.how)})",
                       **evidence)
    return passed(**evidence) if updates.configured else failed(**evidence, problems=updates.problems)


@check("antivirus_last_scan", facts=("antivirus", "as_of"), params=SCAN_PARAMS)
def antivirus_last_scan(antivirus: AntivirusFacts, as_of: dt.date, *, scan_period_days: int) -> Outcome:
    """A scan completed within ``scan_period_days`` of the as-of date (article 27: 定期杀毒).

    ClamAV keeps no such record, so it is the last completed scan in the scan log that
    ``nanbu-secops av scan`` (and playbooks/av_scan.yml) append to; a scan that timed out or
    failed does not count. Defender: QuickScanEndTime / FullScanEndTime, else their ages."""
    if not antivirus.installed:
        return _not_installed(antivirus)
    age = _scan_age(antivirus, as_of)
    evidence: dict[str, Any] = {
        "engine": antivirus.engine, "scan_period_days": scan_period_days, "source": antivirus.last_scan_source,
        "finished": rfc3339(antivirus.last_scan.astimezone(COUNTY_TZ)) if antivirus.last_scan else None,
        "age_days": age}
    if antivirus.scan_notes:
        evidence["notes"] = antivirus.scan_notes
    if age is None:
        return failed(**evidence, problem="no completed scan found")
    if age > scan_period_days:
        return failed(**evidence, problem=f"last completed scan is {age} days old (period {scan_period_days})")
    return passed(**evidence)


@check("antivirus_scanning_scheduled", facts=("antivirus",))
def antivirus_scanning_scheduled(antivirus: AntivirusFacts) -> Outcome:
    """Scanning happens without anyone remembering it: an enabled systemd timer or a cron entry
    runs ``nanbu-secops av scan``, clamscan or clamdscan, or on-access scanning is in force
    (clamd.conf OnAccessIncludePath / OnAccessMountPath with clamonacc running, offline enabled;
    Defender: real-time protection)."""
    if not antivirus.installed:
        return _not_installed(antivirus)
    evidence: dict[str, Any] = {"engine": antivirus.engine, "scheduled": antivirus.scheduled,
                                "on_access": antivirus.on_access}
    if antivirus.schedule_notes:
        evidence["notes"] = antivirus.schedule_notes
    if antivirus.scheduled or antivirus.on_access:
        return passed(**evidence)
    return failed(**evidence, problem="no enabled timer or cron entry scans, and no on-access scanning is in force")
