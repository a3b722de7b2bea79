"""Units and terminals from the Ansible inventory, and the article-25 unit details."""

from __future__ import annotations

import subprocess
import sys
import textwrap
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
    assert inventory.host_units() == {"t1": "u_town", "s1": "u_town", "loose": None}
    assert unit_findings(inventory) == []


def test_missing_details_are_findings_with_their_line(tmp_path):
    write(tmp_path, "all:\n  children:\n    u_x:\n      hosts:\n        h1:\n",
          {"u_x": "unit:\n  name: 某局\n  leader:\n    name: ''\n    phone: '0817-1'\n  office:\n"})
    found = {f["field"]: (f["problem"], f["source"].rsplit(":", 1)[1]) for f in unit_findings(load_inventory(tmp_path))}
    # a field that is not there at all: the line of ``unit:``
    assert found == {"leader.name": ("missing", "4"), "office": ("missing", "6"),
                     "account_manager.name": ("missing", "1"), "account_manager.phone": ("missing", "1")}


@pytest.mark.parametrize("hosts, group_vars, message, where", [
    # what ansible-core refuses, with its own words and, where it gives one, the line
    ("all:\n  children:\n    u_a:\n      hosts: [h1]\n", {}, 'Invalid "hosts" entry for "u_a" group', "hosts.yml"),
    ("all:\n  children:\n    u_a:\n      hosts:\n        h1:\n        h1:\n", {}, "duplicate mapping key 'h1'",
     "hosts.yml:6"),
    ("all:\n  children:\n    u_a:\n      hosts:\n       - h1\n      bad: [\n", {}, "YAML parsing failed", "hosts.yml:7"),
    ("all:\n  children:\n    a:\n      children:\n        b:\n          children:\n            a:\n", {},
     "recursive dependency loop", "hosts.yml"),
    # what the units add to it: a host owned twice, a unit that is not a mapping (file:line of group_vars)
    ("all:\n  children:\n    u_a:\n      hosts:\n        h1:\n    u_b:\n      hosts:\n        h1:\n",
     {"u_a": UNIT.format(name="甲"), "u_b": UNIT.format(name="乙")}, "host 'h1' is in two units, u_a and u_b", ""),
    ("all:\n  children:\n    u_a:\n", {"u_a": "unit: 甲镇\n"}, "unit must be a mapping, not str", "u_a.yml:1"),
    ("all:\n  children:\n    u_a:\n", {"u_a": "unit:\n  leader: 张三\n"}, "unit.leader must be a mapping, not str",
     "u_a.yml:2"),
])
def test_errors_name_file_and_line(tmp_path, hosts, group_vars, message, where):
    write(tmp_path, hosts, group_vars)
    with pytest.raises(InputError) as caught:
        load_inventory(tmp_path)
    assert message in str(caught.value) and where in str(caught.value), str(caught.value)


def test_no_hosts_file(tmp_path):
    with pytest.raises(InputError, match="Completely failed to parse inventory source"):
        load_inventory(tmp_path)
    with pytest.raises(InputError, match="no such inventory"):
        load_inventory(tmp_path / "missing")


def test_empty_vars_files_are_fine(tmp_path):
    write(tmp_path, "# nothing yet\n", {"all": "# only comments\n"}, {"h": ""})
    inventory = load_inventory(tmp_path)
    assert inventory.units == {} and inventory.hosts == {}


# --- the same units in every form Ansible reads: ansible-core decides, so all agree ---------------

YAML_FORM = """\
all:
  children:
    units:
      children:
        u_town:
          hosts:
            term01: {ansible_host: 192.0.2.1}
            term02:
            term03:
          children:
            u_town_school:
              hosts:
                school01:
        u_dept:
          hosts:
            dept01:
            dept02:
"""
INI_FORM = """\
[u_town]
term[01:03]

[u_town_school]
school01

[u_town:children]
u_town_school

[u_dept]
dept[01:02]

[units:children]
u_town
u_dept
"""


def _view(inventory) -> dict[str, object]:
    """What the report takes from an inventory."""
    return {"units": {g: (u.name, u.fields) for g, u in inventory.units.items()},
            "members": {g: inventory.hosts_of(g) for g in inventory.units},
            "owners": inventory.host_units(),
            "findings": [(f["unit"], f["field"], f["problem"]) for f in unit_findings(inventory)]}


def _group_vars_forms(root: Path, folders: bool) -> None:
    town = UNIT.format(name="某镇")
    dept = "unit:\n  name: 某局\n  office: 办公室\n  leader: {name: 示例·王某某, phone: '1'}\n"
    if folders:   # group_vars/<group>/ folders, the unit split over two files as Ansible merges them
        for group, text in (("u_town", town), ("u_dept", dept)):
            (root / "group_vars" / group).mkdir(parents=True)
            (root / "group_vars" / group / "unit.yml").write_text(text, encoding="utf-8")
            (root / "group_vars" / group / "other.yaml").write_text("ansible_user: ops\n", encoding="utf-8")
    else:
        (root / "group_vars").mkdir()
        (root / "group_vars" / "u_town.yml").write_text(town, encoding="utf-8")
        (root / "group_vars" / "u_dept.yml").write_text(dept, encoding="utf-8")


