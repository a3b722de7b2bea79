"""Optimisation proposals (article 28): the form, merging near-duplicates, the documents sent on."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
from pathlib import Path

import openpyxl
import pytest

from nanbu_secops import timeutil
from nanbu_secops.errors import InputError
from nanbu_secops.proposal import aggregate as agg_mod
from nanbu_secops.proposal import form
from nanbu_secops.proposal.aggregate import aggregate, load_dir, normalise
from nanbu_secops.proposal.form import Contact, Proposal
from nanbu_secops.report import proposals as report

FIXTURES = Path(__file__).parent / "fixtures" / "proposals"
GENERATED = dt.datetime(2026, 11, 29, 9, 30, tzinfo=timeutil.COUNTY_TZ)

GOOD = """\
单位: 大桥镇人民政府
标题: 网站栏目增加政策解读
类别: 功能优化
描述: 群众看不懂政策文件。
预期效益: 减少电话咨询。
优先级: 高
联系人:
  姓名: 王小红
  电话: 13812345678
提交日期: 2026-11-02
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def proposal(title: str, unit: str = "大桥镇", category: str = "optimisation", priority: str = "medium",
             submitted: str = "2026-11-01", phone: str = "13812345678") -> Proposal:
    return Proposal(unit=unit, title=title, category=category, description=f"{unit}：{title}",
                    expected_benefit="好", priority=priority, contact=Contact("张三", phone),
                    submitted=dt.date.fromisoformat(submitted), source=f"{unit}-{title}.yml")


def problems(path: Path) -> list[tuple[int | None, str]]:
    return [(e.line, e.message) for e in form.validate([path])]


# --- the form -------------------------------------------------------------------------------


def test_load_reads_every_field_as_written(tmp_path: Path) -> None:
    p = form.load(write(tmp_path, "a.yml", GOOD))
    assert p == Proposal("大桥镇人民政府", "网站栏目增加政策解读", "optimisation", "群众看不懂政策文件。", "减少电话咨询。",
                         "high", Contact("王小红", "13812345678"), dt.date(2026, 11, 2), str(tmp_path / "a.yml"))
    assert p.as_json() == {
        "unit": "大桥镇人民政府", "title": "网站栏目增加政策解读", "category": "optimisation",
        "description": "群众看不懂政策文件。", "expected_benefit": "减少电话咨询。", "priority": "high",
        "contact": {"name": "王小红", "phone": "13812345678"}, "submitted": "2026-11-02",
        "source": str(tmp_path / "a.yml")}


def test_english_keys_and_values_are_aliases(tmp_path: Path) -> None:
    text = ("unit: 县发展和改革局\ntitle: 增加政策解读栏目\ncategory: Security\ndescription: d\n"
            "expected_benefit: b\npriority: LOW\ncontact:\n  name: 陈刚\n  phone: 0817-5512345\n")
    p = form.load(write(tmp_path, "en.yml", text))
    assert (p.category, p.priority, p.contact.phone) == ("security", "low", "0817-5512345")
    for word, code in [("optimisation", "optimisation"), ("optimization", "optimisation"), ("upgrade", "upgrade"),
                       ("other", "other"), ("升级", "upgrade"), ("其他", "other"), ("安全", "security")]:
        assert form.load(write(tmp_path, "c.yml", GOOD.replace("类别: 功能优化", f"类别: {word}"))).category == code
    for word, code in [("中", "medium"), ("低", "low"), ("High", "high"), ("medium", "medium")]:
        assert form.load(write(tmp_path, "p.yml", GOOD.replace("优先级: 高", f"优先级: {word}"))).priority == code


def test_submitted_defaults_to_today_in_the_county(tmp_path: Path) -> None:
    # 16:30 UTC on 30 November is already 1 December in the county (UTC+8)
    with timeutil.use_clock(dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.UTC)):
        p = form.load(write(tmp_path, "a.yml", GOOD.replace("提交日期: 2026-11-02\n", "")))
    assert p.submitted == dt.date(2026, 12, 1)


