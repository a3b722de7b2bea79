"""``--help``, argparse's own messages and the CLI's one-line errors in the language asked.

The language of a run is chosen before parsing (:func:`choose_lang`): the last ``--lang zh|en``
on the command line, else the environment variable ``NANBU_SECOPS_LANG``, else Chinese. It has to
be known before argparse runs because ``--help`` and argument errors are printed during parsing.

cli.py keeps the English help where each argument is declared; the Chinese lives here as data,
keyed by the argument's place in the command tree (``"accounts audit --roster"``, a positional by
its dest, a subcommand by its path, ``""`` for the program's description). :func:`localize` swaps it
in for ``zh`` and gives every command a ``--lang`` option, so every command's messages can follow it.
tests/test_i18n.py walks the parser and fails on any argument with English help and no Chinese,
and on any key here that names no argument.

argparse's own words ("usage:", "options:", "the following arguments are required: ...") come
through the module-level ``gettext`` functions argparse calls at the moment it formats them, so
:func:`speaking` installs a catalogue lookup there for the duration of a run (the CLI is one
thread) and restores gettext afterwards.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

LANGS = ("zh", "en")
ENV = "NANBU_SECOPS_LANG"

# argparse's messages (CPython 3.11's msgids) and the CLI's own frame words: msgid -> Chinese.
ARGPARSE_ZH: dict[str, str] = {
    "usage: ": "用法：",
    "options": "选项",
    "positional arguments": "位置参数",
    "show this help message and exit": "显示本帮助并退出",
    "show program's version number and exit": "显示版本号并退出",
    "the following arguments are required: %s": "缺少必需的参数：%s",
    "invalid choice: %(value)r (choose from %(choices)s)": "无效的取值：%(value)r（可选：%(choices)s）",
    "invalid %(type)s value: %(value)r": "无效的 %(type)s 取值：%(value)r",
    "unrecognized arguments: %s": "无法识别的参数：%s",
    "argument %(argument_name)s: %(message)s": "参数 %(argument_name)s：%(message)s",
    "expected one argument": "需要一个值",
    "expected at most one argument": "最多需要一个值",
    "expected at least one argument": "至少需要一个值",
    "expected %s argument": "需要 %s 个值",
    "expected %s arguments": "需要 %s 个值",
    "not allowed with argument %s": "不能与参数 %s 同时使用",
    "one of the arguments %s is required": "必须给出参数 %s 之一",
    "ignored explicit argument %r": "多余的取值 %r",
    "ambiguous option: %(option)s could match %(matches)s": "选项不明确：%(option)s 可能是 %(matches)s",
    "unexpected option string: %s": "意外的选项：%s",
    "unknown parser %(parser_name)r (choices: %(choices)s)": "未知的子命令 %(parser_name)r（可选：%(choices)s）",
    "%(prog)s: error: %(message)s\n": "%(prog)s：错误：%(message)s\n",
    # the CLI's frame around a message (cli.py and :meth:`Parser.error`)
    "error": "错误", "skipped": "已跳过",
    "see %s --help": "用法见 %s --help",
}

_POLICY = "策略文件或文件夹（默认：已安装的策略）"
_OUTPUT = "把报告写入 FILE，而不是标准输出"
_OUTPUT_XLSX = "把报告写入 FILE（xlsx 格式必须给出）"
_RESOLVER = "所有 DNS 查询都发往此服务器（ADDR、ADDR:PORT 或 [V6]:PORT）"
_CA = "另外信任此 CA（PEM）用于 TLS"
_CONCURRENCY = "同时检查的链接数（默认：16）"
_TRUST = "你信任的签名者的 OpenSSH allowed-signers 文件（可重复；必须给出此项或 --no-trust）"
_NO_TRUST = "只检查完整性：按包内自带的公钥验证签名，不核对签名者"
_SIGNER = "签名所用的主体名（默认：密钥 .pub 文件的注释）"
_AGE_ID = "age 身份文件（.agekey）"

# The Chinese help of every argument and command that has English help in cli.py.
HELP_ZH: dict[str, str] = {
    "": "南部县政府网站集约化平台 安全运维工具",
    " --version": "显示版本号并退出",
    " --lang": "输出语言：zh（中文，默认）或 en（英文）；也可用环境变量 NANBU_SECOPS_LANG 设定",
    "check": "按策略审计本机或某个根目录树",
    "check --root": "审计 DIR 下的文件系统（chroot 或挂载的镜像）",
    "check --policy": _POLICY,
    "check --only": "只运行这些控制项或条款（可重复，逗号分隔）",
    "check --as-of": "按此日期判断时长，YYYY-MM-DD（默认：今天，北京时间）",
    "check --output": _OUTPUT,
    "policy": "策略文件",
    "policy validate": "按模式校验策略文件",
    "policy validate path": _POLICY,
    "accounts": "平台账号与本地账号管理（第二十六条）",
    "accounts audit": "休眠、共用和非在职人员的平台账号",
    "accounts audit --accounts": "平台账号导出文件（.csv 或 .xlsx）",
    "accounts audit --logins": "平台登录日志导出文件（.csv 或 .xlsx）",
    "accounts audit --roster": "人员花名册（.csv 或 .xlsx）",
    "accounts audit --mapping": "列名对照文件（YAML），用于表头不同的导出文件",
    "accounts audit --as-of": "审计日期，YYYY-MM-DD（默认：今天，北京时间）",
    "accounts audit --policy": _POLICY,
    "accounts audit --strict": "遇到格式错误的行即停止审计（默认：跳过该行）",
    "accounts audit --output": _OUTPUT_XLSX,
    "accounts reinstate": "登记一次账号恢复及单位的书面说明",
    "accounts reinstate --explanation": "单位的书面说明（UTF-8 文本文件）",
    "accounts reinstate --approved-by": "批准恢复账号的人",
    "accounts reinstate --host": "终端名称，用于本地账号（平台账号不填）",
    "accounts reinstate --unit": "持有该账号的单位",
    "accounts reinstate --register": "登记簿文件（默认：registers/reinstatements.jsonl）",
    "accounts register": "账号恢复登记簿",
    "accounts register verify": "检查登记簿是否被修改或删除",
    "accounts register verify --missing-ok": "从未建立的登记簿（无文件、无 .head）视为 0 条、正常（否则退出码 2）",
    "accounts register find": "查找某账号和/或某终端的登记（没有时退出码 1）",
    "accounts register find --within-days": "只列出 --as-of 之前 N 天内登记的条目（0：仅当天）",
    "accounts register find --as-of": "--within-days 往回数的起点日期，YYYY-MM-DD（默认：今天）",
    "ssh-probe": "列出 SSH 服务器提供的算法并标出弱算法（第二十六条）",
    "ssh-probe targets": "要探测的服务器；IPv6 写作 [ADDRESS]:PORT",
    "ssh-probe --timeout": "每台服务器的等待秒数（默认：10）",
    "ssh-probe --policy": "含 ssh_weak_algorithms 的策略文件或文件夹（默认：已安装的策略）",
    "ssh-probe --output": _OUTPUT,
    "creds": "带托管的凭据更换（第二十六条）",
    "creds password": "生成新口令并托管；输出含口令的 JSON（供 playbook 使用）",
    "creds ssh-key": "生成新的运维 SSH 密钥，托管并存入密钥文件夹",
    "creds ssh-key --key-dir": "控制端的密钥文件夹",
    "creds mark": "记录托管凭据的处理结果",
    "creds mark entry": "托管条目的 .age 文件",
    "creds verify": "用某凭据经 SSH 登录（登录成功时退出码 0）",
    "creds verify --address": "要连接的地址",
    "creds verify --known-hosts": "用于核对主机公钥的 known_hosts 文件",
    "creds verify --host-key-alias": "主机公钥登记所用的名称（默认：地址）",
    "creds verify --password-stdin": "从标准输入读取口令",
    "creds verify --key": "私钥文件",
    "creds verify --entry": "此凭据的托管条目：先记为已应用，登录成功后记为已验证",
    "creds activate-key": "把密钥文件夹中的某个密钥设为 Ansible 使用的密钥",
    "creds status": "各主机最近一次更换的状态（有未确认或失败的时退出码 1）",
    "creds status --host": "只看这些主机（可重复）",
    "creds escrow": "托管库，供单位账号管理员使用",
    "creds escrow open": "用你的 age 身份解密一份托管凭据",
    "creds escrow open entry": "托管条目的 .age 文件",
    "creds escrow open --identity": "age 身份文件或 OpenSSH 私钥",
    "creds escrow open --output": "把口令或密钥写入 FILE（权限 0600），而不是标准输出",
    "creds password --policy": _POLICY,
    "creds password --terminal-stdin": "从标准输入读取终端状态（JSON）：current_hash（未确认的条目据此核定）、"
                                       "pam_path、pam_text 和 login_defs（哈希方法）",
    "av": "防病毒状态与查杀（第二十七条）",
    "av status": "给出一个判定：已防护、病毒库过期、未运行、未安装或无法核实",
    "av status --root": "判定 DIR 下的文件系统（chroot 或挂载的镜像）",
    "av status --windows-defender": "改为按 `Get-MpComputerStatus | ConvertTo-Json` 的输出判定一台 Windows 终端",
    "av status --host": "报告中的终端名称（默认：根目录的主机名）",
    "av status --policy": _POLICY,
    "av status --as-of": "按此日期判断时长，YYYY-MM-DD（默认：今天）",
    "av status --output": _OUTPUT,
    "av scan": "用 ClamAV 查杀路径（clamd 运行时用 clamdscan，否则用 clamscan）并记录查杀",
    "av scan --timeout": "超过此秒数即停止查杀（默认：3600）",
    "av scan --quarantine": "把感染文件移入 DIR（0600，记录 sha256）；默认只报告，从不移动或删除",
    "av scan --exclude": "不查杀此文件夹（及其下所有内容）；可重复",
    "av scan --log": "追加写入的查杀日志（默认：/var/lib/nanbu-secops/av-scans.jsonl）",
    "av scan --output": _OUTPUT,
    "keys": "数据包所用的 age 密钥和签名密钥",
    "keys new": "生成 NAME.agekey、NAME.recipient、NAME_ed25519(.pub) 和 NAME.allowed_signers",
    "keys new name": "密钥的主体名，例如 county-office",
    "keys new --out": "存放密钥文件的文件夹（从不覆盖）",
    "keys new --sign-only": "只生成签名密钥及其 allowed-signers 行（终端只签名，从不打开数据包）",
    "incident": "签名并加密的事件数据包（第二十七条）",
    "incident collect": "对本终端取证快照，并与事件报告表一起打包",
    "incident collect --title": "事件名称",
    "incident collect --category": "事件类别（GB/Z 20986），例如 有害程序事件 或 网络攻击事件",
    "incident collect --severity": "事件级别：特别重大、重大、较大、一般（或 I、II、III、IV）",
    "incident collect --discovered-at": "发现时间，例如 2026-11-28T09:30（未给时差时按北京时间）",
    "incident collect --measures": "已采取的处置措施",
    "incident collect --include": "要附加的文件或文件夹（可重复）",
    "incident collect --days": "收集最近 N 天的认证日志和登录记录（默认：7）",
    "incident collect --root": "从 DIR 下的文件系统收集（离线镜像）",
    "incident collect --policy": "检查结果所用的策略文件或文件夹（默认：已安装的策略）",
    "proposal": "各单位的优化建议（第二十八条）",
    "proposal new": "一份空白的建议表（YAML）",
    "proposal new --out": "把建议表写入 FILE（默认：标准输出）",
    "proposal new --force": "FILE 已存在时替换它（它可能是已填写的表）",
    "proposal validate": "检查建议表；每个问题以 文件:行 给出",
    "proposal aggregate": "按类别汇总一个文件夹的建议表，合并相近的建议",
    "proposal aggregate --similarity": "标题相似度达到此值即合并，0-1（默认：0.8）",
    "proposal aggregate --output": "写入 FILE（xlsx 格式必须给出）",
    "proposal package": "把一个文件夹的建议表及其汇总打成签名并加密的数据包",
    "proposal package --title": "标题（默认：单位和季度）",
    "ipv6": "门户网站和应用接口的 IPv6 支持情况（第九条第二款）",
    "ipv6 check": "AAAA 记录、DNS 服务器、经 IPv6 与 IPv4 的 HTTP(S)、一致性、链接比例",
    "ipv6 check targets": "门户网站或 API 接口的域名或网址",
    "ipv6 check --crawl-depth": "0：只查首页；1：还查首页的链接（二级）；2：还查三级链接（默认：1）",
    "ipv6 check --probes": "计算成功率所用的 IPv6 首页探测次数（默认：5）",
    "ipv6 check --resolver": _RESOLVER,
    "ipv6 check --ca-file": _CA,
    "ipv6 check --timeout": "每个连接步骤的秒数（默认：10）",
    "ipv6 check --concurrency": _CONCURRENCY,
    "ipv6 check --clients": "还检查策略中列出的移动客户端 API 接口（ipv6_mobile_clients）",
    "ipv6 check --policy": _POLICY,
    "ipv6 check --output": _OUTPUT,
    "site": "各单位网站的平台使用检查（第二十九条）",
    "site inspect": "首页探测、栏目更新、死链、外链和广告链接",
    "site inspect urls": "要检查的首页（不用 --inventory 时）",
    "site inspect --inventory": "清单文件夹：取 group_vars 中该单位的 unit.site",
    "site inspect --unit": "单位的组名（与 --inventory 一起使用）",
    "site inspect --site": "网站文件（YAML/JSON：unit、home、columns、allowed_external；- 表示标准输入）",
    "site inspect --as-of": "判断栏目更新时长的日期（默认：今天，北京时间）",
    "site inspect --depth": "检查从首页起点击几层内的链接",
    "site inspect --probes": "首页探测次数（默认：策略中的 site_probes）",
    "site inspect --resolver": _RESOLVER,
    "site inspect --ca-file": _CA,
    "site inspect --timeout": "每次抓取的秒数（默认：10）",
    "site inspect --concurrency": _CONCURRENCY,
    "site inspect --policy": _POLICY,
    "site inspect --output": _OUTPUT,
    "ingest": "把收集到的检查结果载入结果库（第二十九条）",
    "ingest folder": "结果文件夹（任意深度的 …/<清单主机>/…/*.json，即 playbooks/collect.yml 取回的结构）",
    "ingest --db": "SQLite 结果库（不存在时创建）",
    "ingest --inventory": "核对每个文件所属主机用的 Ansible 清单（文件夹或文件；默认：inventory）",
    "ingest --dry-run": "只显示将要存入的内容，不写入任何东西",
    "report": "基于结果库的报告",
    "report quarterly": "按单位和条款的季度检查及评分（第二十九条）",
    "report quarterly --db": "ingest 填充的结果库（SQLite）",
    "report quarterly --quarter": "北京时间的自然季度，YYYYQn（例如 2026Q4）",
    "report quarterly --inventory": "Ansible 清单文件夹（默认：inventory）",
    "report quarterly --policy": "含 quarterly_score 的策略文件或文件夹（默认：已安装的策略）",
    "report quarterly --previous-roster": "上季度的人员花名册（.csv/.xlsx）；与 --roster 和 --accounts 一起：第八条",
    "report quarterly --roster": "本季度的人员花名册（.csv/.xlsx）",
    "report quarterly --accounts": "平台的账号列表（.csv/.xlsx）",
    "report quarterly --mapping": "花名册和账号文件的列名对照（YAML）",
    "report quarterly --output": _OUTPUT_XLSX,
    "report annual": "按单位汇总全年各季度的年度评价（第二十九条）",
    "report annual --db": "ingest 填充的结果库（SQLite）",
    "report annual --year": "自然年（季度按北京时间）",
    "report annual --inventory": "Ansible 清单（默认：inventory）",
    "report annual --policy": "含 quarterly_score 和 annual_score 的策略文件或文件夹（默认：已安装的策略）",
    "report annual --output": _OUTPUT_XLSX,
    "spool": "终端本地的定时检查结果暂存区",
    "spool run": "运行 check，把 JSON 结果原子地写入暂存区，并清理旧结果",
    "spool run --dir": "暂存文件夹（默认：%(default)s）",
    "spool run --keep": "保留的结果数（默认：%(default)s）",
    "spool run --root": "审计 DIR 下的文件系统",
    "spool run --policy": _POLICY,
    "spool newest": "输出暂存区中最新结果的路径（为空时退出码 1）",
    "spool newest --max-age-hours": "最新结果超过 H 小时即按空暂存区处理，退出码 1",
}
for _cmd in ("creds password", "creds ssh-key"):
    HELP_ZH |= {f"{_cmd} --escrow": "托管文件夹", f"{_cmd} --host": "终端在清单中的名称",
                f"{_cmd} --account": "要更换凭据的账号", f"{_cmd} --recipient": "age 接收者（age1... 或 ssh-ed25519 ...）",
                f"{_cmd} --recipients-file": "接收者文件，每行一个"}
for _kind, _zh in (("incident", "事件"), ("proposal", "建议")):
    HELP_ZH |= {
        f"{_kind} verify": f"检查{_zh}数据包：签名、哈希、流转记录（任何不符时退出码 1）",
        f"{_kind} verify --identity": "用于解密并一并检查内容的 age 身份文件（.agekey）",
        f"{_kind} verify --signature": "外层签名（默认：BUNDLE.sig）",
        f"{_kind} open": "先验证，再安全解包到一个新文件夹",
        f"{_kind} open --identity": _AGE_ID, f"{_kind} open --out": "解包到的新文件夹或空文件夹",
        f"{_kind} forward": "先验证，再添加一条签名的流转记录，并为下一个办公室重新加密",
        f"{_kind} forward --identity": _AGE_ID, f"{_kind} forward --sign-key": "你的 OpenSSH Ed25519 私钥",
        f"{_kind} forward --signer": _SIGNER,
        f"{_kind} forward --recipient": "下一个办公室的 age1… 公钥或 .recipient 文件（可重复）",
        f"{_kind} forward --out": "新的数据包文件", f"{_kind} forward --note": "流转记录的备注",
        **{f"{_kind} {c} --trust": _TRUST for c in ("verify", "open", "forward")},
        **{f"{_kind} {c} --no-trust": _NO_TRUST for c in ("verify", "open", "forward")},
        **{f"{_kind} {c} --output": _OUTPUT for c in ("verify", "open", "forward")},
    }
for _cmd in ("incident collect", "proposal package"):        # the options of every command that seals a bundle
    HELP_ZH |= {
        f"{_cmd} --unit": "单位（乡镇或部门）",
        f"{_cmd} --recipient": "可以打开它的办公室的 age1… 公钥或 .recipient 文件（可重复）",
        f"{_cmd} --sign-key": "为清单签名的 OpenSSH Ed25519 私钥", f"{_cmd} --signer": _SIGNER,
        f"{_cmd} --out": "要写入的数据包文件（.nsb）；BUNDLE.sig 写在它旁边",
        f"{_cmd} --digest": "清单中的摘要算法：sha256 或 sha256,sm3（默认：sha256）",
        f"{_cmd} --mask-pii": "在文本文件和报告中遮盖身份证号和手机号（第十五条）",
    }

# Help of the --lang option this module adds to commands that did not declare one.
LANG_HELP = {"zh": HELP_ZH[" --lang"], "en": "language of the output: zh (Chinese, the default) or en; "
                                             "NANBU_SECOPS_LANG sets the default"}


def choose_lang(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> str:
    """The language of this run: the last valid ``--lang`` before any ``--``, else the environment, else zh."""
    lang = environ.get(ENV) if environ.get(ENV) in LANGS else "zh"
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--":
            break
        value = args[i + 1] if arg == "--lang" and i + 1 < len(args) else \
            arg.partition("=")[2] if arg.startswith("--lang=") else None
        if value in LANGS:
            lang = value
    return lang


def text(msgid: str, lang: str) -> str:
    """One of :data:`ARGPARSE_ZH`'s messages in ``lang``."""
    return ARGPARSE_ZH.get(msgid, msgid) if lang == "zh" else msgid


