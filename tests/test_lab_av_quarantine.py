"""The quarantine race on a lab host, against the host's own /etc/passwd, with the real clamscan.

A user (``nobody`` here) keeps EICAR in ~/x/passwd; root's scan reports it; before root moves
it, the user swaps ~/x for a link to /etc. The agent runs as root on lab host h02 (its /etc is
the host's overlay, never the machine's); the user's swap is run right after the engine returns,
by wrapping ``scan.run_engine`` in the agent's process, because a real race is not repeatable.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import pytest

from tests.clamdb import EICAR, EICAR_SIGNATURE, write_cud

HOST = "h02"
HOME = "/home/nanbu-mallory"
VAULT = "/var/lib/nanbu-secops/quarantine-race"

AGENT = f"""
import json, subprocess, sys
from pathlib import Path
from nanbu_secops.av import scan

real = scan.run_engine

def engine_then_user(argv, timeout):
    result = real(argv, timeout)
    subprocess.run(["runuser", "-u", "nobody", "--", "sh", "-c",
                    "mv {HOME}/x {HOME}/x.old && ln -s /etc {HOME}/x"], check=True)
    return result

scan.run_engine = engine_then_user
record = scan.scan(["{HOME}"], 300, log=Path("/tmp/nanbu-race.jsonl"), quarantine_dir=Path("{VAULT}"))
print(json.dumps(record.as_json()))
"""


@pytest.fixture()
def terminal(lab):
    lab.reset_host(HOST)
    with tempfile.TemporaryDirectory() as folder:
        cud = write_cud(Path(folder), dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), 27400)
        lab.ssh(HOST, "base64 -d > /var/lib/clamav/daily.cud", input=base64.b64encode(cud.read_bytes()).decode())
    lab.ssh(HOST, f"install -d -o nobody -m 0755 {HOME} && runuser -u nobody -- mkdir {HOME}/x")
    lab.ssh(HOST, f"runuser -u nobody -- sh -c 'base64 -d > {HOME}/x/passwd'", input=base64.b64encode(EICAR).decode())
    yield lab
    lab.reset_host(HOST)


def test_root_does_not_move_etc_passwd_through_a_swapped_folder(terminal):
    lab = terminal
    before = lab.ssh(HOST, "sha256sum /etc/passwd && stat -c '%i %a %U' /etc/passwd").stdout
    done = lab.ssh(HOST, f"{sys.executable} -c '{AGENT}'", timeout=300)
    record = json.loads(done.stdout)
    assert [(d["path"], d["signature"]) for d in record["detections"]] == [
        (f"{HOME}/x/passwd", f"{EICAR_SIGNATURE}.UNOFFICIAL")], done.stdout
    assert record["engine"] == "clamscan" and record["completed"] is True
    assert record["detections"][0]["quarantined_to"] == ""
    assert lab.ssh(HOST, "sha256sum /etc/passwd && stat -c '%i %a %U' /etc/passwd").stdout == before
    assert lab.ssh(HOST, f"find {VAULT} -type f | wc -l").stdout.strip() == "0"
    assert lab.ssh(HOST, f"readlink {HOME}/x && sha256sum {HOME}/x.old/passwd").stdout.split()[:2] == [
        "/etc", hashlib.sha256(EICAR).hexdigest()]
