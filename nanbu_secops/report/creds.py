"""Rotation status per host and account, as the operations staff read it after a run."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nanbu_secops.report import i18n

STATE = {
    "zh": {"verified": "已更换并验证", "rolled-back": "已回滚（沿用原口令）", "not-applied": "未应用（沿用原口令）",
           "found-in-use": "已生效但未验证", "applied": "已下发、未验证", "escrowed": "已托管、主机未更改",
           "no-entry": "无更换记录"},
    "en": {"verified": "rotated and verified", "rolled-back": "rolled back (previous credential kept)",
           "not-applied": "not applied (previous credential kept)", "found-in-use": "in use, never verified",
           "applied": "set, not verified", "escrowed": "escrowed, host not changed", "no-entry": "no rotation recorded"},
}
HEAD = {
    "zh": ("主机", "账号", "类型", "状态", "时间", "说明", "托管文件",
           "未确认的条目：账号的口令是该条目或其上一条，二者均可知；再次运行更换即可确认。"),
    "en": ("host", "account", "kind", "state", "since", "detail", "escrow entry",
           "Unconfirmed entries: the credential is this one or the one before, both known; run the rotation again to settle."),
}
STYLE = {"verified": "green", "rolled-back": "bold red", "not-applied": "yellow", "no-entry": "bold red"}


def render_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps({"rotations": rows}, ensure_ascii=False, indent=2) + "\n"


def render_text(rows: list[dict[str, Any]], lang: str) -> str:
    head, words = HEAD[lang], STATE[lang]
    out = io.StringIO()
    console = Console(file=out, width=200, no_color=True, highlight=False, emoji=False)
    table = Table(expand=False)
    for column in head[:7]:
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["host"], r["account"] or "-", i18n.credential_kind(r["kind"], lang) if r["kind"] else "-",
                      Text(words.get(r["state"], r["state"]), style=STYLE.get(r["state"], "bold yellow")),
                      r["since"] or "-", i18n.say(r["detail"] or "", lang), r["entry"] or "-")
    console.print(table)
    if any(not r["settled"] and r["state"] != "no-entry" for r in rows):
        console.print(head[7], markup=False)
    return out.getvalue()
