"""Benchmark: a county-to-province sized fleet through ingest and the quarterly and annual reports.

    .venv/bin/python bench/bench_report.py [--hosts 1000] [--weeks 13] [--controls 40] [--units 20] [--keep DIR]

Simulates ``--hosts`` terminals in ``--units`` units (an INI inventory with host ranges and a
group_vars file per unit, read through ansible-core as the commands read it), each reporting once a
week for ``--weeks`` weeks of 2026Q4 with ``--controls`` controls per result (the tests' real
``check --root`` result, its controls repeated under new ids up to the number), laid out as
``results/2026Q4/<host>/<date>/check-<n>.json``. Then, as whole processes (interpreter start,
imports and ``ansible-inventory`` included), it times

- ``nanbu-secops ingest`` into a new database, and the database's size,
- ``report quarterly --quarter 2026Q4`` and ``report annual --year 2026``, as JSON and as HTML,
  ``--runs`` times each (the median is judged: the machine may be shared),

with each process's peak RSS (its children's included), beside the goals of issue 18: ingest
<= 60 s, each report <= 5 s, RSS <= 300 MB.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_ingest import measure, template  # noqa: E402  (the same process timing and real result)

from nanbu_secops.timeutil import COUNTY_TZ, rfc3339  # noqa: E402

GOALS = {"ingest": 60.0, "report": 5.0, "rss": 300.0}      # seconds, seconds, MB
CLI = str(Path(sys.executable).with_name("nanbu-secops"))
UNIT = """\
unit:
  name: 第{n}号单位
  office: 办公室
  leader: {{name: 张局长, phone: "0817-55{n:05d}"}}
  account_manager: {{name: 李科长, phone: "0817-66{n:05d}"}}
"""


def widen(report: dict[str, Any], controls: int) -> dict[str, Any]:
    """The real result with exactly ``controls`` results: its own, then copies under new ids."""
    results = report["results"]
    wide = [dict(results[i % len(results)]) for i in range(controls)]
    for i, result in enumerate(wide[len(results):], len(results)):
        result["control"] = f"{result['control']}-B{i:03d}"
    return {**report, "results": wide}


def write_inventory(folder: Path, hosts: int, units: int) -> list[str]:
    """An INI inventory of ``units`` units with host ranges; the host names in order."""
    per_unit = -(-hosts // units)
    names, lines = [], []
    (folder / "group_vars").mkdir(parents=True)
    for u in range(units):
        count = min(per_unit, hosts - u * per_unit)
        if count <= 0:
            break
        lines += [f"[u_{u:02d}]", f"t{u:02d}-[001:{count:03d}]", ""]
        names += [f"t{u:02d}-{i:03d}" for i in range(1, count + 1)]
        (folder / "group_vars" / f"u_{u:02d}.yml").write_text(UNIT.format(n=u), encoding="utf-8")
    lines += ["[units:children]", *(f"u_{u:02d}" for u in range(units)), ""]
    (folder / "hosts.ini").write_text("\n".join(lines), encoding="utf-8")
    return names


def generate(report: dict[str, Any], folder: Path, hosts: list[str], weeks: int) -> int:
    """One result a week per host; a tenth of the controls fail, differently each run. Returns files written."""
    start = dt.datetime(2026, 10, 1, 9, tzinfo=COUNTY_TZ)
    written = 0
    for week in range(weeks):
        for h, host in enumerate(hosts):
            moment = start + dt.timedelta(days=7 * week, seconds=7 * h)
            run = copy.deepcopy(report)
            run["host"], run["generated"] = host, rfc3339(moment)
            for index, result in enumerate(run["results"]):
                if (index + h + week) % 10 == 0:
                    result["status"] = "fail"
                    result["evidence"] = {"found": [f"item-{h}"], "origin": "/etc/login.defs:3"}
            target = folder / "2026Q4" / host / moment.date().isoformat() / f"check-{written}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(run, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            written += 1
    return written


def verdict(value: float, goal: float) -> str:
    return "met" if value <= goal else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--weeks", type=int, default=13)
    parser.add_argument("--controls", type=int, default=40)
    parser.add_argument("--units", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3, help="times each report runs; the median counts")
    parser.add_argument("--keep", help="generate into DIR and keep it (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        base = Path(args.keep or tmp)
        inventory, results, db = base / "inventory", base / "results", base / "fleet.db"
        report = widen(template(Path(tmp)), args.controls)
        if not (results / "2026Q4").exists():
            hosts = write_inventory(inventory, args.hosts, args.units)
            files = generate(report, results, hosts, args.weeks)
        else:
            files = sum(1 for _ in results.rglob("*.json"))
        db.unlink(missing_ok=True)
        ingest = measure([CLI, "ingest", str(results), "--db", str(db), "--inventory", str(inventory)])
        size = db.stat().st_size / 2**20
        reports = {}
        for name, extra in (("quarterly", ["--quarter", "2026Q4"]), ("annual", ["--year", "2026"])):
            for form in ("json", "html"):
                out = base / f"{name}.{form}"
                argv = [CLI, "report", name, "--db", str(db), *extra, "--inventory", str(inventory),
                        "--format", form, "--output", str(out)]
                runs = sorted(measure(argv, ok=(0, 1)) for _ in range(args.runs))   # 1: findings (a tenth fail)
                reports[f"{name} {form}"] = (runs[len(runs) // 2][0], max(r[1] for r in runs), "")
    print(f"fleet: {args.hosts} hosts in {args.units} units x {args.weeks} weekly runs x {args.controls} controls = "
          f"{files} result files, {files * args.controls} control results")
    print(f"ingest (whole command, ansible-inventory included): {ingest[0]:6.2f} s   goal <= {GOALS['ingest']:.0f} s: "
          f"{verdict(ingest[0], GOALS['ingest'])}   peak RSS {ingest[1]:5.0f} MiB")
    print(f"        printed: {ingest[2].splitlines()[-1]}")
    print(f"database: {size:.1f} MiB")
    for name, (seconds, rss, _) in reports.items():
        print(f"report {name:<14} {seconds:6.2f} s (median of {args.runs})   "
              f"goal <= {GOALS['report']:.0f} s: {verdict(seconds, GOALS['report'])}"
              f"   peak RSS {rss:5.0f} MiB")
    peak = max([ingest[1], *(r[1] for r in reports.values())])
    print(f"peak RSS of any step: {peak:.0f} MiB   goal <= {GOALS['rss']:.0f} MB: {verdict(peak * 1.048576, GOALS['rss'])}")
    met = ingest[0] <= GOALS["ingest"] and all(r[0] <= GOALS["report"] for r in reports.values()) \
        and peak * 1.048576 <= GOALS["rss"]
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
