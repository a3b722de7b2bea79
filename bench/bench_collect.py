"""Benchmark: collect.yml across 10 lab hosts beside a bare ``ansible -m ping``, and the quarterly report.

    .venv/bin/python bench/bench_collect.py [--hosts 10] [--runs 3] [--lab 9] [--mitogen DIR]

The agent is deployed once first (playbooks/deploy_agent.yml from .wheelhouse, which
`scripts/setup.sh --test` prepares; not timed). Then, against the same lab hosts in the same run
(the machine is shared and noisy, so only the ratio means anything), each round times a bare
`ansible all -m ping`, collect.yml in `run` mode (each terminal audits itself now and the result
is fetched) and in `spool` mode (the newest spool result, nothing audited). Prints the medians,
the ratios to the ping (goal: collect ≤ 2× the ping), then ingests what was collected and times
`nanbu-secops report quarterly --format json` on it.

Then one more, untimed-for-the-ratio run of each (ping, run, spool) with the stdlib callback in
bench/callback_plugins/nanbu_task_times.py prints where the time goes: ansible's start-up before
the first task, and each task's wall time per host (mean over hosts, and summed over hosts).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import lab_network  # noqa: E402
from tests.lab import Lab  # noqa: E402  (the project's own SSH lab)

VENV = Path(sys.executable).parent


def timed(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return elapsed


def breakdown(label: str, argv: list[str], env: dict[str, str], work: Path, ok: tuple[int, ...] = (0,)) -> None:
    """Run ``argv`` once with the task-times callback and print start-up and per-task wall times."""
    out = work / f"times-{label}.json"
    env = {**env, "ANSIBLE_CALLBACK_PLUGINS": str(ROOT / "bench" / "callback_plugins"),
           "ANSIBLE_CALLBACKS_ENABLED": "nanbu_task_times", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
           "NANBU_TASK_TIMES": str(out)}
    launched = time.time()
    wall = timed(argv, env, ok)
    times = json.loads(out.read_text())
    print(f"breakdown {label}: wall {wall:.2f} s; start-up before the first task {times['first_task_at'] - launched:.2f} s")
    tasks: dict[str, list[float]] = {}
    for row in times["tasks"]:
        tasks.setdefault(f"{row['task']} [{row['status']}]", []).append(row["seconds"])
    for name, seconds in tasks.items():
        print(f"    {statistics.mean(seconds):6.3f} s/host x {len(seconds):2d} = {sum(seconds):6.2f} s  {name}")


def write_inventory(lab: Lab, folder: Path) -> None:
    """Three units over the lab's hosts, as the county's inventory would have them."""
    names = list(lab.hosts)
    groups = {f"u_bench{i}": names[i::3] for i in range(3)}
    (folder / "group_vars").mkdir(parents=True)
    hosts = {"all": {"children": {"units": {"children": {
        g: {"hosts": {h: {"ansible_host": lab.hosts[h].ipv4} for h in members}} for g, members in groups.items()}}}}}
    (folder / "hosts.yml").write_text(json.dumps(hosts))
    for i, g in enumerate(groups):
        unit = {"unit": {"name": f"单位{i}", "leader": {"name": "甲", "phone": "1"}, "office": "办公室",
                         "account_manager": {"name": "乙", "phone": "2"}}}
        (folder / "group_vars" / f"{g}.yml").write_text(json.dumps(unit, ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mitogen", type=Path, metavar="DIR",
                        help="also time collect.yml with Mitogen's mitogen_free strategy (DIR: where the mitogen "
                             "package is unpacked, e.g. pip install --target DIR mitogen)")
    parser.add_argument("--lab", type=int, default=9, help="lab network number (tests use 0, 4, 5; bench_rotate 8)")
    args = parser.parse_args()
    wheelhouse = ROOT / ".wheelhouse"
    if not any(wheelhouse.glob("*.whl")):
        raise SystemExit(f"no dependency wheels in {wheelhouse}: run `bash scripts/setup.sh --test` first")

    work = Path(tempfile.mkdtemp(prefix="nsbench-", dir="/tmp"))
    lab = Lab(work, args.hosts, **lab_network(args.lab))
    try:
        lab.up()
        inventory = work / "inventory"
        write_inventory(lab, inventory)
        home = work / "ansible"
        env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
               "ANSIBLE_SSH_CONTROL_PATH_DIR": str(home / "cp"), "ANSIBLE_FORKS": str(args.hosts)}
        inv = ["-i", str(lab.inventory), "-i", str(inventory / "hosts.yml")]
        deploy = timed([str(VENV / "ansible-playbook"), *inv, "-e", f"nanbu_wheelhouse={wheelhouse}",
                        str(ROOT / "playbooks" / "deploy_agent.yml")], env)
        results = work / "results"
        ping = [str(VENV / "ansible"), "all", *inv, "-m", "ansible.builtin.ping"]
        collect = [str(VENV / "ansible-playbook"), *inv, "-e", f"nanbu_results_dir={results}",
                   str(ROOT / "playbooks" / "collect.yml")]
        pings, runs, spools, mitogen_runs, mitogen_spools = [], [], [], [], []
        if args.mitogen:   # the same playbook, its strategy swapped (a copy, so the checkout stays as it is)
            text = (ROOT / "playbooks" / "collect.yml").read_text()
            assert text.count("\n  strategy: free\n") == 1
            (work / "collect-mitogen.yml").write_text(text.replace("\n  strategy: free\n", "\n  strategy: mitogen_free\n"))
            mitogen = [*collect[:-1], str(work / "collect-mitogen.yml")]
            mitogen_env = {**env, "ANSIBLE_STRATEGY_PLUGINS": str(args.mitogen / "ansible_mitogen" / "plugins" / "strategy")}
        for _ in range(args.runs):
            pings.append(timed(ping, env))
            runs.append(timed(collect + ["-e", "nanbu_collect_mode=run"], env))
            spools.append(timed(collect + ["-e", "nanbu_collect_mode=spool"], env))
            if args.mitogen:
                mitogen_runs.append(timed(mitogen + ["-e", "nanbu_collect_mode=run"], mitogen_env))
                mitogen_spools.append(timed(mitogen + ["-e", "nanbu_collect_mode=spool"], mitogen_env))
        p, r, s = statistics.median(pings), statistics.median(runs), statistics.median(spools)
        # The audit itself is CPU work on the terminal; lab "terminals" share this machine's CPUs,
        # so `run` mode cannot beat ping + hosts × audit / CPUs here (real terminals audit in parallel).
        audit_cmd = "/opt/nanbu-secops/bin/nanbu-secops spool run --dir /tmp/bench-spool --keep 1 --policy /etc/nanbu-secops/policies"
        audits = []
        for _ in range(args.runs):
            start = time.perf_counter()
            lab.ssh(next(iter(lab.hosts)), audit_cmd, check=False)
            audits.append(time.perf_counter() - start)
        a = statistics.median(audits)
        floor = p + args.hosts * a / (os.cpu_count() or 1)

        db = work / "fleet.db"
        timed([str(VENV / "nanbu-secops"), "ingest", str(results), "--db", str(db), "--inventory", str(inventory)], env)
        from nanbu_secops.timeutil import now

        moment = now()
        quarter = f"{moment.year}Q{(moment.month - 1) // 3 + 1}"
        report = [str(VENV / "nanbu-secops"), "report", "quarterly", "--db", str(db), "--quarter", quarter,
                  "--inventory", str(inventory), "--policy", str(ROOT / "policies"), "--format", "json",
                  "--output", str(work / "report.json")]
        reports = [timed(report, env, ok=(0, 1)) for _ in range(args.runs)]
        q = statistics.median(reports)

        print(f"hosts: {args.hosts}, runs: {args.runs} (deploy once first: {deploy:.1f} s, not compared)")
        print(f"baseline  ansible -m ping                 median {p:6.2f} s  ({p / args.hosts * 1000:5.0f} ms of wall time per host)")
        print(f"collect   collect.yml (run: audit+fetch)  median {r:6.2f} s  ({r / args.hosts * 1000:5.0f} ms of wall time per host)")
        print(f"collect   collect.yml (spool: fetch only) median {s:6.2f} s  ({s / args.hosts * 1000:5.0f} ms of wall time per host)")
        print(f"ratio collect(run)/ping: {r / p:.2f}x   collect(spool)/ping: {s / p:.2f}x   (goal <= 2x)")
        if args.mitogen:
            mr, ms = statistics.median(mitogen_runs), statistics.median(mitogen_spools)
            print(f"mitogen_free strategy: run median {mr:6.2f} s ({mr / p:.2f}x), spool median {ms:6.2f} s ({ms / p:.2f}x)")
        print(f"one audit over ssh: median {a:.2f} s; with {os.cpu_count()} CPUs shared by {args.hosts} lab hosts, run mode "
              f"cannot go below ~{floor:.2f} s ({floor / p:.2f}x the ping) on this machine")
        print(f"report quarterly --format json on {args.runs * args.hosts} ingested runs: median {q:.2f} s")
        breakdown("ping", ping, env, work)
        breakdown("run", collect + ["-e", "nanbu_collect_mode=run"], env, work)
        breakdown("spool", collect + ["-e", "nanbu_collect_mode=spool"], env, work)
    finally:
        lab.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