@contextmanager
def speaking(lang: str) -> Iterator[None]:
    """argparse's own messages in ``lang`` while the block runs; gettext's afterwards."""
    saved = argparse._, argparse.ngettext            # type: ignore[attr-defined]
    if lang == "zh":
        argparse._ = lambda msgid: text(msgid, "zh")                                     # type: ignore[attr-defined]
        argparse.ngettext = lambda one, many, n: text(one if n == 1 else many, "zh")     # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved        # type: ignore[attr-defined]


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


class Formatter(argparse.HelpFormatter):
    """argparse's layout, with help text wrapped by terminal columns, so Chinese (two columns a
    character, no spaces between words) wraps like English instead of running off the screen."""

    def _split_lines(self, text: str, limit: int) -> list[str]:
        lines: list[str] = []
        line = ""
        for token in re.findall(r"[\u2e80-\u9fff\uff00-\uffef][，。；：、）》”]*|\S+?(?=[\u2e80-\u9fff])|\S+|\s+",
                                " ".join(text.split())):
            if line and not token.isspace() and width(line.rstrip() + token) > limit:
                lines.append(line.rstrip())
                line = ""
            if not (token.isspace() and not line):
                line += token
        return [*lines, line.rstrip()] if line.strip() else lines

    def _format_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None) -> str:
        """argparse lays the usage out by len(prefix): give it a stand-in as wide as "用法：" shows."""
        prefix = argparse._("usage: ") if prefix is None else prefix     # type: ignore[attr-defined]
        stand_in = "\0" * width(prefix)
        return super()._format_usage(usage, actions, groups, stand_in).replace(stand_in, prefix, 1)

    def _fill_text(self, text: str, limit: int, indent: str) -> str:
        return "\n".join(indent + line for line in self._split_lines(text, limit - len(indent)))


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line in the run's language, with where to read more."""

    lang = "en"            # set by :func:`localize`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = text("see %s --help", self.lang) % self.prog
        bracket = ("（", "）") if self.lang == "zh" else (" (", ")")
        line = text("%(prog)s: error: %(message)s\n", self.lang) % {"prog": self.prog, "message": message}
        self.exit(2, line.rstrip("\n") + bracket[0] + hint + bracket[1] + "\n")


