"""The fleet end to end on 10 real lab hosts: deploy the agent, collect, ingest, quarterly report.

playbooks/deploy_agent.yml installs the agent from wheels only (the project's wheel built offline,
its dependencies from .wheelhouse, which `scripts/setup.sh --test` prepares: no network here),
then a second run changes nothing. Hosts are then configured differently, one is stopped, and
playbooks/collect.yml gathers the results (the stopped host leaves an UNREACHABLE marker).
`nanbu-secops ingest` and `report quarterly` must then show exactly the broken hosts failing
exactly the broken controls, the stopped host as silent, and numbers equal to what the result
files themselves say. Finally `nanbu_agent_state=absent` removes everything.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nanbu_secops.fleet.quarter import Quarter
from nanbu_secops.policy import load_policies
from nanbu_secops.report.quarterly import ScoreSettings
from tests.conftest import own_lab
from tests.lab import PROJECT_ROOT, Lab
from tests.playbook_output import recap

DEPLOY = PROJECT_ROOT / "playbooks" / "deploy_agent.yml"
COLLECT = PROJECT_ROOT / "playbooks" / "collect.yml"
WHEELHOUSE = PROJECT_ROOT / ".wheelhouse"
CLI = Path(sys.executable).with_name("nanbu-secops")
UNITS = {"u_alpha": ["h01", "h02", "h03", "h04"], "u_beta": ["h05", "h06", "h07"], "u_gamma": ["h08", "h09", "h10"]}
STOPPED = "h10"
# What each host gets changed to, and the control that must then fail (or pass) on exactly those hosts.
PERMIT_ROOT = ["h02", "h06"]          # NS26-SSH-001 fails (passes on a fresh host)
SECOND_UID0 = ["h03", "h09"]          # NS26-ACCT-001 fails
SHORT_WARN = ["h04"]                  # NS26-PASS-003 fails
SHORT_MAX_DAYS = ["h05", "h07"]       # NS26-PASS-001 passes (fails on a fresh host: 99999 days)


@pytest.fixture(scope="module")
def flab() -> Iterator[Lab]:
    """Ten hosts of their own (lab NSLAB_ID + 4), so that stopping one disturbs no other test."""
    if not any(WHEELHOUSE.glob("*.whl")):
        pytest.fail(f"no dependency wheels in {WHEELHOUSE}: run `bash scripts/setup.sh --test` first", pytrace=False)
    with own_lab(10, offset=4, prefix="nsfleet-") as lab:
        yield lab


@pytest.fixture(scope="module")
def site(flab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An inventory of three units over the lab's hosts (the lab's own inventory gives the connection)."""
    base = tmp_path_factory.mktemp("fleet")
    inventory = base / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    hosts = {"all": {"children": {"units": {"children": {
        group: {"hosts": {h: {"ansible_host": flab.hosts[h].ipv4} for h in members}}
        for group, members in UNITS.items()}}}}}
    (inventory / "hosts.yml").write_text(json.dumps(hosts, indent=1))   # JSON is YAML
    for n, group in enumerate(UNITS, 1):
        unit = {"unit": {"code": group, "name": f"测试单位{n}", "kind": "department",
                         "leader": {"name": f"领导{n}", "phone": f"+86 0817-555-000{n}"}, "office": "办公室",
                         "account_manager": {"name": f"管理员{n}", "phone": f"+86 0817-555-100{n}"}}}
        (inventory / "group_vars" / f"{group}.yml").write_text(json.dumps(unit, ensure_ascii=False, indent=1))
    return {"base": base, "inventory": inventory, "results": base / "results", "db": base / "fleet.db"}


