"""Units and terminals from the Ansible inventory, and the article-25 unit details."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanbu_secops.errors import InputError
from nanbu_secops.fleet.inventory import load_inventory, unit_findings

PROJECT = Path(__file__).resolve().parents[1]
UNIT = """\
unit:
  name: {name}
  office: 办公室
  leader: {{name: 张局长, phone: "0817-1"}}
  account_manager: {{name: 李科长, phone: "0817-2"}}
"""


def write(root: Path, hosts: str, group_vars: dict[str, str] | None = None,
          host_vars: dict[str, str] | None = None) -> Path:
    (root / "hosts.yml").write_text(hosts, encoding="utf-8")
    for folder, files in (("group_vars", group_vars or {}), ("host_vars", host_vars or {})):
        (root / folder).mkdir(exist_ok=True)
        for name, text in files.items():
            (root / folder / f"{name}.yml").write_text(text, encoding="utf-8")
    return root


def test_the_example_inventory():
    inventory = load_inventory(PROJECT / "inventory")
    assert sorted(inventory.units) == ["u_county_health", "u_shengzhong"]
    assert inventory.units["u_shengzhong"].name == "升钟镇人民政府"
    assert inventory.hosts_of("u_shengzhong") == ["szz-term-01", "szz-term-02"]
    assert inventory.unit_of("wjj-term-02") == "u_county_health"
    assert inventory.hosts["wjj-term-02"]["ansible_host"] == "2001:db8::22"
    assert inventory.unit_of("nobody") is None and inventory.hosts_of("u_unknown") == []
    # the example's fictional people are placeholders: each unit has two findings
    found = [(f["unit"], f["field"], f["problem"]) for f in unit_findings(inventory)]
    assert found == [("u_county_health", "leader.name", "placeholder"),
                     ("u_county_health", "account_manager.name", "placeholder"),
                     ("u_shengzhong", "leader.name", "placeholder"),
                     ("u_shengzhong", "account_manager.name", "placeholder")]
    first = unit_findings(inventory)[0]
    assert first["source"].endswith("inventory/group_vars/u_county_health.yml:10") and first["label"] == "分管领导"
    assert unit_findings(inventory, "en")[0]["label"] == "leader"


def test_nested_groups_host_vars_and_units_of_children(tmp_path):
    hosts = """\
all:
  children:
    u_town:
      hosts:
        t1:
      children:
        u_town_school:        # not a unit itself: its hosts are the town's
          hosts:
            s1: {ansible_host: 192.0.2.9}
    other:
      hosts:
        t1:                   # the same host in a non-unit group as well
        loose:
"""
    write(tmp_path, hosts, {"u_town": UNIT.format(name="某镇"), "all": "ansible_user: ops\n"},
          {"s1": "ansible_host: 192.0.2.10\nextra: 1\n"})
    inventory = load_inventory(tmp_path)
    assert list(inventory.units) == ["u_town"]
    assert inventory.hosts_of("u_town") == ["s1", "t1"]
    assert inventory.unit_of("s1") == "u_town" and inventory.unit_of("loose") is None
    assert inventory.hosts["s1"] == {"ansible_host": "192.0.2.10", "extra": 1}    # host_vars win
    assert unit_findings(inventory) == []


def test_missing_details_are_findings_with_their_line(tmp_path):
    write(tmp_path, "all:\n  children:\n    u_x:\n      hosts:\n        h1:\n",
          {"u_x": "unit:\n  name: 某局\n  leader:\n    name: ''\n    phone: '0817-1'\n  office:\n"})
    found = {f["field"]: (f["problem"], f["source"].rsplit(":", 1)[1]) for f in unit_findings(load_inventory(tmp_path))}
    # a field that is not there at all: the line of ``unit:``
    assert found == {"leader.name": ("missing", "4"), "office": ("missing", "6"),
                     "account_manager.name": ("missing", "1"), "account_manager.phone": ("missing", "1")}


@pytest.mark.parametrize("hosts, group_vars, message, where", [
    ("all:\n  children:\n    u_a:\n      hosts:\n        h1:\n    u_b:\n      hosts:\n        h1:\n",
     {"u_a": UNIT.format(name="甲"), "u_b": UNIT.format(name="乙")},
     "host 'h1' is in two units, u_a and u_b", "hosts.yml:5"),
    ("all:\n  children:\n    u_a:\n      host:\n        h1:\n", {}, "group 'u_a': unknown key 'host'", "hosts.yml:4"),
    ("all:\n  children:\n    u_a:\n      hosts: [h1]\n", {}, "u_a.hosts must be a mapping, not list", "hosts.yml:4"),
    ("all:\n  children:\n    u_a:\n      hosts:\n        h1:\n        h1:\n", {}, "duplicate key 'h1'", "hosts.yml:6"),
    ("all:\n  children:\n    u_a:\n      hosts:\n       - h1\n      bad: [\n", {}, "malformed YAML", "hosts.yml:"),
    ("all:\n  children:\n    u_a:\n", {"u_a": "unit: 甲镇\n"}, "unit must be a mapping, not str", "u_a.yml:1"),
    ("all:\n  children:\n    u_a:\n", {"u_a": "unit:\n  leader: 张三\n"}, "unit.leader must be a mapping, not str",
     "u_a.yml:2"),
    ("all:\n  children:\n    a:\n      children:\n        b:\n          children:\n            a:\n", {},
     "group 'a' is its own descendant", "hosts.yml"),
])
def test_errors_name_file_and_line(tmp_path, hosts, group_vars, message, where):
    write(tmp_path, hosts, group_vars)
    with pytest.raises(InputError) as caught:
        load_inventory(tmp_path)
    assert message in str(caught.value) and where in str(caught.value)


def test_no_hosts_file(tmp_path):
    with pytest.raises(InputError, match="no hosts.yml or hosts.yaml"):
        load_inventory(tmp_path)


def test_empty_vars_files_are_fine(tmp_path):
    write(tmp_path, "# nothing yet\n", {"all": "# only comments\n"}, {"h": ""})
    inventory = load_inventory(tmp_path)
    assert inventory.units == {} and inventory.hosts == {}
