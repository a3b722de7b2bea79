"""The README as a user meets it: its examples run as written, and its tables say what the code does.

The ```` ```sh ```` blocks are run in order, each with ``bash -e -o pipefail`` in one temporary folder
that links to this checkout's folders (so ``policies/``, ``inventory`` and ``scripts/`` resolve as in
the checkout, while everything the examples write stays in the temporary folder). Each block's exit
code must be the one its ``<!-- example: exit N -->`` marker states (0 without one); a block marked
``<!-- example: not run: REASON -->`` is skipped, and counted in the test's report. The playbook
examples (deploy the agent, rotate credentials, collect incident evidence and results) run against
lab hosts named as in the example inventory, in the same story: what an example writes (keys, the
escrow, group_vars, results) is what the later ones read.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from nanbu_secops.cli import build_parser
from nanbu_secops.fleet.inventory import Inventory, load_inventory
from tests.conftest import own_lab
from tests.lab import Lab
from tests.playbook_output import recap

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"
VENV_BIN = Path(sys.executable).parent
# The checkout's entries an example may name; linked, never copied, into the examples' folder.
LINKED = (".wheelhouse", "README.md", "ansible.cfg", "bench", "inventory", "nanbu_secops", "playbooks", "policies",
          "pyproject.toml", "requirements", "scripts", "tests")
MARKER = re.compile(r"<!-- example: (?:exit (?P<codes>\d+(?:\|\d+)*)|not run: (?P<reason>\S.*?)) -->")
FENCE = re.compile(r"```(?P<lang>[a-z]*)$")
NOT_RUN_MAX = 2         # the test suite itself, and bench_check (Lynis runs apt on the machine)
ROTATED = "clerk"       # the account the README's rotation example rotates on 升钟镇's terminals


@dataclass(frozen=True)
class Block:
    """A fenced code block of README.md, with the marker comment on the line before it."""

    line: int                   # 1-based line of the opening fence
    lang: str
    text: str
    codes: frozenset[int]       # the exit codes the README says it may end with
    not_run: str | None         # the reason it is not run


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block; a marker that is not directly followed by a ```sh block, or a marker
    that cannot be read, is an error (a typo must not silently turn an example off)."""
    lines = text.split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.fullmatch(lines[i])
        if lines[i].startswith("<!-- example") and not MARKER.fullmatch(lines[i]):
            raise AssertionError(f"README.md:{i + 1}: unreadable example marker {lines[i]!r}")
        if opening is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j] == "```"), None)
        assert end is not None, f"README.md:{i + 1}: code block never closed"
        marker = MARKER.fullmatch(lines[i - 1]) if i else None
        assert marker is None or opening["lang"] == "sh", f"README.md:{i}: an example marker before a non-sh block"
        codes = frozenset(int(c) for c in marker["codes"].split("|")) if marker and marker["codes"] else frozenset({0})
        blocks.append(Block(i + 1, opening["lang"], "\n".join(lines[i + 1:end]) + "\n", codes,
                            marker["reason"] if marker else None))
        i = end + 1
    for n, line in enumerate(lines):
        if MARKER.fullmatch(line) and not (n + 1 < len(lines) and lines[n + 1] == "```sh"):
            raise AssertionError(f"README.md:{n + 1}: an example marker must stand right above its ```sh block")
    return blocks