def play(lab: Lab, site: dict[str, Any], playbook: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.ansible_playbook(playbook, "-i", str(site["inventory"] / "hosts.yml"), *args,
                                env={"ANSIBLE_FORKS": "10"})


def agent_version(lab: Lab, host: str) -> str:
    done = lab.ssh(host, "/opt/nanbu-secops/bin/python -c "
                         "'import importlib.metadata as m; print(m.version(\"nanbu-secops\"))'")
    return done.stdout.strip()


def test_deploy_is_idempotent_and_light(flab, site):
    wheelhouse = f"nanbu_wheelhouse={WHEELHOUSE}"
    dry = play(flab, site, DEPLOY, "-e", wheelhouse, "--check", "--diff")
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-2000:]
    assert "would install nanbu-secops" in dry.stdout
    assert flab.ssh("h01", "test -e /opt/nanbu-secops || test -e /etc/nanbu-secops/policies", check=False).returncode == 1

    first = play(flab, site, DEPLOY, "-e", wheelhouse)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    counts = recap(first.stdout)
    assert set(counts) == {f"h{i:02d}" for i in range(1, 11)}
    assert all(c["changed"] > 0 and c["failed"] == 0 and c["unreachable"] == 0 for c in counts.values())

    again = play(flab, site, DEPLOY, "-e", wheelhouse)
    assert again.returncode == 0, again.stdout[-3000:]
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in recap(again.stdout).values()), again.stdout[-3000:]

    from nanbu_secops import __version__
    assert agent_version(flab, "h07") == __version__
    listing = flab.ssh("h07", "/opt/nanbu-secops/bin/python -m pip list --format=freeze --disable-pip-version-check").stdout.lower()
    assert "nanbu-secops==" in listing and "ansible" not in listing and "paramiko" not in listing
    unit = flab.ssh("h07", "cat /etc/systemd/system/nanbu-secops-check.service /etc/systemd/system/nanbu-secops-check.timer; "
                           "readlink /etc/systemd/system/timers.target.wants/nanbu-secops-check.timer; "
                           "ls /etc/nanbu-secops/policies; stat -c %a /var/lib/nanbu-secops/spool").stdout
    assert ("ExecStart=/opt/nanbu-secops/bin/nanbu-secops spool run --dir /var/lib/nanbu-secops/spool --keep 30 "
            "--policy /etc/nanbu-secops/policies") in unit
    assert "Type=oneshot" in unit and "OnCalendar=daily" in unit and "Persistent=true" in unit and "RandomizedDelaySec=" in unit
    assert "/etc/systemd/system/nanbu-secops-check.timer" in unit and "article26.yml" in unit and unit.rstrip().endswith("750")
    # the installed agent works there, as the timer would run it
    spooled = flab.ssh("h07", "/opt/nanbu-secops/bin/nanbu-secops spool run --dir /var/lib/nanbu-secops/spool --keep 2 "
                              "--policy /etc/nanbu-secops/policies", check=False)
    assert spooled.returncode in (0, 1) and spooled.stdout.strip().endswith("-h07.json"), spooled.stderr
    site["deployed"] = True


def configure_differently(lab: Lab) -> None:
    for host in PERMIT_ROOT:
        lab.ssh(host, "printf 'PermitRootLogin yes\\n' > /etc/ssh/sshd_config.d/00-e2e.conf")
    for host in SECOND_UID0:
        lab.ssh(host, "useradd -o -u 0 -g 0 -M -s /bin/bash toor")
    for host in SHORT_WARN:
        lab.ssh(host, "sed -i 's/^PASS_WARN_AGE.*/PASS_WARN_AGE\t3/' /etc/login.defs")
    for host in SHORT_MAX_DAYS:
        lab.ssh(host, "sed -i 's/^PASS_MAX_DAYS.*/PASS_MAX_DAYS\t90/' /etc/login.defs")


def latest_files(results: Path) -> dict[str, dict[str, Any]]:
    """Each host's newest result file (by name: UTC stamp first), read directly."""
    out = {}
    for folder in results.iterdir():
        files = sorted(p for p in folder.glob("*.json") if not p.name.startswith("UNREACHABLE"))
        if files:
            out[folder.name] = json.loads(files[-1].read_text())
    return out


