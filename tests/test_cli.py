"""The command line contract: exit codes, JSON schema, languages, and bad input named by file:line."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from nanbu_secops.cli import main
from nanbu_secops.policy.loader import load_policies
from tests.roots import AS_OF, make_root

PROJECT = Path(__file__).resolve().parents[1]
POLICY = PROJECT / "policies" / "article26.yml"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as an operator runs it."""
    exe = Path(sys.executable).with_name("nanbu-secops")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60, check=False)


def shipped_controls() -> list:
    """Every enabled control of the shipped policies, so counts follow the policy files."""
    return [c for p in load_policies(PROJECT / "policies").policies for c in p.controls if c.enabled]


def result_schema() -> dict:
    return json.loads(resources.files("nanbu_secops").joinpath("schemas/check-result.schema.json").read_text())


def test_json_output_matches_the_shipped_schema(tmp_path):
    done = cli("check", "--root", str(make_root(tmp_path)), "--format", "json", "--as-of", AS_OF.isoformat())
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    jsonschema.validate(report, result_schema())
    assert report["generated"].endswith("+08:00")
    assert "nanbu-a26@2026.11.2" in report["policy_version"].split(",")
    summary = report["summary"]
    assert summary["fail"] == summary["error"] == 0
    assert summary["pass"] + summary["skip"] == len(report["results"]) == len(shipped_controls())


def test_schema_rejects_a_wrong_report():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"host": "h", "generated": "yesterday", "policy_version": "x", "results": []},
                            result_schema())


