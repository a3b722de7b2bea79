"""The one place where machine-readable evidence becomes a sentence in the report's language.

Checks and audits keep their evidence as data (keys, codes and the English notes the collectors
write); the JSON carries it unchanged so programs can rely on it. Every human rendering (text,
HTML, xlsx) passes evidence through :func:`evidence` and free-form reasons through :func:`say`,
so a report asked for in Chinese reads in Chinese and one asked for in English in English,
whatever language the results were stored in.

The Chinese of a collector's English note is found by pattern (:data:`PHRASES`): a note that
no pattern knows is shown as written, and the language test (tests/test_i18n.py) fails on it,
so a new English note is caught where it is added.

The CLI's own words live here too: :data:`ERRORS` says why input was refused (every message the
package raises as an InputError, sampled from the source by the language test), :data:`MESSAGES`
the commands' status lines. ``--help`` and argparse's messages are in nanbu_secops/clihelp.py.
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
    # PAM stacks (NS26-PASS-006/007); the modules' own option names stay as written
    "stacks": ("PAM 配置", "PAM stacks"), "stack": ("配置文件", "stack"), "module": ("模块", "module"),
    "line": ("行", "line"), "rule": ("规则", "rule"), "rules": ("规则", "rules"),
    "shortest_password": ("最短可用口令长度", "shortest password accepted"),
    "classes_required": ("要求的字符类别数", "character classes required"),
    "min_length": ("最小长度", "minimum length"), "min_classes": ("最少字符类别", "minimum classes"),
    "max_deny": ("最多失败次数", "maximum failures"), "min_unlock_seconds": ("最短锁定秒数", "minimum lockout seconds"),
    "minlen": ("minlen", "minlen"), "minclass": ("minclass", "minclass"), "dcredit": ("dcredit", "dcredit"),
    "ucredit": ("ucredit", "ucredit"), "lcredit": ("lcredit", "lcredit"), "ocredit": ("ocredit", "ocredit"),
    "enforcing": ("enforcing", "enforcing"), "deny": ("deny", "deny"), "unlock_time": ("unlock_time", "unlock_time"),
}

# Codes and fixed notes, whole values: value -> (zh, en).
WORDS: dict[str, tuple[str, str]] = {
    "live": ("在线（运行中的系统）", "live"), "protected": ("已防护", "protected"), "stale": ("病毒库过期", "stale"),
    "not running": ("未运行", "not running"),
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
    "name does not exist": ("域名不存在", "name does not exist"),
    "name server name does not exist": ("DNS 服务器的域名不存在", "name server name does not exist"),
    # operating system errors (strerror) that name a network failure
    "Connection refused": ("连接被拒绝", "Connection refused"), "Connection timed out": ("连接超时", "Connection timed out"),
    "Network is unreachable": ("网络不可达", "Network is unreachable"),
    "No route to host": ("没有到主机的路由", "No route to host"),
    "Connection reset by peer": ("连接被对方重置", "Connection reset by peer"), "timed out": ("超时", "timed out"),
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
    # antivirus: ClamAV (collect/antivirus.py), Defender (collect/defender.py), the verdict (checks/antivirus.py)
    (r"(.+) is not installed; (.+) found: (.+)", "{0} 未安装；发现 {1}：{2}"),
    (r"signature age cannot be verified; whether it runs, is up to date and scans is not reported by the "
     r"product in a form the agent reads", "无法核实病毒库日期；该产品是否运行、是否最新、是否查杀，均未以代理可读的形式报告"),
    (r"(.+) is not running: (.+)", "{0} 未运行：{1}"),
    (r"whether (.+) runs could not be established: (.+)", "无法确定 {0} 是否在运行：{1}"),
    (r"signature database age cannot be read: (.+)", "无法读取病毒库日期：{0}"),
    (r"no signature database", "没有病毒库"),
    (r"signatures are (-?\d+) days old \(maximum (\d+)\)", "病毒库已有 {0} 天（最长 {1} 天）"),
    (r"signatures built (\d+) days after the as-of date (\S+): the clock or the header is wrong",
     "病毒库生成时间比基准日期 {1} 晚 {0} 天：系统时钟或病毒库文件头有误"),
    (r"(.+): the update source is not in its status \((.+)\)", "{0}：其状态中没有更新来源（{1}）"),
    (r"Windows Update / WSUS \(not shown by Get-MpComputerStatus\)", "Windows Update / WSUS（Get-MpComputerStatus 不显示）"),
    (r"no enabled timer or cron entry scans, and no on-access scanning is in force",
     "没有启用的定时器或 cron 任务执行查杀，也没有启用实时查杀"),
    (r"AMRunningMode (.+): Defender only scans on demand; the primary product's state is not in this file",
     "AMRunningMode {0}：Defender 只做按需扫描；主防病毒产品的状态不在此文件中"),
    (r"AMRunningMode (.+): another antivirus product is the primary one", "AMRunningMode {0}：另一防病毒产品为主防护"),
    (r"neither AntivirusSignatureLastUpdated nor AntivirusSignatureAge is in the file",
     "文件中既没有 AntivirusSignatureLastUpdated 也没有 AntivirusSignatureAge"),
    (r"(.+) not in the file", "文件中没有 {0}"),
    (r"no quick or full scan ever completed \(QuickScanAge and FullScanAge (\d+)\)",
     "从未完成快速或全盘扫描（QuickScanAge 与 FullScanAge 为 {0}）"),
    (r"IsTamperProtected false: malware with administrator rights can switch Defender off",
     "IsTamperProtected false：有管理员权限的恶意软件可关闭 Defender"),
    (r"tamper protection on", "防篡改已开启"),
    (r"truncated: (\d+) bytes, the header alone is (\d+)", "文件不完整：{0} 字节，仅文件头就需 {1} 字节"),
    (r"no answer to PING within (\S+) s \(clamd may be loading its database\)", "{0} 秒内未应答 PING（clamd 可能正在加载病毒库）"),
    (r"(.+): the socket cannot be asked \(run the agent as root\)", "{0}：无法访问该套接字（请以 root 运行代理）"),
    (r"clamd \(clamav-daemon\) is not installed: nothing answers scan requests", "clamd（clamav-daemon）未安装：没有服务响应查杀请求"),
    (r"clamd cannot start", "clamd 无法启动"),
    (r"the 'Example' line makes (\S+) refuse to (?:start|run)", "“Example”一行使 {0} 拒绝运行"),
    (r"neither LocalSocket nor TCPSocket is set: clamd listens nowhere", "LocalSocket 与 TCPSocket 均未设置：clamd 不监听任何地址"),
    (r"offline: not checked whether it runs; no unit of (.+) is enabled at boot", "离线：未检查是否在运行；{0} 均未开机启用"),
    (r"clamd pid (.+)", "clamd 进程 {0}"), (r"no clamd process", "没有 clamd 进程"),
    (r"(\S+) runs a scan but is not enabled at boot", "{0} 执行查杀但未开机启用"),
    (r"freshclam is not configured", "freshclam 未配置"),
    (r"no DatabaseMirror or PrivateMirror: nowhere to update from", "没有 DatabaseMirror 或 PrivateMirror：无处更新"),
    (r"freshclam is neither running, nor enabled at boot, nor in a cron job", "freshclam 既未运行、未开机启用，也不在 cron 任务中"),
    (r"on-access paths are configured in (\S+) but clamonacc does not run", "{0} 配置了实时查杀路径，但 clamonacc 未运行"),
    (r"on-access paths are configured in (\S+) but clamonacc is not enabled at boot",
     "{0} 配置了实时查杀路径，但 clamonacc 未开机启用"),
    (r"(.+); clamonacc enabled at boot \((\S+)\)", "{0}；clamonacc 已开机启用（{1}）"),
    (r"no scan was recorded by nanbu-secops av scan", "nanbu-secops av scan 没有记录过查杀"),
    (r"no completed scan recorded", "没有完成的查杀记录"),
    (r"finished time has no UTC offset", "完成时间没有 UTC 时差"),
    (r"scan of (.+) did not complete: (.+)", "{0} 的查杀未完成：{1}"),
    (r"cron entries scan but no cron daemon \((.+)\) is installed", "cron 任务执行查杀，但未安装 cron 服务（{0}）"),
    # rows of the account, login and roster files that could not be used (accounts/sources.py)
    (r"(\d+) fields, the header has (\d+)", "有 {0} 个字段，表头有 {1} 个"),
    (r"empty (\S+)", "{0}为空"),
    (r"(\S+): unknown value '(.*)' \(expected (.+)\)", "{0}：未知取值“{1}”（应为 {2}）"),
    (r"not a date and time: '(.*)'(?: \(.+\))?", "不是日期时间：“{0}”"),
    (r"not a date: number (\S+) is no Excel date serial", "不是日期：数字 {0} 不是 Excel 日期序号"),
    (r"a time of day without a date: (.+)", "只有时间没有日期：{0}"),
    (r"(\S+) (\S+ \S+) is before (\S+) (\S+ \S+)", "{0} {1} 早于{2} {3}"),
    # network, time, firewall, IPv6, sshd and account controls (checks/*.py)
    (r"the C library then asks (\S+)", "此时 C 库向 {0} 查询"),
    (r"installed but (.+) does not exist", "已安装，但 {0} 不存在"),
    (r"no host firewall \((.+)\) is installed", "未安装主机防火墙（{0}）"),
    (r"no time synchronisation daemon \((.+)\) is installed", "未安装时间同步服务（{0}）"),
    (r"no daemon is (running|enabled at boot) with only approved servers configured", "没有只配置了认可服务器并且{0}的时间同步服务"),
    (r"sshd refuses this configuration \(as sshd -t would\): fix the lines named", "sshd 拒绝此配置（与 sshd -t 相同）：请修改所列的行"),
    (r"no name server with an IPv6 address \(and no ipv6_probe_name to ask for AAAA\)",
     "没有带 IPv6 地址的 DNS 服务器（也未设置 ipv6_probe_name 以查询 AAAA）"),
    (r"no login records on this terminal \((.+)\)", "本终端没有登录记录（{0}）"),
    (r"no wtmp on this terminal: sessions cannot be compared", "本终端没有 wtmp：无法比对会话"),
    (r"the policy variable (\S+) is empty: state the unit's (gateways|resolvers)", "策略变量 {0} 为空：请填写本单位的{1}"),
    (r"no default route: the terminal reaches only its directly connected networks", "没有默认路由：终端只能访问直连网络"),
    (r"no service ports in ipv6_service_ports: nothing to check", "ipv6_service_ports 中没有服务端口：无需检查"),
    (r"none of the service ports is served to the network: nothing to serve over IPv6", "没有服务端口对网络开放：无需经 IPv6 提供服务"),
    (r"IPv6 is off in the kernel: (\S+) does not exist \(ipv6.disable=1 on the kernel command line\?\)",
     "内核已关闭 IPv6：{0} 不存在（内核命令行是否有 ipv6.disable=1？）"),
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
    (r"URL carries a user name or password: refused, it would be copied into logs and reports",
     "网址中含用户名或口令：拒绝检查，否则会被写入日志和报告"),
    (r"scheme '(\S*)' is not http or https", "协议 {0} 不是 http 或 https"),
    (r"'(\S*)' is not a valid host name", "{0} 不是有效的主机名"),
    (r"no host", "缺少主机名"),
    (r"Invalid IPv6 URL", "IPv6 地址格式无效"),
    (r"no AAAA record for (\S+)", "{0} 无 AAAA 记录"),
    (r"no AAAA record", "无 AAAA 记录"),
    (r"no successful HTTP\(S\) response over IPv6", "经 IPv6 没有成功的 HTTP(S) 响应"),
    (r"cannot connect to (.+)", "无法连接：{0}"),
    (r"(\S+) port (\d+): (.+)", "{0} 端口 {1}：{2}"),
    (r"cannot resolve (\S+): (.+)", "无法解析 {0}：{1}"),
    (r"cannot open an IPv(\d) socket: (.+)", "无法打开 IPv{0} 套接字：{1}"),
    (r"certificate verification failed: (.+)", "证书验证失败：{0}"),
    (r"Hostname mismatch, certificate is not valid for '(\S+)'\.?", "主机名不符，证书对 {0} 无效"),
    (r"IP address mismatch, certificate is not valid for '(\S+)'\.?", "IP 地址不符，证书对 {0} 无效"),
    (r"TLS handshake failed: (.+)", "TLS 握手失败：{0}"),
    (r"redirect to '(\S*)', not an http\(s\) URL", "重定向到 {0}，不是 http(s) 网址"),
    (r"more than (\d+) redirects \(limit (\d+)\), last to (\S+)", "重定向超过 {0} 次（上限 {1}），最后到 {2}"),
    (r"no A record for (\S+)", "{0} 无 A 记录"),
    (r"(\S+) does not exist \(NXDOMAIN\)", "{0} 不存在（NXDOMAIN）"),
    (r"(resolver \S+|system resolver(?: \(.+\))?) unreachable: (.+)", "DNS 服务器（{0}）不可达：{1}"),
    (r"no answer within (\S+) s", "{0} 秒内无应答"),
    (r"lookup failed: (.+)", "查询失败：{0}"),
    (r"name servers of (\S+) unknown: (.+)", "{0} 的权威 DNS 服务器未知：{1}"),
    (r"(\S+): CNAME chain longer than (\d+)", "{0}：CNAME 链超过 {1} 级"),
    # why a link or page is a suspected advertisement, and a fetch's outcome (checks/site.py, site/collect.py)
    (r"link text contains '(.+)'", "链接文字含“{0}”"), (r"page text contains (.+)", "页面文字含 {0}"),
    (r"domain (\S+)", "域名 {0}"), (r"HTTP status (\d+)", "HTTP 状态码 {0}"),
    # last: "where: what" (a file, file:line or address, then the note), the note translated on its own
    (r"(\S*[/.]\S*): (.+)", "{0}：{1}"),
    (r"last completed scan is (\d+) days old \(period (\d+)\)", "最近一次完成的查杀已过去 {0} 天（周期 {1} 天）"),
)]
_GROUP_WORDS = {"level2": ("二级链接", "level2"), "level3": ("三级链接", "level3"), "gateways": ("网关", "gateways"),
                "resolvers": ("DNS 服务器", "resolvers"), "running": ("在运行", "running"),
                "enabled at boot": ("开机启用", "enabled at boot")}


def _known(text: str) -> str | None:
    """The Chinese of a whole note that :data:`WORDS` or :data:`PHRASES` knows, else None."""
    if text in WORDS:
        return WORDS[text][0]
    for pattern, template in PHRASES:
        found = pattern.fullmatch(text)
        if found:
            return template.format(*(_GROUP_WORDS[g][0] if g in _GROUP_WORDS else _word(g, "zh")
                                     for g in found.groups()))
    return None


def say(text: str, lang: str) -> str:
    """A collector's or check's English note in ``lang``. Notes are joined by "; " and ": " (and a
    known note may itself contain them), so the longest known leading note is taken first and the
    rest said on its own; what no pattern knows stays as written."""
    if lang != "zh" or not text:
        return text
    known = _known(text)
    if known is not None:
        return known
    for sep, zh_sep in (("; ", "；"), (": ", "：")):
        parts = text.split(sep)
        for j in range(len(parts) - 1, 0, -1):
            head = _known(sep.join(parts[:j]))
            if head is not None:
                return head + zh_sep + say(sep.join(parts[j:]), lang)
        for j in range(1, len(parts)):       # "what: known note", what being a column or a name
            tail = _known(sep.join(parts[j:]))
            if tail is not None:
                return say(sep.join(parts[:j]), lang) + zh_sep + tail
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
                     f"logged in on {a['terminal']} at {a['login']} and on {b['terminal']} at {b['login']}: "
                     "sessions overlap")
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


# The CLI's error messages (exit 2), with their Chinese; ``{0}``... are the groups, each passed
# through :func:`say`. A message no pattern knows is shown as written (see the README's
# "Language" section for which messages are covered).
ERRORS: list[tuple[re.Pattern[str], str]] = [(re.compile(p), zh) for p, zh in (
    # the reinstatement register's integrity check (accounts/register.py)
    (r"the register fails verification: (.+)", "登记簿未通过校验：{0}"),
    (r"line (\S+): (.+)", "第 {0} 行：{1}"),
    (r"not valid JSON", "不是有效的 JSON"), (r"empty line \(not an entry\)", "空行（不是条目）"),
    (r"not a JSON object", "不是 JSON 对象"), (r"not a register entry \((.+)\)", "不是登记条目（{0}）"),
    (r"hash mismatch \(entry edited\)", "哈希不符（条目被修改）"),
    (r"not in canonical JSON form \(line rewritten\)", "不是规范的 JSON 格式（该行被改写）"),
    (r"seq (.+) where (\S+) expected", "序号为 {0}，应为 {1}"), (r"duplicate of line (\S+)", "与第 {0} 行重复"),
    (r"prev is not the start of the chain \(entries before it were removed\)", "prev 不是链的起点（之前的条目被删除）"),
    (r"prev does not match line (\S+) \(an entry was removed or reordered\)", "prev 与第 {0} 行不符（有条目被删除或调换了顺序）"),
    (r"explanation does not match its sha256", "说明与其 sha256 不符"),
    (r"last line has no newline \(truncated\)", "最后一行没有换行符（文件被截断）"),
    (r"(\S+): missing \(cannot tell whether the last entries were removed\)", "{0}：缺失（无法判断最后的条目是否被删除）"),
    (r"(\S+): not a valid head file", "{0}：不是有效的 head 文件"),
    (r"missing: (\S+) records (\S+) entries, the register has (\S+) \(the last entries were removed\)",
     "缺失：{0} 记录了 {1} 条，登记簿只有 {2} 条（最后的条目被删除）"),
    (r"not recorded in (\S+) \((\S+) entries recorded, (\S+) present: appended without updating the head, or a "
     r"crash between the two\)", "未记录在 {0} 中（记录 {1} 条，实有 {2} 条：追加后未更新 head，或两者之间发生了崩溃）"),
    (r"hash differs from (\S+) \(the last entry was replaced\)", "哈希与 {0} 不符（最后一条被替换）"),
    (r"short write \((\d+) of (\d+) bytes\): the register needs repair", "写入不完整（{1} 字节只写了 {0}）：登记簿需要修复"),
    (r"(--format xlsx|this format) is binary: give --output FILE", "该格式是二进制的：请用 --output FILE 指定输出文件"),
    (r"(--\S+): folder does not exist", "{0}：文件夹不存在"),
    (r"(--\S+): exists and is not a folder", "{0}：已存在且不是文件夹"),
    (r"(--\S+): (\S+) is not a folder", "{0}：{1} 不是文件夹"),
    (r"(--\S+): is a folder, a file is wanted", "{0}：这是文件夹，需要的是文件"),
    (r"(--\S+): exists and is not a regular file", "{0}：已存在且不是普通文件"),
    (r"(--\S+): cannot write here: (.+)", "{0}：无法在此写入：{1}"),
    (r"(--\S+): no such file", "{0}：文件不存在"),
    (r"(--\S+) must be (?:more than 0 seconds|at least 1|0 or more|between 0 and 1000000|above 0 and at most 1), "
     r"not (\S+)", "{0} 的取值超出范围：{1}"),
    (r"--year: not a year between 1970 and 9998: (\S+)", "--year：不是 1970 到 9998 之间的年份：{0}"),
    (r"--as-of: (.+)", "--as-of：{0}"),
    (r"--quarter: (.+)", "--quarter：{0}"),
    (r"--resolver: (.+)", "--resolver：{0}"),
    (r"--digest: (.+)", "--digest：{0}"),
    (r"no such register: nothing to verify \(give the right --register, or --missing-ok where a register not "
     r"created yet is fine\)", "登记簿不存在：无可检查（请给出正确的 --register；登记簿尚未建立属正常时用 --missing-ok）"),
    (r"find: give --account, --host or both", "find：请给出 --account、--host 或两者"),
    (r"no escrow recipient: give --recipient or --recipients-file \(the unit account manager's age key\)",
     "没有托管接收者：请用 --recipient 或 --recipients-file 给出单位账号管理员的 age 公钥"),
    (r"known_hosts file does not exist", "known_hosts 文件不存在"),
    (r"escrow folder does not exist", "托管文件夹不存在"),
    (r"key folder does not exist", "密钥文件夹不存在"),
    (r"no enabled control runs an antivirus check \((.+)\)", "没有启用的控制项执行防病毒检查（{0}）"),
    (r"nothing written: (.+)", "未写入任何内容：{0}"),
    (r"--title must not be empty", "--title 不能为空"),
    (r"whom do you trust\? give --trust ALLOWED_SIGNERS \(the sender's \.allowed_signers file\), or --no-trust to "
     r"check integrity only, without checking the signer",
     "信任谁？请用 --trust ALLOWED_SIGNERS 给出发送方的 .allowed_signers 文件，或用 --no-trust 只检查完整性、不核对签名者"),
    (r"will not overwrite an existing form \(it may be filled in\); give --force to replace it",
     "不覆盖已有的建议表（它可能已填写）；要替换请加 --force"),
    (r"will not overwrite an existing bundle", "不覆盖已有的数据包"),
    (r"will not overwrite existing key files: (.+)", "不覆盖已有的密钥文件：{0}"),
    (r"(\d+) problem\(s\) in the forms; fix them before packaging", "建议表中有 {0} 处问题；请先改正再打包"),
    (r"--probes and --concurrency must be at least 1 and --timeout above 0",
     "--probes 和 --concurrency 至少为 1，--timeout 须大于 0"),
    (r"give at least one TARGET \(or --clients with ipv6_mobile_clients in the policy\)",
     "请至少给出一个 TARGET（或在策略中有 ipv6_mobile_clients 时用 --clients）"),
    (r"give --inventory DIR --unit U, --site FILE, or one or more URLs",
     "请给出 --inventory DIR --unit U、--site FILE 或一个以上的网址"),
    (r"--depth must be 0 or more, --probes and --concurrency at least 1, --timeout above 0",
     "--depth 须为 0 或以上，--probes 和 --concurrency 至少为 1，--timeout 须大于 0"),
    (r"--previous-roster, --roster and --accounts go together \(staff changes, article 8\)",
     "--previous-roster、--roster 和 --accounts 须一起给出（人员变动，第八条）"),
    (r"no such (file|folder|form|inventory|bundle file|policy file or folder|file or folder to scan|file or folder"
     r"|folder for the bundle)",
     "{0}不存在"),
    (r"no such database \(load results with `nanbu-secops ingest` first\)", "结果库不存在（请先用 nanbu-secops ingest 载入结果）"),
    (r"folder holds no (proposal form|policy file) \((.+)\)", "文件夹中没有{0}（{1}）"),
    (r"the file is empty", "文件为空"), (r"the form is empty", "建议表为空"), (r"the mapping file is empty", "列名对照文件为空"),
    (r"not a regular file", "不是普通文件"), (r"not a directory", "不是文件夹"), (r"is a folder, not a file", "这是文件夹，不是文件"),
    (r"--root: not a directory", "--root：不是文件夹"), (r"--root: not readable", "--root：无法读取"),
    (r"--root: no /etc in it, so not a system's root \(is the image mounted there\?\)",
     "--root：其中没有 /etc，不是系统的根目录（镜像是否已挂载到此处？）"),
    (r"malformed YAML: (.+)", "YAML 格式错误：{0}"),
    (r"unknown file type '(.*)': expected \.csv or \.xlsx", "未知的文件类型“{0}”：应为 .csv 或 .xlsx"),
    (r"(\S+) file without the column\(s\) (.+); headers found: (.+)", "{0}文件缺少列：{1}；实际表头：{2}"),
    (r"no header row: the file holds no data", "没有表头行：文件中没有数据"),
    (r"cannot read: (.+)", "无法读取：{0}"),
    (r"not UTF-8 text \(byte (\d+)\)", "不是 UTF-8 文本（第 {0} 字节）"),
    (r"--only: no enabled control or article named (.+?) \((.+)\)", "--only：没有名为 {0} 的已启用控制项或条款（{1}）"),
    (r"not a date in YYYY-MM-DD form: '(.*)'", "不是 YYYY-MM-DD 格式的日期：“{0}”"),
    (r"not a quarter in YYYYQn form \(e\.g\. 2026Q4\): '(.*)'", "不是 YYYYQn 格式的季度（例如 2026Q4）：“{0}”"),
    (r"No such file or directory", "文件或文件夹不存在"), (r"Permission denied", "权限不足"),
    (r"Is a directory", "这是文件夹"), (r"Not a directory", "路径中有一段不是文件夹"),
    (r"unknown state '(.+)'; one of (.+)", "未知状态“{0}”；应为 {1} 之一"),
    (r"cannot decrypt with this identity: (.+)", "无法用此身份解密：{0}"),
    (r"not a usable identity: (.+)", "不是可用的身份文件：{0}"),
    (r"not a usable key name \(letters, digits, \. _ @ -\): (.+)", "不是可用的密钥名（字母、数字、. _ @ -）：{0}"),
    (r"not a usable database: (.+)", "不是可用的结果库：{0}"),
    (r"no unit (.+) in the inventory \(units: (.*)\)", "清单中没有单位 {0}（现有单位：{1}）"),
    # the JSON decoder's messages (json.JSONDecodeError.msg)
    (r"Expecting property name enclosed in double quotes", "此处应为带双引号的键名"),
    (r"Expecting value", "此处应有值"), (r"Expecting '(.)' delimiter", "此处应为分隔符 {0}"),
    (r"Unterminated string starting at", "字符串没有结束"), (r"Extra data", "多余的数据"),
    (r"Invalid control character at", "无效的控制字符"), (r"Invalid \\escape", "无效的转义"),
    # the messages of the modules under nanbu_secops/ (tests/test_i18n.py samples every one)
    (r"(\d+|x1) problem\(s\) in the forms; fix them before packaging", "建议表中有 {0} 处问题；请先改正再打包"),
    (r"the terminal's state on standard input: (.+)", "标准输入中的终端状态：{0}"),
    (r"(.+): not a folder", "{0}：不是文件夹"),
    (r"(.+): writable by its group or by everyone \(mode (.+)\), so anyone could plant or swap files in it; "
     r"refused \(chmod go-w it\)",
     "{0}：同组用户或所有人均可写（权限 {1}），任何人都可放入或替换其中的文件；拒绝使用（请执行 chmod go-w）"),
    (r"--root: no /etc in it, so not a system's root \(is the image mounted there\?\)",
     "--root：其中没有 /etc，不是系统的根目录（镜像是否已挂载到此处？）"),
    (r"--out must be a new or empty folder", "--out 须为新的或空的文件夹"),
    (r"--recipient: give at least one age1… key or \.recipient file", "--recipient：请至少给出一个 age1… 公钥或 .recipient 文件"),
    (r"the signing key must be Ed25519 \(make one with `nanbu-secops keys new`\)",
     "签名密钥须为 Ed25519（可用 nanbu-secops keys new 生成）"),
    (r"cert-authority lines are not supported \(bundles are signed with plain keys, never certificates\); "
     r"list the signers' keys", "不支持 cert-authority 行（数据包只用普通密钥签名，从不使用证书）；请列出签名者的公钥"),
    (r"cannot read (recipients|identity|signing key|allowed signers|the register|the head file): (.+)", "无法读取{0}：{1}"),
    (r"cannot create (the database|the register): (.+)", "无法创建{0}：{1}"),
    (r"bundles are encrypted to age X25519 recipients \(age1…, made by `keys new`\), not SSH keys",
     "数据包只加密给 age X25519 接收者（age1…，由 keys new 生成），不能用 SSH 公钥"),
    (r"not an unencrypted OpenSSH private key: (.+)", "不是未加密的 OpenSSH 私钥：{0}"),
    (r"no policy defines the variables (.+)", "没有策略定义变量 {0}"),
    (r"duplicate control id (.+) \(first defined at (.+)\)", "控制项编号 {0} 重复（首次定义于 {1}）"),
    (r"duplicate policy id (.+) \(also in (.+)\)", "策略编号 {0} 重复（也在 {1} 中）"),
    (r"duplicate key (.+)", "重复的键 {0}"),
    (r"(.+): host is missing", "{0}：缺少主机"),
    (r"(.+): port is missing after ':'", "{0}：冒号后缺少端口"),
    (r"(.+): port must be a number from 1 to 65535, not (.+)", "{0}：端口须为 1 到 65535 之间的数字，而不是 {1}"),
    (r"(.+): (.+) is not an IPv6 address", "{0}：{1} 不是 IPv6 地址"),
    (r"(.+): not an IPv6 address; write \[ADDRESS\]:PORT to give a port", "{0}：不是 IPv6 地址；带端口时请写作 [ADDRESS]:PORT"),
    (r"(.+): write an IPv6 address as \[ADDRESS\] or \[ADDRESS\]:PORT", "{0}：IPv6 地址请写作 [ADDRESS] 或 [ADDRESS]:PORT"),
    (r"(.+): not a valid name: (.+)", "{0}：不是有效的名称：{1}"),
    (r"no escrow recipient: give the unit account manager's age public key", "没有托管接收者：请给出单位账号管理员的 age 公钥"),
    (r"the entry's contents do not match its place in the escrow \(moved or renamed\?\)",
     "条目内容与其在托管库中的位置不符（被移动或改名？）"),
    (r"(.+)@(.+) is locked or has no password \((.+)\): rotation never unlocks an account \(only unlock_account\.yml does\)",
     "{0}@{1} 已锁定或没有口令（{2}）：更换凭据从不解锁账号（只有 unlock_account.yml 会）"),
    (r"similarity must be above 0 and at most 1, not (.+)", "相似度须大于 0 且不超过 1，而不是 {0}"),
    (r"the file names host (.+) but its folders \((.+)\) do not, and without --inventory the folder cannot be checked: "
     r"not stored", "文件自称主机 {0}，但其所在文件夹（{1}）不是；没有 --inventory 无法核对文件夹：未入库"),
    (r"host (.+) is not in the inventory(.*): not stored", "主机 {0} 不在清单中{1}：未入库"),
    (r" and none of its folders \((.+)\) names one", "，其所在文件夹（{0}）也都不是清单主机"),
    (r"the file names host (.+) but sits in the folder of (.+) \((.+)\); both are inventory hosts: not stored",
     "文件自称主机 {0}，却位于 {1} 的文件夹（{2}）中；两者都是清单主机：未入库"),
    (r"not a site inspect result of one unit: 'sites' must hold one site", "不是单个单位的网站检查结果：sites 须只含一个网站"),
    (r"sites\[0\]\.home: probes and ok must be counts, ok at most probes", "sites[0].home：probes 与 ok 须为计数，且 ok 不超过 probes"),
    (r"sites\[0\]\.columns: each needs a name and a status of (.+)", "sites[0].columns：每项都须有 name 和 status（{0}）"),
    (r"not an ipv6 check result: no 'targets' list", "不是 ipv6 check 结果：没有 targets 列表"),
    (r"(.+): '(.+)' missing or not text", "{0}：缺少 {1} 或不是文本"),
    (r"(.+): not a list of objects", "{0}：不是对象列表"),
    (r"(.+): not an object", "{0}：不是对象"),
    (r"(.+): missing or not text: (.+)", "{0}：缺少或不是文本：{1}"),
    (r"(.+): missing or not text", "{0}：缺少或不是文本"),
    (r"(.+): (.+) is not one of (.+)", "{0}：{1} 不是 {2} 之一"),
    (r"(.+): target (.+) appears twice", "{0}：目标 {1} 出现两次"),
    (r"(.+): control (.+) appears twice", "{0}：控制项 {1} 出现两次"),
    (r"(.+): not an RFC 3339 time: (.+)", "{0}：不是 RFC 3339 时间：{1}"),
    (r"database schema version (.+) is newer than this nanbu-secops knows \((.+)\); use the nanbu-secops release "
     r"that wrote it, or a later one", "结果库结构版本 {0} 比本 nanbu-secops 所知的（{1}）更新；请使用写入它的版本或更新的版本"),
    (r"no antivirus engine: clamscan is not installed and clamd \(with clamdscan\) does not answer; install the clamav "
     r"package", "没有防病毒引擎：未安装 clamscan，clamd（配合 clamdscan）也不应答；请安装 clamav 软件包"),
    (r"--quarantine: not a folder \(a symbolic link is refused too\)", "--quarantine：不是文件夹（符号链接也不接受）"),
    (r"nothing left to scan: every path is excluded or holds only excluded folders and links",
     "没有可查杀的内容：所有路径都已排除，或其中只有被排除的文件夹和链接"),
    (r"the site file needs unit \(the unit's code\) beside home, columns and allowed_external",
     "网站文件除 home、columns 和 allowed_external 外还须有 unit（单位代码）"),
    (r"(.+) is missing or not a mapping \(home, columns, allowed_external\)", "{0} 缺少或不是映射（home、columns、allowed_external）"),
    (r"(.+)\.columns must be a list", "{0}.columns 须为列表"),
    (r"(.+)\.allowed_external must be a list of domain suffixes", "{0}.allowed_external 须为域名后缀列表"),
    (r"a column needs name, url and kind", "栏目须有 name、url 和 kind"),
    (r"column (.+): kind must be dynamic or other, not (.+)", "栏目 {0}：kind 须为 dynamic 或 other，而不是 {1}"),
    (r"explanation: larger than (.+) KiB; record a text version", "说明文件：大于 {0} KiB；请登记文本版本"),
    (r"explanation: looks binary \(control characters\); a UTF-8 text file is needed",
     "说明文件：像是二进制文件（含控制字符）；须为 UTF-8 文本文件"),
    (r"(.+): must be a non-empty text", "{0}：须为非空文本"),
    (r"(.+): must not contain control characters or line breaks", "{0}：不能含控制字符或换行"),
    (r"explanation: is a folder, not a text file", "说明文件：这是文件夹，不是文本文件"),
    (r"explanation: file not found", "说明文件：文件不存在"), (r"explanation: is empty", "说明文件：为空"),
    (r"explanation: cannot read: (.+)", "说明文件：无法读取：{0}"),
    (r"explanation: not UTF-8 text \(byte (.+)\); scan or convert it to a UTF-8 text file first",
     "说明文件：不是 UTF-8 文本（第 {0} 字节）；请先扫描或转换为 UTF-8 文本文件"),
    (r"not valid (.+) text \(the file mixes encodings\?\)", "不是有效的 {0} 文本（文件混用了编码？）"),
    (r"not valid (.+) text", "不是有效的 {0} 文本"),
    (r"not (\S+) text: (.+) at byte (.+)", "不是 {0} 文本：第 {2} 字节处 {1}"),
    (r"an old Excel 97-2003 workbook \(\.xls\): save it as \.xlsx or CSV \(UTF-8\)",
     "旧版 Excel 97-2003 工作簿（.xls）：请另存为 .xlsx 或 CSV（UTF-8）"),
    (r"unknown file type (.+): expected \.csv or \.xlsx", "未知的文件类型 {0}：应为 .csv 或 .xlsx"),
    (r"(.+) must be a mapping, not (.+)", "{0} 须为映射，而不是 {1}"),
    (r"(.+) must be a mapping", "{0} 须为映射"),
    (r"neither UTF-8 nor GB18030 text \(bad byte at offset (.+)\): save it as CSV UTF-8",
     "既不是 UTF-8 也不是 GB18030 文本（偏移 {0} 处字节有误）：请另存为 CSV UTF-8"),
    (r"corrupt workbook \(bad zip: (.+)\)", "工作簿已损坏（zip 格式错误：{0}）"),
    (r"corrupt or unreadable workbook \((.+)\)", "工作簿已损坏或无法读取（{0}）"),
    (r"corrupt workbook after row (.+) \((.+)\)", "工作簿在第 {0} 行之后损坏（{1}）"),
    (r"no sheet named (.+) \(sheets: (.*)\)", "没有名为 {0} 的工作表（现有：{1}）"),
    (r"the workbook has no worksheet", "工作簿中没有工作表"),
    (r"sheet (.+) is a chart, not a table", "工作表 {0} 是图表，不是表格"),
    (r"malformed CSV \(an unclosed quote\?\): (.+)", "CSV 格式错误（引号没有闭合？）：{0}"),
    (r"keys must be plain names", "键须为普通名称"),
    (r"an Excel workbook, not CSV text: name it \.xlsx or save it as CSV", "这是 Excel 工作簿而不是 CSV 文本：请改名为 .xlsx 或另存为 CSV"),
    (r"(.+): expected the header text \(quote it if it looks like a number or yes/no\), got (.+)",
     "{0}：应为表头文字（看起来像数字或 yes/no 时请加引号），实际为 {1}"),
    (r"(.+)\.sheet: give one sheet name", "{0}.sheet：请给出一个工作表名"),
    (r"(.+): header (.+) is mapped to both (.+) and (.+)", "{0}：表头 {1} 同时对应 {2} 和 {3}"),
    (r"not an \.xlsx workbook \(it is not a zip file\); if it is CSV text, name it \.csv",
     "不是 .xlsx 工作簿（不是 zip 文件）；如果是 CSV 文本，请改名为 .csv"),
    (r"ansible-inventory not found: install nanbu-secops with its controller extra \(pip install 'nanbu-secops\[controller\]'\)",
     "找不到 ansible-inventory：请安装带 controller 附加组件的 nanbu-secops（pip install 'nanbu-secops[controller]'）"),
    (r"ansible-inventory printed no inventory", "ansible-inventory 没有输出清单"),
    (r"ansible-inventory did not finish in (.+) s", "ansible-inventory 在 {0} 秒内没有结束"),
    (r"group (.+): unit must be a mapping, not (.+)", "组 {0}：unit 须为映射，而不是 {1}"),
    (r"host (.+) is in two units, (.+) and (.+)", "主机 {0} 同时属于两个单位：{1} 和 {2}"),
    (r"--include: no such file or folder", "--include：文件或文件夹不存在"),
    # proposal forms (proposal/form.py)
    (r"(\S+) is empty", "{0} 为空"),
    (r"(\S+) must be text, not a list or mapping", "{0} 须为文本，不能是列表或映射"),
    (r"(.+) must be 'key: value' lines", "{0} 须为“键: 值”形式的行"),
    (r"unknown key '(.+)' in (.+) \(allowed: (.+), or their English names\)", "{1} 中有未知的键“{0}”（允许：{2}，或其英文名）"),
    (r"(\S+) is given twice \(also as (\S+) on line (\d+)\)", "{0} 重复给出（第 {2} 行也有 {1}）"),
    (r"missing (\S+) \((\S+)\) in (.+)", "{2} 中缺少 {0}（{1}）"),
    (r"'(.*)' is not allowed \(one of (.+)\)", "不允许“{0}”（应为 {1} 之一）"),
    (r"(\d+) characters, at most (\d+)", "{0} 个字符，最多 {1} 个"),
    (r"'(.*)' is neither a mobile number \(11 digits, e\.g\. 13812345678\) nor a landline \(e\.g\. 0817-5512345\)",
     "“{0}”既不是手机号（11 位，例如 13812345678）也不是固定电话（例如 0817-5512345）"),
    # why ingest skips a file or refuses to store it (store/ingest.py)
    (r"host '(.+)' is not in the inventory and none of its folders \((.+)\) names one: not stored",
     "主机“{0}”不在清单中，其所在文件夹（{1}）也都不是清单主机：未入库"),
    (r"host '(.+)' is not in the inventory: not stored", "主机“{0}”不在清单中：未入库"),
    (r"the file names host '(.+)' but sits in the folder of '(.+)' \((.+)\); both are inventory hosts: not stored",
     "文件自称主机“{0}”，却位于“{1}”的文件夹（{2}）中；两者都是清单主机：未入库"),
    (r"its folders \((.+)\) name several inventory hosts \((.+)\): not stored", "其所在文件夹（{0}）含多个清单主机（{1}）：未入库"),
    (r"malformed JSON: (.+) \(line (\d+) column (\d+)\)", "JSON 格式错误：{0}（第 {1} 行第 {2} 列）"),
    (r"not a check result: not a JSON object", "不是检查结果：不是 JSON 对象"),
    (r"not a check result: no 'results' list", "不是检查结果：没有 results 列表"),
    (r"a symbolic link \(or inside one\): not followed", "符号链接（或位于其中）：不跟随"),
    # last: "--option: what", the what said on its own
    (r"(--[a-z-]+): (.+)", "{0}：{1}"),
)]
_ERROR_WORDS = {"file": "文件", "folder": "文件夹", "form": "建议表", "inventory": "清单", "bundle file": "数据包文件",
                "policy file or folder": "策略文件或文件夹", "file or folder to scan": "要查杀的文件或文件夹",
                "proposal form": "建议表", "policy file": "策略文件", "accounts": "账号", "logins": "登录日志",
                "roster": "花名册", "file or folder": "文件或文件夹", "folder for the bundle": "要打包的文件夹",
                "recipients": "接收者文件", "identity": "身份文件", "signing key": "签名密钥",
                "allowed signers": "allowed-signers 文件", "the register": "登记簿", "the head file": "登记簿的 .head 文件",
                "the database": "结果库"}


def problem(text: str, lang: str) -> str:
    """Why input was refused or skipped (:data:`ERRORS`, else :func:`say`), in ``lang``."""
    if lang != "zh":
        return text
    for pattern, template in ERRORS:
        found = pattern.fullmatch(text)
        if found:
            return template.format(*(_ERROR_WORDS.get(g) or problem(g, lang) for g in found.groups()))
    if "; " in text:                                   # several problems in one message, each said on its own
        return "；".join(problem(part, lang) for part in text.split("; "))
    return say(text, lang)


def error_message(exc: Any, lang: str) -> str:
    """An :class:`~nanbu_secops.errors.InputError` as one line in ``lang``: the file and line, then the message."""
    message = problem(exc.message, lang)
    where = exc.source or ""
    if where and exc.line is not None:
        where = f"{where}:{exc.line}"
    return f"{where}: {message}" if where else message     # "file:line: " as compilers write it, in both languages


# The CLI's own status lines: key -> (zh, en) templates filled with str.format.
MESSAGES: dict[str, tuple[str, str]] = {
    "policy ok": ("{path}：通过（{id} {version}，{controls} 个控制项）", "{path}: ok ({id} {version}, {controls} controls)"),
    "variables ok": ("变量校验通过：{commands}", "variables ok for: {commands}"),
    "register": ("{path}：{state}（{entries} 条）", "{path}: {state} ({entries} entries)"),
    "register ok": ("完好", "ok"), "register broken": ("已损坏", "BROKEN"),
    "escrow opened": ("已打开 {account}@{host} 的{kind}，托管于 {created}",
                      "opened {kind} of {account}@{host} escrowed {created}"),
    "bundle made": ("{out}：{kind}数据包 {id}，{files} 个文件，由 {principal}（{fingerprint}）签名；签名文件 {out}.sig",
                    "{out}: {kind} bundle {id}, {files} files, signed by {principal} ({fingerprint}); signature {out}.sig"),
    "incident": ("事件", "incident"), "proposal": ("建议", "proposal"),
    "forms ok": ("{count} 份建议表：通过", "{count} form(s): ok"),
    "would store": ("将存入 {path}：{owner} 的{kind}（单位 {unit}{seen_as}），时间 {when}",
                    "would store {path}: {kind} of {owner} (unit {unit}{seen_as}) at {when}"),
    "not stored file": ("nanbu-secops：未入库 {path}：{reason}", "nanbu-secops: not stored {path}: {reason}"),
    "skipped file": ("nanbu-secops：已跳过 {path}：{reason}", "nanbu-secops: skipped {path}: {reason}"),
    "reported as": ("，文件中自称 {reported}", ", reported as {reported}"),
    "run": ("检查结果", "run"), "unreachable": ("不可达标记", "unreachable"),
    "endpoints": ("IPv6 检查结果", "endpoints"), "site": ("网站检查结果", "site"),
    "dry run": ("（试运行：未写入）", " (dry run: nothing written)"),
    "ingest summary": ("{db}{dry}：{files} 个文件，新增 {runs_added} 次检查，{runs_skipped} 次已存在，"
                       "{results_added} 条结果，{unreachable_added} 个不可达标记，{endpoint_runs_added} 次接口检查"
                       "（{endpoints_added} 个接口），{site_runs_added} 次网站检查，{refused} 个未入库（主机存疑），"
                       "{bad} 个已跳过",
                       "{db}{dry}: {files} files, {runs_added} runs added, {runs_skipped} already there, "
                       "{results_added} results, {unreachable_added} unreachable markers, "
                       "{endpoint_runs_added} endpoint runs ({endpoints_added} endpoints), "
                       "{site_runs_added} site inspections, {refused} not stored (host in doubt), {bad} skipped"),
}


def message(key: str, lang: str, **fields: Any) -> str:
    """One of the CLI's status lines (:data:`MESSAGES`) in ``lang``."""
    zh, en = MESSAGES[key]
    return (zh if lang == "zh" else en).format(**fields)


# What a progress bar on the terminal says it is doing (:func:`nanbu_secops.progress.meter`):
# key -> (zh, en), each with ``{0}`` for the file when there is one.
PROGRESS: dict[str, tuple[str, str]] = {
    "pack": ("打包 {0}", "packing {0}"), "ipv6 links": ("IPv6 链接", "IPv6 links"), "links": ("链接", "links"),
    "verify": ("校验 {0}", "checking {0}"), "open": ("校验并解包 {0}", "checking and opening {0}"),
    "forward": ("校验并转发 {0}", "checking and forwarding {0}"),
    "accounts": ("读取账号、登录和花名册文件", "reading the account, login and roster files"),
    "ingest": ("导入检查结果", "loading check results"),
    "quarterly": ("生成季度报告", "building the quarterly report"), "annual": ("生成年度报告", "building the annual report"),
}


def progress_label(key: str, lang: str, what: str = "") -> str:
    zh, en = PROGRESS[key]
    return (zh if lang == "zh" else en).format(what)
