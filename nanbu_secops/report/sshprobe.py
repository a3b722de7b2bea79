"""The ``ssh-probe`` report: per server, what it offers and which of it the policy calls weak."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nanbu_secops import __version__
from nanbu_secops.checks.sshd import CATEGORIES, PROBE_POLICY_SCHEMA, weak_algorithms
from nanbu_secops.collect.sshprobe import Probe
from nanbu_secops.report.i18n import say
from nanbu_secops.timeutil import now, rfc3339

POLICY_SCHEMA: dict[str, Any] = dict(PROBE_POLICY_SCHEMA)  # the variable ``ssh-probe`` reads
STATUS = {
    "zh": {"ok": "无弱算法", "weak": "有弱算法", "error": "无法连接"},
    "en": {"ok": "no weak algorithm", "weak": "WEAK ALGORITHMS", "error": "UNREACHABLE"},
}
STYLE = {"ok": "green", "weak": "bold red", "error": "bold yellow"}
CATEGORY = {
    "zh": {"kex": "密钥交换", "hostkey": "主机密钥", "ciphers": "加密算法", "macs": "MAC 算法"},
    "en": {"kex": "key exchange", "hostkey": "host key", "ciphers": "ciphers", "macs": "MACs"},
}
WORDS = {
    "zh": {"server": "服务器", "banner": "版本标识", "error": "错误", "category": "类别",
           "offered": "提供的算法（* 为弱算法）", "generated": "生成时间", "policy": "策略版本", "summary": "合计",
           "hosts": "台",
           "remediation": "整改建议：在 sshd 中去掉标 * 的算法"
                          "（playbooks/harden_terminals.yml，见 NS26-SSH-005）。"},
    "en": {"server": "Server", "banner": "Banner", "error": "Error", "category": "Category",
           "offered": "Offered (* = weak)", "generated": "Generated", "policy": "Policy", "summary": "Total",
           "hosts": "hosts",
           "remediation": "Remediation: remove the algorithms marked * from sshd "
                          "(playbooks/harden_terminals.yml, see NS26-SSH-005)."},
}


def build(probes: Sequence[Probe], weak: Mapping[str, Sequence[str]], policy_version: str,
          lang: str) -> dict[str, Any]:
    """The JSON document: each server's offer, the weak part of it, and a status (ok, weak, error)."""
    hosts = []
    for p in probes:
        found = weak_algorithms(p.algorithms, weak)
        status = "error" if p.error else "weak" if found else "ok"
        hosts.append({"target": p.endpoint.text, "host": p.endpoint.host, "port": p.endpoint.port,
                      "status": status, "banner": p.banner, "error": p.error, "strict_kex": p.strict_kex,
                      "algorithms": p.algorithms, "weak": found})
    summary = {s: sum(h["status"] == s for h in hosts) for s in STATUS["en"]}
    return {"tool": f"nanbu-secops {__version__}", "generated": rfc3339(now()), "policy_version": policy_version,
            "lang": lang, "summary": summary, "hosts": hosts}


def render_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def render_text(doc: Mapping[str, Any], lang: str, color: bool = False) -> str:
    words, status_words, category_words = WORDS[lang], STATUS[lang], CATEGORY[lang]
    out = io.StringIO()
    console = Console(file=out, width=200, no_color=not color, highlight=False, emoji=False)
    console.print(f"{words['generated']}: {doc['generated']}    {words['policy']}: {doc['policy_version']}",
                  markup=False)
    for host in doc["hosts"]:
        title = Text(f"{words['server']}: {host['target']}  ")
        title.append(status_words[host["status"]], style=STYLE[host["status"]])
        console.print(title)
        if host["banner"]:
            console.print(f"  {words['banner']}: {host['banner']}", markup=False)
        if host["error"]:
            console.print(f"  {words['error']}: {say(host['error'], lang)}", markup=False)
        if not host["algorithms"]:
            continue
        table = Table(expand=False)
        table.add_column(words["category"])
        table.add_column(words["offered"], overflow="fold")
        for category in CATEGORIES:
            weak = set(host["weak"].get(category, ()))
            offered = Text()
            for i, name in enumerate(host["algorithms"].get(category, ())):
                if i:
                    offered.append(", ")
                offered.append(f"*{name}" if name in weak else name, style="bold red" if name in weak else "")
            table.add_row(category_words[category], offered)
        console.print(table)
    counts = ", ".join(f"{status_words[s]} {n}" for s, n in doc["summary"].items())
    console.print(f"{words['summary']}: {len(doc['hosts'])} {words['hosts']} ({counts})", markup=False)
    if doc["summary"]["weak"]:
        console.print(words["remediation"], markup=False)
    return out.getvalue()
