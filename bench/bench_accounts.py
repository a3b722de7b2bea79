"""Benchmark: ``nanbu-secops accounts audit`` on generated platform exports, whole process.

    .venv/bin/python bench/bench_accounts.py [--accounts 100000] [--events 1000000,5000000] [--keep DIR]

For each log size it generates accounts, roster and a login log (bench/gen_accounts.py), runs the
audit, and prints wall time and peak RSS beside a baseline measured in the same run on the same
file: a bare ``csv.reader`` pass over the login log (the floor any CSV-based audit pays). Printed
ratios: audit / baseline per size, and 5M / 1M time (about 5 when time is linear in events).
Goals (issue 3): 100k accounts + 5M events in <= 20 s and <= 1 GB RSS; memory that does not grow
with the log.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASELINE = ("import csv, sys\n"
            "with open(sys.argv[1], newline='', encoding='utf-8') as f:\n"
            "    n = sum(1 for _ in csv.reader(f))\n")


def measure(argv: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS MiB, exit code) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events", default="1000000,5000000", help="comma-separated log sizes")
    parser.add_argument("--keep", help="generate into DIR and keep it (default: a temporary folder)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.events.split(",")]
    exe = str(Path(sys.executable).with_name("nanbu-secops"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-accounts-") as tmp:
        base = Path(args.keep or tmp)
        for size in sizes:
            data = base / f"{size}"
            if not (data / "logins.csv").exists():
                subprocess.run([sys.executable, str(HERE / "gen_accounts.py"), "--accounts", str(args.accounts),
                                "--events", str(size), "--out", str(data), "--seed", "1"], check=True)
            floor = measure([sys.executable, "-c", BASELINE, str(data / "logins.csv")])
            audit = measure([exe, "accounts", "audit", "--accounts", str(data / "accounts.csv"),
                             "--logins", str(data / "logins.csv"), "--roster", str(data / "roster.csv"),
                             "--as-of", "2026-11-28", "--format", "json", "--output", str(data / "report.json")])
            if audit[2] not in (0, 1):
                sys.exit(f"bench: audit failed with exit code {audit[2]}")
            rows.append((size, audit, floor))
    print(f"accounts: {args.accounts}")
    print(f"{'events':>10} {'audit s':>9} {'audit MiB':>10} {'csv-read s (baseline)':>22} {'ratio':>6}")
    for size, audit, floor in rows:
        print(f"{size:>10} {audit[0]:>9.2f} {audit[1]:>10.1f} {floor[0]:>22.2f} {audit[0] / floor[0]:>6.2f}x")
    if len(rows) >= 2:
        (small, a_small, _), (large, a_large, _) = rows[0], rows[-1]
        print(f"time {large // 1_000_000}M / {small // 1_000_000}M events: {a_large[0] / a_small[0]:.2f} "
              f"(linear would be {large / small:.1f}); RSS {a_small[1]:.0f} -> {a_large[1]:.0f} MiB")
    size, audit, _ = rows[-1]
    ok = audit[0] <= 20 and audit[1] <= 1024
    print(f"goal at {size} events: <= 20 s and <= 1024 MiB: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
