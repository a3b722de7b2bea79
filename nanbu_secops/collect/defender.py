"""Windows Defender's status, from the JSON a Windows terminal writes, in ClamAV's fact model.

The agent does not run on Windows; the terminal's operator (or a scheduled task) writes the
status with this PowerShell one-liner and hands the file to ``nanbu-secops av status
--windows-defender FILE``::

    Get-MpComputerStatus | ConvertTo-Json | Out-File -Encoding utf8 "$env:COMPUTERNAME-defender.json"

Windows PowerShell 5.1 writes UTF-16 LE with a BOM when ``-Encoding`` is left out (``>``
redirection does too) and UTF-8 with a BOM with ``utf8``; all are read. 5.1 writes dates as
``/Date(1732600000000)/`` (milliseconds since the epoch, UTC), PowerShell 7 as ISO 8601; both
are read. The result is an :class:`~nanbu_secops.collect.antivirus.AntivirusFacts`, so the one
verdict function of ``checks/antivirus`` judges Defender and ClamAV alike:

- running: AMServiceEnabled, AntivirusEnabled and RealTimeProtectionEnabled all true (Defender
  with real-time protection off only scans when asked);
- signatures: AntivirusSignatureLastUpdated, else AntivirusSignatureAge (days);
- last scan: the later of QuickScanEndTime and FullScanEndTime, else the smaller of QuickScanAge
  and FullScanAge (days; 4294967295 means never);
- AMRunningMode "Passive Mode" / "SxS Passive Mode": another antivirus product is primary, whose
  state this file does not show.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from nanbu_secops.collect.antivirus import AntivirusFacts, Updates
from nanbu_secops.errors import InputError

ENGINE = "Microsoft Defender Antivirus"
NEVER = 4294967295  # UInt32.MaxValue: Defender's "no such scan ever ran"
PASSIVE_MODES = ("passive mode", "sxs passive mode")
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def decode(data: bytes, path: str | Path) -> str:
    """The file's text: UTF-16 (BOM, or the NUL bytes of ASCII in UTF-16 LE without one) or UTF-8."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif len(data) >= 2 and data[1] == 0 and data[0] != 0:
        encoding = "utf-16-le"
    else:
        encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(f"not {encoding} text: {exc.reason} at byte {exc.start}", path) from None


def parse_date(value: Any) -> dt.datetime | None:
    """``/Date(ms)/`` or ISO 8601 (a naive one is taken as UTC) as an aware time; None for null."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a date: {value!r}")
    found = _MS_DATE.match(value.strip())
    if found:
        return dt.datetime.fromtimestamp(int(found.group(1)) / 1000, dt.UTC)
    moment = dt.datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value.strip()))  # .NET has 7 digits
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _days(value: Any) -> int | None:
    """An age in days; None when absent or Defender's 'never'."""
    if value is None or value == NEVER:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not a number of days: {value!r}")
    return value


def _flag(status: dict[str, Any], key: str) -> bool | None:
    value = status.get(key)
    return value if isinstance(value, bool) else None


def facts(status: dict[str, Any], source: str) -> AntivirusFacts:
    """Defender's status (the parsed JSON object) as antivirus facts."""
    flags = {key: _flag(status, key) for key in ("AMServiceEnabled", "AntivirusEnabled", "RealTimeProtectionEnabled")}
    off = [key for key, value in flags.items() if value is False]
    unknown = [key for key, value in flags.items() if value is None]
    mode = str(status.get("AMRunningMode") or "")
    passive = mode.lower() in PASSIVE_MODES
    if passive:  # real-time protection is off by design: the primary product is someone else's
        running: bool | None = None
        detail = f"AMRunningMode {mode}: Defender only scans on demand; the primary product's state is not in this file"
    elif off:
        running = False
        detail = f"{', '.join(off)} false (AMRunningMode {mode or 'not given'})"
    elif unknown:
        running, detail = None, f"{', '.join(unknown)} not in the file"
    else:
        running, detail = True, f"AMServiceEnabled, AntivirusEnabled and RealTimeProtectionEnabled true (AMRunningMode {mode})"

    try:
        updated = parse_date(status.get("AntivirusSignatureLastUpdated"))
        signature_age = _days(status.get("AntivirusSignatureAge"))
        ends = {key: moment for key in ("QuickScanEndTime", "FullScanEndTime") if (moment := parse_date(status.get(key)))}
        ages = [a for a in (_days(status.get("QuickScanAge")), _days(status.get("FullScanAge"))) if a is not None]
    except ValueError as exc:
        raise InputError(f"Get-MpComputerStatus field: {exc}", source) from None
    problem = "" if updated or signature_age is not None else \
        "neither AntivirusSignatureLastUpdated nor AntivirusSignatureAge is in the file"
    latest = max(ends, key=lambda key: ends[key]) if ends else ""
    if latest:
        scan_source = f"{source}: {latest}"
    elif ages:
        scan_source = f"{source}: QuickScanAge / FullScanAge"
    else:
        scan_source = f"{source}: no quick or full scan ever completed (QuickScanAge and FullScanAge 4294967295)"
    on_access = [f"{key} true" for key in ("RealTimeProtectionEnabled", "OnAccessProtectionEnabled")
                 if status.get(key) is True]
    notes = []
    if status.get("IsTamperProtected") is False:
        notes.append("IsTamperProtected false: malware with administrator rights can switch Defender off")
    elif status.get("IsTamperProtected") is True:
        notes.append("tamper protection on")
    version = str(status.get("AMProductVersion") or status.get("AMEngineVersion") or "")
    return AntivirusFacts(
        source=source, live=True, engine=ENGINE, installed=True, version=version,
        installed_evidence=[f"{source}: AMProductVersion {version or '(not given)'}"],
        running=running, running_detail=detail,
        signatures_version=str(status.get("AntivirusSignatureVersion") or ""), signatures_updated=updated,
        signature_age_days=signature_age, signatures_problem=problem,
        updates=Updates(None, how=["Windows Update / WSUS (not shown by Get-MpComputerStatus)"]),
        last_scan=ends[latest] if latest else None, last_scan_age_days=min(ages) if ages and not ends else None,
        last_scan_source=scan_source, on_access=on_access,
        other_primary=f"AMRunningMode {mode}: another antivirus product is the primary one" if passive else "",
        notes=notes)


def load(path: str | Path) -> AntivirusFacts:
    """Read a ``Get-MpComputerStatus | ConvertTo-Json`` file; bad input is an InputError naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"--windows-defender: {exc.strerror}", path) from None
    try:
        status = json.loads(decode(data, path))
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc.msg}); expected Get-MpComputerStatus | ConvertTo-Json output",
                         path, exc.lineno) from None
    if isinstance(status, list) and len(status) == 1:
        status = status[0]
    if not isinstance(status, dict) or "AMServiceEnabled" not in status:
        raise InputError("not Get-MpComputerStatus output: no AMServiceEnabled field", path)
    return facts(status, str(path))
