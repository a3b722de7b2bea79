"""Every subcommand that writes to --output or --out, driven through the places that cannot take it.

Each must exit 2 with one line naming the path, before any work: the check runs before the
command's handler, so the other arguments here are placeholders the handler never sees. The
read-only folder is a read-only tmpfs mounted in a private mount namespace of the child that runs
the commands, and the full disk is a device node made in the test's folder, so nothing on the
machine changes even when a command gets it wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from nanbu_secops.cli import build_parser

DRIVER = r'''
import contextlib, io, json, sys
from nanbu_secops.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    results.append({"argv": argv, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(results))
'''


def placeholder(action: argparse.Action) -> list[str]:
    value = str(action.choices[0]) if action.choices else "1" if action.type in (int, float) else "x"
    return [value] if not action.option_strings else [action.option_strings[0], value]


def writing_commands() -> list[tuple[str, list[str], str, bool, list[str]]]:
    """(command, argv without output options, the option, whether it names a folder, the other required
    output options) for every leaf subcommand."""
    found = []

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subparsers:
            for name, child in subparsers[0].choices.items():
                walk(child, prefix + [name])
            return
        options = {o for a in parser._actions for o in a.option_strings}
        grouped = {a for g in parser._mutually_exclusive_groups for a in g._group_actions}
        args = list(prefix)
        for action in parser._actions:
            if action.required and action not in grouped and action.dest not in ("out", "output"):
                args += placeholder(action)
        for group in parser._mutually_exclusive_groups:
            if group.required:
                args += placeholder(group._group_actions[0])
        folder = parser.get_default("out_is_folder") is True
        required = [a.option_strings[0] for a in parser._actions if a.required and a.dest in ("out", "output")]
        for option in ("--output", "--out"):
            if option in options:
                others = [o for o in required if o != option]
                found.append((" ".join(prefix), args, option, folder and option == "--out", others))

    walk(build_parser(), [])
    return found


def test_every_output_option_refuses_an_unwritable_place_before_any_work(tmp_path: Path) -> None:
    commands = writing_commands()
    assert {"check", "incident collect", "incident open", "incident forward", "keys new", "proposal new",
            "creds escrow open", "av scan"} <= {command for command, *_ in commands}
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    # a full disk: a node of /dev/full's device (1, 7) made here, so that a regression replacing the
    # device by a regular file (as the rename of the output used to do) never touches the real /dev/full
    full = tmp_path / "full"
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    places = {"proc": "/proc/nanbu-x", "read-only": f"{readonly}/x", "device": str(full),
              "file in the way": f"{a_file}/x"}
    runs, expected = [], []
    fine = tmp_path / "fine"  # where the other, required output option may write
    for _, args, option, folder, others in commands:
        for case, place in places.items():
            if folder and case == "device":
                place = str(a_file)  # an existing file where a folder is wanted
            runs.append([*args, *[part for other in others for part in (other, str(fine))], option, place,
                         "--lang", "en"])
            expected.append((case, place, option))
    script = 'mount -t tmpfs -o ro,size=1m tmpfs "$1" && shift && exec "$@"'
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh",
                           str(readonly), sys.executable, "-c", DRIVER, json.dumps(runs)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    bad = []
    for result, (case, place, option) in zip(results, expected, strict=True):
        lines = result["stderr"].splitlines()
        if not (result["code"] == 2 and result["stdout"] == "" and len(lines) == 1
                and lines[0].startswith(f"nanbu-secops: error: {place}: {option}: ")):
            bad.append((case, result))
    assert bad == []
    assert stat.S_ISCHR(full.stat().st_mode)
    assert not any(p.name.startswith(".nanbu-secops-write-check") for p in tmp_path.rglob("*"))
