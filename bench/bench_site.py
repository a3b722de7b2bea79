"""Benchmark: ``site inspect`` beside LinkChecker on one generated 2,000-page site served by nginx.

    .venv/bin/python bench/bench_site.py [--sections 40] [--per-section 50] [--depth 3] [--runs 3]

A real nginx (Debian's, started here from its own config in a temporary folder with
tests/webservers.py; never the system service) serves on ``127.0.0.1`` a portal whose home page
links to ``--sections`` section pages, each listing ``--per-section`` dated articles and one
missing page; every article links back to its section, to the home page and to the next article.
At depth 3 both tools read every page (home, sections, articles: 2,041 pages by default) and
check every link on them.

Measured, median of ``--runs`` (default 1: LinkChecker takes minutes), alternating in each round,
each a separate process (its own peak RSS from ``wait4``):

1. ours: ``nanbu-secops site inspect URL --depth 3 --probes 1 --format json``;
2. LinkChecker (Debian package ``linkchecker``): ``linkchecker -r 3 --check-extern -o csv URL``,
   with its defaults (10 threads, at most 10 requests a second per host); ``--unthrottled`` lifts
   that limit (``maxrequestspersecond=1000`` in a config file), to compare the tools' own work.

Both must report the same dead links (one per section); prints both times, pages per second,
the speed ratio, each one's peak RSS, and whether the goals hold (≥ 3× LinkChecker's speed, at
most 150 MB). Nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.webservers import VHost, running, web_folder  # noqa: E402

AGENT = ROOT / ".venv" / "bin" / "nanbu-secops"
LINKCHECKER = "/usr/bin/linkchecker"
GOAL_RATIO, GOAL_RSS_MB = 3.0, 150.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _page(title: str, body: str) -> bytes:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1>{body}</body></html>\n").encode()


def build_site(root: Path, sections: int, per_section: int) -> int:
    """Write the pages; return how many there are."""
    today = dt.date(2026, 1, 1)  # page content only: nothing here is judged against a date
    count = 1
    nav = "".join(f"<li><a href='/s{s}/'>栏目{s}</a></li>" for s in range(sections))
    (root / "index.html").write_bytes(_page("首页", f"<ul>{nav}</ul>"))
    for s in range(sections):
        folder = root / f"s{s}"
        folder.mkdir()
        items = "".join(f"<li><a href='/s{s}/{a}.html'>文章{a}</a><span>{today - dt.timedelta(days=a)}</span></li>"
                        for a in range(per_section))
        (folder / "index.html").write_bytes(_page(f"栏目{s}", f"<ul>{items}<li><a href='/s{s}/gone.html'>旧文</a></li></ul>"))
        count += 1
        for a in range(per_section):
            nxt = f"/s{s}/{(a + 1) % per_section}.html"
            (folder / f"{a}.html").write_bytes(_page(f"文章{a}", "<p>" + "正文内容。" * 200 + "</p>"
                                                     f"<a href='/s{s}/'>返回</a> <a href='/'>首页</a> <a href='{nxt}'>下一篇</a>"))
            count += 1
    for path in (root, *root.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return count


# A fork of this (large) process would carry its peak RSS into the child, and Linux keeps a
# process's peak across exec; so each command is started by a small fresh interpreter, whose
# own fork is small, and which reports its child's peak from wait4.
SPAWN = ("import os, sys\n"
         "pid = os.fork()\n"
         "if pid == 0:\n"
         "    os.execv(sys.argv[1], sys.argv[1:])\n"
         "_, status, usage = os.wait4(pid, 0)\n"
         "sys.stderr.write(f'\\nPEAK-RSS-KIB {usage.ru_maxrss}\\n')\n"
         "sys.exit(os.waitstatus_to_exitcode(status))\n")


def _timed(cmd: list[str], cwd: Path) -> tuple[float, int, str]:
    """(seconds, peak RSS in KiB, standard output) of one process."""
    out, err = cwd / "out.txt", cwd / "err.txt"
    with open(out, "wb") as sink, open(err, "wb") as errors:
        start = time.perf_counter()
        code = subprocess.call(["/usr/bin/python3", "-S", "-c", SPAWN, *cmd], stdout=sink, stderr=errors, cwd=cwd,
                               env={**os.environ, "HOME": str(cwd)})
        seconds = time.perf_counter() - start
    said = err.read_text(errors="replace")
    if code not in (0, 1) or "PEAK-RSS-KIB" not in said:
        raise SystemExit(f"{cmd[0]} exited with {code}: {said[-1000:]}")
    return seconds, int(said.rsplit("PEAK-RSS-KIB", 1)[1]), out.read_text(encoding="utf-8", errors="replace")


def ours(home: str, depth: int, work: Path) -> tuple[float, int, set[str]]:
    seconds, rss, out = _timed([str(AGENT), "site", "inspect", home, "--depth", str(depth), "--probes", "1",
                                "--format", "json"], work)
    return seconds, rss, {d["url"] for d in json.loads(out)["sites"][0]["dead_links"]}


def theirs(home: str, depth: int, work: Path, unthrottled: bool = False) -> tuple[float, int, set[str]]:
    config: list[str] = []
    if unthrottled:  # LinkChecker's default is 10 requests a second per host
        rc = work / "linkcheckerrc"
        rc.write_text("[checking]\nmaxrequestspersecond=1000\n")
        rc.chmod(0o644)
        config = ["-f", str(rc)]
    seconds, rss, out = _timed([LINKCHECKER, *config, "--no-status", "--check-extern", "-r", str(depth), "-o", "csv",
                                home], work)
    lines = [line for line in out.splitlines() if line and not line.startswith("#")]
    rows = csv.DictReader(io.StringIO("\n".join(lines)), delimiter=";")
    return seconds, rss, {row["url"] for row in rows if row["valid"] != "True"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", type=int, default=40)
    parser.add_argument("--per-section", type=int, default=50)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1, help="rounds (LinkChecker needs minutes per run)")
    parser.add_argument("--unthrottled", action="store_true",
                        help="lift LinkChecker's limit of 10 requests a second per host (maxrequestspersecond)")
    args = parser.parse_args()
    for need, package in ((LINKCHECKER, "linkchecker"), ("/usr/sbin/nginx", "nginx")):
        if not Path(need).exists():
            raise SystemExit(f"{need} is missing: run `bash scripts/setup.sh --test` (Debian package {package})")
    folder = web_folder()
    try:
        root, work = folder / "site", folder / "work"
        root.mkdir()
        work.mkdir(mode=0o777)
        work.chmod(0o777)  # LinkChecker drops from root to nobody
        pages = build_site(root, args.sections, args.per_section)
        port = _free_port()
        home = f"http://127.0.0.1:{port}/"
        results: dict[str, list[tuple[float, int]]] = {"ours": [], "linkchecker": []}
        with running("nginx", None, [VHost(("bench",), ("127.0.0.1",), port, root=root)], folder):
            for round_ in range(args.runs):
                order = ("ours", "linkchecker") if round_ % 2 == 0 else ("linkchecker", "ours")
                dead: dict[str, set[str]] = {}
                for which in order:
                    if which == "ours":
                        seconds, rss, dead[which] = ours(home, args.depth, work)
                    else:
                        seconds, rss, dead[which] = theirs(home, args.depth, work, args.unthrottled)
                    results[which].append((seconds, rss))
                if dead["ours"] != dead["linkchecker"] or len(dead["ours"]) != args.sections:
                    raise SystemExit(f"dead links differ: ours {len(dead['ours'])}, LinkChecker {len(dead['linkchecker'])}:"
                                     f" {sorted(dead['ours'] ^ dead['linkchecker'])[:5]}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    rss = {k: max(r for _, r in v) / 1024 for k, v in results.items()}
    print(f"pages: {pages}   depth: {args.depth}   runs: {args.runs}   server: nginx on 127.0.0.1   "
          f"dead links: {args.sections} (the same in both)")
    print(f"{'command':40} {'median s':>9} {'pages/s':>9} {'peak RSS':>10}   runs (s)")
    limit = "unthrottled" if args.unthrottled else "10 req/s per host"
    for name, label in (("ours", "nanbu-secops site inspect"), ("linkchecker", f"linkchecker (10 threads, {limit})")):
        print(f"{label:40} {med[name]:9.2f} {pages / med[name]:9.0f} {rss[name]:7.1f} MiB   "
              + ", ".join(f"{t:.2f}" for t, _ in results[name]))
    ratio = med["linkchecker"] / med["ours"]
    print(f"speed ours/linkchecker: {ratio:.2f}x (goal >= {GOAL_RATIO:g}x: {'met' if ratio >= GOAL_RATIO else 'NOT met'})"
          f"   our peak RSS {rss['ours']:.1f} MiB (goal <= {GOAL_RSS_MB:g} MB: "
          f"{'met' if rss['ours'] * 1.048576 <= GOAL_RSS_MB else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
