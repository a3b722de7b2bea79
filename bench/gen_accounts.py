"""Generate a realistic account audit data set: platform accounts, login log, HR roster.

    .venv/bin/python bench/gen_accounts.py --accounts 100000 --events 5000000 --out DIR [--seed 1]

Writes DIR/accounts.csv, DIR/logins.csv (sorted by login time) and DIR/roster.csv, UTF-8 with
Chinese headers, times in 2026-01-01..2026-11-27 (Asia/Shanghai, no offset). Deterministic for a
seed. The log is generated and written one day at a time, so memory stays flat at any size.

What is in it, so the audit has something to find:
- most accounts log in a few times a week on workdays from one or two terminals of their unit;
- ~7% dormant (last login months before the end), ~4% never used, ~6% disabled (停用);
- ~1% shared: some sessions overlap a session from another unit's terminal;
- ~10% of sessions have no logout time;
- roster: most holders 在职/在编; some 聘用/临时, 离职, 退休, 借调; ~3% missing; ~1% in another unit.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import itertools
import random
import time
from array import array
from pathlib import Path

START = dt.date(2026, 1, 1)
END = dt.date(2026, 11, 27)
DAYS = (END - START).days + 1

UNITS = [
    "南部县人民政府办公室", "县发展和改革局", "县教育科技和体育局", "县公安局", "县民政局", "县司法局", "县财政局",
    "县人力资源和社会保障局", "县自然资源和规划局", "县生态环境局", "县住房和城乡建设局", "县交通运输局", "县水利局",
    "县农业农村局", "县商务和经济合作局", "县文化广播电视和旅游局", "县卫生健康局", "县退役军人事务局",
    "县应急管理局", "县审计局", "县市场监督管理局", "县统计局", "县医疗保障局", "县林业局", "县信访局",
    "县行政审批局", "县政务服务和大数据管理局", "县机关事务服务中心", "县融媒体中心", "县档案馆",
    "南隆街道办事处", "蜀北街道办事处", "河东街道办事处", "定水镇人民政府", "盘龙镇人民政府", "王家镇人民政府",
    "富利镇人民政府", "东坝镇人民政府", "建兴镇人民政府", "升钟镇人民政府", "保城镇人民政府", "大桥镇人民政府",
]
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏"
            "吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = ("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉"
         "建国志宏海波文斌宇浩凯健俊帆帅旭宁婷雪琳晨欣怡佳颖梅倩丹洁蓉")
ROLES = ["信息发布员"] * 60 + ["信息审核员"] * 25 + ["栏目管理员"] * 10 + ["系统管理员"] * 4 + ["超级管理员"]
TIMES = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]
DATES = [(START + dt.timedelta(days=d)).isoformat() for d in range(DAYS)]

REGULAR, DORMANT, NEVER, SHARED, DISABLED = range(5)


def name(rng: random.Random) -> str:
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(SURNAMES) + given


def stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def day_quotas(events: int, rng: random.Random) -> list[int]:
    """Events per day, summing to ``events`` exactly: workdays busy, weekends quiet."""
    weights = [(0.15 if (START + dt.timedelta(days=d)).weekday() >= 5 else 1.0) * rng.uniform(0.85, 1.15)
               for d in range(DAYS)]
    total = sum(weights)
    raw = [events * w / total for w in weights]
    quotas = [int(r) for r in raw]
    for d in sorted(range(DAYS), key=lambda d: raw[d] - quotas[d], reverse=True)[: events - sum(quotas)]:
        quotas[d] += 1
    return quotas


def generate(n_accounts: int, n_events: int, out: Path, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    n_units = len(UNITS)

    # Accounts: holder, unit, kind, active window (first..last day with logins), terminals.
    kind = array("b")
    first_day, last_day = array("l"), array("l")
    weight = array("d")
    term_a, term_b = array("l"), array("l")          # terminal ids; -1 = none
    unit_of, person_of, created = array("l"), array("l"), []
    people: list[tuple[str, int]] = []               # (name, unit)
    terminals_per_unit = max(4, n_accounts // n_units // 2)
    for _i in range(n_accounts):
        u = min(int(rng.paretovariate(1.2)) - 1, n_units - 1) if rng.random() < 0.5 else rng.randrange(n_units)
        if people and rng.random() < 0.05:           # a second account for someone already holding one
            p = rng.randrange(len(people))
            u = people[p][1]
        else:
            p = len(people)
            people.append((name(rng), u))
        r = rng.random()
        k = REGULAR if r < 0.82 else DORMANT if r < 0.89 else NEVER if r < 0.93 else SHARED if r < 0.94 else DISABLED
        if rng.random() < 0.8:
            made = dt.datetime(rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28),
                               rng.randint(8, 17), rng.randrange(60), rng.randrange(60))
            start = 0
        else:
            start = rng.randrange(DAYS - 30)
            made = dt.datetime.combine(START + dt.timedelta(days=start), dt.time(7, rng.randrange(60)))
        end = DAYS - 1
        if k == DORMANT:
            end = min(DAYS - 1, max(start, rng.randrange(14, DAYS - 100)))
        elif k == DISABLED:
            end = rng.randrange(start, DAYS)
        kind.append(k)
        first_day.append(start)
        last_day.append(end)
        weight.append(0.0 if k == NEVER else 2.0 if k == SHARED else rng.uniform(0.4, 2.0))
        base = u * terminals_per_unit
        term_a.append(base + rng.randrange(terminals_per_unit))
        term_b.append(base + rng.randrange(terminals_per_unit) if rng.random() < 0.4 else -1)
        unit_of.append(u)
        person_of.append(p)
        created.append(made)

    cum = list(itertools.accumulate(weight))
    total_w = cum[-1] or 1.0
    last_login = array("q", [-1]) * n_accounts
    shared = [i for i in range(n_accounts) if kind[i] == SHARED]

    # Terminal t belongs to unit t // terminals_per_unit: a host name and a fixed address.
    term_names, term_ips = [], []
    for t in range(n_units * terminals_per_unit):
        u, k = divmod(t, terminals_per_unit)
        term_names.append(f"NB{u:02d}-PC{k:04d}")
        term_ips.append(f"10.{16 + u}.{k // 250}.{k % 250 + 1}")

    started = time.perf_counter()
    written = 0
    with (out / "logins.csv").open("w", encoding="utf-8", newline="") as f:
        f.write("账号,登录时间,退出时间,来源IP,终端\n")
        for day, quota in enumerate(day_quotas(n_events, rng)):
            sessions: list[tuple[int, int, int, int]] = []      # (login second, account, duration|-1, terminal)
            eligible: list[int] | None = None        # only when rejection sampling finds nobody
            while len(sessions) < quota:
                before = len(sessions)
                for _ in range(quota - len(sessions)):
                    if len(sessions) >= quota:
                        break
                    if eligible is None:
                        a = bisect.bisect(cum, rng.random() * total_w)
                        if a >= n_accounts or not first_day[a] <= day <= last_day[a]:
                            continue
                    else:
                        a = rng.choice(eligible)
                    sec = (8 * 3600 + int(rng.random() * 36000)) if rng.random() < 0.9 else \
                        (18 * 3600 + int(rng.random() * 18000))
                    dur = min(int(rng.expovariate(1 / 2400)) + 60, 86399 - sec)
                    t = term_b[a] if term_b[a] >= 0 and rng.random() < 0.3 else term_a[a]
                    sessions.append((sec, a, dur if rng.random() >= 0.1 else -1, t))
                    if kind[a] == SHARED and rng.random() < 0.4 and len(sessions) < quota:
                        other = rng.randrange(n_units * terminals_per_unit)        # someone else's terminal
                        lent = min(86399, sec + rng.randrange(max(1, dur if dur > 0 else 600)))
                        sessions.append((lent, a, min(rng.randrange(300, 5400), 86399 - lent), other))
                if len(sessions) == before and eligible is None:
                    eligible = [a for a in range(n_accounts) if weight[a] > 0 and first_day[a] <= day <= last_day[a]]
                if not eligible and eligible is not None:
                    break                                  # nobody can log in that day (tiny data sets)
            sessions.sort()
            date = DATES[day] + " "
            lines = []
            for sec, a, dur, t in sessions:
                lines.append(f"nb{a:06d},{date}{TIMES[sec]},{date + TIMES[sec + dur] if dur >= 0 else ''},"
                             f"{term_ips[t]},{term_names[t]}\n")
                last_login[a] = day * 86400 + sec
            f.write("".join(lines))
            written += len(lines)
    log_seconds = time.perf_counter() - started

    with (out / "accounts.csv").open("w", encoding="utf-8", newline="") as f:
        f.write("账号,姓名,单位,角色,状态,创建时间,最后登录时间\n")
        for a in range(n_accounts):
            seen = last_login[a]
            last = f"{DATES[seen // 86400]} {TIMES[seen % 86400]}" if seen >= 0 else ""
            holder, _ = people[person_of[a]]
            status = "停用" if kind[a] == DISABLED else "正常"
            f.write(f"nb{a:06d},{holder},{UNITS[unit_of[a]]},{rng.choice(ROLES)},{status},{stamp(created[a])},{last}\n")

    with (out / "roster.csv").open("w", encoding="utf-8", newline="") as f:
        f.write("姓名,工号,单位,在职状态,编制\n")
        staff = [(holder, u) for holder, u in people]
        staff += [(name(rng), rng.randrange(n_units)) for _ in range(len(people) // 10)]   # staff without accounts
        order = list(range(len(staff)))
        rng.shuffle(order)
        for number, s in enumerate(order, 1):
            holder, u = staff[s]
            r = rng.random()
            if r < 0.03:
                continue                                            # missing from the roster
            if r < 0.04:
                u = (u + 1 + rng.randrange(n_units - 1)) % n_units  # HR has them in another unit
            r = rng.random()
            employment = "在职" if r < 0.94 else "离职" if r < 0.97 else "退休" if r < 0.99 else "借调"
            r = rng.random()
            establishment = "在编" if r < 0.9 else "聘用" if r < 0.97 else "临时"
            f.write(f"{holder},NB{number:07d},{UNITS[u]},{employment},{establishment}\n")

    return {"events": written, "shared_accounts": len(shared), "log_seconds": log_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.accounts < 1 or args.events < 0:
        parser.error("--accounts must be >= 1 and --events >= 0")
    started = time.perf_counter()
    stats = generate(args.accounts, args.events, args.out, args.seed)
    print(f"{args.out}: {args.accounts} accounts, {stats['events']} login events "
          f"({stats['shared_accounts']} shared accounts) in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
