"""The ``nanbu-secops`` command: argument parsing and dispatch, nothing else.

Exit codes: 0 all clear, 1 findings (a control failed or could not be evaluated),
2 bad input or configuration (the message names the file and line).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nanbu_secops import __version__, clihelp
from nanbu_secops.errors import InputError

if TYPE_CHECKING:
    from nanbu_secops.progress import Meter

EXIT_CLEAR, EXIT_FINDINGS, EXIT_INPUT = 0, 1, 2
DEFAULT_REGISTER = "registers/reinstatements.jsonl"


def _only(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _report_options(parser: argparse.ArgumentParser, formats: tuple[str, ...] = ("text", "json"),
                    output_help: str = "write the report to FILE instead of standard output") -> None:
    """--format, --lang and --output, the same on every command that renders a report."""
    parser.add_argument("--format", choices=formats, default=formats[0])
    parser.add_argument("--lang", choices=("zh", "en"), default="zh")
    parser.add_argument("--output", help=output_help)


def build_parser(lang: str = "en") -> argparse.ArgumentParser:
    """The command tree, its help in ``lang`` (argparse's own words: see :func:`clihelp.speaking`)."""
    parser = clihelp.Parser(prog="nanbu-secops",
                            description="security operations for Nanbu County's intensive government-website platform")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="audit this machine, or a root tree, against the policies")
    check.add_argument("--root", default="/", help="audit the filesystem under DIR (a chroot or mounted image)")
    check.add_argument("--policy", help="policy file or folder (default: the installed policies)")
    check.add_argument("--only", type=_only, action="extend", default=[], metavar="CONTROL_OR_ARTICLE",
                       help="run only these controls or articles (repeatable, comma-separated)")
    check.add_argument("--as-of", help="judge ages as of this date, YYYY-MM-DD (default: today, Asia/Shanghai)")
    _report_options(check)
    check.set_defaults(handler=cmd_check)

    policy = commands.add_parser("policy", help="work with policy files")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")
    validate = policy_commands.add_parser("validate", help="check policy files against their schema")
    validate.add_argument("path", nargs="?", help="policy file or folder (default: the installed policies)")
    validate.set_defaults(handler=cmd_policy_validate)
    accounts = commands.add_parser("accounts", help="platform and local account hygiene (article 26)")
    account_commands = accounts.add_subparsers(dest="accounts_command", required=True, metavar="SUBCOMMAND")
    audit = account_commands.add_parser("audit", help="dormant, shared and non-staff platform accounts")
    audit.add_argument("--accounts", required=True, help="platform accounts export (.csv or .xlsx)")
    audit.add_argument("--logins", required=True, help="platform login log export (.csv or .xlsx)")
    audit.add_argument("--roster", required=True, help="staff roster (.csv or .xlsx)")
    audit.add_argument("--mapping", help="column-mapping file (YAML) for exports with other headers")
    audit.add_argument("--as-of", help="audit date, YYYY-MM-DD (default: today, Asia/Shanghai)")
    audit.add_argument("--policy", help="policy file or folder (default: the installed policies)")
    audit.add_argument("--strict", action="store_true", help="a malformed row stops the audit (default: skip it)")
    _report_options(audit, ("text", "json", "xlsx", "html"), "write the report to FILE (required for xlsx)")
    audit.set_defaults(handler=cmd_accounts_audit)

    reinstate = account_commands.add_parser("reinstate", help="record a reinstatement with the unit's written explanation")
    reinstate.add_argument("account")
    reinstate.add_argument("--explanation", required=True, help="the unit's written explanation (UTF-8 text file)")
    reinstate.add_argument("--approved-by", required=True, help="who approved reopening the account")
    reinstate.add_argument("--host", help="the terminal, for a local account (omit for a platform account)")
    reinstate.add_argument("--unit", help="the unit holding the account")
    reinstate.add_argument("--register", default=DEFAULT_REGISTER, help=f"register file (default: {DEFAULT_REGISTER})")
    reinstate.set_defaults(handler=cmd_accounts_reinstate)

    register = account_commands.add_parser("register", help="the reinstatement register")
    register_commands = register.add_subparsers(dest="register_command", required=True, metavar="SUBCOMMAND")
    verify = register_commands.add_parser("verify", help="detect any edit or deletion in the register")
    verify.add_argument("--register", default=DEFAULT_REGISTER)
    verify.add_argument("--missing-ok", action="store_true",
                        help="a register never created (no file, no .head) is ok with 0 entries (else exit 2)")
    verify.set_defaults(handler=cmd_register_verify)
    find = register_commands.add_parser("find", help="entries for an account and/or a terminal (exit 1 when none)")
    find.add_argument("--register", default=DEFAULT_REGISTER)
    find.add_argument("--account")
    find.add_argument("--host")
    find.add_argument("--within-days", type=int, metavar="N",
                      help="only entries recorded in the N days up to --as-of (0: that day only)")
    find.add_argument("--as-of", help="the day --within-days counts back from, YYYY-MM-DD (default: today)")
    find.set_defaults(handler=cmd_register_find)
    _ssh_probe_parser(commands)
    _creds_parser(commands)
    _av_parser(commands)
    _keys_parser(commands)
    _incident_parser(commands)
    _proposal_parser(commands)
    _ipv6_parser(commands)
    _site_parser(commands)
    _fleet_parser(commands)
    clihelp.localize(parser, lang)
    return parser


def _fleet_parser(commands: argparse._SubParsersAction) -> None:
    ingest = commands.add_parser("ingest", help="load collected check results into the results store (article 29)")
    ingest.add_argument("folder", help="the results folder (…/<inventory host>/…/*.json at any depth, as playbooks/collect.yml fetches)")
    ingest.add_argument("--db", required=True, help="SQLite results store (created if missing)")
    ingest.add_argument("--inventory", default="inventory",
                        help="the Ansible inventory (folder or file) each file's host is checked against (default: inventory)")
    ingest.add_argument("--dry-run", action="store_true", help="show what would be stored; write nothing")
    ingest.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the progress bar (default: zh)")
    ingest.set_defaults(handler=cmd_ingest)

    report = commands.add_parser("report", help="reports over the results store")
    report_sub = report.add_subparsers(dest="report_command", required=True, metavar="SUBCOMMAND")
    quarterly = report_sub.add_parser("quarterly", help="the quarterly inspection per unit and article, with scores (article 29)")
    quarterly.add_argument("--db", required=True, help="the results store (SQLite) that ingest filled")
    quarterly.add_argument("--quarter", required=True, help="calendar quarter in Asia/Shanghai, YYYYQn (e.g. 2026Q4)")
    quarterly.add_argument("--inventory", default="inventory", help="the Ansible inventory folder (default: inventory)")
    quarterly.add_argument("--policy", help="policy file or folder with quarterly_score (default: the installed policies)")
    quarterly.add_argument("--previous-roster", help="last quarter's staff roster (.csv/.xlsx); with --roster and --accounts: article 8")
    quarterly.add_argument("--roster", help="this quarter's staff roster (.csv/.xlsx)")
    quarterly.add_argument("--accounts", help="the platform's account list (.csv/.xlsx)")
    quarterly.add_argument("--mapping", help="column mapping for the roster and account files (YAML)")
    _report_options(quarterly, ("html", "xlsx", "json"), "write the report to FILE (required for xlsx)")
    quarterly.set_defaults(handler=cmd_report_quarterly)
    annual = report_sub.add_parser("annual", help="the annual evaluation per unit from the year's quarters (article 29)")
    annual.add_argument("--db", required=True, help="the results store (SQLite) that ingest filled")
    annual.add_argument("--year", required=True, type=int, help="calendar year (quarters in Asia/Shanghai)")
    annual.add_argument("--inventory", default="inventory", help="the Ansible inventory (default: inventory)")
    annual.add_argument("--policy", help="policy file or folder with quarterly_score and annual_score (default: the installed policies)")
    _report_options(annual, ("html", "xlsx", "json"), "write the report to FILE (required for xlsx)")
    annual.set_defaults(handler=cmd_report_annual)

    spool = commands.add_parser("spool", help="the terminal's local spool of scheduled check results")
    spool_sub = spool.add_subparsers(dest="spool_command", required=True, metavar="SUBCOMMAND")
    run = spool_sub.add_parser("run", help="run check, write the JSON result into the spool atomically, prune old ones")
    run.add_argument("--dir", default="/var/lib/nanbu-secops/spool", help="spool folder (default: %(default)s)")
    run.add_argument("--keep", type=int, default=30, help="results to keep (default: %(default)s)")
    run.add_argument("--root", default="/", help="audit the filesystem under DIR")
    run.add_argument("--policy", help="policy file or folder (default: the installed policies)")
    run.set_defaults(handler=cmd_spool_run)
    newest = spool_sub.add_parser("newest", help="print the path of the newest result in the spool (exit 1 when empty)")
    newest.add_argument("--dir", default="/var/lib/nanbu-secops/spool")
    newest.add_argument("--max-age-hours", type=float, metavar="H",
                        help="exit 1 as for an empty spool when the newest result is older than H hours")
    newest.set_defaults(handler=cmd_spool_newest)


