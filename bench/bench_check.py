"""Benchmark: the full ``nanbu-secops check`` beside Lynis, whole processes, in the same run.

    .venv/bin/python bench/bench_check.py [--runs 10] [--lynis-runs 1]

Both audit the same live system, this machine's ``/`` (Lynis cannot audit another root). Prints wall time and peak RSS of
each and the ratio, because this machine is shared and noisy: only a ratio measured in the same
run means anything. Goals (issue 2): check >= 100x faster than ``lynis audit system --quick``,
and <= 60 MB peak RSS. Lynis is installed from Debian's packages when missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Run ``argv`` to completion; return (seconds, peak RSS in MiB, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss / 1024, proc.returncode


def ensure_lynis() -> str:
    lynis = shutil.which("lynis")
    if lynis is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "lynis"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)
        lynis = shutil.which("lynis")
    if lynis is None:
        sys.exit("bench: lynis could not be installed")
    return lynis


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="runs of nanbu-secops check (median is used)")
    parser.add_argument("--lynis-runs", type=int, default=1)
    args = parser.parse_args()

    exe = str(Path(sys.executable).with_name("nanbu-secops"))
    check_argv = [exe, "check", "--format", "json"]
    measure(check_argv)  # warm the page cache, as Lynis' first files are warmed by ours
    ours = [measure(check_argv) for _ in range(args.runs)]
    if any(code not in (0, 1) for _, _, code in ours):
        sys.exit(f"bench: nanbu-secops check failed: exit codes {[c for _, _, c in ours]}")

    lynis = ensure_lynis()
    with tempfile.TemporaryDirectory(prefix="bench-lynis-") as tmp:
        lynis_argv = [lynis, "audit", "system", "--quick", "--no-colors", "--log-file", f"{tmp}/lynis.log",
                      "--report-file", f"{tmp}/report.dat"]
        theirs = [measure(lynis_argv) for _ in range(args.lynis_runs)]

    our_time = statistics.median(t for t, _, _ in ours)
    our_rss = max(r for _, r, _ in ours)
    lynis_time = statistics.median(t for t, _, _ in theirs)
    lynis_rss = max(r for _, r, _ in theirs)
    ratio = lynis_time / our_time
    print(f"target: this machine (/)   runs: nanbu-secops {args.runs}, lynis {args.lynis_runs}")
    print(f"nanbu-secops check          median {our_time:8.3f} s   peak RSS {our_rss:6.1f} MiB")
    print(f"lynis audit system --quick  median {lynis_time:8.3f} s   peak RSS {lynis_rss:6.1f} MiB  (baseline)")
    print(f"speed ratio lynis/nanbu-secops: {ratio:.1f}x  (goal >= 100x: {'met' if ratio >= 100 else 'NOT met'})")
    print(f"peak RSS: {our_rss:.1f} MiB  (goal <= 60 MiB: {'met' if our_rss <= 60 else 'NOT met'})")
    return 0 if ratio >= 100 and our_rss <= 60 else 1


if __name__ == "__main__":
    raise SystemExit(main())