def expected_unit(group: str, files: dict[str, dict[str, Any]], settings: ScoreSettings) -> dict[str, Any]:
    """The unit's numbers computed from the result files alone (the report's counting rule)."""
    members = UNITS[group]
    reporting = [h for h in members if h in files]
    tally = {"pass": 0, "fail": 0, "error": 0, "skip": 0}
    articles: dict[str, dict[str, int]] = defaultdict(lambda: {"pass": 0, "fail": 0, "error": 0, "skip": 0})
    failing: dict[str, set[str]] = defaultdict(set)
    for host in reporting:
        for result in files[host]["results"]:
            tally[result["status"]] += 1
            articles[result["article"]][result["status"]] += 1
            if result["status"] == "fail":
                failing[result["control"]].add(host)
    judged = {a: c for a, c in articles.items() if c["pass"] + c["fail"]}
    weights = {a: settings.weights.get(a, settings.default_weight) for a in judged}
    compliance = 100 * sum(weights[a] * c["pass"] / (c["pass"] + c["fail"]) for a, c in judged.items()) / sum(weights.values())
    silent = len(members) - len(reporting)
    score = round(max(0.0, compliance - settings.silent_host_penalty * silent / len(members)), 1)
    return {"hosts": len(members), "reporting_hosts": len(reporting), "silent_hosts": [h for h in members if h not in files],
            "passed": tally["pass"], "failed": tally["fail"], "errors": tally["error"],
            "pass_rate": round(tally["pass"] / (tally["pass"] + tally["fail"]), 4), "score": score,
            "articles": {a: (c["pass"], c["fail"], c["error"]) for a, c in articles.items()},
            "failing": {c: sorted(h) for c, h in failing.items()}}


