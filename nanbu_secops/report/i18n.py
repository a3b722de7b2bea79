"""The one place where machine-readable evidence becomes a sentence in the report's language.

Checks and audits keep their evidence as data (keys, codes and the English notes the collectors
write); the JSON carries it unchanged so programs can rely on it. Every human rendering (text,
HTML, xlsx) passes evidence through :func:`evidence` and free-form reasons through :func:`say`,
so a report asked for in Chinese reads in Chinese and one asked for in English in English,
whatever language the results were stored in.

The Chinese of a collector's English note is found by pattern (:data:`PHRASES`): a note that
no pattern knows is shown as written, and the language test (tests/test_i18n.py) fails on it,
so a new English note is caught where it is added.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# Evidence keys as a reader names them: key -> (zh, en).
LABELS: dict[str, tuple[str, str]] = {
    "accounts": ("账号", "accounts"), "accounts_checked": ("已检查账号数", "accounts checked"),
    "active": ("在运行", "active"), "address": ("地址", "address"), "age_days": ("距今天数", "age in days"),
    "allowed": ("允许", "allowed"), "approved": ("认可范围", "approved"), "as_of": ("基准日期", "as of"),
    "authenticationmethods": ("AuthenticationMethods", "AuthenticationMethods"),
    "built": ("生成时间", "built"), "checked": ("已检查", "checked"),
    "clientalivecountmax": ("ClientAliveCountMax", "ClientAliveCountMax"),
    "clientaliveinterval": ("ClientAliveInterval", "ClientAliveInterval"), "config": ("配置文件", "config"),
    "configured": ("已配置", "configured"), "cut": ("截止日", "cut-off day"), "daemon": ("服务", "daemon"),
    "daemons": ("时间同步服务", "daemons"), "databases": ("病毒库", "databases"),
    "default_deny": ("默认拒绝", "default deny"), "dormant": ("休眠账号", "dormant"),
    "dpkg_status": ("软件包数据库", "package database"), "enabled_at_boot": ("开机启用", "enabled at boot"),
    "engine": ("引擎", "engine"), "entry": ("条目", "entry"), "evidence_since": ("记录起始", "records since"),
    "exempted": ("已豁免", "exempted"), "exemptions": ("豁免登记数", "exemptions"), "family": ("协议族", "family"),
    "files": ("文件", "files"), "finished": ("完成时间", "finished"), "firewalls": ("防火墙", "firewalls"),
    "found": ("发现", "found"), "how": ("方式", "how"), "installed": ("已安装", "installed"),
    "ipv4": ("IPv4", "IPv4"), "ipv6": ("IPv6", "IPv6"), "ipv6_resolvers": ("IPv6 DNS 服务器", "IPv6 name servers"),
    "kbdinteractiveauthentication": ("KbdInteractiveAuthentication", "KbdInteractiveAuthentication"),
    "key": ("配置项", "setting"), "kind": ("类型", "kind"), "last_scan": ("最近查杀", "last scan"),
    "locked": ("已锁定", "locked"), "max_age_days": ("最长天数", "maximum age in days"),
    "max_days": ("最长天数", "maximum days"), "mirrors": ("更新源", "mirrors"), "missing": ("缺少", "missing"),
    "mode": ("方式", "mode"), "months": ("月数", "months"), "name": ("名称", "name"),
    "nopasswd_rules": ("NOPASSWD 规则", "NOPASSWD rules"), "note": ("说明", "note"),
    "notes": ("说明", "notes"), "on_access": ("实时查杀", "on-access scanning"), "openssh": ("OpenSSH", "OpenSSH"),
    "origin": ("位置", "origin"), "password_methods": ("口令方式", "password methods"),
    "passwordauthentication": ("PasswordAuthentication", "PasswordAuthentication"), "path": ("路径", "path"),
    "permitrootlogin": ("PermitRootLogin", "PermitRootLogin"), "products_checked": ("已检查产品", "products checked"),
    "protecting": ("防护中", "protecting"), "proxies": ("代理", "proxies"), "reason": ("原因", "reason"),
    "reasons": ("原因", "reasons"), "required": ("要求", "required"), "resolvers": ("DNS 服务器", "name servers"),
    "running": ("运行情况", "running"), "scan_period_days": ("查杀周期（天）", "scan period in days"),
    "scheduled": ("定时查杀", "scheduled"), "server": ("服务器", "server"), "servers": ("服务器", "servers"),
    "sessions": ("会话数", "sessions"), "shared": ("疑似共用", "shared"), "signatures": ("特征码数", "signatures"),
    "source": ("来源", "source"), "sources": ("来源", "sources"), "sudo_users_checked": ("已检查 sudo 用户", "sudo users checked"),
    "synchronised_by": ("同步服务", "synchronised by"), "timeout_seconds": ("超时秒数", "timeout in seconds"),
    "uid0_accounts": ("UID 为 0 的账号", "UID 0 accounts"), "unsafe": ("不安全", "unsafe"),
    "unverifiable": ("无法核实", "unverifiable"), "updates": ("更新", "updates"), "value": ("取值", "value"),
    "verdict": ("判定", "verdict"), "version": ("版本", "version"), "weak": ("弱算法", "weak"),
    "problem": ("问题", "problem"), "problems": ("问题", "problems"), "error": ("错误", "error"),
    "expired": ("已过期", "expired"), "probe": ("探测", "probe"), "aaaa": ("AAAA", "AAAA"),
    "ports": ("端口", "ports"), "ipv4_only": ("只在 IPv4 上监听", "IPv4 only"), "ready": ("就绪", "ready"),
    "addresses": ("地址", "addresses"), "accepted": ("认可范围", "accepted"), "other_primary": ("其他主防护", "other primary"),
    "other_products": ("其他防病毒产品", "other products"), "other_products_running": ("其他产品运行情况", "other products running"),
    "row": ("行", "row"), "holder": ("持有人", "holder"), "pattern": ("匹配", "pattern"),
    "account_unit": ("账号单位", "account unit"), "roster_unit": ("花名册单位", "roster unit"),
    "roster": ("花名册", "roster"), "staff_id": ("工号", "staff id"), "unit": ("单位", "unit"),
    "employment": ("在职状态", "employment"), "establishment": ("编制", "establishment"),
    "roster_row": ("花名册行", "roster row"), "overlaps": ("重叠次数", "overlaps"),
    "first": ("先", "first"), "second": ("后", "second"), "terminal": ("终端", "terminal"),
    "login": ("登录", "login"), "end": ("退出", "end"), "day": ("日期", "day"), "terminals": ("终端", "terminals"),
    "busy_days": ("多终端日", "busy days"), "last_login": ("最后登录", "last login"),
    "last_login_from": ("最后登录来源", "last login from"), "created": ("创建时间", "created"),
}

# Codes and fixed notes, whole values: value -> (zh, en).
WORDS: dict[str, tuple[str, str]] = {
    "protected": ("已防护", "protected"), "stale": ("病毒库过期", "stale"), "not running": ("未运行", "not running"),
    "absent": ("未安装", "absent"), "unknown": ("无法核实", "unknown"),
    "files": ("配置文件", "files"), "read": ("已读取", "read"), "login log": ("登录日志", "login log"),
    "accounts file": ("账号文件", "accounts file"), "never": ("从未登录", "never"),
    "active": ("在职", "active"), "left": ("离职", "left"), "retired": ("退休", "retired"),
    "seconded": ("借调", "seconded"), "established": ("在编", "established"), "contract": ("聘用", "contract"),
    "temporary": ("临时", "temporary"),
    "built-in default": ("内置默认值", "built-in default"), "OpenSSH default": ("OpenSSH 默认值", "OpenSSH default"),
    "not checked (offline)": ("未检查（离线）", "not checked (offline)"),
    "not checked (offline: processes need the live system)":
        ("未检查（离线：进程须在运行中的系统上查看）", "not checked (offline: processes need the live system)"),
    "offline (--root): running means enabled at boot":
        ("离线（--root）：“运行”指开机启用", "offline (--root): running means enabled at boot"),
    "offline: configuration enabled at boot": ("离线：按开机启用的配置判断", "offline: configuration enabled at boot"),
    "offline: the environment of running processes is not checked":
        ("离线：未检查运行中进程的环境变量", "offline: the environment of running processes is not checked"),
    "IPv6 addresses": ("IPv6 地址", "IPv6 addresses"), "routes": ("路由", "routes"),
    "listening sockets": ("监听端口", "listening sockets"),
    "holder not in the roster": ("持有人不在花名册中", "holder not in the roster"),
    "holder is a unit's name": ("持有人是单位名称", "holder is a unit's name"),
    "no holder named": ("未填写持有人", "no holder named"),
    "account": ("账号", "account"), "holder": ("持有人", "holder"),
    "status code differs between IPv4 and IPv6": ("IPv4 与 IPv6 的状态码不同", "status code differs between IPv4 and IPv6"),
    "final URL differs between IPv4 and IPv6": ("IPv4 与 IPv6 的最终网址不同", "final URL differs between IPv4 and IPv6"),
    "no IPv4 response to compare with": ("无 IPv4 响应可供比较", "no IPv4 response to compare with"),
    "not set": ("未设置", "not set"), "not a number": ("不是数字", "not a number"),
    "no completed scan found": ("未找到完成的查杀记录", "no completed scan found"),
    "no firewall is active": ("没有防火墙在运行", "no firewall is active"),
    "no rotation has been escrowed for this host": ("本主机没有托管过任何更换记录", "no rotation has been escrowed for this host"),
}


# Kinds of escrowed credentials (``creds status``): kind -> (zh, en).
CREDENTIAL_KINDS: dict[str, tuple[str, str]] = {"password": ("口令", "password"), "ssh-key": ("SSH 密钥", "SSH key")}


def credential_kind(kind: str, lang: str) -> str:
    pair = CREDENTIAL_KINDS.get(kind)
    return (pair[0] if lang == "zh" else pair[1]) if pair else kind


def _word(text: str, lang: str) -> str:
    pair = WORDS.get(text)
    return (pair[0] if lang == "zh" else pair[1]) if pair else say(text, lang)


# Patterns of the collectors' and checks' English notes, with their Chinese. ``{0}``... are the
# groups, each itself passed through :func:`say` (a group may be a code or another note).
PHRASES: list[tuple[re.Pattern[str], str]] = [(re.compile(p), zh) for p, zh in (
    (r"needs the live system: (.+) exist only in a running kernel, not in a --root tree",
     "须在运行中的系统上检查：{0}只存在于运行中的内核，--root 目录树中没有"),
    (r"needs the live system: (.+)", "须在运行中的系统上检查：{0}"),
    (r"(\S+) is not installed: the antivirus verdict \(antivirus_status\) reports it",
     "{0} 未安装：见防病毒判定（antivirus_status）"),
    (r"no antivirus: (\S+) is not installed and no product of the catalogue was found",
     "无防病毒软件：{0} 未安装，也未发现目录中的其他防病毒产品"),
    (r"no /etc/sudoers: sudo is not installed", "无 /etc/sudoers：未安装 sudo"),
    (r"(.+) is not installed", "{0} 未安装"),
    (r"(\S+) does not exist: (.+)", "{0} 不存在：{1}"),
    (r"(\S+) does not exist", "{0} 不存在"),
    (r"offline: enabled at boot by (\S+)", "离线：由 {0} 开机启用"),
    (r"offline: not checked whether it runs; enabled at boot \((\S+)\)", "离线：未检查是否在运行；已开机启用（{0}）"),
    (r"enabled at boot: (\S+)", "开机启用：{0}"),
    (r"cron: (.+)", "cron：{0}"),
    (r"chain (\S+) (\S+) (\S+): policy (\S+) \((\S+)\)", "{0}/{1}/{2} 链：默认策略 {3}（{4}）"),
    (r"OpenSSH (\S+) \((.+)\): its defaults", "OpenSSH {0}（{1}）：采用其默认值"),
    (r"employment is (\S+)", "在职状态为{0}"),
    (r"establishment is (\S+)", "编制为{0}"),
    (r"(account|holder) matches a generic name", "{0}与通用账号名相符"),
    (r"IPv6 success rate (\S+) below (\S+)", "IPv6 成功率 {0}，低于 {1}"),
    (r"content similarity (\S+) below (\S+)", "内容相似度 {0}，低于 {1}"),
    (r"name server (\S+) has no IPv6 address", "DNS 服务器 {0} 没有 IPv6 地址"),
    (r"name server (\S+) does not answer over IPv6", "DNS 服务器 {0} 不经 IPv6 应答"),
    (r"(level2|level3) IPv6 link ratio (\S+) below (\S+)", "{0}的 IPv6 链接比例 {1}，低于 {2}"),
    (r"not usable over IPv6: (.+)", "不能经 IPv6 使用：{0}"),
    (r"HTTP status (\d+) over IPv4 and IPv6 alike: (.+)", "IPv4 与 IPv6 均返回 HTTP 状态码 {0}：{1}"),
    (r"malformed URL: (.+)", "网址格式错误：{0}"),
    (r"malformed target: empty or contains spaces", "目标格式错误：为空或含空格"),
    (r"scheme '(\S*)' is not http or https", "协议 {0} 不是 http 或 https"),
    (r"'(\S*)' is not a valid host name", "{0} 不是有效的主机名"),
    (r"no host", "缺少主机名"),
    (r"Invalid IPv6 URL", "IPv6 地址格式无效"),
    (r"no AAAA record for (\S+)", "{0} 无 AAAA 记录"),
    (r"no AAAA record", "无 AAAA 记录"),
    (r"no A record for (\S+)", "{0} 无 A 记录"),
    (r"(\S+) does not exist \(NXDOMAIN\)", "{0} 不存在（NXDOMAIN）"),
    (r"(resolver \S+|system resolver(?: \(.+\))?) unreachable: (.+)", "DNS 服务器（{0}）不可达：{1}"),
    (r"no answer within (\S+) s", "{0} 秒内无应答"),
    (r"lookup failed: (.+)", "查询失败：{0}"),
    (r"name servers of (\S+) unknown: (.+)", "{0} 的权威 DNS 服务器未知：{1}"),
    (r"(\S+): CNAME chain longer than (\d+)", "{0}：CNAME 链超过 {1} 级"),
    (r"last completed scan is (\d+) days old \(period (\d+)\)", "最近一次完成的查杀已过去 {0} 天（周期 {1} 天）"),
)]
_GROUP_WORDS = {"level2": ("二级链接", "level2"), "level3": ("三级链接", "level3")}


def say(text: str, lang: str) -> str:
    """A collector's or check's English note in ``lang``; clauses joined by "; " each on their own."""
    if lang != "zh" or not text:
        return text
    if text in WORDS:
        return WORDS[text][0]
    for pattern, template in PHRASES:
        found = pattern.fullmatch(text)
        if found:
            return template.format(*(_GROUP_WORDS[g][0] if g in _GROUP_WORDS else _word(g, lang)
                                     for g in found.groups()))
    if "; " in text:
        return "；".join(say(part, lang) for part in text.split("; "))
    return text


def label(key: str, lang: str) -> str:
    pair = LABELS.get(key)
    return (pair[0] if lang == "zh" else pair[1]) if pair else key


def value(item: Any, lang: str) -> str:
    """One evidence value: codes and notes translated, lists and mappings spelled out."""
    zh = lang == "zh"
    if item is None:
        return "无" if zh else "none"
    if isinstance(item, bool):
        return ("是" if item else "否") if zh else ("yes" if item else "no")
    if isinstance(item, (int, float)):
        return str(item)
    if isinstance(item, str):
        return _word(item, lang)
    if isinstance(item, list):
        return ("、" if zh else ", ").join(value(x, lang) for x in item) or ("无" if zh else "none")
    if isinstance(item, dict):
        inner = ("，" if zh else ", ").join(f"{label(k, lang)} {value(v, lang)}" for k, v in item.items()
                                             if v not in ([], {}))
        return f"（{inner}）" if zh else f"({inner})"
    return str(item)


def evidence(items: dict[str, Any], lang: str, limit: int | None = None) -> str:
    """Evidence as one line: "label：value；..." (zh) or "label: value; ..." (en), cut at ``limit``."""
    zh = lang == "zh"
    text = ("；" if zh else "; ").join(f"{label(k, lang)}{'：' if zh else ': '}{value(v, lang)}"
                                      for k, v in items.items() if v not in ([], {}))
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _account_dormant(ev: dict[str, Any], lang: str, ctx: dict[str, Any]) -> str:
    zh, months, as_of = lang == "zh", ctx.get("months"), ctx.get("as_of")
    last = (ev.get("last_login") or "")[:10]
    since = f"{months} 个月" if zh else f"{months} months"
    if not last:
        created = (ev.get("created") or "")[:10]
        head = (f"从未登录（创建于 {created}）" if created else "从未登录") if zh else \
            (f"never logged in (created {created})" if created else "never logged in")
    else:
        origin = _word(ev.get("last_login_from") or "", lang)
        head = f"最后登录 {last}（{origin}）" if zh else f"last login {last} ({origin})"
    if months is None:
        return head
    return (f"{head}，已超过 {since}未登录（截止 {as_of}）" if zh
            else f"{head}: no login for more than {since} (as of {as_of})")


def _account_shared(ev: dict[str, Any], lang: str, ctx: dict[str, Any]) -> str:
    zh, parts = lang == "zh", []
    for pair in ev.get("pairs") or []:
        a, b = pair["first"], pair["second"]
        parts.append(f"{a['login']} 在 {a['terminal']} 登录、{b['login']} 又在 {b['terminal']} 登录，会话重叠" if zh else
                     f"logged in on {a['terminal']} at {a['login']} and on {b['terminal']} at {b['login']}: sessions overlap")
    for busy in ev.get("busy_days") or []:
        terminals = ("、" if zh else ", ").join(busy["terminals"])
        parts.append(f"{busy['day']} 一天内在 {len(busy['terminals'])} 个终端登录（{terminals}）" if zh else
                     f"{len(busy['terminals'])} terminals on {busy['day']} ({terminals})")
    more = ev.get("overlaps", 0) - len(ev.get("pairs") or [])
    if more > 0:
        parts.append(f"另有 {more} 次重叠（见 JSON）" if zh else f"{more} more overlaps (see the JSON)")
    return ("；" if zh else "; ").join(parts)


def _account_staff(ev: dict[str, Any], lang: str, ctx: dict[str, Any]) -> str:
    zh = lang == "zh"
    head = say(ev.get("reason", ""), lang)
    roster = ev.get("roster")
    if roster:
        head += (f"（花名册第 {roster['roster_row']} 行：{roster['name']}，{roster['unit']}，"
                 f"{_word(roster['employment'], lang)}，{_word(roster['establishment'], lang)}）" if zh else
                 f" (roster row {roster['roster_row']}: {roster['name']}, {roster['unit']}, "
                 f"{roster['employment']}, {roster['establishment']})")
    return head


def _account_unit(ev: dict[str, Any], lang: str, ctx: dict[str, Any]) -> str:
    row = (ev.get("roster") or {}).get("roster_row")
    return (f"账号登记在“{ev['account_unit']}”，花名册（第 {row} 行）为“{ev['roster_unit']}”" if lang == "zh" else
            f"account registered in {ev['account_unit']}, roster (row {row}) says {ev['roster_unit']}")


def _account_generic(ev: dict[str, Any], lang: str, ctx: dict[str, Any]) -> str:
    text = say(ev.get("reason", ""), lang)
    if ev.get("pattern"):
        text += f"（{ev['pattern']}）" if lang == "zh" else f" ({ev['pattern']})"
    return text


ACCOUNT_RULES: dict[str, Callable[[dict[str, Any], str, dict[str, Any]], str]] = {
    "dormant": _account_dormant, "shared": _account_shared, "not-current-staff": _account_staff,
    "unit-mismatch": _account_unit, "generic-name": _account_generic,
}


def account_evidence(rule: str, ev: dict[str, Any], lang: str, as_of: str | None = None,
                     months: int | None = None) -> str:
    """A platform account finding's evidence as the sentence an officer acts on, with its row."""
    text = ACCOUNT_RULES[rule](ev, lang, {"as_of": as_of, "months": months}) if rule in ACCOUNT_RULES \
        else evidence(ev, lang)
    if "row" in ev:
        text += f"（账号文件第 {ev['row']} 行）" if lang == "zh" else f" (accounts file row {ev['row']})"
    return text
