"""playbooks/site_inspection.yml on a lab host with the real agent, then ``ingest`` and the
quarterly report's "platform use" section, on the generated portal of tests/test_site_inspect.py
(real nginx in the lab). Unit u_demo: first a host that refuses connections, then h02, which
inspects the site across the lab bridge; u_none has no ``unit.site`` and is only named."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.playbook_output import flat, output, recap
from tests.test_cli import cli
from tests.test_site_inspect import AS_OF, PROJECT, Portal, inventory, portal  # noqa: F401  (module fixture)

PLAYBOOK = PROJECT / "playbooks" / "site_inspection.yml"
AGENT = PROJECT / ".venv" / "bin" / "nanbu-secops"


def unit_inventory(lab, path: Path, site: dict) -> Path:
    def host(name: str, refuse: bool = False) -> dict:
        return {"ansible_host": lab.hosts[name].ipv4, **({"ansible_port": 1} if refuse else {})}

    inventory = {"all": {
        "vars": {"ansible_user": "root", "ansible_python_interpreter": "/usr/bin/python3",
                 "ansible_ssh_common_args": f"-F {lab.ssh_config}"},
        "children": {"units": {"children": {
            "u_demo": {"hosts": {"demo-down": host("h02", refuse=True), "h02": host("h02")},
                       "vars": {"unit": {"code": "u_demo", "site": site}}},
            "u_none": {"hosts": {"none-01": host("h03")}, "vars": {"unit": {"code": "u_none"}}},
        }}}}}
    path.write_text(yaml.safe_dump(inventory, allow_unicode=True), encoding="utf-8")
    return path


def test_playbook_ingest_and_quarterly_platform_use(portal: Portal, tmp_path: Path) -> None:  # noqa: F811
    lab = portal.world.lab
    folder = inventory(tmp_path, portal)  # the same unit.site the inspect tests read
    site = yaml.safe_load((folder / "group_vars" / "u_demo.yml").read_text())["unit"]["site"]
    hosts = unit_inventory(lab, tmp_path / "units.yml", site)
    results = tmp_path / "results"
    run = lab.ansible_playbook(PLAYBOOK, "-i", str(hosts), "-e", "target=units", "-e", f"nanbu_agent={AGENT}",
                               "-e", f"nanbu_results_dir={results}", "-e", f"nanbu_site_as_of={AS_OF.isoformat()}",
                               "-e", "nanbu_site_probes=3", "-e", f"nanbu_site_resolver={portal.world.resolver}")
    assert run.returncode == 0, output(run)  # the refusing host is ignored; the agent's exit 1 is a result
    assert all(r["changed"] == 0 and r["failed"] == 0 for r in recap(run).values()), output(run)
    report = json.loads((results / "site" / "u_demo-site.json").read_text(encoding="utf-8"))
    [found] = report["sites"]
    assert found["unit"] == "u_demo" and report["as_of"] == AS_OF.isoformat()
    assert (found["home"]["ok"], found["home"]["probes"]) == (3, 3)
    assert [c["status"] for c in found["columns"]] == ["ok", "stale", "stale", "ok", "blank", "error", "error"]
    assert len(found["dead_links"]) == 7 and len(found["external_links"]) == 4 and len(found["ad_suspects"]) == 1
    text = flat(run)
    assert "u_demo: findings:" in text and "inspected_from: h02" in text
    assert "u_none: 'not inspected: no unit.site in its group_vars'" in text
    assert not (results / "site" / "u_none-site.json").exists()

    db = tmp_path / "fleet.db"
    loaded = cli("ingest", str(results), "--db", str(db))
    assert loaded.returncode == 0, loaded.stderr
    assert "1 次网站检查" in loaded.stdout  # in Chinese unless --lang en
    again = cli("ingest", str(results), "--db", str(db), "--lang", "en")
    assert "0 site inspections" in again.stdout  # ingesting again adds nothing

    quarter = f"{AS_OF.year}Q{(AS_OF.month - 1) // 3 + 1}"
    shown = cli("report", "quarterly", "--db", str(db), "--quarter", quarter, "--inventory", str(folder),
                "--policy", str(PROJECT / "policies"), "--format", "json")
    assert shown.returncode == 1, shown.stderr  # findings
    [unit] = [u for u in json.loads(shown.stdout)["units"] if u["unit"] == "u_demo"]
    use = unit["platform_use"]
    assert use["columns"] == {"total": 7, "ok": 2, "stale": 2, "blank": 1, "error": 2}
    assert (use["dead_links"], use["external_links"], use["ad_suspects"], use["findings"]) == (7, 4, 1, True)
    # weights of policies/article29.yml: home 30 × 3/3, columns 40 × 2/7 = 11.4, dead and external links 0
    assert use["score"] == {"home": 30.0, "columns": 11.4, "dead_links": 0.0, "external_links": 0.0,
                            "total": 41.4, "max": 100.0}
    page = tmp_path / "q.html"
    html_run = cli("report", "quarterly", "--db", str(db), "--quarter", quarter, "--inventory", str(folder),
                   "--policy", str(PROJECT / "policies"), "--format", "html", "--output", str(page))
    assert html_run.returncode == 1, html_run.stderr
    body = page.read_text()
    assert "集约化平台使用情况（第二十九条）" in body and "41.4/100" in body and "第十四条" in body
