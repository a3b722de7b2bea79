"""The aggregated proposals as sent to the municipal office (article 28): Markdown and xlsx.

Both leave the county, so personal data is masked everywhere in them (article 15): the contact's
phone, and any mobile number, landline or resident ID a clerk typed into a title or description.
"""

from __future__ import annotations

import json
import re
from io import BytesIO
from pathlib import Path
from typing import Any

from nanbu_secops import timeutil
from nanbu_secops.errors import InputError
from nanbu_secops.fileutil import atomic_write
from nanbu_secops.mask import mask_text
from nanbu_secops.proposal.aggregate import Aggregate, Item
from nanbu_secops.proposal.form import CATEGORIES, Proposal
from nanbu_secops.report.labels import SEVERITY, article_label

ARTICLE = "28"
CATEGORY_LABELS = {"zh": CATEGORIES,
                   "en": {"security": "Security", "optimisation": "Optimisation", "upgrade": "Upgrade",
                          "other": "Other"}}
# A landline as the form asks for it: area code, hyphen, 7 or 8 digits.
_LANDLINE = re.compile(r"(?<![0-9])(0[0-9]{2,3}-)([0-9]{3,4})([0-9]{4})(?![0-9])")

WORDS = {
    "zh": {
        "heading": "南部县政府网站集约化平台 优化建议汇总", "generated": "生成时间", "basis": "依据",
        "regulation": "《南部县政府网站集约化平台管理办法》", "summary": "汇总", "details": "明细",
        "category": "类别", "items": "事项", "proposals": "建议", "units": "单位", "total": "合计",
        "title": "标题", "unit_count": "单位数", "unit_names": "提出单位", "priority": "优先级",
        "merged": "合并的其他标题", "description": "描述", "benefit": "预期效益", "contact": "联系人",
        "phone": "电话", "submitted": "提交日期", "item_title": "事项标题", "item_priority": "事项优先级",
        "no": "序号", "source": "来源文件", "similarity": "合并阈值", "sep": "、",
        "counts": "共收到建议 {proposals} 份，来自 {units} 个单位，合并为 {items} 项。",
        "rule": "标题规范化（全半角、大小写、空格、标点）后相似度不低于 {similarity} 或相互包含的，合并为一项。",
        "masked": "电话号码和身份证号已隐去中间几位（第十五条）。",
    },
    "en": {
        "heading": "Nanbu County platform: aggregated proposals", "generated": "Generated", "basis": "Basis",
        "regulation": "Nanbu County government-website platform regulation, ", "summary": "Summary",
        "details": "Details", "category": "Category", "items": "Items", "proposals": "Proposals", "units": "Units",
        "total": "Total", "title": "Title", "unit_count": "Units", "unit_names": "Proposed by",
        "priority": "Priority", "merged": "Other titles merged", "description": "Description",
        "benefit": "Expected benefit", "contact": "Contact", "phone": "Phone", "submitted": "Submitted",
        "item_title": "Item", "item_priority": "Item priority", "no": "No.", "source": "Source file",
        "similarity": "Merge threshold", "sep": ", ",
        "counts": "{proposals} proposals from {units} units, merged into {items} items.",
        "rule": "Titles whose similarity after normalising (width, case, spaces, punctuation) is at least "
                "{similarity}, or where one contains the other, are merged into one item.",
        "masked": "The middle digits of phone and ID numbers are hidden (article 15).",
    },
}


def mask_phones(text: str) -> str:
    """Mobile numbers and resident IDs masked as everywhere in the toolkit (138****5678), and
    landlines too, which only forms carry: 0817-5512345 -> 0817-***2345 (the area code is public)."""
    masked, _ = mask_text(text)
    return _LANDLINE.sub(lambda found: found[1] + "*" * len(found[2]) + found[3], masked)


def _cell(text: str) -> str:
    """A Markdown table cell: ``|`` escaped, line breaks as <br>."""
    return text.replace("|", "\\|").replace("\r\n", "\n").replace("\n", "<br>")


def _quote(text: str) -> str:
    """Free text as a Markdown block quote, so its line breaks and markup stay inside it."""
    return "\n".join(f"> {line}".rstrip() for line in text.splitlines())


def _row(cells: list[str | int]) -> str:
    return "| " + " | ".join(_cell(str(c)) for c in cells) + " |"


def _summary_rows(agg: Aggregate, lang: str) -> list[list[str | int]]:
    """Per category, then the total: items, proposals, distinct units."""
    rows: list[list[str | int]] = []
    for category, items in agg.categories.items():
        units = {unit for item in items for unit in item.units}
        rows.append([CATEGORY_LABELS[lang][category], len(items), sum(len(i.proposals) for i in items), len(units)])
    rows.append([WORDS[lang]["total"], agg.item_count, agg.proposal_count, len(agg.units)])
    return rows


def _proposal_markdown(p: Proposal, lang: str) -> list[str]:
    w = WORDS[lang]
    colon = "：" if lang == "zh" else ": "
    about = w["sep"].join([SEVERITY[lang][p.priority], p.submitted.isoformat(),
                           f"{w['contact']}{colon}{p.contact.name} {p.contact.phone}"])
    return [f"#### {p.unit}（{about}）" if lang == "zh" else f"#### {p.unit} ({about})", "",
            f"**{w['title']}**{colon}{p.title}", "",
            f"**{w['description']}**{colon.rstrip()}", "", _quote(p.description), "",
            f"**{w['benefit']}**{colon.rstrip()}", "", _quote(p.expected_benefit), ""]


