"""Rendering for incident bundles: the report form packed inside (report.json, report.md), and
what ``verify``, ``open`` and ``forward`` found, for the security officer."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from rich.text import Text

from nanbu_secops.bundle.package import Verification
from nanbu_secops.incident.form import LABELS, IncidentForm
from nanbu_secops.report.labels import STATUS as STATUS_WORDS
from nanbu_secops.report.labels import article_label


def incident_json(form: IncidentForm, evidence: list[dict[str, Any]], findings: list[dict[str, str]]) -> dict[str, Any]:
    return {"kind": "incident", "article": "27", "form": form.as_json(), "evidence": evidence, "findings": findings}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def incident_markdown(form: IncidentForm, evidence: list[dict[str, Any]], findings: list[dict[str, str]],
                      lang: str = "zh") -> str:
    """The report an officer reads first: the form, what failed in the terminal's own checks,
    and the evidence files."""
    zh = lang == "zh"
    col = 0 if zh else 1
    out = [f"# {'网络安全事件报告' if zh else 'Security incident report'}: {form.title}", "",
           f"{'依据' if zh else 'Under'} {article_label('27', lang)}", "",
           f"| {'项目' if zh else 'Field'} | {'内容' if zh else 'Value'} |", "|---|---|"]
    blank = "（未填写）" if zh else "(not given)"
    out += [f"| {LABELS[key][col]} | {_cell(value) or blank} |" for key, value in form.fields().items()]
    out += ["", f"## {'终端检查未通过项' if zh else 'Failed terminal checks'}", ""]
    if findings:
        out += [f"| {'控制项' if zh else 'Control'} | {'条款' if zh else 'Article'} | {'状态' if zh else 'Status'} | "
                f"{'说明' if zh else 'Title'} |", "|---|---|---|---|"]
        out += [f"| {f['id']} | {f['article']} | {STATUS_WORDS[lang].get(f['status'], f['status'])} | "
                f"{_cell(f['title'])} |" for f in findings]
    else:
        out.append("无" if zh else "None")
    out += ["", f"## {'证据文件' if zh else 'Evidence files'}", "",
            f"| {'文件' if zh else 'File'} | {'字节' if zh else 'Bytes'} |", "|---|---|"]
    out += [f"| {_cell(e['path'])} | {e['size']} |" for e in evidence]
    out += ["", ("文件的哈希与签名见 manifest.json、SHA256SUMS 与 custody.jsonl。" if zh else
                 "Hashes and signatures: manifest.json, SHA256SUMS and custody.jsonl."), ""]
    return "\n".join(out)


def findings_of(check_results: bytes) -> list[dict[str, str]]:
    """Failed and error controls from ``evidence/check/results.json`` (``check --format json``)."""
    try:
        doc = json.loads(check_results)
    except ValueError:
        return []
    return [{"id": r.get("control", ""), "article": str(r.get("article", "")), "status": r.get("status", ""),
             "title": r.get("title", "")}
            for r in doc.get("results", []) if r.get("status") in ("fail", "error")]


# ------------------------------------------------------------------------------ verification

STATUS = {True: ("通过", "ok", "green"), False: ("失败", "FAILED", "red"), None: ("未检查", "not checked", "yellow")}
CHECK_NAMES_ZH = {"outer signature": "外层签名", "contents": "包内内容", "decryption": "解密", "archive": "归档结构",
                  "manifest": "清单", "manifest signature": "清单签名", "files": "文件哈希", "SHA256SUMS": "SHA256SUMS",
                  "custody chain": "保管链", "signers trusted": "签名者可信", "extraction": "解包", "forwarding": "转发"}


def verification_json(result: Verification) -> str:
    return json.dumps(result.as_json(), ensure_ascii=False, indent=2) + "\n"


def verification_text(result: Verification, lang: str = "zh", color: bool = False) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=120, highlight=False)
    zh = lang == "zh"
    console.print(Text(f"{'数据包' if zh else 'Bundle'}: {result.path}", style="bold"))
    if result.manifest is not None:
        m = result.manifest
        console.print(f"  id {m.id}  {m.kind}  {'单位' if zh else 'unit'} {m.unit}  {m.created}  "
                      f"{len(m.files)} {'个文件' if zh else 'files'}"
                      + (f"  {'已脱敏' if zh else 'PII masked'}" if m.masking.get("applied") else ""))
    for check in result.checks:
        word_zh, word_en, style = STATUS[check.ok]
        line = Text(f"  {word_zh if zh else word_en:<12}", style=style)
        line.append(f"{CHECK_NAMES_ZH.get(check.name, check.name)}：{check.detail_zh or check.detail}" if zh
                    else f"{check.name}: {check.detail}")
        console.print(line)
    if not result.ok:
        verdict = "校验失败" if zh else "VERIFICATION FAILED"
    elif result.signer_checked:
        verdict = "全部通过" if zh else "all checks hold"
    else:
        verdict = ("完整性成立，但未核对签名者（--no-trust）：不能据此相信是谁制作的" if zh else
                   "integrity holds, but the SIGNER WAS NOT CHECKED (--no-trust): this says nothing about who made it")
    style = "bold red" if not result.ok else "bold green" if result.signer_checked else "bold yellow"
    console.print(Text(verdict, style=style))
    return buffer.getvalue()