def _ipv6_parser(commands: argparse._SubParsersAction) -> None:
    ipv6 = commands.add_parser("ipv6", help="IPv6 readiness of portals and app endpoints (article 9(2))")
    sub = ipv6.add_subparsers(dest="ipv6_command", required=True, metavar="SUBCOMMAND")
    check = sub.add_parser("check", help="AAAA, name servers, HTTP(S) over IPv6 and IPv4, parity, link ratios")
    check.add_argument("targets", nargs="*", metavar="TARGET", help="domain or URL of a portal or API endpoint")
    check.add_argument("--crawl-depth", type=int, choices=(0, 1, 2), default=1,
                       help="0: homepage only; 1: also its links (second level); 2: also third-level links (default: 1)")
    check.add_argument("--probes", type=int, default=5, help="IPv6 homepage probes for the success rate (default: 5)")
    check.add_argument("--resolver", help="send every DNS query to this server (ADDR, ADDR:PORT or [V6]:PORT)")
    check.add_argument("--ca-file", help="also trust this CA (PEM) for TLS")
    check.add_argument("--timeout", type=float, default=10.0, help="seconds per connection step (default: 10)")
    check.add_argument("--concurrency", type=int, default=16, help="links checked at once (default: 16)")
    check.add_argument("--clients", action="store_true",
                       help="also check the mobile clients' API endpoints listed in the policy (ipv6_mobile_clients)")
    check.add_argument("--policy", help="policy file or folder (default: the installed policies)")
    _report_options(check, ("text", "json", "html"))
    check.set_defaults(handler=cmd_ipv6_check)


def _site_parser(commands: argparse._SubParsersAction) -> None:
    site = commands.add_parser("site", help="platform-use inspection of the units' sites (article 29)")
    sub = site.add_subparsers(dest="site_command", required=True, metavar="SUBCOMMAND")
    inspect = sub.add_parser("inspect", help="home page probes, column updates, dead, external and ad links")
    inspect.add_argument("urls", nargs="*", metavar="URL", help="home page(s) to inspect, without --inventory")
    inspect.add_argument("--inventory", help="inventory folder: the unit's unit.site in group_vars")
    inspect.add_argument("--unit", help="the unit's group name (with --inventory)")
    inspect.add_argument("--site", help="a site file (YAML/JSON: unit, home, columns, allowed_external; - for stdin)")
    inspect.add_argument("--as-of", help="the day column ages are judged on (default: today, county time)")
    inspect.add_argument("--depth", type=int, default=2, help="clicks from the home page whose links are checked")
    inspect.add_argument("--probes", type=int, help="home page probes (default: site_probes in the policy)")
    inspect.add_argument("--resolver", help="send every DNS query to this server (ADDR, ADDR:PORT or [V6]:PORT)")
    inspect.add_argument("--ca-file", help="also trust this CA (PEM) for TLS")
    inspect.add_argument("--timeout", type=float, default=10.0, help="seconds per fetch (default: 10)")
    inspect.add_argument("--concurrency", type=int, default=16, help="links checked at once (default: 16)")
    inspect.add_argument("--policy", help="policy file or folder (default: the installed policies)")
    _report_options(inspect, ("text", "json", "html", "xlsx"))
    inspect.set_defaults(handler=cmd_site_inspect)


def _keys_parser(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="age and signing keys for bundles")
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="SUBCOMMAND")
    new = sub.add_parser("new", help="NAME.agekey, NAME.recipient, NAME_ed25519(.pub), NAME.allowed_signers")
    new.add_argument("name", help="the key's principal, e.g. county-office")
    new.add_argument("--out", required=True, help="folder for the key files (never overwritten)")
    new.set_defaults(out_is_folder=True)
    new.add_argument("--sign-only", action="store_true",
                     help="only the signing key and its allowed-signers line (a terminal signs, it never opens bundles)")
    new.set_defaults(handler=cmd_keys_new)


def _bundle_commands(sub: argparse._SubParsersAction, kind: str) -> None:
    """verify, open and forward: the same for incident and proposal bundles."""
    def trust(p: argparse.ArgumentParser) -> None:
        given = p.add_mutually_exclusive_group()
        given.add_argument("--trust", action="append", default=[], metavar="ALLOWED_SIGNERS",
                           help="OpenSSH allowed-signers file of whom you trust (repeatable; this or --no-trust is required)")
        given.add_argument("--no-trust", action="store_true",
                           help="check integrity only: signatures against the keys they carry, the signer NOT checked")

    article = "an" if kind[0] in "aeiou" else "a"
    verify = sub.add_parser("verify", help=f"check {article} {kind} bundle: signatures, hashes, custody (exit 1 on any mismatch)")
    verify.add_argument("bundle")
    verify.add_argument("--identity", "-i", help="age identity (.agekey) to decrypt and check the contents too")
    verify.add_argument("--signature", help="the outer signature (default: BUNDLE.sig)")
    trust(verify)
    _report_options(verify)
    verify.set_defaults(handler=cmd_bundle_verify)

    opened = sub.add_parser("open", help="verify, then extract safely into a new folder")
    opened.add_argument("bundle")
    opened.add_argument("--identity", "-i", required=True, help="age identity (.agekey)")
    opened.add_argument("--out", required=True, help="new or empty folder to extract into")
    opened.set_defaults(out_is_folder=True)
    trust(opened)
    _report_options(opened)
    opened.set_defaults(handler=cmd_bundle_open)

    forward = sub.add_parser("forward", help="verify, add a signed custody event, re-encrypt for the next office")
    forward.add_argument("bundle")
    forward.add_argument("--identity", "-i", required=True, help="age identity (.agekey)")
    forward.add_argument("--sign-key", required=True, help="your OpenSSH Ed25519 private key")
    forward.add_argument("--signer", help="principal to sign as (default: the key's .pub comment)")
    forward.add_argument("--recipient", "-r", action="append", required=True,
                         help="age1… key or .recipient file of the next office (repeatable)")
    forward.add_argument("--out", required=True, help="the new bundle file")
    forward.add_argument("--note", default="", help="note for the custody event")
    trust(forward)
    _report_options(forward)
    forward.set_defaults(handler=cmd_bundle_forward)


