"""Benchmark: rotate_credentials.yml across 10 lab hosts beside a bare ``ansible -m ping``.

    .venv/bin/python bench/bench_rotate.py [--hosts 10] [--runs 3]

Both run against the same lab hosts in the same run (the machine is shared and noisy, so only
the ratio means anything). The rotation does one account password per host (escrow, set,
verify over SSH, record) plus, with --ops-key, the operations key. Prints the median wall time
of each, the per-host cost of the rotation beyond the ping, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyrage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from nanbu_secops.creds.generate import sha512_crypt  # noqa: E402
from tests.lab import Lab  # noqa: E402  (the project's own SSH lab)

VENV = Path(sys.executable).parent


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ops-key", action="store_true", help="also rotate the operations key")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nsbench-", dir="/tmp"))
    lab = Lab(work, args.hosts, bridge="nslabbr8", ipv4_net="169.254.85.0/24", ipv6_net="fd6e:616e:6283::/64",
              ns_prefix="nslab8-", veth_prefix="nslab8v")
    try:
        lab.up()
        old = sha512_crypt("Bench-old-pass-2026")
        for name in lab.hosts:
            lab.ssh(name, "useradd -m -s /bin/bash clerk && chpasswd -e", input=f"clerk:{old}\n")
        identity = pyrage.x25519.Identity.generate()
        (work / "escrow").mkdir(mode=0o700)
        (work / "keys").mkdir(mode=0o700)
        extra = {"nanbu_escrow_dir": str(work / "escrow"), "nanbu_escrow_recipients": [str(identity.to_public())],
                 "nanbu_rotate_accounts": ["clerk"], "nanbu_known_hosts": str(lab.known_hosts),
                 "nanbu_cli": str(VENV / "nanbu-secops"), "nanbu_rotate_ops_key": args.ops_key,
                 "nanbu_ops_key_dir": str(work / "keys")}
        (work / "vars.json").write_text(json.dumps(extra))
        home = work / "ansible"
        env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
               "ANSIBLE_SSH_CONTROL_PATH_DIR": str(home / "cp"), "ANSIBLE_FORKS": str(args.hosts)}
        ping = [str(VENV / "ansible"), "all", "-i", str(lab.inventory), "-m", "ansible.builtin.ping"]
        rotate = [str(VENV / "ansible-playbook"), "-i", str(lab.inventory), "-e", f"@{work / 'vars.json'}",
                  str(ROOT / "playbooks" / "rotate_credentials.yml")]
        pings, rotations = [], []
        for _ in range(args.runs):
            pings.append(timed(ping, env))
            rotations.append(timed(rotate, env))
        p, r = statistics.median(pings), statistics.median(rotations)
        print(f"hosts: {args.hosts}, runs: {args.runs}, ops key: {args.ops_key}")
        print(f"baseline  ansible -m ping           median {p:6.2f} s  ({p / args.hosts * 1000:6.0f} ms of wall time per host)")
        print(f"rotation  rotate_credentials.yml    median {r:6.2f} s  ({r / args.hosts * 1000:6.0f} ms of wall time per host)")
        print(f"rotation cost beyond the ping: {(r - p) / args.hosts * 1000:.0f} ms of wall time per host")
        print(f"ratio rotation/ping: {r / p:.1f}x")
    finally:
        lab.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
