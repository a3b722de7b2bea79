"""Manual/benchmark entry point: ``python -m tests.lab up|down --workdir DIR``.

``up`` leaves the hosts running after this process exits (``persist=True``) and prints
the paths a benchmark needs; ``down`` rebuilds the lab from ``DIR/state.json`` and
tears it down completely (processes, links, namespaces, workdir).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import Lab, LabError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="bring a lab up and leave it running")
    up.add_argument("--workdir", type=Path, required=True)
    up.add_argument("--hosts", type=int, default=3, help="number of hosts (h01..hNN)")
    up.add_argument("--bridge", default="nslabbr0")
    up.add_argument("--ipv4-net", default="169.254.77.0/24")
    up.add_argument("--ipv6-net", default="fd6e:616e:6275::/64")
    up.add_argument("--ns-prefix", default="nslab-")
    up.add_argument("--veth-prefix", default="nslab-v")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the hosts / the bridge lock")
    down = sub.add_parser("down", help="tear down the lab recorded in WORKDIR/state.json")
    down.add_argument("--workdir", type=Path, required=True)
    args = ap.parse_args(argv)

    try:
        if args.cmd == "up":
            t0 = time.monotonic()
            lab = Lab(
                args.workdir.absolute(),
                args.hosts,
                bridge=args.bridge,
                ipv4_net=args.ipv4_net,
                ipv6_net=args.ipv6_net,
                ns_prefix=args.ns_prefix,
                veth_prefix=args.veth_prefix,
                start_timeout=args.timeout,
                lock_timeout=args.timeout,
                persist=True,
            ).up()
            print(f"lab up: {len(lab.hosts)} hosts in {time.monotonic() - t0:.2f}s")
            for h in lab.hosts.values():
                print(f"  {h.name}  {h.ipv4}  {h.ipv6}")
            print(f"ssh_config: {lab.ssh_config}")
            print(f"inventory:  {lab.inventory}")
            print(f"down with:  {sys.executable} -m tests.lab down --workdir {lab.workdir}")
        else:
            workdir = args.workdir.absolute()
            if not (workdir / "state.json").exists():
                print(f"no lab state in {workdir}", file=sys.stderr)
                return 1
            Lab.from_state(workdir).force_down()
            print(f"lab in {workdir} is down")
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