def walk(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, argparse.ArgumentParser,
                                                                            argparse.Action | None]]:
    """Every (key, parser, action) of the command tree: a subcommand as (its path, its parser, None)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                key = f"{path} {name}".strip()
                yield key, sub, None
                yield from walk(sub, key)
        elif not isinstance(action, argparse._HelpAction):
            yield f"{path} {key_of(action)}", parser, action


def key_of(action: argparse.Action) -> str:
    """An argument's name in :data:`HELP_ZH`: its first long option, else its dest."""
    return next((o for o in action.option_strings if o.startswith("--")), None) or \
        (action.option_strings[0] if action.option_strings else action.dest)


def _choice_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The pseudo-actions a parser's command list is printed from, by subcommand name."""
    return {a.dest: a for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for a in action._choices_actions}


def localize(parser: argparse.ArgumentParser, lang: str) -> None:
    """Give every command and command group a ``--lang`` (default: ``lang``) and, for zh, the Chinese help
    of :data:`HELP_ZH`."""
    if isinstance(parser, Parser):
        parser.lang = lang
    if lang == "zh":
        parser.description = HELP_ZH[""]
    parents: dict[str, argparse.ArgumentParser] = {"": parser}
    for key, owner, action in list(walk(parser)):
        if action is not None:
            if lang == "zh" and action.help and action.help != argparse.SUPPRESS:
                action.help = HELP_ZH.get(key, action.help)
            if key_of(action) == "--lang":
                action.default, action.help = lang, LANG_HELP[lang]
            continue
        parents[key] = owner
        listed = _choice_actions(parents[key.rpartition(" ")[0]])[key.rpartition(" ")[2]]
        if lang == "zh" and listed.help:
            listed.help = HELP_ZH.get(key, listed.help)
        owner.description = listed.help
        if isinstance(owner, Parser):
            owner.lang = lang
        if "--lang" not in owner._option_string_actions:          # every level: --lang anywhere on the line
            owner.add_argument("--lang", choices=LANGS, default=lang, help=LANG_HELP[lang])
    if "--lang" not in parser._option_string_actions:
        parser.add_argument("--lang", choices=LANGS, default=lang, help=LANG_HELP[lang])


def stderr_line(kind: str, message: str, lang: str) -> None:
    """``nanbu-secops: <kind>: message`` on standard error, the frame in ``lang``."""
    colon = "：" if lang == "zh" else ": "
    print(f"nanbu-secops{colon}{text(kind, lang)}{colon}{message}", file=sys.stderr)