def indented_code(text: str) -> list[int]:
    """Lines opening an indented (4-space) code block outside fences: a block no test would classify."""
    found, fenced, previous_blank = [], False, True
    for n, line in enumerate(text.split("\n"), 1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and previous_blank and line.startswith("    ") and line.strip():
            found.append(n)
        previous_blank = not line.strip()
    return found


def test_every_code_block_is_classified() -> None:
    text = README.read_text(encoding="utf-8")
    assert indented_code(text) == [], "README.md: indented code blocks; fence them as ```sh (an example) or ```text"
    blocks = readme_blocks(text)
    assert {b.lang for b in blocks} <= {"sh", "text", "powershell", "yaml", "json"}, {b.lang for b in blocks}
    for block in blocks:
        if block.lang == "sh":
            assert ".venv/bin/" not in block.text, f"README.md:{block.line}: use the command on PATH"


def test_marker_parsing_is_strict() -> None:
    """A mistyped marker fails instead of turning an example off or on unnoticed."""
    with pytest.raises(AssertionError, match="unreadable example marker"):
        readme_blocks("<!-- example: not-run -->\n```sh\ntrue\n```\n")
    with pytest.raises(AssertionError, match="right above"):
        readme_blocks("<!-- example: exit 1 -->\n\n```sh\nfalse\n```\n")
    with pytest.raises(AssertionError, match="never closed"):
        readme_blocks("```sh\ntrue\n")
    (block,) = readme_blocks("<!-- example: exit 0|1 -->\n```sh\ntrue\n```\n")
    assert block.codes == {0, 1} and block.not_run is None


def lab_inventory(lab: Lab, folder: Path) -> None:
    """The example inventory, its terminals being lab hosts of the same names (and the lab's SSH settings)."""
    shutil.copytree(PROJECT / "inventory", folder)
    hosts = yaml.safe_load((folder / "hosts.yml").read_text(encoding="utf-8"))

    def point(node: dict) -> None:
        for name, host in (node.get("hosts") or {}).items():
            host["ansible_host"] = lab.hosts[name].ipv4
        for child in (node.get("children") or {}).values():
            point(child)

    point(hosts["all"])
    hosts["all"]["vars"] = {"ansible_user": "root", "ansible_ssh_common_args": f"-F {lab.ssh_config}"}
    (folder / "hosts.yml").write_text(yaml.safe_dump(hosts, allow_unicode=True), encoding="utf-8")


@functools.cache
def _example_inventory() -> Inventory:
    return load_inventory(PROJECT / "inventory")


def example_hosts(pattern: str = "all") -> list[str]:
    """The terminals of the example inventory, read as ``ingest`` reads it, or of one of its groups or
    hosts (a playbook's ``target``)."""
    inventory = _example_inventory()
    if pattern in inventory.hosts:
        return [pattern]
    return sorted(inventory.hosts) if pattern == "all" else inventory.hosts_of(pattern)


def prepare_terminals(lab: Lab, home: Path) -> None:
    """What the county's controller and terminals have before the examples: the terminals' host keys in
    the operator's known_hosts (the rotation logs in with the new password, host key checked), and on
    升钟镇's terminals a ``clerk`` account with a password (the account the example rotates)."""
    (home / ".ssh").mkdir(mode=0o700)
    shutil.copyfile(lab.known_hosts, home / ".ssh" / "known_hosts")
    for host in example_hosts("u_shengzhong"):
        lab.ssh(host, f"useradd -m -s /bin/bash {ROTATED} && chpasswd", input=f"{ROTATED}:Clerk-pass-2026-{host}\n")


def checkout_state() -> tuple[str, list[str]]:
    """The checkout's changes and the entries of its top and playbooks/ folders (ignored ones too): the
    examples run in a folder that links to the checkout, and must write nothing through those links."""
    status = subprocess.run(["git", "-C", str(PROJECT), "status", "--porcelain"], capture_output=True, text=True,
                            timeout=60, check=True).stdout
    return status, sorted(p.name for folder in (PROJECT, PROJECT / "playbooks") for p in folder.iterdir())


@pytest.mark.lab
def test_readme_examples_run_in_order(tmp_path: Path) -> None:
    blocks = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.lang == "sh"]
    not_run = [b for b in blocks if b.not_run]
    runs = [b for b in blocks if not b.not_run]
    assert len(runs) >= 10, "the README lost its examples"
    if not any((PROJECT / ".wheelhouse").glob("*.whl")):
        pytest.fail(f"no dependency wheels in {PROJECT / '.wheelhouse'}: run `bash scripts/setup.sh --test` first",
                    pytrace=False)
    before = checkout_state()
    for name in LINKED:
        if name != "inventory":
            (tmp_path / name).symlink_to(PROJECT / name)
    (tmp_path / ".venv").symlink_to(VENV_BIN.parent)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8"}
    env.pop("NANBU_SECOPS_POLICY_DIR", None)
    (tmp_path / "home").mkdir()
    exports = ""                    # `export` lines carry to the later blocks, as in the user's one shell
    with own_lab(example_hosts(), offset=5, prefix="nsreadme-") as lab:
        lab_inventory(lab, tmp_path / "inventory")
        prepare_terminals(lab, tmp_path / "home")
        env["ANSIBLE_HOME"] = str(tmp_path / "ansible")
        env["TMPDIR"] = str(tmp_path / "tmp")   # the playbooks' controller-side temporary folders go with tmp_path
        (tmp_path / "tmp").mkdir()
        for block in runs:
            result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", exports + block.text], cwd=tmp_path,
                                    env=env, capture_output=True, text=True, timeout=300, check=False)
            assert result.returncode in block.codes, (
                f"README.md:{block.line}: exit {result.returncode}, the README says {sorted(block.codes)}\n"
                f"{block.text}--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")
            assert "Traceback" not in result.stderr, f"README.md:{block.line}: a traceback\n{result.stderr}"
            if "ansible-playbook" in block.text:     # its (last) run reached every terminal it targets, none failed
                counters = recap(result)
                target = re.search(r"-e target=(\S+)", block.text)
                terminals = {h for h in counters if h != "localhost"}      # collect.yml makes folders there
                assert terminals == set(example_hosts(target[1] if target else "all")), f"README.md:{block.line}: {counters}"
                assert all(c["ok"] > 0 and not c["unreachable"] and not c["failed"] for c in counters.values()), counters
            exports += "".join(line + "\n" for line in block.text.splitlines() if line.startswith("export "))
        # What the playbook examples say they leave on the controller is there, from the lab's terminals.
        results = {p.parent.name for p in (tmp_path / "results" / "2026Q4").glob("*/*.json")
                   if not p.name.startswith("UNREACHABLE")}
        assert results == set(example_hosts()), results
        escrowed = {p.parts[-3] for p in (tmp_path / "escrow").glob(f"*/{ROTATED}/*-password.age")}
        assert escrowed == set(example_hosts("u_shengzhong")), escrowed
        assert len(list((tmp_path / "incidents" / "szz-term-01").glob("*.nsb"))) == 1
    assert checkout_state() == before, "the examples wrote into the checkout"
    assert exports.startswith('export PATH="$PWD/.venv/bin:$PATH"'), "the README no longer puts the venv on PATH"
    assert shutil.which("nanbu-secops", path=f"{tmp_path}/.venv/bin") is not None
    summary = f"README examples: {len(runs)} run, {len(not_run)} not run: " + "; ".join(
        f"line {b.line} ({b.not_run})" for b in not_run)
    warnings.warn(summary, UserWarning, stacklevel=1)     # shown in every run's warnings summary
    assert len(not_run) <= NOT_RUN_MAX, summary


