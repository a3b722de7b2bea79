"""The proposal form: one YAML file per proposal, filled in by a unit's clerk.

Keys are Chinese, as the clerk reads them on the blank form (``proposal new``); the English
names are accepted too, and so are the English words for category and priority. A form is read
from the composed YAML nodes, never from constructed values: the clerk's text is taken as
written (a mobile number typed without quotes is not turned into an integer, ``标题: 是`` stays
text), and every problem can name its line. All problems of a form are collected, so a clerk
fixes them in one round instead of one per run.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nanbu_secops import timeutil
from nanbu_secops.errors import InputError
from nanbu_secops.yamlfile import read_text, yaml_error

# Category codes in the order reports list them: security first, since a weakness of the shared
# platform affects every unit on it; "other" last.
CATEGORIES = {"security": "安全", "optimisation": "功能优化", "upgrade": "升级", "other": "其他"}
PRIORITIES = {"high": "高", "medium": "中", "low": "低"}  # highest first
TITLE_MAX = 100
PHONE = re.compile(r"1[3-9]\d{9}|0\d{2,3}-\d{7,8}")  # mainland mobile, or area code - landline

# field: the keys that name it (Chinese as printed on the form, then English)
FIELDS = {
    "unit": ("单位", "unit"),
    "title": ("标题", "title"),
    "category": ("类别", "category"),
    "description": ("描述", "description"),
    "expected_benefit": ("预期效益", "expected_benefit"),
    "priority": ("优先级", "priority"),
    "contact": ("联系人", "contact"),
    "submitted": ("提交日期", "submitted"),
}
OPTIONAL = frozenset({"submitted"})
CONTACT_FIELDS = {"name": ("姓名", "name"), "phone": ("电话", "phone")}

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Node = tuple[yaml.Node, yaml.Node]  # (key, value)


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str  # as written: 13812345678 or 0817-5512345


@dataclass(frozen=True)
class Proposal:
    unit: str
    title: str
    category: str  # a key of CATEGORIES
    description: str
    expected_benefit: str
    priority: str  # a key of PRIORITIES
    contact: Contact
    submitted: dt.date
    source: str  # the form's path

    def as_json(self) -> dict[str, Any]:
        """Plain values; the phone is in full (masking is for what leaves the county, see the report)."""
        return {"unit": self.unit, "title": self.title, "category": self.category,
                "description": self.description, "expected_benefit": self.expected_benefit,
                "priority": self.priority, "contact": {"name": self.contact.name, "phone": self.contact.phone},
                "submitted": self.submitted.isoformat(), "source": self.source}


# accepted words -> code: the Chinese shown on the form, the English code (any case), and the US
# spelling, as likely from an English-speaking clerk
CATEGORY_WORDS = {zh: code for code, zh in CATEGORIES.items()} | {code: code for code in CATEGORIES} | {
    "optimization": "optimisation"}
PRIORITY_WORDS = {zh: code for code, zh in PRIORITIES.items()} | {code: code for code in PRIORITIES}

_TEMPLATE = {
    "zh": """\
# 南部县政府网站集约化平台 优化建议表（《南部县政府网站集约化平台管理办法》第二十八条）
# 每条建议填一个文件。填好后检查：nanbu-secops proposal validate 本文件
# 多行文字写在“|”下一行起，每行前空两格。

# 单位：提出建议的乡镇或部门全称
单位:
# 标题：一句话概括建议，不超过100字
标题:
# 类别：功能优化、升级、安全、其他，四选一
类别:
# 描述：现状、存在的问题和建议的做法
描述: |

# 预期效益：采纳后对群众、本单位或平台的好处
预期效益: |

# 优先级：高、中、低
优先级: 中
# 联系人：姓名和电话（手机如13812345678，座机如0817-5512345）；报送市级时电话中间几位隐去
联系人:
  姓名:
  电话:
# 提交日期：YYYY-MM-DD，不填为当天
# 提交日期: 2026-01-31
""",
    "en": """\
# Nanbu County government-website platform: optimisation proposal (article 28 of the platform regulation)
# One proposal per file. Check it with: nanbu-secops proposal validate THIS_FILE
# Multi-line text goes on the lines after "|", each indented by two spaces.

# unit: full name of the township or department making the proposal
unit:
# title: the proposal in one sentence, at most 100 characters
title:
# category: one of optimisation, upgrade, security, other
category:
# description: the current situation, the problem, and what should be done
description: |

# expected_benefit: what it brings to the public, your unit or the platform
expected_benefit: |

# priority: high, medium or low
priority: medium
# contact: name and phone (mobile such as 13812345678, landline such as 0817-5512345);
# the middle digits are hidden in what is sent to the municipal office
contact:
  name:
  phone:
# submitted: YYYY-MM-DD, today when left out
# submitted: 2026-01-31
""",
}


def template(lang: str = "zh") -> str:
    """The blank form, each field explained by the comment above it (what ``proposal new`` gives)."""
    return _TEMPLATE[lang]


class _Form:
    """One form being read: every problem is recorded with its line, and reading goes on."""

    def __init__(self, path: Path):
        self.path = path
        self.errors: list[InputError] = []

    def error(self, node: yaml.Node | None, message: str) -> None:
        self.errors.append(InputError(message, self.path, node.start_mark.line + 1 if node is not None else None))

    def fields(self, node: yaml.Node, accepted: dict[str, tuple[str, ...]], what: str,
               anchor: yaml.Node | None, optional: frozenset[str] = frozenset()) -> dict[str, _Node]:
        """The mapping's entries by field name; unknown, repeated and missing keys are errors.

        ``anchor`` (the key holding this mapping) is where a missing key or a value that is no
        mapping is reported; None for the whole form, where a missing key has no line.
        """
        if not isinstance(node, yaml.MappingNode):
            self.error(anchor or node, f"{what} must be 'key: value' lines")
            return {}
        names = {key.lower(): name for name, keys in accepted.items() for key in keys}
        found: dict[str, _Node] = {}
        for key, value in node.value:
            written = str(key.value).strip() if isinstance(key, yaml.ScalarNode) else ""
            name = names.get(written.lower())
            if name is None:
                allowed = "、".join(keys[0] for keys in accepted.values())
                self.error(key, f"unknown key {written!r} in {what} (allowed: {allowed}, or their English names)")
            elif name in found:
                first = found[name][0]
                self.error(key, f"{written} is given twice (also as {first.value} on line {first.start_mark.line + 1})")
            else:
                found[name] = (key, value)
        for name, keys in accepted.items():
            if name not in found and name not in optional:
                self.error(anchor, f"missing {keys[0]} ({keys[1]}) in {what}")
        return found

    def text(self, entry: _Node, one_line: bool = False) -> str | None:
        """The value as written, stripped; ``one_line`` also folds line breaks and runs of spaces."""
        key, node = entry
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, f"{key.value} must be text, not a list or mapping")
            return None
        value = "" if node.tag.endswith(":null") else node.value.strip()
        if one_line:
            value = " ".join(value.split())
        if not value:
            self.error(key, f"{key.value} is empty")
            return None
        return value

    def choice(self, entry: _Node, words: dict[str, str], table: dict[str, str]) -> str | None:
        value = self.text(entry)
        if value is None:
            return None
        code = words.get(value.lower())
        if code is None:
            allowed = ", ".join(f"{zh}/{code}" for code, zh in table.items())
            self.error(entry[1], f"{entry[0].value}: {value!r} is not allowed (one of {allowed})")
        return code

    def checked(self, entry: _Node, test: Callable[[str], str | None], one_line: bool = True) -> str | None:
        """The text when ``test`` returns no problem, else record the problem at the value."""
        value = self.text(entry, one_line)
        problem = test(value) if value is not None else None
        if problem:
            self.error(entry[1], f"{entry[0].value}: {problem}")
            return None
        return value


def _title_problem(title: str) -> str | None:
    return f"{len(title)} characters, at most {TITLE_MAX}" if len(title) > TITLE_MAX else None


def _phone_problem(phone: str) -> str | None:
    if PHONE.fullmatch(phone):
        return None
    return f"{phone!r} is neither a mobile number (11 digits, e.g. 13812345678) nor a landline (e.g. 0817-5512345)"


def _date_problem(text: str) -> str | None:
    try:
        timeutil.parse_date(text)
    except ValueError as exc:
        return str(exc)
    return None


def read_form(path: Path) -> tuple[Proposal | None, list[InputError]]:
    """The proposal, or None with every problem found in the file."""
    try:
        root = yaml.compose(read_text(path), Loader=_Loader)
    except InputError as exc:
        return None, [exc]
    except yaml.YAMLError as exc:
        return None, [yaml_error(exc, path)]
    if root is None:
        return None, [InputError("the form is empty", path)]
    form = _Form(path)
    top = form.fields(root, FIELDS, "the form", None, OPTIONAL)
    contact = top.get("contact")
    person = form.fields(contact[1], CONTACT_FIELDS, contact[0].value, contact[0]) if contact else {}
    values: dict[str, Any] = {
        "unit": form.text(top["unit"], one_line=True) if "unit" in top else None,
        "title": form.checked(top["title"], _title_problem) if "title" in top else None,
        "category": form.choice(top["category"], CATEGORY_WORDS, CATEGORIES) if "category" in top else None,
        "description": form.text(top["description"]) if "description" in top else None,
        "expected_benefit": form.text(top["expected_benefit"]) if "expected_benefit" in top else None,
        "priority": form.choice(top["priority"], PRIORITY_WORDS, PRIORITIES) if "priority" in top else None,
    }
    name = form.text(person["name"], one_line=True) if "name" in person else None
    phone = form.checked(person["phone"], _phone_problem) if "phone" in person else None
    submitted = form.checked(top["submitted"], _date_problem) if "submitted" in top else None
    if form.errors:
        return None, sorted(form.errors, key=lambda e: e.line or 0)
    return Proposal(**values, contact=Contact(name, phone),
                    submitted=timeutil.parse_date(submitted) if submitted else timeutil.today(), source=str(path)), []


def load(path: Path) -> Proposal:
    """Read one form; the first problem (by line) is raised as InputError(message, path, line)."""
    proposal, errors = read_form(path)
    if errors:
        raise errors[0]
    assert proposal is not None
    return proposal


def validate(paths: list[Path]) -> list[InputError]:
    """Every problem of every form, in file order then line order (empty: all good)."""
    return [error for path in paths for error in read_form(path)[1]]