def test_every_problem_is_reported_at_its_line(tmp_path: Path) -> None:
    text = """\
# 表头注释
单位: 大桥镇
标题: 网站栏目增加政策解读
类别: 改进
描述: 群众看不懂。
预期效益: 减少咨询。
优先级: 紧急
附件: a.docx
联系人:
  姓名: 王小红
  电话: 1381234567
提交日期: 2026-02-30
"""
    found = problems(write(tmp_path, "bad.yml", text))
    assert [line for line, _ in found] == [4, 7, 8, 11, 12]
    assert "'改进' is not allowed" in found[0][1] and "功能优化/optimisation" in found[0][1]
    assert "安全/security" in found[0][1] and "其他/other" in found[0][1]
    assert "'紧急' is not allowed" in found[1][1] and "高/high, 中/medium, 低/low" in found[1][1]
    assert "unknown key '附件'" in found[2][1]
    assert "1381234567" in found[3][1] and "0817-5512345" in found[3][1]
    assert "2026-02-30" in found[4][1]
    with pytest.raises(InputError) as raised:
        form.load(tmp_path / "bad.yml")
    assert raised.value.line == 4 and str(raised.value).startswith(f"{tmp_path / 'bad.yml'}:4: ")


def test_empty_missing_and_too_long(tmp_path: Path) -> None:
    text = GOOD.replace("标题: 网站栏目增加政策解读", "标题: " + "长" * 101).replace("描述: 群众看不懂政策文件。", "描述: ''")
    found = problems(write(tmp_path, "a.yml", text))
    assert found == [(2, "标题: 101 characters, at most 100"), (4, "描述 is empty")]
    assert form.validate([write(tmp_path, "b.yml", GOOD.replace("标题: 网站栏目增加政策解读", "标题: " + "长" * 100))]) == []

    text = GOOD.replace("预期效益: 减少电话咨询。\n", "").replace("  电话: 13812345678\n", "")
    found = problems(write(tmp_path, "c.yml", text))
    assert found == [(None, "missing 预期效益 (expected_benefit) in the form"), (6, "missing 电话 (phone) in 联系人")]

    found = problems(write(tmp_path, "d.yml", GOOD.replace("标题: 网站栏目增加政策解读", "标题:\ntitle: x")))
    assert found == [(2, "标题 is empty"), (3, "title is given twice (also as 标题 on line 2)")]


def test_contact_must_be_a_mapping_and_yaml_errors_keep_their_line(tmp_path: Path) -> None:
    text = GOOD.replace("联系人:\n  姓名: 王小红\n  电话: 13812345678\n", "联系人: 王小红 13812345678\n")
    assert problems(write(tmp_path, "a.yml", text)) == [(7, "联系人 must be 'key: value' lines")]
    found = problems(write(tmp_path, "b.yml", GOOD.replace("描述: 群众看不懂政策文件。", "描述: [群众看不懂")))
    assert len(found) == 1 and found[0][1].startswith("malformed YAML") and found[0][0] in (4, 5)
    assert problems(write(tmp_path, "c.yml", "")) == [(None, "the form is empty")]