def test_story_outputs_exist(tmp_path: Path) -> None:
    """The examples' own claims hold: the files the story says it makes are named by later examples."""
    text = "".join(b.text for b in readme_blocks(README.read_text(encoding="utf-8")) if b.lang == "sh" and not b.not_run)
    for made, used in (("keys new daqiao", "keys/daqiao_ed25519"), ("keys new city", "keys/city.recipient"),
                       ("mkdir case", "-C case/"), ("platform/mapping.yml <<", "--mapping platform/mapping.yml"),
                       ("keys new szz-manager", "-i keys/szz-manager.agekey"), ("mkdir -p -m 700 escrow", "nanbu_escrow_dir"),
                       ("keys new county-office", "keys/county-office.recipient)]"),
                       ("playbooks/deploy_agent.yml", "playbooks/incident_collect.yml"),
                       ("playbooks/deploy_agent.yml", "playbooks/collect.yml"),
                       ("playbooks/collect.yml", "ingest results/2026Q4")):
        assert text.index(made) < text.index(used), (made, used)


def _commands(block: Block) -> list[list[str]]:
    """The block's command lines as words: continuations joined, comments and synopsis brackets dropped."""
    text = block.text.replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        words = shlex.split(line.replace("[", " ").replace("]", " ").replace("|", " "), comments=True)
        if words:
            found.append(words)
    return found