def test_python_dash_m_works(tmp_path):
    done = subprocess.run([sys.executable, "-m", "nanbu_secops", "--version"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0 and done.stdout.startswith("nanbu-secops ")


def test_text_report_is_chinese_by_default_and_grouped_by_article(tmp_path):
    root = make_root(tmp_path, {"etc/login.defs": "PASS_MAX_DAYS 365\n"})
    done = cli("check", "--root", str(root), "--as-of", AS_OF.isoformat())
    assert done.returncode == 1
    assert "第二十六条" in done.stdout and "不通过" in done.stdout and "整改建议" in done.stdout
    assert "口令最长使用期限不超过 90 天" in done.stdout
    english = cli("check", "--root", str(root), "--as-of", AS_OF.isoformat(), "--lang", "en")
    assert "Article 26" in english.stdout and "FAIL" in english.stdout and "Remediation" in english.stdout


def test_only_selects_controls_and_articles(tmp_path, capsys):
    root = str(make_root(tmp_path))
    main(["check", "--root", root, "--format", "json", "--only", "NS26-SSH-002,NS26-PASS-001"])
    assert [r["control"] for r in json.loads(capsys.readouterr().out)["results"]] == ["NS26-PASS-001",
                                                                                    "NS26-SSH-002"]
    main(["check", "--root", root, "--format", "json", "--only", "26"])
    article26 = [c for c in shipped_controls() if c.article == "26"]
    assert len(json.loads(capsys.readouterr().out)["results"]) == len(article26)


def test_output_file(tmp_path):
    out = tmp_path / "report.json"
    done = cli("check", "--root", str(make_root(tmp_path / "root")), "--as-of", AS_OF.isoformat(), "--format", "json",
               "--output", str(out))
    assert done.returncode == 0 and done.stdout == ""
    assert json.loads(out.read_text())["host"] == "terminal-01"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


@pytest.mark.parametrize("args, message", [
    (["--root", "/nonexistent/root"], "/nonexistent/root: --root: not a directory"),
    (["--root", "/etc/hostname"], "--root: not a directory"),
    (["--root", "/usr/share/doc"], "--root: no /etc in it"),
    (["--only", "NS99-NOPE-001"], "--only: no enabled control or article named NS99-NOPE-001"),
    (["--only", "99"], "no enabled control or article named 99"),
    (["--as-of", "2026-13-01"], "--as-of: not a date"),
    (["--output", "/nonexistent/dir/report.json"], "--output: folder does not exist"),
    (["--policy", "/nonexistent/policy.yml"], "/nonexistent/policy.yml: no such policy file or folder"),
])
def test_bad_check_arguments_exit_2_with_a_message(tmp_path, args, message):
    done = cli("check", "--lang", "en", *(args if "--root" in args else ["--root", str(make_root(tmp_path)), *args]))
    assert done.returncode == 2, done
    assert message in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_unknown_format_is_a_usage_error():
    done = cli("check", "--format", "xml", "--lang", "en")
    assert done.returncode == 2 and "invalid choice" in done.stderr


# --- policy validate ----------------------------------------------------------------------------

def test_shipped_policies_validate():
    done = cli("policy", "validate", str(PROJECT / "policies"), "--lang", "en")
    assert done.returncode == 0, done.stderr
    assert "article26.yml: ok (nanbu-a26 2026.11.2, " in done.stdout


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


BASE = POLICY.read_text(encoding="utf-8")


@pytest.mark.parametrize("edit, needle, message", [
    (lambda t: t.replace("check: uid0_only", "check: uid_zero_only"), "check: uid_zero_only",
     "controls[7].check: unknown check 'uid_zero_only'"),
    (lambda t: t.replace("value: ${ssh_max_auth_tries}", 'value: "four"'), 'value: "four"',
     "controls[9].params.value: 'four' is not of type 'integer'"),
    (lambda t: t.replace("pass_warn_age: 7 ", "pass_warn_age: seven "), "value: ${pass_warn_age}",
     "controls[2].params.value: 'seven' is not of type 'integer'"),
    (lambda t: t.replace('  - id: NS26-PASS-002\n    article: "26"\n', "  - id: NS26-PASS-002\n"),
     "id: NS26-PASS-002", "controls[1]: 'article' is a required property"),
    (lambda t: t.replace("id: NS26-PASS-003", "id: NS26-PASS-001"), "id: NS26-PASS-001",
     "duplicate control id 'NS26-PASS-001'"),
    (lambda t: t.replace("severity: low", "severity: urgent", 1), "severity: urgent",
     "controls[1].severity: 'urgent' is not one of"),
    (lambda t: t.replace("value: ${pass_min_days}", "value: ${pass_minimum}"), "value: ${pass_minimum}",
     "unknown variable ${pass_minimum}"),
    (lambda t: t.replace("    check: no_empty_password", "    check: no_empty_password\n    check: uid0_only"),
     "check: uid0_only", "duplicate key 'check'"),
    (lambda t: t.replace("    severity: critical\n    check: no_empty_password",
                         "    severity: critical\n    check: no_empty_password\n    params: {bogus: 1}"),
     "params: {bogus: 1}", "unknown key(s) ('bogus' was unexpected)"),
    (lambda t: t.replace("      op: \"<=\"\n      value: ${pass_max_days}", "      op: \"<=\"\n      value: [90"),
     "value: [90", "malformed YAML"),
    (lambda t: t.replace("  id: nanbu-a26\n", "  id: nanbu-a26\n  owner: me\n"),
     "owner: me", "policy: unknown key(s) ('owner' was unexpected)"),
])
def test_policy_errors_name_file_and_line(tmp_path, edit, needle, message):
    bad = tmp_path / "bad.yml"
    text = edit(BASE)
    assert text != BASE
    bad.write_text(text, encoding="utf-8")
    done = cli("policy", "validate", str(bad), "--lang", "en")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    occurrence = 2 if "duplicate control id" in message else 1
    expected_line = line_of(text, needle, occurrence)
    if "malformed YAML" in message:
        assert f"{bad}:" in done.stderr  # the parser's mark points at or just after the fault
        found = int(done.stderr.split(f"{bad}:")[1].split(":")[0])
        assert abs(found - expected_line) <= 2
    else:
        assert f"{bad}:{expected_line}: " in done.stderr, (done.stderr, expected_line)
    assert message in done.stderr
    # the same error stops `check` too, with exit 2 and nothing on stdout
    check = cli("check", "--lang", "en", "--policy", str(bad), "--root", str(make_root(tmp_path / "root")))
    assert check.returncode == 2 and check.stdout == "" and message in check.stderr


@pytest.mark.parametrize("old, new, message", [
    ("      severity: high\n", "      severity: hihg\n", "account_findings.dormant.severity: 'hihg' is not one of"),
    ("  establishment_exempt_roles: []", "  establishment_exempt_roles: [3]", "3 is not of type 'string'"),
])
def test_policy_validate_refuses_what_accounts_audit_refuses(tmp_path, old, new, message):
    """One schema per command, all run by validate: nothing validate passes is refused later by a command."""
    text = BASE.replace(old, new, 1)
    assert text != BASE
    bad = tmp_path / "bad.yml"
    bad.write_text(text, encoding="utf-8")
    done = cli("policy", "validate", str(bad), "--lang", "en")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    variable = new.strip().split(":")[0] if new.startswith("  establishment") else "account_findings"
    assert f"{bad}:{line_of(text, variable + ':')}: " in done.stderr and message in done.stderr, done.stderr
    audit = cli("accounts", "audit", "--lang", "en", "--policy", str(bad), "--accounts", "a.csv", "--logins", "l.csv",
                "--roster", "r.csv")
    assert audit.returncode == 2 and message in audit.stderr, audit.stderr


def test_policy_validate_runs_where_the_controller_modules_are_missing():
    """Terminals have the agent without paramiko and ansible (deploy_agent.yml validates there)."""
    code = ("import sys\nfor m in ('paramiko', 'ansible'): sys.modules[m] = None\n"
            "from nanbu_secops.cli import main\nsys.exit(main(['policy', 'validate', sys.argv[1], '--lang', 'en']))")
    done = subprocess.run([sys.executable, "-c", code, str(PROJECT / "policies")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "variables ok for: accounts audit, creds password, ipv6 check, report quarterly, ssh probe" in done.stdout


def test_duplicate_ids_across_files(tmp_path):
    (tmp_path / "a.yml").write_text(BASE, encoding="utf-8")
    (tmp_path / "b.yml").write_text(BASE.replace("id: nanbu-a26", "id: other"), encoding="utf-8")
    done = cli("policy", "validate", str(tmp_path), "--lang", "en")
    assert done.returncode == 2
    assert f"{tmp_path / 'b.yml'}:{line_of(BASE, 'id: NS26-PASS-001')}: duplicate control id 'NS26-PASS-001'" \
        in done.stderr
    assert f"first defined at {tmp_path / 'a.yml'}:" in done.stderr


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"\xff\xfe\x00garbage", "not UTF-8 text"),
    (b"- just\n- a list\n", "is not of type 'object'"),
    (b"a: 1\n---\nb: 2\n", "malformed YAML"),
    (b"schema_version: 2\npolicy: {}\ncontrols: []\n", "schema_version: 1 was expected"),
])
def test_unusable_policy_files(tmp_path, content, message):
    bad = tmp_path / "x.yml"
    bad.write_bytes(content)
    done = cli("policy", "validate", str(bad), "--lang", "en")
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_folder_without_policies(tmp_path):
    done = cli("policy", "validate", str(tmp_path), "--lang", "en")
    assert done.returncode == 2 and "holds no policy file" in done.stderr


def test_operator_can_add_a_control_without_python(tmp_path, capsys):
    """A new control is data: tighten MaxAuthTries under another id and article 5 in a second file."""
    (tmp_path / "a26.yml").write_text(BASE, encoding="utf-8")
    (tmp_path / "local.yml").write_text("""\
schema_version: 1
policy: {id: local-tuning, version: "1", title: {zh: 本单位补充, en: Local additions}}
controls:
  - id: LOCAL-SSH-001
    article: 5
    title: {zh: SSH 最多 2 次认证尝试, en: SSH allows at most 2 attempts}
    severity: low
    check: sshd_option
    params: {key: MaxAuthTries, op: "<=", value: 2}
    rationale: {zh: 本单位要求更严, en: Stricter local rule}
    remediation: {zh: 设置 MaxAuthTries 2, en: Set MaxAuthTries 2}
""", encoding="utf-8")
    code = main(["check", "--policy", str(tmp_path), "--root", str(make_root(tmp_path / "root")),
                 "--format", "json", "--only", "5"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [(r["control"], r["article"], r["status"]) for r in report["results"]] == [("LOCAL-SSH-001", "5", "fail")]
    assert report["policy_version"] == "nanbu-a26@2026.11.2,local-tuning@1"


def test_only_an_article_selects_its_items(tmp_path: Path) -> None:
    """`--only 9` selects the article 9(2) controls, as `--only '9(2)'` does."""
    from tests.roots import make_root

    root = make_root(tmp_path)
    for selector in ("9", "9(2)"):
        done = cli("check", "--root", str(root), "--only", selector, "--format", "json")
        controls = {r["control"] for r in json.loads(done.stdout)["results"]}
        assert controls and all(c.startswith("NS09-") for c in controls), (selector, done.stderr)
