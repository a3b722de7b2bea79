"""The ``nanbu-secops`` command: argument parsing and dispatch, nothing else.

Exit codes: 0 all clear, 1 findings (a control failed or could not be evaluated),
2 bad input or configuration (the message names the file and line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from nanbu_secops import __version__
from nanbu_secops.errors import InputError

EXIT_CLEAR, EXIT_FINDINGS, EXIT_INPUT = 0, 1, 2


def _only(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nanbu-secops",
        description="南部县政府网站集约化平台 安全运维工具 / security operations for Nanbu County's platform units")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="audit this machine, or a root tree, against the policies")
    check.add_argument("--root", default="/", help="audit the filesystem under DIR (a chroot or mounted image)")
    check.add_argument("--policy", help="policy file or folder (default: the installed policies)")
    check.add_argument("--only", type=_only, action="extend", default=[], metavar="CONTROL_OR_ARTICLE",
                       help="run only these controls or articles (repeatable, comma-separated)")
    check.add_argument("--as-of", help="judge ages as of this date, YYYY-MM-DD (default: today, Asia/Shanghai)")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument("--lang", choices=("zh", "en"), default="zh")
    check.add_argument("--output", help="write the report to FILE instead of standard output")
    check.set_defaults(handler=cmd_check)

    policy = commands.add_parser("policy", help="work with policy files")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")
    validate = policy_commands.add_parser("validate", help="check policy files against their schema")
    validate.add_argument("path", nargs="?", help="policy file or folder (default: the installed policies)")
    validate.set_defaults(handler=cmd_policy_validate)
    return parser


def _write(output: str | None, text: str) -> None:
    """Print, or write the file atomically so a reader never sees half a report."""
    if output is None:
        sys.stdout.write(text)
        return
    target = Path(output)
    if not target.parent.is_dir():
        raise InputError("--output: folder does not exist", target.parent)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        os.unlink(tmp)
        raise InputError(f"--output: {exc.strerror}", target) from None


def cmd_check(args: argparse.Namespace) -> int:
    from nanbu_secops import audit
    from nanbu_secops.policy import load_policies
    from nanbu_secops.timeutil import parse_date, today

    try:
        as_of = parse_date(args.as_of) if args.as_of else today()
    except ValueError as exc:
        raise InputError(f"--as-of: {exc}") from None
    target = audit.make_target(args.root, as_of)
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

    policies = load_policies(args.path)
    for policy in policies.policies:
        print(f"{policy.path}: ok ({policy.id} {policy.version}, {len(policy.controls)} controls)")
    return EXIT_CLEAR


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except InputError as exc:
        print(f"nanbu-secops: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