@pytest.mark.parametrize("form, name", [(YAML_FORM, "hosts.yml"), (INI_FORM, "hosts.ini"), (INI_FORM, "hosts")])
@pytest.mark.parametrize("folders", [False, True])
def test_yaml_ini_ranges_and_group_vars_folders_give_the_same_units(tmp_path, form, name, folders):
    (tmp_path / name).write_text(form, encoding="utf-8")
    _group_vars_forms(tmp_path, folders)
    view = _view(load_inventory(tmp_path))
    assert view == {
        "units": {"u_dept": ("某局", {"name": "某局", "leader.name": "示例·王某某", "leader.phone": "1",
                                      "office": "办公室", "account_manager.name": "",
                                      "account_manager.phone": ""}),
                  "u_town": ("某镇", {"name": "某镇", "leader.name": "张局长", "leader.phone": "0817-1",
                                      "office": "办公室", "account_manager.name": "李科长",
                                      "account_manager.phone": "0817-2"})},
        "members": {"u_dept": ["dept01", "dept02"], "u_town": ["school01", "term01", "term02", "term03"]},
        "owners": {"term01": "u_town", "term02": "u_town", "term03": "u_town", "school01": "u_town",
                   "dept01": "u_dept", "dept02": "u_dept"},
        "findings": [("u_dept", "leader.name", "placeholder"), ("u_dept", "account_manager.name", "missing"),
                     ("u_dept", "account_manager.phone", "missing")]}
    # findings still point at the line in the group_vars file that holds unit:
    first = unit_findings(load_inventory(tmp_path))[0]
    expected = "group_vars/u_dept/unit.yml:4" if folders else "group_vars/u_dept.yml:4"
    assert first["source"].endswith(expected)


def test_host_vars_folder_and_file(tmp_path):
    (tmp_path / "hosts.ini").write_text("[u_town]\nterm[1:2]\n", encoding="utf-8")
    _group_vars_forms(tmp_path, False)
    (tmp_path / "host_vars" / "term1").mkdir(parents=True)
    (tmp_path / "host_vars" / "term1" / "net.yml").write_text("ansible_host: 192.0.2.7\n", encoding="utf-8")
    (tmp_path / "host_vars" / "term2.yml").write_text("ansible_host: '2001:db8::2'\n", encoding="utf-8")
    inventory = load_inventory(tmp_path)
    assert inventory.hosts == {"term1": {"ansible_host": "192.0.2.7"}, "term2": {"ansible_host": "2001:db8::2"}}


def test_vault_values(tmp_path, monkeypatch):
    """A vault-encrypted field: without the password it counts as filled in (it cannot be read);
    a group_vars file encrypted as a whole is read with the password Ansible is given."""
    vault = Path(sys.executable).parent / "ansible-vault"
    password = tmp_path / "pw"
    password.write_text("correct horse\n", encoding="utf-8")
    phone = subprocess.run([str(vault), "encrypt_string", "--vault-password-file", str(password), "0817-9",
                            "--name", "phone"], capture_output=True, text=True, check=True).stdout
    inv = tmp_path / "inv"
    inv.mkdir()
    (inv / "hosts.ini").write_text("[u_a]\na1\n[u_b]\nb1\n", encoding="utf-8")
    (inv / "group_vars" / "u_b").mkdir(parents=True)
    (inv / "group_vars" / "u_a.yml").write_text(
        "unit:\n  name: 甲\n  office: 办\n  leader:\n    name: 张\n" + textwrap.indent(phone, "    ")
        + "  account_manager: {name: 李, phone: '2'}\n", encoding="utf-8")
    secret = inv / "group_vars" / "u_b" / "vault.yml"
    secret.write_text(UNIT.format(name="乙"), encoding="utf-8")
    subprocess.run([str(vault), "encrypt", "--vault-password-file", str(password), str(secret)],
                   capture_output=True, check=True)
    assert secret.read_bytes().startswith(b"$ANSIBLE_VAULT")
    with pytest.raises(InputError, match="vault"):       # a whole encrypted file needs the password
        load_inventory(inv)
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(password))
    inventory = load_inventory(inv)
    assert inventory.units["u_a"].fields["leader.phone"] == "(vault)"
    assert inventory.units["u_b"].fields["leader.phone"] == "0817-1"   # decrypted by Ansible
    assert unit_findings(inventory) == []
    assert inventory.units["u_b"].source == str(inv)     # no lines from ciphertext: the inventory is named


@pytest.mark.parametrize("text, message", [
    ("[u_a]\nh[01:xx]\n", "invalid literal for int()"),
    ("[u_a]\nh1 ansible_host\n", "Expected key=value host variable assignment"),
    ("[u_a:vars]\nx=1\n[u_b:vars]\n", "not valid for undefined group"),
    ("[u_a]\nh1\n[u_b]\nh1\n[u_a:vars]\nunit={'name': 'A'}\n[u_b:vars]\nunit={'name': 'B'}\n",
     "host 'h1' is in two units, u_a and u_b"),
])
def test_hostile_ini_inventories_are_refused_naming_the_file(tmp_path, text, message):
    (tmp_path / "hosts.ini").write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_inventory(tmp_path)
    assert message in str(caught.value) and str(tmp_path) in str(caught.value)


def test_a_unit_written_inline_in_ini_is_named_by_the_inventory(tmp_path):
    (tmp_path / "hosts.ini").write_text("[u_a]\nh[1:2]\n[u_a:vars]\nunit={'name': '甲', 'office': '办'}\n",
                                        encoding="utf-8")
    inventory = load_inventory(tmp_path)
    assert inventory.hosts_of("u_a") == ["h1", "h2"] and inventory.units["u_a"].name == "甲"
    assert {f["field"]: f["source"] for f in unit_findings(inventory)}["leader.name"] == str(tmp_path)
