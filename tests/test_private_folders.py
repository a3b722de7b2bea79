"""The controller's trusted folders: results, register and escrow are refused when others may write them.

Anyone who can write into the results folder can plant a "terminal result" that the quarterly
report would count, swap the reinstatement register with its head file, or add a log line that
makes an escrowed password look verified. So each is created 0750/0700 and refused (exit 2,
naming the folder) when its group or everyone may write it.
"""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyrage
import pytest

from nanbu_secops.accounts import register as reg
from nanbu_secops.cli import main
from nanbu_secops.creds import escrow
from nanbu_secops.errors import InputError
from nanbu_secops.fileutil import make_private_dir
from nanbu_secops.store import ingest
from tests.playbook_output import flat
from tests.test_store import report  # noqa: F401  (the fixture: a real check result)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """An operator's umask of 0 (or 002): folders must still come out exactly as asked."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


def put(path: Path, report: dict[str, Any], host: str) -> None:
    run = copy.deepcopy(report)
    run["host"] = host
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run), encoding="utf-8")


def runs(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT host FROM runs ORDER BY host")]


def hosts_inventory(folder: Path, *hosts: str) -> Path:
    """An inventory folder that lists ``hosts`` (ingest stores only inventory hosts)."""
    folder.mkdir(parents=True)
    (folder / "hosts.ini").write_text("[terminals]\n" + "".join(f"{h}\n" for h in hosts), encoding="utf-8")
    return folder


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o757])
def test_a_result_planted_in_a_writable_results_folder_is_refused(tmp_path, report, capsys, mode):
    results, db = tmp_path / "results", tmp_path / "fleet.sqlite"
    inventory = hosts_inventory(tmp_path / "inventory", "h01", "h02")
    put(results / "h01" / "20261128T010000.000000Z-h01.json", report, "h01")
    put(results / "h02" / "20261128T010000.000000Z-h02.json", report, "h02")  # planted: h02 is offline
    os.chmod(results, 0o750)
    os.chmod(results / "h02", mode)

    assert main(["ingest", str(results), "--db", str(db), "--inventory", str(inventory), "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert str(results / "h02") in err and f"mode {mode:04o}" in err and "Traceback" not in err
    assert runs(db) == []                                            # nothing counted, not even h01

    os.chmod(results / "h02", 0o750)    # the operator looked, and h02's result is genuine after all
    assert main(["ingest", str(results), "--db", str(db), "--inventory", str(inventory)]) == 0
    assert runs(db) == ["h01", "h02"]


def test_the_results_folder_itself_is_checked(tmp_path, report):
    results = tmp_path / "results"
    put(results / "h01" / "r.json", report, "h01")
    os.chmod(results, 0o1777)            # sticky does not help: anyone may still add a host folder
    with pytest.raises(InputError, match="writable by its group or by everyone"):
        ingest(results, tmp_path / "db.sqlite")


def test_make_private_dir_gives_exactly_the_mode(tmp_path, loose_umask):
    make_private_dir(tmp_path / "escrow", 0o700, "escrow folder")
    make_private_dir(tmp_path / "results", 0o750, "results folder")
    assert stat.S_IMODE((tmp_path / "escrow").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "results").stat().st_mode) == 0o750
    (tmp_path / "open").mkdir(mode=0o775)
    with pytest.raises(InputError, match=r"mode 0775"):
        make_private_dir(tmp_path / "open", 0o750, "results folder")


def test_the_register_folder_is_made_0750_and_refused_when_writable(tmp_path, loose_umask):
    explanation = tmp_path / "why.txt"
    explanation.write_text("单位书面说明：已核实本人身份。\n", encoding="utf-8")
    register = tmp_path / "registers" / "reinstatements.jsonl"
    reg.append(register, account="alice", explanation=explanation, approved_by="王")
    assert stat.S_IMODE(register.parent.stat().st_mode) == 0o750
    assert reg.verify(register).ok and reg.verify(register).entries == 1

    os.chmod(register.parent, 0o777)
    for attempt in (lambda: reg.verify(register), lambda: reg.find(register, account="alice"),
                    lambda: reg.append(register, account="bob", explanation=explanation, approved_by="王")):
        with pytest.raises(InputError, match="register folder: writable by its group or by everyone"):
            attempt()
    assert len(register.read_text().splitlines()) == 1


def test_the_escrow_is_refused_when_writable(tmp_path):
    identity = pyrage.x25519.Identity.generate()
    esc = tmp_path / "escrow"
    esc.mkdir(mode=0o700)
    entry = escrow.deposit(esc, "h01", "clerk", "password", b"pw-1", [identity.to_public()])
    assert stat.S_IMODE(entry.path.parent.stat().st_mode) == 0o700
    assert [e.state for e in escrow.entries(esc)] == ["escrowed"]

    os.chmod(entry.path.parent, 0o777)   # an account's folder: anyone could add a log line there
    with pytest.raises(InputError, match="escrow folder: writable"):
        list(escrow.entries(esc))
    with pytest.raises(InputError, match="escrow folder: writable"):
        escrow.deposit(esc, "h01", "clerk", "password", b"pw-2", [identity.to_public()])
    assert len(list(entry.path.parent.glob("*.age"))) == 1    # nothing was written there

    os.chmod(entry.path.parent, 0o700)
    os.chmod(esc, 0o770)
    with pytest.raises(InputError, match="mode 0770"):
        escrow.deposit(esc, "h02", "clerk", "password", b"pw-3", [identity.to_public()])
    assert not (esc / "h02").exists()                          # refused before making anything


# --------------------------------------------------------------- collect.yml on a lab host

HOST = "h01"


def collect(lab, results: Path) -> Any:
    project = Path(__file__).resolve().parents[1]
    return lab.ansible_playbook(project / "playbooks" / "collect.yml", "-e", f"target={HOST}",
                                "-e", f"nanbu_results_dir={results}",
                                "-e", f"nanbu_agent={project / '.venv' / 'bin' / 'nanbu-secops'}",
                                "-e", f"nanbu_policy_dest={project / 'policies'}")


def test_collect_makes_the_results_folders_0750_and_refuses_a_writable_one(lab, tmp_path):
    results = tmp_path / "results" / "2026Q4"
    before = os.umask(0o002)                 # a controller whose umask lets the group write
    try:
        done = collect(lab, results)
    finally:
        os.umask(before)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert stat.S_IMODE(results.stat().st_mode) == stat.S_IMODE((results / HOST).stat().st_mode) == 0o750
    assert len(list((results / HOST).glob("*.json"))) == 1
    inventory = hosts_inventory(tmp_path / "inventory", HOST)
    assert main(["ingest", str(results), "--db", str(tmp_path / "fleet.sqlite"), "--inventory", str(inventory)]) == 0
    assert runs(tmp_path / "fleet.sqlite") == [HOST]

    os.chmod(results / HOST, 0o777)
    again = collect(lab, results)
    assert again.returncode != 0
    assert f"{results / HOST} (mode 0777)" in flat(again)
    assert len(list((results / HOST).glob("*.json"))) == 1    # nothing fetched into it