def _options(words: list[str]) -> set[str]:
    return {w.split("=", 1)[0] for w in words if re.fullmatch(r"--?[A-Za-z][-A-Za-z0-9]*(=.*)?", w)}


def _subparser(parser: argparse.ArgumentParser, words: list[str]) -> argparse.ArgumentParser:
    """The (sub)parser the leading words select, e.g. ``report quarterly``."""
    for word in words:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers or word not in subparsers[0].choices:
            break
        parser = subparsers[0].choices[word]
    return parser


def test_examples_not_run_and_synopses_name_what_exists() -> None:
    """What is not run is still checked: every program, playbook and script it names exists, and every
    option it shows is one that command has (its parser, or its --help for the benchmarks)."""
    blocks = [b for b in readme_blocks(README.read_text(encoding="utf-8"))
              if b.lang == "text" or (b.lang == "sh" and b.not_run)]
    parser = build_parser()
    checked = 0
    for block in blocks:
        for words in _commands(block):
            where = f"README.md:{block.line}: {' '.join(words)}"
            if words[0] == "nanbu-secops":
                sub = _subparser(parser, words[1:])
                known = {o for action in sub._actions for o in action.option_strings}
                assert _options(words) <= known, f"{where}: unknown options {_options(words) - known}"
            elif words[0] == "ansible-playbook":
                books = [w for w in words if w.startswith("playbooks/")]
                assert books and all((PROJECT / b).is_file() for b in books), where
            elif words[0] == "python" and words[1].startswith("bench/"):
                helped = subprocess.run([sys.executable, str(PROJECT / words[1]), "--help"], capture_output=True,
                                        text=True, timeout=60, check=False)
                assert helped.returncode == 0, f"{where}: {helped.stderr}"
                missing = {o for o in _options(words) if o not in helped.stdout}
                assert not missing, f"{where}: options not in its --help: {missing}"
            elif words[0] == "bash":
                assert (PROJECT / words[1]).is_file(), where
            else:
                continue
            checked += 1
    assert checked >= 18, checked  # the synopses and the two examples not run: the test lost none of them


def _leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[str]:
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        return [" ".join(prefix)]
    return [leaf for name, sub in subparsers[0].choices.items() for leaf in _leaf_commands(sub, (*prefix, name))]


def test_exit_code_table_lists_every_command() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    listed = {name for row in section.splitlines() if row.startswith("| `")
              for name in re.findall(r"`([^`]+)`", row.split("|")[1])}
    commands = set(_leaf_commands(build_parser()))
    assert commands - listed == set(), "commands missing from the README's exit-code table"
    assert listed - commands == set(), "the README's exit-code table names commands that do not exist"


def test_generated_tables_are_current() -> None:
    sys.path.insert(0, str(PROJECT / "scripts"))
    try:
        import readme_tables
    finally:
        sys.path.remove(str(PROJECT / "scripts"))
    _, stale = readme_tables.render(README.read_text(encoding="utf-8"))
    assert stale == [], f"README.md: stale generated tables {stale}; run: python scripts/readme_tables.py"


def test_controls_table_covers_every_control() -> None:
    """Every shipped control has a row, and every fact a check reads has declared sources."""
    from nanbu_secops import checks, collect
    from nanbu_secops.policy.loader import load_policies

    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- generated: controls", 1)[1].split("<!-- end generated: controls -->", 1)[0]
    for control in load_policies(PROJECT / "policies").controls:
        assert f"| `{control.id}`" in table, control.id
    collect.load_all()
    for spec in checks.load_all().values():
        for fact in spec.facts:
            assert collect.READS.get(fact), f"collector {fact!r} declares no sources (reads=...)"