def test_collect_ingest_and_quarterly_report(flab, site):
    if not site.get("deployed"):
        pytest.fail("the agent is not deployed (test_deploy_is_idempotent_and_light failed)")
    configure_differently(flab)
    flab.stop_host(STOPPED)
    results = site["results"]

    # run mode: the hosts were just configured differently, so every terminal audits now
    done = play(flab, site, COLLECT, "-e", f"nanbu_results_dir={results}", "-e", "nanbu_collect_mode=run")
    assert done.returncode != 0                      # a host gave no result: the run says so
    counts = recap(done.stdout)
    assert counts[STOPPED]["failed"] == 1 and f"no result from {STOPPED}: unreachable" in done.stdout
    assert all(counts[h]["failed"] == 0 and counts[h]["changed"] == 1 for h in counts if h != STOPPED
               and h != "localhost"), done.stdout[-3000:]
    assert counts["localhost"]["failed"] == counts["localhost"]["changed"] == 0  # the results folders, made 0750
    assert {oct(p.stat().st_mode & 0o777) for p in [results, *results.iterdir()]} == {"0o750"}
    files = latest_files(results)
    assert sorted(files) == [f"h{i:02d}" for i in range(1, 10)]
    assert all(files[h]["host"] == h for h in files)
    [marker] = (results / STOPPED).glob("UNREACHABLE-*.json")
    mark = json.loads(marker.read_text())
    assert mark["host"] == STOPPED and mark["unreachable"] is True and mark["msg"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", mark["at"])
    assert not list((results / STOPPED).glob("2*.json"))

    # spool mode: the newest spool entry, already fetched, is not fetched again (changed=0)
    before = sorted(p.name for p in results.rglob("2*.json"))
    again = play(flab, site, COLLECT, "-e", f"nanbu_results_dir={results}", "-e", "nanbu_collect_mode=spool")
    counts = recap(again.stdout)
    assert all(counts[h]["changed"] == 0 and counts[h]["failed"] == 0 for h in counts if h != STOPPED), again.stdout[-3000:]
    assert sorted(p.name for p in results.rglob("2*.json")) == before
    assert len(list((results / STOPPED).glob("UNREACHABLE-*.json"))) == 2
    # spool mode (the default) audits a terminal whose newest spool entry is older than the bound
    fresh = play(flab, site, COLLECT, "-e", f"nanbu_results_dir={results}", "-e", "target=h01",
                 "-e", "nanbu_spool_max_age_hours=0")
    assert fresh.returncode == 0 and recap(fresh.stdout)["h01"]["changed"] == 1, fresh.stdout[-3000:]
    added = sorted(set(p.name for p in results.rglob("2*.json")) - set(before))
    assert len(added) == 1 and added[0] == sorted(p.name for p in (results / "h01").glob("2*.json"))[-1]
    files = latest_files(results)

    # The quarter is the one the runs were written in (county time), as their own files say. Should
    # this run have crossed a quarter boundary, one more run lies wholly after it.
    quarters = {Quarter.of(dt.datetime.fromisoformat(doc["generated"])) for doc in files.values()}
    if len(quarters) > 1:
        play(flab, site, COLLECT, "-e", f"nanbu_results_dir={results}", "-e", "nanbu_collect_mode=run")
        files = latest_files(results)
        quarters = {Quarter.of(dt.datetime.fromisoformat(doc["generated"])) for doc in files.values()}
    [period] = quarters
    quarter = period.label
    runs = len(list(results.rglob("2*.json")))
    markers = len(list((results / STOPPED).glob("UNREACHABLE-*.json")))

    ingest = subprocess.run([str(CLI), "ingest", str(results), "--db", str(site["db"]), "--inventory", str(site["inventory"]),
                             "--lang", "en"], capture_output=True, text=True, timeout=120)
    assert ingest.returncode == 0, ingest.stderr
    assert f"{runs} runs added" in ingest.stdout and f"{markers} unreachable markers" in ingest.stdout, ingest.stdout

    report_run = subprocess.run([str(CLI), "report", "quarterly", "--db", str(site["db"]), "--quarter", quarter,
                                 "--inventory", str(site["inventory"]), "--policy", str(PROJECT_ROOT / "policies"),
                                 "--format", "json"], capture_output=True, text=True, timeout=120)
    assert report_run.returncode in (0, 1), report_run.stderr
    report = json.loads(report_run.stdout)
    assert report["quarter"] == quarter
    units = {u["unit"]: u for u in report["units"]}
    assert sorted(units) == sorted(UNITS)

    # Hosts configured differently show different results, on exactly those hosts.
    failing_hosts: dict[str, set[str]] = defaultdict(set)
    for unit in units.values():
        for item in unit["failing"]:
            failing_hosts[item["control"]].update(item["hosts"])
    assert failing_hosts["NS26-SSH-001"] == set(PERMIT_ROOT)
    assert failing_hosts["NS26-ACCT-001"] == set(SECOND_UID0)
    assert failing_hosts["NS26-PASS-003"] == set(SHORT_WARN)
    reporting = {h for members in UNITS.values() for h in members} - {STOPPED}
    assert failing_hosts["NS26-PASS-001"] == reporting - set(SHORT_MAX_DAYS)

    # The stopped host is silent, with its markers; the numbers are the result files' own.
    assert units["u_gamma"]["silent_hosts"] == [STOPPED]
    assert [m["host"] for m in units["u_gamma"]["unreachable"]] == [STOPPED]
    assert units["u_gamma"]["unreachable"][0]["markers"] == 2
    assert all(units[g]["silent_hosts"] == [] for g in ("u_alpha", "u_beta"))
    settings = ScoreSettings.from_policy(load_policies(PROJECT_ROOT / "policies"))
    for group in UNITS:
        got, want = units[group], expected_unit(group, files, settings)
        assert got["metadata_findings"] == []
        for key in ("hosts", "reporting_hosts", "silent_hosts", "passed", "failed", "errors", "pass_rate", "score"):
            assert got[key] == want[key], (group, key)
        assert {a: (c["passed"], c["failed"], c["errors"]) for a, c in got["articles"].items()} == want["articles"], group
        assert {item["control"]: item["hosts"] for item in got["failing"]} == want["failing"], group


def test_removal(flab, site):
    gone = play(flab, site, DEPLOY, "-e", "nanbu_agent_state=absent", "--limit", "h01,h02")
    assert gone.returncode == 0, gone.stdout[-3000:]
    assert all(c["changed"] > 0 for c in recap(gone.stdout).values())
    again = play(flab, site, DEPLOY, "-e", "nanbu_agent_state=absent", "--limit", "h01,h02")
    assert again.returncode == 0 and all(c["changed"] == 0 for c in recap(again.stdout).values()), again.stdout[-3000:]
    left = flab.ssh("h01", "ls -d /opt/nanbu-secops /etc/nanbu-secops/policies /var/lib/nanbu-secops/spool "
                           "/etc/systemd/system/nanbu-secops-check.service /etc/systemd/system/nanbu-secops-check.timer "
                           "/etc/systemd/system/timers.target.wants/nanbu-secops-check.timer 2>/dev/null", check=False)
    assert left.stdout.strip() == ""
