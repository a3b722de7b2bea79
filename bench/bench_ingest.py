"""Benchmark: ``ingest`` of a collection directory into the fleet database, whole processes.

    .venv/bin/python bench/bench_ingest.py [--files N[,N...]] [--hosts 500] [--keep DIR]

Makes one real result with ``nanbu-secops check --root`` on the tests' crafted root
(tests/roots.py), then writes N copies of it as ``DIR/<host>/<date>/check-<n>.json``, each with
its own host folder, time and a tenth of the controls failed, as collect.yml would store them.
The default N gives 100,000 control results. For each N it prints wall time and peak RSS of

- the baseline, measured in the same run on the same files: a bare loop that ``json.load``\\s
  every file (the floor of any JSON ingest),
- the first ingest into a new database, and its ratio to the baseline,
- a second ingest of the same directory (nothing is added: idempotent), and its ratio.

Times are of whole processes (interpreter start and imports included), like the other benches.
Goal (issue "Fleet operations", article 29): 100k results ingested in <= 10 s, judged on the
smallest size that reaches 100k. ``--files 3226,100000`` also measures 100k result files (3.1M
results, about 2.3 GB of JSON; generating them takes a minute or two).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from nanbu_secops.timeutil import COUNTY_TZ, rfc3339  # noqa: E402
from tests.roots import AS_OF, make_root  # noqa: E402

GOAL_RESULTS = 100_000
GOAL_SECONDS = 10.0
BASELINE = ("import json, pathlib, sys\n"
            "for path in sorted(pathlib.Path(sys.argv[1]).rglob('*.json')):\n"
            "    with open(path, 'rb') as f:\n"
            "        json.load(f)\n")
INGEST = ("import pathlib, sys\n"
          "from nanbu_secops.store import ingest\n"
          "stats = ingest(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]))\n"
          "print(stats.files, stats.runs_added, stats.runs_skipped, stats.results_added, len(stats.bad))\n")


def measure(argv: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, stdout) of one whole process; exits when its exit code is not in ``ok``."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
    with proc.stdout as pipe:  # type: ignore[union-attr]  # a line or two: never fills the pipe
        out = pipe.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in ok:
        sys.exit(f"bench: {' '.join(argv[:3])} ... failed")
    return elapsed, usage.ru_maxrss / 1024, out.strip()


def template(work: Path) -> dict[str, Any]:
    """A real ``check --format json`` result of the crafted compliant root."""
    root = make_root(work / "root")
    exe = str(Path(sys.executable).with_name("nanbu-secops"))
    out = subprocess.run([exe, "check", "--root", str(root), "--as-of", AS_OF.isoformat(), "--format", "json"],
                         capture_output=True, check=False).stdout
    return json.loads(out)


def generate(report: dict[str, Any], folder: Path, files: int, hosts: int) -> None:
    """``files`` result files spread over ``hosts`` host folders, a date folder each day."""
    start = dt.datetime(2026, 10, 1, 9, tzinfo=COUNTY_TZ)
    for n in range(files):
        host = f"term-{n % hosts:04d}"
        moment = start + dt.timedelta(hours=n // hosts)
        run = copy.deepcopy(report)
        run["host"], run["generated"] = host, rfc3339(moment)
        for index, result in enumerate(run["results"]):
            if (index + n) % 10 == 0:
                result["status"] = "fail"
                result["evidence"] = {"found": [f"item-{n}"], "origin": "/etc/login.defs:3"}
        target = folder / host / moment.date().isoformat() / f"check-{n}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(run, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")  # as check writes it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", help="comma-separated numbers of result files (default: 100k results' worth)")
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--keep", help="generate into DIR and keep it (default: a temporary folder)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        base = Path(args.keep or tmp)
        report = template(Path(tmp))
        per_file = len(report["results"])
        sizes = [int(n) for n in args.files.split(",")] if args.files else [math.ceil(GOAL_RESULTS / per_file)]
        for size in sizes:
            data, db = base / f"{size}", base / f"{size}.db"
            if not data.exists():
                generate(report, data, size, args.hosts)
            db.unlink(missing_ok=True)
            floor = measure([sys.executable, "-c", BASELINE, str(data)])
            first = measure([sys.executable, "-c", INGEST, str(data), str(db)])
            again = measure([sys.executable, "-c", INGEST, str(data), str(db)])
            with sqlite3.connect(db) as conn:
                stored = conn.execute("SELECT count(*) FROM results").fetchone()[0]
            rows.append((size, size * per_file, floor, first, again, stored, db.stat().st_size / 2**20))
    print(f"template: {per_file} controls per file; hosts: {args.hosts}")
    print(f"{'files':>7} {'results':>8} {'json.load s (baseline)':>23} {'ingest s':>9} {'ratio':>6} {'MiB':>6} "
          f"{'again s':>8} {'ratio':>6} {'MiB':>6} {'db MiB':>7}")
    for size, results, floor, first, again, stored, db_mib in rows:
        print(f"{size:>7} {results:>8} {floor[0]:>23.2f} {first[0]:>9.2f} {first[0] / floor[0]:>5.2f}x {first[1]:>6.0f} "
              f"{again[0]:>8.2f} {again[0] / floor[0]:>5.2f}x {again[1]:>6.0f} {db_mib:>7.1f}")
        print(f"        ingest printed (files added skipped results bad): {first[2]} | again: {again[2]}"
              f"{'' if stored == results else f' | STORED {stored} != {results}'}")
    judged = min((r for r in rows if r[1] >= GOAL_RESULTS), key=lambda r: r[1], default=None)
    if judged is None:
        print(f"goal not judged: no size reaches {GOAL_RESULTS} results")
        return 1
    ok = judged[3][0] <= GOAL_SECONDS and judged[5] == judged[1]
    print(f"goal: {judged[1]} results (>= {GOAL_RESULTS}) ingested in <= {GOAL_SECONDS:.0f} s: "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
