"""Words of the reports in both languages, and article numbers as the regulation writes them."""

from __future__ import annotations

import re

_DIGITS = "零一二三四五六七八九"

STATUS = {
    "zh": {"pass": "通过", "fail": "不通过", "error": "错误", "skip": "跳过"},
    "en": {"pass": "pass", "fail": "FAIL", "error": "ERROR", "skip": "skip"},
}
SEVERITY = {
    "zh": {"low": "低", "medium": "中", "high": "高", "critical": "严重"},
    "en": {"low": "low", "medium": "medium", "high": "high", "critical": "critical"},
}
WORDS = {
    "zh": {"control": "控制项", "status": "结果", "severity": "级别", "title": "检查内容", "evidence": "依据",
           "remediation": "整改建议", "host": "主机", "generated": "生成时间", "policy": "策略版本",
           "as_of": "基准日期", "root": "检查根目录", "summary": "合计", "items": "项"},
    "en": {"control": "Control", "status": "Result", "severity": "Severity", "title": "Check", "evidence": "Evidence",
           "remediation": "Remediation", "host": "Host", "generated": "Generated", "policy": "Policy",
           "as_of": "As of", "root": "Root", "summary": "Total", "items": "controls"},
}


def zh_number(n: int) -> str:
    """1..999 in Chinese numerals as article numbers are written: 9 九, 26 二十六, 105 一百零五."""
    if n < 10:
        return _DIGITS[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return ("" if tens == 1 else _DIGITS[tens]) + "十" + (_DIGITS[ones] if ones else "")
    hundreds, rest = divmod(n, 100)
    tail = "" if rest == 0 else ("零" + _DIGITS[rest] if rest < 10 else
                                 (_DIGITS[rest // 10] + "十" + (_DIGITS[rest % 10] if rest % 10 else "")))
    return _DIGITS[hundreds] + "百" + tail


def article_label(article: str, lang: str) -> str:
    """``26`` -> 第二十六条 / Article 26; ``9(2)`` -> 第九条第（二）项 / Article 9(2)."""
    found = re.fullmatch(r"(\d+)(?:\((\d+)\))?", article)
    if lang == "en" or not found:
        return f"Article {article}" if lang == "en" else f"第{article}条"
    text = f"第{zh_number(int(found.group(1)))}条"
    if found.group(2):
        text += f"第（{zh_number(int(found.group(2)))}）项"
    return text


def article_key(article: str) -> tuple[int, int]:
    """Sort articles numerically: 9(2) before 26."""
    numbers = [int(n) for n in re.findall(r"\d+", article)] + [0, 0]
    return numbers[0], numbers[1]
