"""playbooks/ipv6_readiness.yml on lab hosts with the real agent.

Play 1 (terminals) runs `check --only 9(2)` on the hosts and writes each report to the controller.
Play 2 (endpoints) picks one answering host per unit and runs `ipv6 check` there: its choice of
host, its arguments and its handling of the exit codes are tested with a stand-in agent inside
the hosts (it records its arguments and prints a fixed report); the run with the real
`nanbu-secops ipv6 check` is skipped until that command is complete. Units come from an
inventory written here (two lab hosts and a host that refuses connections, per unit), beside
the lab's own inventory.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.playbook_output import flat, output, recap

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = ROOT / "playbooks" / "ipv6_readiness.yml"
AGENT = ROOT / ".venv" / "bin" / "nanbu-secops"
STUB = "/tmp/nanbu-stub"  # the hosts' /tmp is their own
WEB_PORT = 8096

STUB_AGENT = f"""#!/bin/sh
# stand-in for `nanbu-secops ipv6 check`; any other command goes to the real agent
[ "$1" = ipv6 ] || exec {AGENT} "$@"
printf '%s\\n' "$@" > {STUB}.args
case "$*" in *bad.example*) echo "nanbu-secops: error: malformed target bad.example" >&2; exit 2;; esac
echo '{{"article": "9(2)", "targets": [{{"target": "portal.nanbu.test", "verdict": "partial"}}], "clients": []}}'
exit 1
"""


def run(lab, results: Path, *args: str, agent: str = str(AGENT)):
    return lab.ansible_playbook(PLAYBOOK, "-e", f"nanbu_agent={agent}", "-e", f"nanbu_results_dir={results}", *args)


@pytest.fixture(scope="module")
def hosts(lab):
    for name in ("h02", "h03"):
        lab.reset_host(name)
        # an IPv4 name server only, whatever this machine's resolv.conf (copied into the hosts) says
        lab.ssh(name, "printf 'nameserver 10.20.0.53\\n' > /etc/resolv.conf")
    yield lab
    for name in ("h02", "h03"):
        lab.reset_host(name)


# --- play 1: the terminals ---------------------------------------------------------------------

def test_terminal_reports_reach_the_controller(hosts, tmp_path):
    lab = hosts
    result = run(lab, tmp_path / "results", "--tags", "terminals", "-e", "target=h02:h03")
    assert result.returncode == 0, output(result)  # the agent's exit 1 (findings) is a result
    assert {h: (r["changed"], r["failed"]) for h, r in recap(result).items()} == {"h02": (0, 0), "h03": (0, 0)}
    for host in ("h02", "h03"):
        report = json.loads((tmp_path / "results" / "ipv6" / f"{host}-terminal.json").read_text(encoding="utf-8"))
        assert report["host"] == host
        assert [(r["control"], r["article"], r["status"]) for r in report["results"]] == [
            ("NS09-IPV6-001", "9(2)", "fail"), ("NS09-IPV6-002", "9(2)", "fail"),
            ("NS09-IPV6-003", "9(2)", "fail"), ("NS09-IPV6-004", "9(2)", "pass")]
    assert "Summary: controls not passed per terminal" in result.stdout
    assert "- NS09-IPV6-001" in result.stdout and "- NS09-IPV6-002" in result.stdout
    # ingest stores them as the hosts' runs, not as a host named "ipv6"
    from nanbu_secops.store import Store, ingest

    stats = ingest(tmp_path / "results", tmp_path / "fleet.db", {"h02": "u_lab", "h03": "u_lab"})
    assert (stats.bad, stats.runs_added) == ([], 2)
    with Store.open(tmp_path / "fleet.db") as store:
        assert [(r.host, r.unit) for r in store.latest_runs(0, 2**40)] == [("h02", "u_lab"), ("h03", "u_lab")]


def test_check_mode_runs_the_read_only_check_and_writes_nothing(hosts, tmp_path):
    lab = hosts
    result = run(lab, tmp_path / "results", "--check", "--diff", "-e", "target=h02")
    assert result.returncode == 0, output(result)
    assert recap(result)["h02"]["changed"] == 0
    assert "h02: - NS09-IPV6-001 - NS09-IPV6-002 - NS09-IPV6-003" in flat(result)  # the agent ran
    assert not (tmp_path / "results").exists()


def test_agent_failure_fails_the_host(hosts, tmp_path):
    lab = hosts
    result = run(lab, tmp_path / "results", "--tags", "terminals", "-e", "target=h02", agent="/nonexistent/nanbu-secops")
    assert recap(result)["h02"]["failed"] == 1
    assert "/nonexistent/nanbu-secops exited with" in flat(result) and "No IPv6 result for h02" in flat(result)
    assert not (tmp_path / "results" / "ipv6" / "h02-terminal.json").exists()


# --- play 2: each unit's endpoints -------------------------------------------------------------

def unit_inventory(lab, path: Path, targets: list[str]) -> Path:
    """u_alpha: a host that refuses connections, then h02, then h03; u_beta: h03 under another name,
    no targets; u_gamma: only a host that refuses connections."""
    def host(name: str, refuse: bool = False) -> dict:
        return {"ansible_host": lab.hosts[name].ipv4, **({"ansible_port": 1} if refuse else {})}

    inventory = {"all": {
        "vars": {"ansible_user": "root", "ansible_python_interpreter": "/usr/bin/python3",
                 "ansible_ssh_common_args": f"-F {lab.ssh_config}"},
        "children": {"units": {"children": {
            "u_alpha": {"hosts": {"alpha-down": host("h02", refuse=True), "h02": host("h02"), "h03": host("h03")},
                        "vars": {"unit": {"code": "u_alpha", "ipv6_targets": targets}}},
            "u_beta": {"hosts": {"beta-01": host("h03")}, "vars": {"unit": {"code": "u_beta", "ipv6_targets": []}}},
            "u_gamma": {"hosts": {"gamma-down": host("h03", refuse=True)},
                        "vars": {"unit": {"code": "u_gamma", "ipv6_targets": ["www.nanbu.test"]}}},
        }}}}}
    path.write_text(yaml.safe_dump(inventory, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture()
def stub(hosts):
    for name in ("h02", "h03"):
        hosts.ssh(name, f"cat > {STUB} && chmod 755 {STUB} && rm -f {STUB}.args", input=STUB_AGENT)
    return hosts


def stub_args(lab, name: str) -> list[str] | None:
    done = lab.ssh(name, f"cat {STUB}.args", check=False)
    return done.stdout.splitlines() if done.returncode == 0 else None


def test_endpoints_measured_once_per_unit_from_the_first_answering_host(stub, tmp_path):
    lab = stub
    inventory = unit_inventory(lab, tmp_path / "units.yml", ["https://portal.nanbu.test/", "api.nanbu.test"])
    result = run(lab, tmp_path / "results", "-i", str(inventory), "--tags", "endpoints", "-e", "target=units",
                 "-e", "nanbu_ipv6_crawl_depth=0", "-e", "nanbu_ipv6_resolver=[fd6e::53]:53", agent=STUB)
    assert result.returncode == 0, output(result)  # the refusing hosts are ignored; exit 1 is a result
    assert all(r["changed"] == 0 and r["failed"] == 0 for r in recap(result).values()), output(result)
    # one measurement, on h02: the first host of u_alpha that answers
    assert stub_args(lab, "h02") == ["ipv6", "check", "--format", "json", "--crawl-depth", "0",
                                     "--resolver", "[fd6e::53]:53", "--", "https://portal.nanbu.test/", "api.nanbu.test"]
    assert stub_args(lab, "h03") is None  # beta-01 is h03: its unit has no targets
    files = sorted(p.name for p in (tmp_path / "results" / "ipv6").iterdir())
    assert files == ["u_alpha-endpoints.json"]
    report = json.loads((tmp_path / "results" / "ipv6" / "u_alpha-endpoints.json").read_text(encoding="utf-8"))
    assert report["targets"] == [{"target": "portal.nanbu.test", "verdict": "partial"}]
    text = flat(result)
    assert "u_alpha: measured_from: h02 verdicts: portal.nanbu.test: partial" in text, output(result)
    assert "u_beta: 'not measured: no unit.ipv6_targets in its group_vars'" in text
    assert "u_gamma: 'not measured: no host of the unit answered (gamma-down)'" in text

    # the whole playbook: the refusing hosts are unreachable in play 1 and take no part in play 2
    lab.ssh("h02", f"rm -f {STUB}.args")
    result = run(lab, tmp_path / "all", "-i", str(inventory), "-e", "target=units", agent=STUB)
    assert result.returncode == 4, output(result)  # unreachable terminals
    assert stub_args(lab, "h02")[:2] == ["ipv6", "check"]
    assert sorted(p.name for p in (tmp_path / "all" / "ipv6").iterdir()) == [
        "beta-01-terminal.json", "h02-terminal.json", "h03-terminal.json", "u_alpha-endpoints.json"]


def test_endpoints_check_mode_measures_and_writes_nothing(stub, tmp_path):
    lab = stub
    inventory = unit_inventory(lab, tmp_path / "units.yml", ["portal.nanbu.test"])
    result = run(lab, tmp_path / "results", "-i", str(inventory), "--tags", "endpoints", "-e", "target=units",
                 "--check", "--diff", agent=STUB)
    assert result.returncode == 0, output(result)
    assert all(r["changed"] == 0 for r in recap(result).values())
    assert stub_args(lab, "h02") == ["ipv6", "check", "--format", "json", "--", "portal.nanbu.test"]
    assert not (tmp_path / "results").exists()


def test_endpoints_bad_target_fails_the_measuring_host(stub, tmp_path):
    lab = stub
    inventory = unit_inventory(lab, tmp_path / "units.yml", ["portal.nanbu.test", "bad.example"])
    result = run(lab, tmp_path / "results", "-i", str(inventory), "--tags", "endpoints", "-e", "target=units",
                 agent=STUB)
    assert recap(result)["h02"]["failed"] == 1, output(result)
    assert "ipv6 check exited with 2: nanbu-secops: error: malformed target bad.example" in flat(result)
    assert "u_alpha: 'measured from h02: no report (see the failure above)'" in flat(result)
    assert not (tmp_path / "results" / "ipv6" / "u_alpha-endpoints.json").exists()

    result = run(lab, tmp_path / "results", "-i", str(inventory), "--tags", "endpoints", "-e", "target=units",
                 "-e", "nanbu_ipv6_crawl_depth=3", agent=STUB)
    assert "nanbu_ipv6_crawl_depth must be 0, 1 or 2" in flat(result), output(result)
    inventory = unit_inventory(lab, tmp_path / "units.yml", ["--crawl-depth=9"])
    result = run(lab, tmp_path / "results", "-i", str(inventory), "--tags", "endpoints", "-e", "target=units",
                 agent=STUB)
    assert "not starting with '-'" in flat(result), output(result)


def ipv6_command_missing() -> str | None:
    """Why the real `ipv6 check` cannot run yet, or None when it can."""
    done = subprocess.run([str(AGENT), "ipv6", "check", "--help"], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`nanbu-secops ipv6 check --help` fails (exit {done.returncode}): the command has not landed"
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c",
                           "import nanbu_secops.ipv6.assess, nanbu_secops.ipv6.dns, nanbu_secops.report.ipv6"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return ("`nanbu-secops ipv6 check` is not complete yet (its modules do not import: "
                f"{(done.stderr.strip().splitlines() or ['?'])[-1]})")
    return None


def test_endpoints_with_the_real_ipv6_check(hosts, tmp_path):
    reason = ipv6_command_missing()
    if reason:
        pytest.skip(reason)
    lab = hosts
    # a web server on h03's IPv6 and IPv4 addresses, measured from h02 across the lab bridge
    lab.ssh("h03", f"setsid -f python3 -m http.server --bind :: -d /usr/share/doc {WEB_PORT} >/dev/null 2>&1 </dev/null")
    for _ in range(100):
        users = lab.ssh("h03", f"ss -Htlnp 'sport = :{WEB_PORT}'").stdout
        if "pid=" in users:
            break
        time.sleep(0.1)
    pid = int(users.split("pid=", 1)[1].split(",", 1)[0])
    url = f"http://[{lab.hosts['h03'].ipv6}]:{WEB_PORT}/"
    inventory = unit_inventory(lab, tmp_path / "units.yml", [url])
    try:
        result = run(lab, tmp_path / "results", "-i", str(inventory), "--tags", "endpoints", "-e", "target=units",
                     "-e", "nanbu_ipv6_crawl_depth=0")
    finally:
        lab.ssh("h03", f"kill {pid}", check=False)
    assert result.returncode == 0, output(result)
    assert all(r["changed"] == 0 and r["failed"] == 0 for r in recap(result).values()), output(result)
    report = json.loads((tmp_path / "results" / "ipv6" / "u_alpha-endpoints.json").read_text(encoding="utf-8"))
    assert [t["target"] for t in report["targets"]] == [url]
    # http.server answers HTTP/1.0 and closes: read whole (issue 15), so IPv6 works; an address
    # has no IPv4 side to compare with, hence partial
    target = report["targets"][0]
    assert (target["verdict"], target["reason"], target["v6"]["ok"], target["v6"]["status"]) == \
        ("partial", "no IPv4 response to compare with", True, 200), target
    assert "u_alpha: measured_from: h02" in flat(result)
    # and ingest stores it as the unit's endpoint verdicts
    from nanbu_secops.store import Store, ingest

    stats = ingest(tmp_path / "results", tmp_path / "fleet.db")
    assert (stats.bad, stats.endpoint_runs_added, stats.endpoints_added) == ([], 1, 1)
    with Store.open(tmp_path / "fleet.db") as store:
        runs = store.latest_endpoint_runs(0, 2**40)
        assert [r.unit for r in runs] == ["u_alpha"]
        assert [(e.target, e.verdict) for e in store.endpoints([r.id for r in runs])] == [(url, "partial")]