def test_validate_collects_all_files(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yml", GOOD)
    bad1 = write(tmp_path, "bad1.yml", GOOD.replace("优先级: 高", "优先级: 急"))
    bad2 = write(tmp_path, "bad2.yml", GOOD.replace("13812345678", "12345"))
    errors = form.validate([bad1, good, bad2])
    assert [(e.source, e.line) for e in errors] == [(str(bad1), 6), (str(bad2), 9)]


def test_template_explains_every_field_and_round_trips(tmp_path: Path) -> None:
    for lang, keys in (("zh", ["单位", "标题", "类别", "描述", "预期效益", "优先级", "联系人", "姓名", "电话"]),
                       ("en", ["unit", "title", "category", "description", "expected_benefit", "priority",
                               "contact", "name", "phone"])):
        text = form.template(lang)
        lines = text.splitlines()
        for key in keys[:7]:  # each top-level field has its explanation in the comment right above
            at = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
            while lines[at - 1].startswith("#"):
                at -= 1
            assert re.match(rf"# {key}(：|: )\S", lines[at]), (lang, key)
        assert re.search(rf"# {keys[6]}(：|: ).*{'姓名和电话' if lang == 'zh' else 'name and phone'}", text)
        assert "# 提交日期: " in text if lang == "zh" else "# submitted: " in text  # optional: commented out
        blank = problems(write(tmp_path, f"blank-{lang}.yml", text))
        assert [m for _, m in blank] == [f"{k} is empty" for k in keys if k not in ("优先级", "联系人", "priority",
                                                                                   "contact")]
        assert all(line is not None for line, _ in blank)
    filled = (form.template("zh").replace("单位:\n", "单位: 大桥镇\n").replace("标题:\n", "标题: 增加解读\n")
              .replace("类别:\n", "类别: 功能优化\n").replace("描述: |\n\n", "描述: |\n  第一行\n  第二行\n")
              .replace("预期效益: |\n\n", "预期效益: |\n  好\n").replace("姓名:\n", "姓名: 王\n")
              .replace("电话:\n", "电话: 13812345678\n"))
    p = form.load(write(tmp_path, "filled.yml", filled))
    assert (p.description, p.priority, p.contact.phone) == ("第一行\n第二行", "medium", "13812345678")


# --- merging --------------------------------------------------------------------------------


def test_normalise_drops_width_case_spaces_and_chinese_punctuation() -> None:
    assert normalise("网站栏目增加 政策解读。") == "网站栏目增加政策解读"
    assert normalise("《ＨＴＴＰＳ》改造，（全站）、“必须”；：TLS 1.3") == "https改造全站必须tls13"


def test_near_duplicates_merge_reorderings_stay_apart_at_default() -> None:
    ps = [proposal("网站栏目增加政策解读", "大桥镇", submitted="2026-11-02"),
          proposal("网站栏目增加 政策解读。", "建兴镇", submitted="2026-11-01"),
          proposal("增加政策解读栏目", "县发改局"),
          proposal("网站栏目增加政策解读", "县教育局", submitted="2026-11-03")]
    items = aggregate(ps).categories["optimisation"]
    # ratio("网站栏目增加政策解读", "增加政策解读栏目") is 0.67: a reordering is not merged at 0.8
    assert [(i.title, i.units) for i in items] == [
        ("网站栏目增加政策解读", ("建兴镇", "大桥镇", "县教育局")), ("增加政策解读栏目", ("县发改局",))]
    # most common title wins although 建兴镇's wording came first
    assert items[0].titles == ("网站栏目增加 政策解读。", "网站栏目增加政策解读")
    assert [p.unit for p in items[0].proposals] == ["建兴镇", "大桥镇", "县教育局"]
    loose = aggregate(ps, similarity=0.6).categories["optimisation"]
    assert len(loose) == 1 and loose[0].unit_count == 4


def test_containment_merges_and_distinct_titles_stay_apart() -> None:
    ps = [proposal("政策解读", "甲"), proposal("网站栏目增加政策解读栏目", "乙"),
          proposal("首页增加无障碍浏览功能", "丙"), proposal("首页增加适老化浏览模式", "丁"),
          proposal("站内搜索支持拼音", "戊")]
    items = aggregate(ps).categories["optimisation"]
    assert sorted(i.units for i in items) == [("丁",), ("丙",), ("戊",), ("甲", "乙")]


def test_ties_earliest_title_priority_units_and_sorting() -> None:
    ps = [proposal("站内搜索支持拼音", "甲", priority="low", submitted="2026-11-05"),
          proposal("站内搜索支持拼音。", "乙", priority="high", submitted="2026-11-04"),
          proposal("站内搜索支持拼音", "乙", priority="low", submitted="2026-11-06"),  # same unit again
          proposal("统一留言办理时限", "丙", priority="medium"),
          proposal("信息公开年报模板", "丁", priority="high"),
          proposal("增加英文版首页", "戊", priority="high")]
    items = aggregate(ps).categories["optimisation"]
    search = items[0]
    assert (search.title, search.unit_count, len(search.proposals), search.priority) == ("站内搜索支持拼音", 2, 3, "high")
    # then one unit each: high before medium, then by title
    assert [i.title for i in items[1:]] == sorted(["信息公开年报模板", "增加英文版首页"]) + ["统一留言办理时限"]
    tie = aggregate([proposal("A栏目", "甲", submitted="2026-11-02"), proposal("a 栏目。", "乙", submitted="2026-11-01")])
    assert tie.categories["optimisation"][0].title == "a 栏目。"


def test_categories_in_fixed_order_and_result_independent_of_input_order() -> None:
    ps = [proposal("x", category=c) for c in ("other", "upgrade", "optimisation", "security")]
    assert list(aggregate(ps).categories) == ["security", "optimisation", "upgrade", "other"]
    assert list(aggregate([]).categories) == ["security", "optimisation", "upgrade", "other"]
    many = [proposal(t, u) for t in ("网站栏目增加政策解读", "增加政策解读栏目", "栏目增加政策解读。") for u in "甲乙"]
    first = aggregate(many)
    assert aggregate(list(reversed(many))).categories == first.categories


def test_similarity_must_be_a_fraction() -> None:
    for bad in (0, 1.5, -0.1):
        with pytest.raises(InputError, match="similarity"):
            aggregate([], similarity=bad)


def test_load_dir_keeps_good_forms_and_reports_bad_ones(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    shutil.copytree(FIXTURES, folder)
    bad = write(folder, "zz/bad.yaml", GOOD.replace("类别: 功能优化", "类别: 改进"))
    write(folder, "notes.txt", "not a form")
    proposals, errors = load_dir(folder)
    assert len(proposals) == len(list(FIXTURES.rglob("*.yml")))
    assert [(e.source, e.line) for e in errors] == [(str(bad), 3)]
    with pytest.raises(InputError, match="no proposal form"):
        load_dir(write(tmp_path, "empty/readme.txt", "").parent)
    with pytest.raises(InputError, match="no such folder"):
        load_dir(tmp_path / "missing")


def test_fixture_folder_aggregates_as_expected() -> None:
    proposals, errors = load_dir(FIXTURES)
    assert errors == []
    agg = aggregate(proposals)
    counts = {c: [(i.title, i.unit_count, len(i.proposals)) for i in items] for c, items in agg.categories.items()}
    assert counts == {
        "security": [("全站启用HTTPS并关闭TLS 1.0/1.1", 2, 2)],
        "optimisation": [("网站栏目增加政策解读", 2, 3), ("增加政策解读栏目", 1, 1)],
        "upgrade": [("内容管理系统升级到最新版本", 1, 1)],
        "other": [("每季度组织一次平台操作培训", 1, 1)],
    }
    assert agg.proposal_count == 8 and len(agg.units) == 7


# --- the documents --------------------------------------------------------------------------


@pytest.fixture
def fixture_agg() -> agg_mod.Aggregate:
    return dataclasses.replace(aggregate(load_dir(FIXTURES)[0]), generated=GENERATED)


def test_mask_phones() -> None:
    assert report.mask_phones("13812345678") == "138****5678"
    assert report.mask_phones("0817-5512345") == "0817-***2345"
    assert report.mask_phones("身份证11010519491231002X") == "身份证110105********002X"  # the toolkit's masker
    assert report.mask_phones("请致电13987654321或0817-55123456，+8613812345678") == \
        "请致电139****4321或0817-****3456，+86138****5678"
    assert report.mask_phones("文号2023年第13812号，共20231101条，2026-11-05") == "文号2023年第13812号，共20231101条，2026-11-05"


def test_markdown_document(fixture_agg: agg_mod.Aggregate) -> None:
    md = report.render_markdown(fixture_agg)
    assert md.startswith("# 南部县政府网站集约化平台 优化建议汇总\n")
    assert "2026-11-29T09:30:00+08:00" in md and "第二十八条" in md
    assert "| 安全 | 1 | 2 | 2 |" in md and "| 功能优化 | 2 | 4 | 3 |" in md and "| 合计 | 5 | 8 | 7 |" in md
    assert md.index("## 安全") < md.index("## 功能优化") < md.index("## 升级") < md.index("## 其他")
    assert "| 1 | 网站栏目增加政策解读 | 2 | 大桥镇人民政府、建兴镇人民政府 | 高 | 网站栏目增加 政策解读。 |" in md
    assert "> 建议平台在各单位网站统一增加“政策解读”栏目，与原文件关联。" in md
    assert "> 群众能读懂政策，减少电话咨询。" in md
    assert "138****5678" in md and "139****4321" in md and "0817-***2345" in md
    for full in ("13812345678", "13987654321", "0817-5512345", "13900001111", "0817-5599887"):
        assert full not in md
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", md)


def test_markdown_cells_are_escaped_and_english(fixture_agg: agg_mod.Aggregate) -> None:
    odd = proposal("启用A|B两套模板\n并行", "甲|乙", category="other", phone="0817-5512345")
    md = report.render_markdown(dataclasses.replace(aggregate([odd]), generated=GENERATED))
    assert "| 1 | 启用A\\|B两套模板<br>并行 | 1 | 甲\\|乙 | 中 |  |" in md
    en = report.render_markdown(fixture_agg, "en")
    assert en.startswith("# Nanbu County platform: aggregated proposals\n") and "Article 28" in en
    assert "| Security | 1 | 2 | 2 |" in en and "| Total | 5 | 8 | 7 |" in en and "| high |" in en
    assert "## Optimisation" in en and "138****5678" in en and "13812345678" not in en


def test_xlsx_read_back(fixture_agg: agg_mod.Aggregate, tmp_path: Path) -> None:
    out = tmp_path / "proposals.xlsx"
    report.write_xlsx(fixture_agg, out)
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["汇总", "明细"]
    summary, details = book["汇总"], book["明细"]
    rows = list(summary.iter_rows(values_only=True))
    assert rows[:6] == [("类别", "事项", "建议", "单位"), ("安全", 1, 2, 2), ("功能优化", 2, 4, 3), ("升级", 1, 1, 1),
                        ("其他", 1, 1, 1), ("合计", 5, 8, 7)]
    assert ("生成时间", "2026-11-29T09:30:00+08:00", None, None) in rows
    detail = list(details.iter_rows(values_only=True))
    header = detail[0]
    assert header[:8] == ("类别", "序号", "事项标题", "单位数", "事项优先级", "单位", "标题", "优先级")
    assert len(detail) == 1 + 8
    by_file = {row[header.index("来源文件")]: row for row in detail[1:]}
    jianxing = by_file["jianxing-zhengce-jiedu.yml"]
    assert jianxing[:8] == ("功能优化", 1, "网站栏目增加政策解读", 2, "高", "建兴镇人民政府", "网站栏目增加 政策解读。", "低")
    assert jianxing[header.index("电话")] == "0817-***2345"
    assert "139****4321" in jianxing[header.index("描述")]
    for sheet in (summary, details):
        assert sheet.freeze_panes == "A2" and all(cell.font.b for cell in sheet[1])
        assert sheet.column_dimensions["A"].width > 8
    assert not any(re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", str(v)) for row in detail for v in row)


def test_xlsx_text_is_never_a_formula_and_english_sheets(tmp_path: Path) -> None:
    agg = aggregate([proposal("=HYPERLINK(\"http://x\",\"点我\")", "甲")])
    report.write_xlsx(agg, tmp_path / "a.xlsx", "en")
    book = openpyxl.load_workbook(tmp_path / "a.xlsx")
    assert book.sheetnames == ["Summary", "Details"]
    cell = book["Details"]["C2"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    with pytest.raises(InputError, match="cannot write"):
        report.write_xlsx(agg, tmp_path / "missing" / "a.xlsx")


def test_proposal_new_never_replaces_a_form_without_force(tmp_path):
    from tests.test_cli import cli

    form = tmp_path / "form.yml"
    assert cli("proposal", "new", "--out", str(form)).returncode == 0
    form.write_text(form.read_text(encoding="utf-8") + "# 已填写\n", encoding="utf-8")
    filled = form.read_bytes()
    again = cli("proposal", "new", "--out", str(form), "--lang", "en")
    assert again.returncode == 2 and f"{form}: will not overwrite an existing form" in again.stderr
    assert form.read_bytes() == filled
    forced = cli("proposal", "new", "--out", str(form), "--force")
    assert forced.returncode == 0 and form.read_bytes() != filled