def _category_markdown(items: tuple[Item, ...], lang: str) -> list[str]:
    w = WORDS[lang]
    lines = [_row([w["no"], w["title"], w["unit_count"], w["unit_names"], w["priority"], w["merged"]]),
             "|---:|---|---:|---|---|---|"]
    for n, item in enumerate(items, 1):
        others = [t for t in item.titles if t != item.title]
        lines.append(_row([n, item.title, item.unit_count, w["sep"].join(item.units), SEVERITY[lang][item.priority],
                           "\n".join(others)]))
    lines.append("")
    for n, item in enumerate(items, 1):
        lines += [f"### {n}. {item.title}", ""]
        for proposal in item.proposals:
            lines += _proposal_markdown(proposal, lang)
    return lines


def render_markdown(agg: Aggregate, lang: str = "zh") -> str:
    """The document for the municipal office: summary table, then each category's items in detail.

    Masking is applied to the finished text, so no part of it (cell, heading, quote) can miss it.
    """
    w = WORDS[lang]
    colon = "：" if lang == "zh" else ": "
    lines = [f"# {w['heading']}", "",
             f"- {w['generated']}{colon}{timeutil.rfc3339(agg.generated)}",
             f"- {w['basis']}{colon}{w['regulation']}{article_label(ARTICLE, lang)}",
             f"- {w['counts'].format(proposals=agg.proposal_count, units=len(agg.units), items=agg.item_count)}",
             f"- {w['rule'].format(similarity=agg.similarity)}",
             f"- {w['masked']}", "",
             f"## {w['summary']}", "",
             _row([w["category"], w["items"], w["proposals"], w["units"]]), "|---|---:|---:|---:|"]
    lines += [_row(row) for row in _summary_rows(agg, lang)]
    lines.append("")
    for category, items in agg.categories.items():
        if items:
            lines += [f"## {CATEGORY_LABELS[lang][category]}", ""] + _category_markdown(items, lang)
    return mask_phones("\n".join(lines).rstrip("\n") + "\n")


def render_xlsx(agg: Aggregate, lang: str = "zh") -> bytes:
    """Sheet 汇总 (summary, with when and how it was made) and sheet 明细 (one row per proposal)."""
    from openpyxl import Workbook

    from nanbu_secops.report import sheet

    w = WORDS[lang]

    def table(page: Any, header: list[str], rows: list[list[str | int]], widths: list[int]) -> None:
        sheet.table(page, header, [[mask_phones(c) if isinstance(c, str) else c for c in row] for row in rows], widths)

    book = Workbook()
    summary = book.active
    summary.title = w["summary"]
    table(summary, [w["category"], w["items"], w["proposals"], w["units"]], _summary_rows(agg, lang), [14, 10, 10, 10])
    summary.append([])
    summary.append([w["generated"], timeutil.rfc3339(agg.generated)])
    summary.append([w["basis"], w["regulation"] + article_label(ARTICLE, lang)])
    summary.append([w["similarity"], agg.similarity])

    rows: list[list[str | int]] = []
    for category, items in agg.categories.items():
        for n, item in enumerate(items, 1):
            for p in item.proposals:
                rows.append([CATEGORY_LABELS[lang][category], n, item.title, item.unit_count,
                             SEVERITY[lang][item.priority], p.unit, p.title, SEVERITY[lang][p.priority],
                             p.description, p.expected_benefit, p.contact.name, p.contact.phone,
                             p.submitted.isoformat(), Path(p.source).name])
    table(book.create_sheet(w["details"]),
          [w["category"], w["no"], w["item_title"], w["unit_count"], w["item_priority"], w["units"], w["title"],
           w["priority"], w["description"], w["benefit"], w["contact"], w["phone"], w["submitted"], w["source"]],
          rows, [10, 6, 36, 8, 10, 18, 36, 8, 60, 50, 10, 14, 12, 24])
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def write_xlsx(agg: Aggregate, path: Path, lang: str = "zh") -> None:
    """Write :func:`render_xlsx` to ``path`` atomically (mode 0600), as ``--output`` files are."""
    try:
        atomic_write(path, render_xlsx(agg, lang))
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", path) from None


def aggregate_json(agg: Aggregate) -> dict:
    """The aggregate for programs (``proposal aggregate --format json`` and a proposal bundle's
    report.json); it leaves the county too, so phones and IDs are masked as in the documents."""
    def proposal(p: Proposal) -> dict:
        doc = p.as_json()
        return json.loads(mask_phones(json.dumps(doc, ensure_ascii=False)))

    return {
        "article": ARTICLE, "generated": timeutil.rfc3339(agg.generated), "similarity": agg.similarity,
        "proposals": agg.proposal_count, "units": list(agg.units),
        "categories": [{"category": category, "label": CATEGORY_LABELS["zh"][category],
                        "items": [{"title": mask_phones(item.title), "titles": [mask_phones(t) for t in item.titles],
                                   "units": list(item.units), "unit_count": item.unit_count,
                                   "priority": item.priority, "proposals": [proposal(p) for p in item.proposals]}
                                  for item in items]}
                       for category, items in agg.categories.items()],
    }