def _sealing(p: argparse.ArgumentParser) -> None:
    """Options of the commands that make a new bundle."""
    p.add_argument("--unit", required=True, help="the unit (township or department)")
    p.add_argument("--recipient", "-r", action="append", required=True,
                   help="age1… key or .recipient file of an office that may open it (repeatable)")
    p.add_argument("--sign-key", required=True, help="OpenSSH Ed25519 private key that signs the manifest")
    p.add_argument("--signer", help="principal to sign as (default: the key's .pub comment)")
    p.add_argument("--out", required=True, help="the bundle file to write (.nsb); BUNDLE.sig is written beside it")
    p.add_argument("--digest", default="sha256", help="digests in the manifest: sha256 or sha256,sm3 (default: sha256)")
    p.add_argument("--mask-pii", action="store_true",
                   help="mask resident ID and mobile numbers in text files and the report (article 15)")


def _incident_parser(commands: argparse._SubParsersAction) -> None:
    incident = commands.add_parser("incident", help="signed, encrypted incident bundles (article 27)")
    sub = incident.add_subparsers(dest="incident_command", required=True, metavar="SUBCOMMAND")
    collect = sub.add_parser("collect", help="snapshot this terminal and pack it with the report form")
    _sealing(collect)
    collect.add_argument("--title", required=True, help="the incident's name")
    collect.add_argument("--category", required=True, help="its category (GB/Z 20986), e.g. malware or network-attack")
    collect.add_argument("--severity", required=True, help="its grade: I, II, III, IV (or critical, major, significant, general)")
    collect.add_argument("--discovered-at", required=True,
                         help="when it was found, e.g. 2026-11-28T09:30 (county time unless an offset is given)")
    collect.add_argument("--measures", default="", help="measures taken so far")
    collect.add_argument("--include", action="append", default=[], metavar="PATH", help="file or folder to add (repeatable)")
    collect.add_argument("--days", type=int, default=7, help="auth log and logins of the last N days (default: 7)")
    collect.add_argument("--root", default="/", help="collect from the filesystem under DIR (offline image)")
    collect.add_argument("--policy", help="policy file or folder for the check results (default: the installed policies)")
    collect.add_argument("--lang", choices=("zh", "en"), default="zh")
    collect.set_defaults(handler=cmd_incident_collect)
    _bundle_commands(sub, "incident")


def _proposal_parser(commands: argparse._SubParsersAction) -> None:
    proposal = commands.add_parser("proposal", help="units' optimisation proposals (article 28)")
    sub = proposal.add_subparsers(dest="proposal_command", required=True, metavar="SUBCOMMAND")
    new = sub.add_parser("new", help="a blank proposal form (YAML)")
    new.add_argument("--out", help="write the form to FILE (default: standard output)")
    new.add_argument("--force", action="store_true", help="replace FILE if it exists (it may be a filled-in form)")
    new.add_argument("--lang", choices=("zh", "en"), default="zh")
    new.set_defaults(handler=cmd_proposal_new)
    validate = sub.add_parser("validate", help="check proposal forms; every problem as file:line")
    validate.add_argument("forms", nargs="+", metavar="FORM")
    validate.set_defaults(handler=cmd_proposal_validate)
    aggregate = sub.add_parser("aggregate", help="group a folder of forms by category, merge near-duplicates")
    aggregate.add_argument("folder")
    aggregate.add_argument("--similarity", type=float, default=0.8, help="title similarity to merge at, 0-1 (default: 0.8)")
    _report_options(aggregate, ("md", "xlsx", "json"), "write to FILE (required for xlsx)")
    aggregate.set_defaults(handler=cmd_proposal_aggregate)
    package = sub.add_parser("package", help="a signed, encrypted proposal bundle of a folder of forms and their aggregate")
    package.add_argument("folder")
    _sealing(package)
    package.add_argument("--title", default="", help="title (default: the unit and quarter)")
    package.add_argument("--similarity", type=float, default=0.8)
    package.add_argument("--lang", choices=("zh", "en"), default="zh")
    package.set_defaults(handler=cmd_proposal_package)
    _bundle_commands(sub, "proposal")


def _av_parser(commands: argparse._SubParsersAction) -> None:
    """``av``: antivirus status and scans on this terminal (article 27)."""
    av = commands.add_parser("av", help="antivirus status and scans (article 27)")
    sub = av.add_subparsers(dest="av_command", required=True, metavar="SUBCOMMAND")

    status = sub.add_parser("status", help="one verdict: protected, stale, not running, absent or unknown")
    status.add_argument("--root", default="/", help="judge the filesystem under DIR (a chroot or mounted image)")
    status.add_argument("--windows-defender", metavar="FILE",
                        help="judge a Windows terminal from its `Get-MpComputerStatus | ConvertTo-Json` output instead")
    status.add_argument("--host", help="terminal name for the report (default: the root's hostname)")
    status.add_argument("--policy", help="policy file or folder (default: the installed policies)")
    status.add_argument("--as-of", help="judge ages as of this date, YYYY-MM-DD (default: today)")
    _report_options(status)
    status.set_defaults(handler=cmd_av_status)

    scan = sub.add_parser("scan", help="scan paths with ClamAV (clamdscan when clamd runs, else clamscan) and log the scan")
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.add_argument("--timeout", type=float, default=3600.0, help="seconds before the scan is stopped (default: 3600)")
    scan.add_argument("--quarantine", metavar="DIR",
                      help="move infected files into DIR (0600, sha256 recorded); default: report only, never move or delete")
    scan.add_argument("--exclude", action="append", default=[], metavar="DIR",
                      help="leave this folder (and everything under it) out of the scan; repeatable")
    scan.add_argument("--log", help="scan log to append to (default: /var/lib/nanbu-secops/av-scans.jsonl)")
    _report_options(scan)
    scan.set_defaults(handler=cmd_av_scan)


