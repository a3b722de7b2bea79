"""``nanbu-secops accounts audit`` end to end on small exports with hand-computed findings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from nanbu_secops.cli import main

ACCOUNTS = """\
账号,姓名,单位,角色,状态,创建时间,最后登录时间
zhangsan,张三,升钟镇,编辑,正常,2025-01-05 09:00,
lisi,李四,升钟镇,编辑,正常,2025-01-05 09:00,2026-11-01 10:00
wangwu,王五,升钟镇,审核,正常,2025-01-05 09:00,
zhaoliu,赵六,县卫生健康局,编辑,正常,2026-09-01 09:00,
sunqi,孙七,县卫生健康局,编辑,正常,2026-08-27 09:00,
zhouba,周八,县卫生健康局,编辑,停用,2025-01-05 09:00,
admin01,升钟镇,升钟镇,管理员,正常,2025-01-05 09:00,
wujiu,吴九,县卫生健康局,编辑,正常,2025-01-05 09:00,
zhengshi,郑十,升钟镇,编辑,正常,2025-01-05 09:00,
"""

LOGINS = """\
账号,登录时间,退出时间,来源IP,终端
zhangsan,2026-08-27 23:59:59,2026-08-28 00:10:00,10.1.1.5,SZ-PC-01
lisi,2026-08-28 00:00:00,2026-08-28 00:30:00,10.1.1.6,SZ-PC-02
wangwu,2026-11-02 09:00:00,2026-11-02 10:00:00,10.1.1.7,SZ-PC-03
wangwu,2026-11-02 09:59:59,2026-11-02 10:30:00,10.2.2.8,
wujiu,2026-11-03 09:00:00,2026-11-03 10:00:00,10.3.1.1,WJ-1
wujiu,2026-11-03 10:00:00,,10.3.1.2,WJ-2
zhengshi,2026-11-04 08:00:00,2026-11-04 08:05:00,10.4.0.1,A
zhengshi,2026-11-04 09:00:00,2026-11-04 09:05:00,10.4.0.2,B
zhengshi,2026-11-04 10:00:00,2026-11-04 10:05:00,10.4.0.3,C
zhengshi,2026-11-04 11:00:00,2026-11-04 11:05:00,10.4.0.4,D
admin01,2026-11-05 08:00:00,2026-11-05 08:05:00,10.1.1.5,SZ-PC-01
"""

ROSTER = """\
姓名,工号,单位,在职状态,编制
张三,S001,升钟镇,在职,在编
李四,S002,升钟镇,离职,在编
王五,S003,升钟镇,在职,在编
赵六,H001,县卫生健康局,在职,聘用
孙七,H002,升钟镇,在职,在编
吴九,H003,县卫生健康局,在职,在编
郑十,S004,升钟镇,在职,在编
"""

EXPECTED = {
    ("zhangsan", "dormant"),           # last login one second before the cut day 2026-08-28
    ("lisi", "not-current-staff"),     # 离职; logged in at 00:00:00 on the cut day: not dormant
    ("wangwu", "shared"),              # overlap by one second, second terminal known only by its IP
    ("zhaoliu", "not-current-staff"),  # 聘用, not 在编; never used but created after the cut
    ("sunqi", "dormant"),              # never used, created the day before the cut
    ("sunqi", "unit-mismatch"),        # account in 县卫生健康局, roster says 升钟镇
    ("admin01", "generic-name"),       # generic account name, holder is a unit's name
    ("admin01", "not-current-staff"),  # no such person in the roster
    ("zhengshi", "shared"),            # four terminals in one day, limit 3
    # zhouba is disabled: no findings; wujiu's sessions touch end-to-start: not shared
}


@pytest.fixture
def exports(tmp_path: Path) -> dict[str, Path]:
    files = {"accounts": ACCOUNTS, "logins": LOGINS, "roster": ROSTER}
    out = {}
    for name, text in files.items():
        out[name] = tmp_path / f"{name}.csv"
        out[name].write_text(text, encoding="utf-8")
    return out


def audit(exports: dict[str, Path], *extra: str) -> list[str]:
    return ["accounts", "audit", "--accounts", str(exports["accounts"]), "--logins", str(exports["logins"]),
            "--roster", str(exports["roster"]), "--as-of", "2026-11-28", *extra]


def test_findings_are_the_hand_computed_ones(exports, capsys):
    code = main(audit(exports, "--format", "json"))
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert {(f["account"], f["rule"]) for f in report["findings"]} == EXPECTED
    assert report["as_of"] == "2026-11-28"
    assert report["summary"]["cut"] == "2026-08-28"
    assert report["summary"]["findings"] == {"dormant": 2, "shared": 2, "not-current-staff": 3,
                                             "unit-mismatch": 1, "generic-name": 1}
    assert report["summary"]["login_events"] == 11
    for finding in report["findings"]:
        assert finding["article"] == "26" and finding["severity"] in ("medium", "high") and finding["action"]
    by = {(f["account"], f["rule"]): f for f in report["findings"]}
    pair = by[("wangwu", "shared")]["evidence"]["pairs"][0]
    assert (pair["first"]["terminal"], pair["second"]["terminal"]) == ("SZ-PC-03", "10.2.2.8")
    assert by[("zhengshi", "shared")]["evidence"]["busy_days"] == [{"day": "2026-11-04", "terminals": ["A", "B", "C", "D"]}]
    assert by[("zhangsan", "dormant")]["evidence"]["last_login"] == "2026-08-27T23:59:59"
    assert by[("lisi", "not-current-staff")]["evidence"]["reason"] == "employment is left"


def test_no_findings_exits_0(tmp_path, capsys):
    for name, text in {"accounts": "账号,姓名,单位,状态\nlisi,李四,升钟镇,正常\n",
                       "logins": "账号,登录时间,来源IP\nlisi,2026-11-20 09:00,10.1.1.6\n",
                       "roster": "姓名,单位,在职状态,编制\n李四,升钟镇,在职,在编\n"}.items():
        (tmp_path / f"{name}.csv").write_text(text, encoding="utf-8")
    code = main(["accounts", "audit", "--accounts", str(tmp_path / "accounts.csv"), "--logins",
                 str(tmp_path / "logins.csv"), "--roster", str(tmp_path / "roster.csv"), "--as-of", "2026-11-28",
                 "--format", "json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


def test_xlsx_has_one_sheet_per_unit_with_chinese_headers(exports, tmp_path):
    out = tmp_path / "list.xlsx"
    assert main(audit(exports, "--format", "xlsx", "--output", str(out))) == 1
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["汇总", "升钟镇", "县卫生健康局"]
    sheet = book["县卫生健康局"]
    assert [c.value for c in sheet[1]] == ["规则", "账号", "姓名", "单位", "级别", "条款", "依据", "处置措施"]
    rows = {(r[1], r[0]) for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows == {("zhaoliu", "非在职在编"), ("sunqi", "休眠账号"), ("sunqi", "单位不符")}


def test_text_and_html(exports, tmp_path, capsys):
    assert main(audit(exports)) == 1
    text = capsys.readouterr().out
    assert "集约化平台账号审计（第二十六条）" in text and "升钟镇" in text and "休眠账号" in text
    out = tmp_path / "r.html"
    assert main(audit(exports, "--format", "html", "--lang", "en", "--output", str(out))) == 1
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page and "http" not in page.split("<body>")[1]
    assert "dormant" in page and "zhangsan" in page


def test_thresholds_come_from_the_policy(exports, tmp_path, capsys):
    policy = (Path(__file__).resolve().parents[1] / "policies/article26.yml").read_text(encoding="utf-8")
    (tmp_path / "p.yml").write_text(policy.replace("max_terminals_per_day: 3", "max_terminals_per_day: 4")
                                    .replace("dormant_months: 3 ", "dormant_months: 4 "), encoding="utf-8")
    main(audit(exports, "--format", "json", "--policy", str(tmp_path / "p.yml")))
    found = {(f["account"], f["rule"]) for f in json.loads(capsys.readouterr().out)["findings"]}
    assert ("zhengshi", "shared") not in found            # 4 terminals now allowed
    assert ("zhangsan", "dormant") not in found           # cut moved to 2026-07-28
    assert ("sunqi", "dormant") not in found


def test_bad_policy_variable_names_file_and_line(exports, tmp_path):
    policy = (Path(__file__).resolve().parents[1] / "policies/article26.yml").read_text(encoding="utf-8")
    bad = tmp_path / "p.yml"
    bad.write_text(policy.replace("establishment_exempt_roles: []", "establishment_exempt_roles: 技术支持"),
                   encoding="utf-8")
    line = next(i for i, row in enumerate(bad.read_text().splitlines(), 1) if "establishment_exempt_roles: 技术" in row)
    exe = Path(sys.executable).with_name("nanbu-secops")
    done = subprocess.run([str(exe), *audit(exports, "--policy", str(bad), "--lang", "en")], capture_output=True,
                          text=True)
    assert done.returncode == 2
    assert f"{bad}:{line}: variables.establishment_exempt_roles: '技术支持' is not of type 'array'" in done.stderr


def test_xlsx_needs_an_output_file(exports, capsys):
    assert main(audit(exports, "--format", "xlsx", "--lang", "en")) == 2
    assert "give --output" in capsys.readouterr().err


def test_findings_can_be_acted_on_in_every_format(exports, tmp_path, capsys):
    """Article and action in the text; the evidence as a sentence (never raw JSON) in text, HTML and
    xlsx; the accounts that log in but are missing from the account list named in every format."""
    exports["logins"].write_text(LOGINS + "ghost,2026-11-05 08:00:00,2026-11-05 08:05:00,10.9.9.9,X\n", encoding="utf-8")
    assert main(audit(exports)) == 1
    text = capsys.readouterr().out
    assert "条款" in text and "处置措施" in text and "第二十六条" in text
    assert "由县政府办公室禁用或收回账号" in text                     # the dormant rule's action from the policy
    assert "登录日志中有 1 个账号不在账号清单中" in text and "ghost" in text
    assert main(audit(exports, "--format", "html", "--output", str(tmp_path / "r.html"))) == 1
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'data-unknown="1"' in page and "ghost" in page
    assert "最后登录 2026-08-27（登录日志），已超过 3 个月未登录（截止 2026-11-28）（账号文件第 2 行）" in page
    assert "账号登记在“县卫生健康局”，花名册（第 6 行）为“升钟镇”" in page
    assert "{&quot;" not in page and '{"' not in page.split("<body>")[1]
    assert main(audit(exports, "--format", "xlsx", "--output", str(tmp_path / "r.xlsx"))) == 1
    book = openpyxl.load_workbook(tmp_path / "r.xlsx")
    overview = [c for row in book["汇总"].iter_rows(values_only=True) for c in row if c]
    assert any("ghost" in str(c) and "不在账号清单中" in str(c) for c in overview)
    evidence = {r[1]: r[6] for r in book["升钟镇"].iter_rows(min_row=2, values_only=True) if r[0] == "疑似转借/共用"}
    assert evidence["zhengshi"] == "2026-11-04 一天内在 4 个终端登录（A、B、C、D）（账号文件第 10 行）"
    assert not any(str(v).startswith("{") or "=" in str(v) for v in evidence.values())
    widths = book["升钟镇"].column_dimensions
    assert widths["C"].width >= 10 and widths["D"].width >= 20 and widths["G"].width >= 60
    assert main(audit(exports, "--format", "json")) == 1
    assert json.loads(capsys.readouterr().out)["summary"]["log_accounts_unknown"] == ["ghost"]