def _creds_parser(commands: argparse._SubParsersAction) -> None:
    """``creds``: the controller's steps of playbooks/rotate_credentials.yml, and escrow access."""
    creds = commands.add_parser("creds", help="credential rotation with escrow (article 26)")
    sub = creds.add_subparsers(dest="creds_command", required=True, metavar="SUBCOMMAND")

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("--escrow", required=True, help="escrow folder")
        p.add_argument("--host", required=True, help="inventory name of the terminal")
        p.add_argument("--account", required=True, help="the account whose credential is rotated")

    def recipients(p: argparse.ArgumentParser) -> None:
        p.add_argument("--recipient", action="append", default=[], help="age recipient (age1... or ssh-ed25519 ...)")
        p.add_argument("--recipients-file", action="append", default=[], help="file of recipients, one per line")

    password = sub.add_parser("password", help="new password, escrowed; prints JSON with the secret (for the playbook)")
    target(password)
    recipients(password)
    password.add_argument("--policy", help="policy file or folder (default: the installed policies)")
    password.add_argument("--terminal-stdin", action="store_true",
                          help="read the terminal's state as JSON from standard input: current_hash (unconfirmed entries "
                               "are settled against it), pam_path, pam_text and login_defs (the hash method)")
    password.set_defaults(handler=cmd_creds_password)

    key = sub.add_parser("ssh-key", help="new operations SSH key, escrowed and stored in the key folder")
    target(key)
    recipients(key)
    key.add_argument("--key-dir", required=True, help="the controller's key folder")
    key.set_defaults(handler=cmd_creds_ssh_key)

    mark = sub.add_parser("mark", help="record what happened to an escrowed credential")
    mark.add_argument("entry", help="the entry's .age file")
    mark.add_argument("state", choices=("applied", "verified", "rolled-back", "not-applied", "found-in-use"))
    mark.add_argument("--detail", default="")
    mark.set_defaults(handler=cmd_creds_mark)

    verify = sub.add_parser("verify", help="log in over SSH with a credential (exit 0 when it works)")
    verify.add_argument("--address", required=True, help="address to connect to")
    verify.add_argument("--port", type=int, default=22)
    verify.add_argument("--user", required=True)
    verify.add_argument("--known-hosts", required=True, help="known_hosts file to check the host key against")
    verify.add_argument("--host-key-alias", help="name the host key is listed under (default: the address)")
    how = verify.add_mutually_exclusive_group(required=True)
    how.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    how.add_argument("--key", help="private key file")
    verify.add_argument("--timeout", type=float, default=15.0)
    verify.add_argument("--entry", help="escrow entry of this credential: recorded as applied, then verified when the login works")
    verify.set_defaults(handler=cmd_creds_verify)

    activate = sub.add_parser("activate-key", help="make a key of the key folder the one Ansible uses")
    activate.add_argument("--key-dir", required=True)
    activate.add_argument("--host", required=True)
    activate.add_argument("key")
    activate.set_defaults(handler=cmd_creds_activate_key)

    status = sub.add_parser("status", help="state of each host's latest rotation (exit 1 when any is unconfirmed or failed)")
    status.add_argument("--escrow", required=True)
    status.add_argument("--host", action="append", default=[], help="only these hosts (repeatable)")
    status.add_argument("--format", choices=("text", "json"), default="text")
    status.add_argument("--lang", choices=("zh", "en"), default="zh")
    status.set_defaults(handler=cmd_creds_status)

    escrow = sub.add_parser("escrow", help="the escrow, for the unit account manager")
    escrow_sub = escrow.add_subparsers(dest="escrow_command", required=True, metavar="SUBCOMMAND")
    opened = escrow_sub.add_parser("open", help="decrypt an escrowed credential with your age identity")
    opened.add_argument("entry", help="the entry's .age file")
    opened.add_argument("--identity", "-i", required=True, help="age identity file or OpenSSH private key")
    opened.add_argument("--output", help="write the secret to FILE (mode 0600) instead of standard output")
    opened.set_defaults(handler=cmd_creds_escrow_open)


def _write(output: str | None, data: str | bytes) -> None:
    """Print, or write the file (mode 0600) atomically so a reader never sees half a report."""
    from nanbu_secops.fileutil import atomic_write

    if output is None:
        if isinstance(data, bytes):
            raise InputError("this format is binary: give --output FILE")
        sys.stdout.write(data)
        return
    target = Path(output)
    if not target.parent.is_dir():
        raise InputError("--output: folder does not exist", target.parent)
    try:
        atomic_write(target, data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as exc:
        raise InputError(f"--output: {exc.strerror}", target) from None


def _as_of(text: str | None) -> dt.date:
    from nanbu_secops.timeutil import parse_date, today

    try:
        return parse_date(text) if text else today()
    except ValueError as exc:
        raise InputError(f"--as-of: {exc}") from None


def _meter(args: argparse.Namespace, job: str, total: int, unit: Literal["bytes", "items"],
           what: str = "") -> contextlib.AbstractContextManager[Meter | None]:
    """The progress bar of a long job, on standard error and only on a terminal (else None)."""
    from nanbu_secops.progress import meter
    from nanbu_secops.report.i18n import progress_label

    return meter(total, progress_label(job, args.lang, what), unit)


def _sizes(*paths: str) -> int:
    """Bytes to read in all of ``paths``; a path that is not there counts 0 (its reader says why)."""
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += os.stat(path).st_size
    return total


def cmd_check(args: argparse.Namespace) -> int:
    from nanbu_secops import audit
    from nanbu_secops.policy import load_policies

    target = audit.make_target(args.root, _as_of(args.as_of))
    report = audit.run(load_policies(args.policy), target, args.only, args.lang)
    if args.format == "json":
        _write(args.output, json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        import io

        from nanbu_secops.report import text

        color = args.output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        buffer = io.StringIO()
        text.render(report, buffer, color=color)
        _write(args.output, buffer.getvalue())
    return EXIT_CLEAR if report.clear else EXIT_FINDINGS


def cmd_policy_validate(args: argparse.Namespace) -> int:
    from nanbu_secops.policy import load_policies
    from nanbu_secops.policy.commands import validate_command_variables
    from nanbu_secops.report.i18n import message

    policies = load_policies(args.path)
    commands = validate_command_variables(policies)
    for policy in policies.policies:
        print(message("policy ok", args.lang, path=policy.path, id=policy.id, version=policy.version,
                      controls=len(policy.controls)))
    if commands:
        print(message("variables ok", args.lang, commands=", ".join(commands)))
    return EXIT_CLEAR


def cmd_accounts_audit(args: argparse.Namespace) -> int:
    from nanbu_secops.accounts import platform, sources
    from nanbu_secops.policy import load_policies
    from nanbu_secops.report import accounts as render
    from nanbu_secops.report import i18n

    settings = platform.Settings.from_policy(load_policies(args.policy))
    mapping = sources.load_mapping(args.mapping) if args.mapping else None
    if args.format == "xlsx" and not args.output:
        raise InputError("--format xlsx is binary: give --output FILE")
    as_of = _as_of(args.as_of)
    with _meter(args, "accounts", _sizes(args.accounts, args.logins, args.roster), "bytes") as progress:
        result = platform.audit(Path(args.accounts), Path(args.logins), Path(args.roster), settings,
                                as_of, mapping, args.strict, progress)
    report = result.as_json(args.lang)
    if args.format == "json":
        _write(args.output, render.render_json(report))
    elif args.format == "xlsx":
        _write(args.output, render.render_xlsx(report, args.lang))
    elif args.format == "html":
        _write(args.output, render.render_html(report, args.lang))
    else:
        _write(args.output, render.render_text(report, args.lang))
    for problem in result.problems[:20]:
        clihelp.stderr_line("skipped", i18n.problem(str(problem), args.lang), args.lang)
    return EXIT_FINDINGS if result.findings else EXIT_CLEAR


def cmd_accounts_reinstate(args: argparse.Namespace) -> int:
    from nanbu_secops.accounts import register

    entry = register.append(Path(args.register), account=args.account, explanation=Path(args.explanation),
                            approved_by=args.approved_by, host=args.host, unit=args.unit)
    print(json.dumps(entry, ensure_ascii=False))
    return EXIT_CLEAR


def cmd_register_verify(args: argparse.Namespace) -> int:
    from nanbu_secops.accounts import register
    from nanbu_secops.report import i18n
    from nanbu_secops.report.i18n import message

    path = Path(args.register)
    if not args.missing_ok and not os.path.lexists(path) and not os.path.lexists(register.head_path(path)):
        raise InputError("no such register: nothing to verify (give the right --register, or --missing-ok "
                         "where a register not created yet is fine)", path)
    result = register.verify(path)
    for found in result.problems:
        print(f"{args.register}: {i18n.problem(str(found), args.lang)}", file=sys.stderr)
    state = message("register ok" if result.ok else "register broken", args.lang)
    print(message("register", args.lang, path=args.register, state=state, entries=result.entries))
    return EXIT_CLEAR if result.ok else EXIT_FINDINGS


def cmd_register_find(args: argparse.Namespace) -> int:
    from nanbu_secops.accounts import register

    if args.account is None and args.host is None:
        raise InputError("find: give --account, --host or both")
    if args.within_days is not None and args.within_days < 0:
        raise InputError(f"--within-days must be 0 or more, not {args.within_days}")
    since = _as_of(args.as_of) - dt.timedelta(days=args.within_days) if args.within_days is not None else None
    entries = register.find(Path(args.register), args.account, args.host, since)
    for entry in entries:
        print(json.dumps(entry, ensure_ascii=False))
    return EXIT_CLEAR if entries else EXIT_FINDINGS


def _recipients(args: argparse.Namespace) -> list:
    from nanbu_secops.bundle.keys import parse_recipients, read_recipient_file

    found = parse_recipients(args.recipient)
    for path in args.recipients_file:
        found += read_recipient_file(Path(path))
    if not found:
        raise InputError("no escrow recipient: give --recipient or --recipients-file (the unit account manager's age key)")
    return found


def cmd_creds_password(args: argparse.Namespace) -> int:
    from nanbu_secops.creds import rotate
    from nanbu_secops.creds.generate import SHA512
    from nanbu_secops.creds.hashmethod import terminal_method
    from nanbu_secops.policy import load_policies
    from nanbu_secops.policy.loader import require_variables

    rules = rotate.PasswordRules.from_variables(require_variables(load_policies(args.policy), rotate.POLICY_SCHEMA))
    current, method = None, SHA512
    if args.terminal_stdin:
        try:
            terminal = json.loads(sys.stdin.read())
            current = terminal["current_hash"]
            method = terminal_method(terminal["pam_path"], terminal["pam_text"], terminal["login_defs"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"the terminal's state on standard input: {exc}") from None
    print(json.dumps(rotate.prepare_password(Path(args.escrow), args.host, args.account, _recipients(args), rules,
                                             current_hash=current, method=method)))
    return EXIT_CLEAR


def cmd_creds_ssh_key(args: argparse.Namespace) -> int:
    from nanbu_secops.creds import rotate

    print(json.dumps(rotate.prepare_key(Path(args.escrow), Path(args.key_dir), args.host, args.account,
                                        _recipients(args))))
    return EXIT_CLEAR


def cmd_creds_mark(args: argparse.Namespace) -> int:
    from nanbu_secops.creds import escrow

    entry = escrow.mark(escrow.load(Path(args.entry)), args.state, args.detail)
    print(json.dumps(entry.as_json(), ensure_ascii=False))
    return EXIT_CLEAR


def cmd_creds_verify(args: argparse.Namespace) -> int:
    from nanbu_secops.creds import escrow, verify

    if not Path(args.known_hosts).is_file():
        raise InputError("known_hosts file does not exist", args.known_hosts)
    secret = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    entry = escrow.mark(escrow.load(Path(args.entry)), "applied") if args.entry else None
    result = verify.login(args.address, args.port, args.user, known_hosts=Path(args.known_hosts), password=secret,
                          key_file=Path(args.key) if args.key else None, host_key_alias=args.host_key_alias,
                          timeout=args.timeout)
    if entry is not None and result.ok:
        escrow.mark(entry, "verified")
    print(json.dumps({"ok": result.ok, "reason": result.reason}))
    return EXIT_CLEAR if result.ok else EXIT_FINDINGS


def cmd_creds_activate_key(args: argparse.Namespace) -> int:
    from nanbu_secops.creds import keys

    keys.activate(Path(args.key_dir), args.host, Path(args.key))
    return EXIT_CLEAR


def cmd_creds_status(args: argparse.Namespace) -> int:
    from nanbu_secops.creds import rotate
    from nanbu_secops.report import creds as render

    escrow_dir = Path(args.escrow)
    if not escrow_dir.is_dir():
        raise InputError("escrow folder does not exist", escrow_dir)
    rows = rotate.status(escrow_dir, args.host)
    _write(None, render.render_json(rows) if args.format == "json" else render.render_text(rows, args.lang))
    return EXIT_CLEAR if all(r["state"] == "verified" for r in rows if r.get("latest", True)) and \
        all(r["settled"] for r in rows) else EXIT_FINDINGS


def cmd_creds_escrow_open(args: argparse.Namespace) -> int:
    from nanbu_secops.bundle.keys import read_identities
    from nanbu_secops.creds import escrow
    from nanbu_secops.report.i18n import credential_kind, message

    payload = escrow.open_entry(Path(args.entry), read_identities(Path(args.identity)))
    secret = payload["secret"] if payload["secret"].endswith("\n") else payload["secret"] + "\n"
    _write(args.output, secret)
    print("nanbu-secops: " + message("escrow opened", args.lang, kind=credential_kind(payload["kind"], args.lang),
                                     account=payload["account"], host=payload["host"], created=payload["created"]),
          file=sys.stderr)
    return EXIT_CLEAR


def _ssh_probe_parser(commands: argparse._SubParsersAction) -> None:
    """``ssh-probe``: what login terminals' SSH servers offer, judged by the policy's weak patterns."""
    probe = commands.add_parser("ssh-probe", help="list the algorithms SSH servers offer, flag weak ones (article 26)")
    probe.add_argument("targets", nargs="+", metavar="HOST[:PORT]", help="server to probe; IPv6 as [ADDRESS]:PORT")
    probe.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each server (default: 10)")
    probe.add_argument("--policy", help="policy file or folder with ssh_weak_algorithms (default: the installed policies)")
    _report_options(probe)
    probe.set_defaults(handler=cmd_ssh_probe)


def cmd_ssh_probe(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from nanbu_secops.collect import sshprobe
    from nanbu_secops.policy import load_policies
    from nanbu_secops.policy.loader import require_variables
    from nanbu_secops.report import sshprobe as render

    if not args.timeout > 0:
        raise InputError(f"--timeout must be more than 0 seconds, not {args.timeout}")
    endpoints = [sshprobe.parse_endpoint(text) for text in args.targets]
    policies = load_policies(args.policy)
    weak = require_variables(policies, render.POLICY_SCHEMA)["ssh_weak_algorithms"]
    with ThreadPoolExecutor(max_workers=min(16, len(endpoints))) as pool:
        probes = list(pool.map(lambda endpoint: sshprobe.probe(endpoint, args.timeout), endpoints))
    doc = render.build(probes, weak, policies.version, args.lang)
    if args.format == "json":
        _write(args.output, render.render_json(doc))
    else:
        color = args.output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        _write(args.output, render.render_text(doc, args.lang, color=color))
    return EXIT_CLEAR if doc["summary"]["ok"] == len(probes) else EXIT_FINDINGS


AV_CHECKS = ("antivirus_status", "antivirus_updates", "antivirus_last_scan", "antivirus_scanning_scheduled")


def cmd_av_status(args: argparse.Namespace) -> int:
    """The antivirus controls (those running an antivirus check, article 27) on a root or on a
    Windows terminal's Defender status file, rendered as ``check`` renders. Exit 0 only when the
    verdict is protected and the update and scan controls did not fail either."""
    from nanbu_secops import audit
    from nanbu_secops.policy import load_policies
    from nanbu_secops.results import Report

    policies = load_policies(args.policy)
    as_of = _as_of(args.as_of)
    controls = [c for c in audit.select(policies) if c.check in AV_CHECKS]
    if not controls:
        raise InputError(f"no enabled control runs an antivirus check ({', '.join(AV_CHECKS)})",
                         args.policy or "the installed policies")
    if args.windows_defender:
        from nanbu_secops import __version__
        from nanbu_secops.collect import defender
        from nanbu_secops.collect.software import Software
        from nanbu_secops.timeutil import now, rfc3339

        facts = {"antivirus": defender.load(args.windows_defender), "software": Software(live=False), "as_of": as_of}
        report = Report(host=args.host or Path(args.windows_defender).stem, generated=rfc3339(now()),
                        policy_version=policies.version, as_of=as_of.isoformat(), root=args.windows_defender,
                        lang=args.lang, tool_version=__version__,
                        results=[audit.judge(c, facts, {}, args.lang) for c in controls])
    else:
        report = audit.run(policies, audit.make_target(args.root, as_of), [c.id for c in controls], args.lang)
        report.host = args.host or report.host
    if args.format == "json":
        _write(args.output, json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        import io

        from nanbu_secops.report import text

        buffer = io.StringIO()
        text.render(report, buffer, color=args.output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ)
        _write(args.output, buffer.getvalue())
    return EXIT_CLEAR if report.clear else EXIT_FINDINGS


def cmd_av_scan(args: argparse.Namespace) -> int:
    from nanbu_secops.av import records, scan
    from nanbu_secops.report import avscan as render

    record = scan.scan(args.paths, args.timeout, log=Path(args.log or records.SCAN_LOG),
                       quarantine_dir=Path(args.quarantine) if args.quarantine else None, exclude=args.exclude)
    if args.format == "json":
        _write(args.output, render.render_json(record))
    else:
        color = args.output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        _write(args.output, render.render_text(record, args.lang, bool(args.quarantine), color=color))
    return EXIT_CLEAR if record.completed and not record.detections else EXIT_FINDINGS


def cmd_keys_new(args: argparse.Namespace) -> int:
    from nanbu_secops.bundle.keys import new_keys

    for path in new_keys(args.name, Path(args.out), sign_only=args.sign_only):
        print(path)
    return EXIT_CLEAR


def _signing(args: argparse.Namespace) -> tuple:
    """(recipients, signing key, digests) from the sealing options, checked before any work."""
    from nanbu_secops.bundle.keys import load_sign_key, recipient_args
    from nanbu_secops.bundle.manifest import parse_digests

    try:
        digests = parse_digests(getattr(args, "digest", "sha256"))
    except ValueError as exc:
        raise InputError(f"--digest: {exc}") from None
    return recipient_args(args.recipient), load_sign_key(Path(args.sign_key), args.signer), digests


def _pack(args: argparse.Namespace, items, size: int, kind: str, title: str, masking: bool = False) -> int:
    from nanbu_secops.bundle import package
    from nanbu_secops.bundle.stream import BundleEncryptError
    from nanbu_secops.progress import byte_progress
    from nanbu_secops.report.i18n import message, progress_label

    recipients, key, digests = _signing(args)
    with byte_progress(size, progress_label("pack", args.lang, args.out)) as progress:
        try:
            manifest = package.pack(Path(args.out), items, kind=kind, unit=args.unit, title=title,
                                    recipients=recipients, key=key, digests=digests, masking=masking,
                                    action="collected" if kind == "incident" else "packaged", progress=progress)
        except BundleEncryptError as exc:
            raise InputError(f"nothing written: {exc}", args.out) from None
    print(message("bundle made", args.lang, out=args.out, kind=message(kind, args.lang), id=manifest.id,
                  files=len(manifest.files), principal=key.principal, fingerprint=key.fingerprint))
    return EXIT_CLEAR


def cmd_incident_collect(args: argparse.Namespace) -> int:
    from nanbu_secops import audit
    from nanbu_secops.incident import collect, form
    from nanbu_secops.policy import load_policies
    from nanbu_secops.timeutil import now

    _signing(args)
    if args.days < 1:
        raise InputError(f"--days must be at least 1, not {args.days}")
    reported = now()
    try:
        filled = form.IncidentForm(title=args.title.strip(), discovered_at=form.discovered(args.discovered_at, reported),
                                   unit=args.unit, category=form.category(args.category),
                                   severity=form.severity(args.severity), measures=args.measures,
                                   reported_at=reported, host="")
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if not filled.title:
        raise InputError("--title must not be empty")
    target = audit.make_target(args.root, reported.date())
    filled = dataclasses.replace(filled, host=audit.hostname(target))
    planned = collect.Collection.plan(filled, target, args.include, days=args.days, policy=load_policies(args.policy),
                                      lang=args.lang, secrets=[Path(args.sign_key)])
    return _pack(args, planned, planned.size, "incident", filled.title, args.mask_pii)


def _trust(args: argparse.Namespace) -> list | None:
    """The trusted signers; None only when --no-trust asks for integrity alone (never by omission)."""
    from nanbu_secops.bundle.keys import read_trust

    if args.no_trust:
        return None
    if not args.trust:
        raise InputError("whom do you trust? give --trust ALLOWED_SIGNERS (the sender's .allowed_signers file), "
                         "or --no-trust to check integrity only, without checking the signer")
    return read_trust([Path(p) for p in args.trust])


def _show(args: argparse.Namespace, result) -> int:
    from nanbu_secops.report import bundle as render

    if args.format == "json":
        _write(args.output, render.verification_json(result))
    else:
        color = args.output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        _write(args.output, render.verification_text(result, args.lang, color))
    return EXIT_CLEAR if result.ok else EXIT_FINDINGS


def cmd_bundle_verify(args: argparse.Namespace) -> int:
    from nanbu_secops.bundle import package
    from nanbu_secops.bundle.keys import read_identities

    trust = _trust(args)
    identities = read_identities(Path(args.identity)) if args.identity else None
    signature = Path(args.signature) if args.signature else None
    with _meter(args, "verify", _sizes(args.bundle), "bytes", args.bundle) as progress:
        result = package.verify(Path(args.bundle), identities, trust, signature, progress)
    return _show(args, result)


def cmd_bundle_open(args: argparse.Namespace) -> int:
    from nanbu_secops.bundle import package
    from nanbu_secops.bundle.keys import read_identities

    trust = _trust(args)
    identities = read_identities(Path(args.identity))
    with _meter(args, "open", 2 * _sizes(args.bundle), "bytes", args.bundle) as progress:  # verify, then extract
        result = package.open_bundle(Path(args.bundle), identities, Path(args.out), trust, progress)
    return _show(args, result)


def cmd_proposal_new(args: argparse.Namespace) -> int:
    from nanbu_secops.proposal import form

    if args.out is not None and os.path.lexists(args.out) and not args.force:
        raise InputError("will not overwrite an existing form (it may be filled in); give --force to replace it",
                         args.out)
    _write(args.out, form.template(args.lang))
    return EXIT_CLEAR


def cmd_proposal_validate(args: argparse.Namespace) -> int:
    from nanbu_secops.proposal import form
    from nanbu_secops.report.i18n import error_message, message

    missing = [path for path in args.forms if not Path(path).is_file()]
    if missing:
        raise InputError("no such form", missing[0])
    errors = form.validate([Path(path) for path in args.forms])
    for error in errors:
        print(error_message(error, args.lang), file=sys.stderr)
    if not errors:
        print(message("forms ok", args.lang, count=len(args.forms)))
    return EXIT_INPUT if errors else EXIT_CLEAR


def _proposals(folder: str, similarity: float, strict: bool, lang: str):
    """The aggregate of a folder of forms; bad forms are named, and refused when ``strict``."""
    from nanbu_secops.proposal import aggregate
    from nanbu_secops.report.i18n import error_message

    if not 0 < similarity <= 1:
        raise InputError(f"--similarity must be above 0 and at most 1, not {similarity}")
    proposals, errors = aggregate.load_dir(Path(folder))
    for error in errors:
        clihelp.stderr_line("error" if strict else "skipped", error_message(error, lang), lang)
    if errors and strict:
        raise InputError(f"{len(errors)} problem(s) in the forms; fix them before packaging", folder)
    return aggregate.aggregate(proposals, similarity), errors


def cmd_proposal_aggregate(args: argparse.Namespace) -> int:
    from nanbu_secops.report import proposals as render

    result, errors = _proposals(args.folder, args.similarity, strict=False, lang=args.lang)
    if args.format == "xlsx":
        if not args.output:
            raise InputError("--format xlsx is binary: give --output FILE")
        _write(args.output, render.render_xlsx(result, args.lang))
    elif args.format == "json":
        _write(args.output, json.dumps(render.aggregate_json(result), ensure_ascii=False, indent=2) + "\n")
    else:
        _write(args.output, render.render_markdown(result, args.lang))
    return EXIT_INPUT if errors else EXIT_CLEAR


def cmd_proposal_package(args: argparse.Namespace) -> int:
    from nanbu_secops.bundle.archive import REPORT_JSON, REPORT_MD
    from nanbu_secops.bundle.package import Item, plan_includes
    from nanbu_secops.fleet.quarter import Quarter
    from nanbu_secops.report import proposals as render
    from nanbu_secops.timeutil import now

    _signing(args)
    result, _ = _proposals(args.folder, args.similarity, strict=True, lang=args.lang)
    forms = [item for item in plan_includes([args.folder], "evidence/proposals", Path(args.folder))[0]
             if item.path.endswith((".yml", ".yaml"))]
    title = args.title or f"{args.unit} 优化建议 {Quarter.of(now()).label}"
    items = [Item(REPORT_JSON, data=(json.dumps(render.aggregate_json(result), ensure_ascii=False, indent=1) + "\n").encode()),
             Item(REPORT_MD, data=render.render_markdown(result, args.lang).encode()),
             Item("evidence/aggregate.xlsx", data=render.render_xlsx(result, args.lang)), *forms]
    return _pack(args, items, sum(item.length for item in items), "proposal", title, args.mask_pii)


def cmd_bundle_forward(args: argparse.Namespace) -> int:
    from nanbu_secops.bundle import package
    from nanbu_secops.bundle.keys import read_identities

    trust = _trust(args)
    recipients, key, _ = _signing(args)
    identities = read_identities(Path(args.identity))
    with _meter(args, "forward", 2 * _sizes(args.bundle), "bytes", args.bundle) as progress:  # verify, then copy
        result = package.forward(Path(args.bundle), identities, key, recipients, [str(r) for r in recipients],
                                 Path(args.out), args.note, trust, progress)
    return _show(args, result)


def cmd_ipv6_check(args: argparse.Namespace) -> int:
    from nanbu_secops.ipv6 import assess, dns
    from nanbu_secops.policy import load_policies
    from nanbu_secops.policy.loader import require_variables
    from nanbu_secops.progress import count_progress
    from nanbu_secops.report import ipv6 as render
    from nanbu_secops.report.i18n import progress_label
    from nanbu_secops.timeutil import now, rfc3339

    if args.probes < 1 or args.timeout <= 0 or args.concurrency < 1:
        raise InputError("--probes and --concurrency must be at least 1 and --timeout above 0")
    if args.ca_file and not Path(args.ca_file).is_file():
        raise InputError("--ca-file: no such file", args.ca_file)
    try:
        server = dns.parse_resolver(args.resolver) if args.resolver else None
    except ValueError as exc:
        raise InputError(f"--resolver: {exc}") from None
    variables = require_variables(load_policies(args.policy), assess.POLICY_SCHEMA)
    clients: dict[str, list[str]] = variables.get("ipv6_mobile_clients", {}) if args.clients else {}
    targets = list(dict.fromkeys([*args.targets, *(e for endpoints in clients.values() for e in endpoints)]))
    if not targets:
        raise InputError("give at least one TARGET (or --clients with ipv6_mobile_clients in the policy)")
    settings = assess.Settings(success_rate=variables["ipv6_success_rate"], link_ratio=variables["ipv6_link_ratio"],
                               similarity=variables["ipv6_similarity"], probes=args.probes, depth=args.crawl_depth,
                               timeout=args.timeout, concurrency=args.concurrency, ca_file=args.ca_file)
    resolver = dns.Resolver(server, timeout=min(args.timeout, 5.0))
    results = {}
    with count_progress(progress_label("ipv6 links", args.lang)) as progress:
        for target in targets:
            results[target] = assess.assess(target, resolver, settings, progress)
    doc = {"generated": rfc3339(now()), "article": "9(2)", "targets": [results[t] for t in targets],
           "clients": [assess.client_readiness(name, endpoints, results) for name, endpoints in clients.items()]}
    if args.format == "json":
        _write(args.output, render.render_json(doc))
    elif args.format == "html":
        _write(args.output, render.render_html(doc, args.lang))
    else:
        color = args.output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        _write(args.output, render.render_text(doc, args.lang, color))
    ready = all(r["verdict"] == "ready" for r in results.values()) and all(c["ipv6_only"] for c in doc["clients"])
    return EXIT_CLEAR if ready else EXIT_FINDINGS


def cmd_site_inspect(args: argparse.Namespace) -> int:
    from nanbu_secops.checks import site as judge
    from nanbu_secops.ipv6 import assess, dns
    from nanbu_secops.policy import load_policies
    from nanbu_secops.policy.loader import require_variables
    from nanbu_secops.progress import count_progress
    from nanbu_secops.report import site as render
    from nanbu_secops.report.i18n import progress_label
    from nanbu_secops.site import collect, config
    from nanbu_secops.timeutil import now, parse_date, rfc3339, today

    if bool(args.inventory) != bool(args.unit) or sum(map(bool, (args.inventory, args.urls, args.site))) != 1:
        raise InputError("give --inventory DIR --unit U, --site FILE, or one or more URLs")
    if args.depth < 0 or args.timeout <= 0 or args.concurrency < 1 or (args.probes is not None and args.probes < 1):
        raise InputError("--depth must be 0 or more, --probes and --concurrency at least 1, --timeout above 0")
    if args.ca_file and not Path(args.ca_file).is_file():
        raise InputError("--ca-file: no such file", args.ca_file)
    try:
        as_of = parse_date(args.as_of) if args.as_of else today()
        server = dns.parse_resolver(args.resolver) if args.resolver else None
    except ValueError as exc:
        raise InputError(str(exc)) from None
    params = require_variables(load_policies(args.policy), judge.POLICY_SCHEMA)
    if args.inventory:
        sites = [config.from_inventory(Path(args.inventory), args.unit)]
    elif args.site:
        sites = [config.from_file(Path(args.site))]
    else:
        sites = [config.SiteConfig(url, config.check_url(url, "URL")) for url in args.urls]
    settings = collect.Settings(probes=args.probes or params["site_probes"], depth=args.depth, timeout=args.timeout,
                                concurrency=args.concurrency, ca_file=args.ca_file)
    fetcher = collect.Fetcher(assess.resolver_function(dns.Resolver(server, timeout=min(args.timeout, 5.0))), settings)
    results = []
    with count_progress(progress_label("links", args.lang)) as progress:
        for site in sites:
            facts = collect.collect(site.home, [c.url for c in site.columns], fetcher, progress)
            results.append(judge.judge(site.unit, facts, site.columns, site.allowed_external, as_of, params))
    doc = {"as_of": as_of.isoformat(), "generated": rfc3339(now()), "sites": results}
    if args.format == "json":
        _write(args.output, render.render_json(doc))
    elif args.format == "html":
        _write(args.output, render.render_html(doc, args.lang))
    elif args.format == "xlsx":
        _write(args.output, render.render_xlsx(doc, args.lang))
    else:
        _write(args.output, render.render_text(doc, args.lang))
    return EXIT_FINDINGS if any(judge.has_findings(s) for s in results) else EXIT_CLEAR


def cmd_ingest(args: argparse.Namespace) -> int:
    from nanbu_secops.fleet.inventory import load_inventory
    from nanbu_secops.report.i18n import MESSAGES, message, problem
    from nanbu_secops.store import ingest

    hosts = load_inventory(Path(args.inventory)).host_units()
    with _meter(args, "ingest", 0, "items") as progress:  # the total: the files it finds
        stats = ingest(Path(args.folder), Path(args.db), hosts, dry_run=args.dry_run, progress=progress)
    lang = args.lang
    for path, kind, owner, unit, reported, when in stats.stored:
        seen_as = message("reported as", lang, reported=reported) if reported not in (None, owner) else ""
        print(message("would store", lang, path=path, kind=message(kind, lang) if kind in MESSAGES else kind,
                      owner=owner, unit=unit or "-", seen_as=seen_as, when=when))
    for key, files in (("not stored file", stats.refused), ("skipped file", stats.bad)):
        for path, reason in files:
            print(message(key, lang, path=path, reason=problem(reason, lang)), file=sys.stderr)
    print(message("ingest summary", lang, db=args.db, dry=message("dry run", lang) if args.dry_run else "",
                  files=stats.files, runs_added=stats.runs_added, runs_skipped=stats.runs_skipped,
                  results_added=stats.results_added, unreachable_added=stats.unreachable_added,
                  endpoint_runs_added=stats.endpoint_runs_added, endpoints_added=stats.endpoints_added,
                  site_runs_added=stats.site_runs_added, refused=len(stats.refused), bad=len(stats.bad)))
    return EXIT_FINDINGS if stats.bad or stats.refused else EXIT_CLEAR


def cmd_report_quarterly(args: argparse.Namespace) -> int:
    from nanbu_secops.accounts import sources
    from nanbu_secops.fleet import quarter
    from nanbu_secops.fleet.inventory import load_inventory
    from nanbu_secops.fleet.roster import read_roster_changes
    from nanbu_secops.policy import load_policies
    from nanbu_secops.report import i18n, platform_use
    from nanbu_secops.report import quarterly as render
    from nanbu_secops.store import Store

    try:
        period = quarter.parse(args.quarter)
    except ValueError as exc:
        raise InputError(f"--quarter: {exc}") from None
    rosters = (args.previous_roster, args.roster, args.accounts)
    if any(rosters) and not all(rosters):
        raise InputError("--previous-roster, --roster and --accounts go together (staff changes, article 8)")
    if args.format == "xlsx" and not args.output:
        raise InputError("--format xlsx is binary: give --output FILE")
    policies = load_policies(args.policy)
    settings = render.ScoreSettings.from_policy(policies)
    inventory = load_inventory(Path(args.inventory))
    changes = None
    if all(rosters):
        mapping = sources.load_mapping(args.mapping) if args.mapping else None
        changes, problems = read_roster_changes(*(Path(p) for p in rosters), mapping)
        for skipped in problems[:20]:
            clihelp.stderr_line("skipped", i18n.problem(str(skipped), args.lang), args.lang)
    with _meter(args, "quarterly", render.STEPS + 1, "items") as progress:  # and the rendering
        with Store.open(Path(args.db), create=False) as store:
            report = render.build(store, period, inventory, settings, args.lang, changes,
                                  platform_use.weights_from_policy(policies), progress)
        render.retitle(report, {c.id: c.title.get(args.lang) for c in policies.controls})
        if args.format == "json":
            rendered: str | bytes = render.render_json(report)
        elif args.format == "xlsx":
            rendered = render.render_xlsx(report, args.lang, Path(args.inventory))
        else:
            rendered = render.render_html(report, args.lang, Path(args.inventory))
        if progress is not None:
            progress(1)
    _write(args.output, rendered)
    return EXIT_CLEAR if render.clear(report) else EXIT_FINDINGS


def cmd_report_annual(args: argparse.Namespace) -> int:
    from nanbu_secops.fleet.inventory import load_inventory
    from nanbu_secops.policy import load_policies
    from nanbu_secops.report import annual as render
    from nanbu_secops.report import platform_use
    from nanbu_secops.report.quarterly import ScoreSettings
    from nanbu_secops.store import Store

    if not 1970 <= args.year <= 9998:
        raise InputError(f"--year: not a year between 1970 and 9998: {args.year}")
    if args.format == "xlsx" and not args.output:
        raise InputError("--format xlsx is binary: give --output FILE")
    policies = load_policies(args.policy)
    score, settings = ScoreSettings.from_policy(policies), render.AnnualSettings.from_policy(policies)
    inventory = load_inventory(Path(args.inventory))
    with _meter(args, "annual", render.STEPS + 1, "items") as progress:  # and the rendering
        with Store.open(Path(args.db), create=False) as store:
            report = render.build(store, args.year, inventory, score, settings, args.lang,
                                  platform_use.weights_from_policy(policies), progress)
        if args.format == "json":
            rendered: str | bytes = render.render_json(report)
        elif args.format == "xlsx":
            rendered = render.render_xlsx(report, settings, args.lang)
        else:
            rendered = render.render_html(report, settings, args.lang)
        if progress is not None:
            progress(1)
    _write(args.output, rendered)
    return EXIT_CLEAR if render.clear(report) else EXIT_FINDINGS


def cmd_spool_run(args: argparse.Namespace) -> int:
    from nanbu_secops.fleet import spool

    if args.keep < 1:
        raise InputError(f"--keep must be at least 1, not {args.keep}")
    path, clear = spool.run(Path(args.dir), args.keep, root=args.root, policy=args.policy)
    print(path)
    return EXIT_CLEAR if clear else EXIT_FINDINGS


def cmd_spool_newest(args: argparse.Namespace) -> int:
    from nanbu_secops.fleet import spool

    if args.max_age_hours is not None and not 0 <= args.max_age_hours <= 1e6:   # also nan, inf (timedelta overflows)
        raise InputError(f"--max-age-hours must be between 0 and 1000000, not {args.max_age_hours}")
    max_age = None if args.max_age_hours is None else dt.timedelta(hours=args.max_age_hours)
    found = spool.newest(Path(args.dir), max_age)
    if found is None:
        return EXIT_FINDINGS
    print(found)
    return EXIT_CLEAR


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse an --output or --out that cannot be written, before any work (collect would snapshot first)."""
    from nanbu_secops.fileutil import unwritable

    for option in ("output", "out"):
        value = getattr(args, option, None)
        if value is None:
            continue
        why = unwritable(Path(value), folder=option == "out" and getattr(args, "out_is_folder", False))
        if why:
            raise InputError(f"--{option}: {why}", value)


def main(argv: Sequence[str] | None = None) -> int:
    from nanbu_secops.report.i18n import error_message

    argv = sys.argv[1:] if argv is None else list(argv)
    lang = clihelp.choose_lang(argv)
    with clihelp.speaking(lang):
        args = build_parser(lang).parse_args(argv)
    try:
        _check_outputs(args)
        return args.handler(args)
    except InputError as exc:
        clihelp.stderr_line("error", error_message(exc, lang), lang)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
