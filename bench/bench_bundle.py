"""Benchmark: incident bundles beside the plain tools, whole processes, in the same run.

    .venv/bin/python bench/bench_bundle.py [--size-mib 1024] [--runs 3] [--digest sha256|sha256,sm3]

Evidence: --size-mib MiB of random bytes in 16 files, written once to a temporary folder (deleted
at the end). In each round the tool and its baseline run one after the other, the order swapped
every round, so the noise of this shared machine hits both; medians are printed.

1. ``incident collect --include EVIDENCE``: its CPU seconds (user + system, all its processes) per
   GiB of evidence against the format's floor (5), goal <= 1.3x (issue 16). Beside it, timed
   the same way, ``tar -cf - EVIDENCE | age -r RECIPIENT > out.age`` for the throughput ratio
   (no goal: the old >= 1.5x was beyond what the format allows on two cores), and two parts of
   collect that no floor counts, measured in this run: the same collect of a one-byte file
   (start-up, policies, the snapshot of this machine, signing) and ``cat EVIDENCE/* > FILE``
   (reading and writing the bytes once, which any writer must do).
2. ``incident verify BUNDLE --identity --trust`` beside ``sha256sum -c SHA256SUMS`` in a copy
   extracted once with ``incident open``; time ratio ours/baseline, goal <= 1.0x (issue 16).
   Verify holds item 2's binding: one descriptor, the ciphertext hashed as it is decrypted.
3. ``incident open BUNDLE --identity --trust --out DIR`` (verify, then decrypt again from the
   same descriptor and extract only what was verified) beside ``age -d -i KEY BUNDLE | tar -x``
   followed by ``sha256sum -c`` (the same by hand, without the signatures); no goal.
4. Peak RSS of collect and verify (``/usr/bin/time -f %M``; goal <= 100 MB at 1 GiB of evidence).
5. The format's floor: the three passes any writer of this bundle must make over the evidence
   (SHA-256 per file for the manifest, ChaCha20-Poly1305 for age, SHA-256 of the ciphertext for
   the detached SSHSIG), timed here in this process with hashlib and cryptography, without
   reading, writing or the snapshot.

Caches are warm (the evidence was just written); ``sync`` runs, untimed, before each timed command
so one run's dirty pages are not written back during the next. A missed goal is reported, never an
error: the exit code is non-zero only when a command fails.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MIB = 1 << 20
GIB = 1 << 30
FILES = 16
WRITE_CHUNK = 4 * MIB
GNU_TIME = "/usr/bin/time"
RSS_GOAL_BYTES = 100 * 1000 * 1000  # 100 MB
CPU_GOAL = 1.3  # collect's CPU seconds per GiB over the format floor's (issue 16)
VERIFY_GOAL = 1.0  # verify's time over sha256sum -c's (issue 16)

# Fallback when GNU time is absent: a fresh process runs the one child, so RUSAGE_CHILDREN is that child's.
RUSAGE_HELPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "open(sys.argv[1], 'w').write(f'{u.ru_maxrss} {u.ru_utime} {u.ru_stime}')\n"
    "sys.exit(code)\n"
)


class CommandFailed(Exception):
    pass


def timed(argv: list[str], rss_file: Path, cwd: Path | None = None) -> tuple[float, float, float]:
    """Run ``argv`` once; return (wall seconds, peak RSS in MiB of its largest process, CPU seconds)."""
    if os.access(GNU_TIME, os.X_OK):
        wrapped = [GNU_TIME, "-f", "%M %U %S", "-o", str(rss_file), *argv]
    else:
        wrapped = [sys.executable, "-c", RUSAGE_HELPER, str(rss_file), *argv]
    os.sync()
    start = time.perf_counter()
    done = subprocess.run(wrapped, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace")[-3000:]
        raise CommandFailed(f"{' '.join(argv)} failed (exit {done.returncode}):\n{tail}")
    rss_kib, user, system = rss_file.read_text().split()[-3:]
    rss_file.unlink()
    return elapsed, int(rss_kib) / 1024, float(user) + float(system)


def run(argv: list[str]) -> None:
    """Run an untimed setup command; raise CommandFailed with its output when it fails."""
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True)
    if done.returncode != 0:
        out = (done.stdout + done.stderr).decode(errors="replace")[-3000:]
        raise CommandFailed(f"{' '.join(argv)} failed (exit {done.returncode}):\n{out}")


def write_evidence(folder: Path, size: int) -> None:
    folder.mkdir()
    each, rest = divmod(size, FILES)
    for i in range(FILES):
        left = each + (rest if i == FILES - 1 else 0)
        with open(folder / f"evidence-{i:02d}.bin", "wb") as handle:
            while left:
                n = min(WRITE_CHUNK, left)
                handle.write(os.urandom(n))
                left -= n


def age_recipient(path: Path) -> str:
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    raise CommandFailed(f"no recipient in {path}")


Measures = tuple[float, float, float]


def alternate(runs: int, ours: Callable[[], Measures], base: Callable[[], Measures],
              after: Callable[[], None] = lambda: None) -> tuple[list[Measures], list[Measures]]:
    """Each command once per round, the order swapped every round, so the noise hits both."""
    mine: list[Measures] = []
    theirs: list[Measures] = []
    for round_ in range(runs):
        for which in ((0, 1) if round_ % 2 == 0 else (1, 0)):
            (mine if which == 0 else theirs).append(ours() if which == 0 else base())
            after()
    return mine, theirs


def crypto_floor(folder: Path) -> float:
    """CPU seconds of SHA-256 + ChaCha20-Poly1305 + SHA-256 over the evidence (already in memory
    per file, so no I/O is counted): the least work a writer of the bundle format can do."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    aead, spent, outer = ChaCha20Poly1305(os.urandom(32)), 0.0, hashlib.sha256()
    for path in sorted(folder.iterdir()):
        data = memoryview(path.read_bytes())
        start = time.process_time()
        hashlib.sha256(data).digest()
        for i in range(0, len(data), 65536):
            outer.update(aead.encrypt(i.to_bytes(12, "big"), data[i:i + 65536], None))
        spent += time.process_time() - start
    return spent


def fmt_runs(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="evidence size in MiB (default: 1024)")
    parser.add_argument("--runs", type=int, default=3, help="rounds of each measure (median is used)")
    parser.add_argument("--digest", default=None, help="passed to incident collect, e.g. sha256,sm3")
    args = parser.parse_args()
    if args.size_mib < 1 or args.runs < 1:
        parser.error("--size-mib and --runs must be at least 1")

    exe = str(Path(sys.executable).with_name("nanbu-secops"))
    size = args.size_mib * MIB
    work = Path(tempfile.mkdtemp(prefix="nsbench-bundle-", dir="/tmp"))
    try:
        free = shutil.disk_usage(work).free
        if free < 6 * GIB:
            print(f"warning: only {free / GIB:.1f} GiB free under {work} (< 6 GiB); "
                  f"this run needs about {5 * size / GIB:.1f} GiB", file=sys.stderr)
        run([exe, "keys", "new", "bench", "--out", str(work / "keys")])
        keys = work / "keys"
        recipient = age_recipient(keys / "bench.recipient")
        evidence = work / "evidence"
        write_evidence(evidence, size)
        rss_file = work / "rss"

        bundle = work / "out.nsb"
        collect = [exe, "incident", "collect", "--unit", "bench", "--title", "bench", "--category", "other",
                   "--severity", "一般", "--discovered-at", "2026-11-28T09:30",
                   "--recipient", str(keys / "bench.recipient"), "--sign-key", str(keys / "bench_ed25519"),
                   "--out", str(bundle), "--include", str(evidence)]
        if args.digest:
            collect += ["--digest", args.digest]
        one_byte = work / "one-byte"
        one_byte.mkdir()
        (one_byte / "evidence.bin").write_bytes(b"x")
        tiny_bundle = work / "tiny.nsb"
        tiny_collect = [*collect[:collect.index("--out")], "--out", str(tiny_bundle), "--include", str(one_byte),
                        *collect[collect.index("--include") + 2:]]
        copy = work / "copy.bin"
        cat_copy = ["bash", "-c", 'cat "$1"/* > "$2"', "bench", str(evidence), str(copy)]
        baseline_out = work / "out.age"
        pipeline = ["bash", "-c", 'set -euo pipefail; tar -C "$1" -cf - "$2" | age -r "$3" > "$4"', "bench",
                    str(evidence.parent), evidence.name, recipient, str(baseline_out)]

        def clean_outputs() -> None:
            for path in (bundle, Path(f"{bundle}.sig"), baseline_out, tiny_bundle, Path(f"{tiny_bundle}.sig"), copy):
                path.unlink(missing_ok=True)

        # 1. collect vs tar | age; collect of one byte and cat > FILE: the parts no floor counts
        ours, base = alternate(args.runs, lambda: timed(collect, rss_file), lambda: timed(pipeline, rss_file),
                               after=clean_outputs)
        ours_c, rss_c, cpu_c = map(list, zip(*ours, strict=False))
        base_c, _, cpu_b = map(list, zip(*base, strict=False))
        tiny, cat = alternate(args.runs, lambda: timed(tiny_collect, rss_file), lambda: timed(cat_copy, rss_file),
                              after=clean_outputs)
        cpu_tiny, cpu_cat = [c for _, _, c in tiny], [c for _, _, c in cat]

        # 2. verify vs sha256sum -c (one bundle, opened once, untimed)
        run(collect)
        opened = work / "opened"
        run([exe, "incident", "open", str(bundle), "--identity", str(keys / "bench.agekey"),
             "--trust", str(keys / "bench.allowed_signers"), "--out", str(opened)])
        verify = [exe, "incident", "verify", str(bundle), "--identity", str(keys / "bench.agekey"),
                  "--trust", str(keys / "bench.allowed_signers")]
        sums = ["sha256sum", "-c", "--quiet", "SHA256SUMS"]
        ours, base = alternate(args.runs, lambda: timed(verify, rss_file), lambda: timed(sums, rss_file, cwd=opened))
        ours_v, rss_v, cpu_v = map(list, zip(*ours, strict=False))
        base_v, _, cpu_s = map(list, zip(*base, strict=False))

        # 3. open vs age -d | tar -x; sha256sum -c (a fresh folder each time)
        extracted = work / "extracted"
        open_cmd = [exe, "incident", "open", str(bundle), "--identity", str(keys / "bench.agekey"),
                    "--trust", str(keys / "bench.allowed_signers"), "--out", str(extracted)]
        by_hand = ["bash", "-c", 'set -euo pipefail; mkdir "$3"; age -d -i "$1" "$2" | tar -x -C "$3"; '
                   'cd "$3" && sha256sum -c --quiet SHA256SUMS', "bench", str(keys / "bench.agekey"), str(bundle),
                   str(extracted)]
        ours, base = alternate(args.runs, lambda: timed(open_cmd, rss_file), lambda: timed(by_hand, rss_file),
                               after=lambda: shutil.rmtree(extracted, ignore_errors=True))
        ours_o, _, cpu_o = map(list, zip(*ours, strict=False))
        base_o, _, cpu_h = map(list, zip(*base, strict=False))

        oc, bc = statistics.median(ours_c), statistics.median(base_c)
        ov, bv = statistics.median(ours_v), statistics.median(base_v)
        oo, bo = statistics.median(ours_o), statistics.median(base_o)
        mib = args.size_mib
        gib = mib / 1024
        peak_c, peak_v = max(rss_c), max(rss_v)
        print(f"evidence: {mib} MiB in {FILES} files of random bytes   runs: {args.runs}   "
              f"digest: {args.digest or 'sha256 (default)'}   rss via: "
              f"{GNU_TIME + ' -f %M' if os.access(GNU_TIME, os.X_OK) else 'getrusage(RUSAGE_CHILDREN)'}")
        print(f"{'command':<44} {'median s':>9} {'MiB/s':>8} {'CPU s':>7} {'peak RSS MiB':>13}   runs (s)")
        rows = (("nanbu-secops incident collect", oc, cpu_c, f"{peak_c:13.1f}", ours_c),
                ("tar -cf - | age -r   (baseline)", bc, cpu_b, "", base_c),
                ("nanbu-secops incident verify", ov, cpu_v, f"{peak_v:13.1f}", ours_v),
                ("sha256sum -c SHA256SUMS   (baseline)", bv, cpu_s, "", base_v),
                ("nanbu-secops incident open", oo, cpu_o, "", ours_o),
                ("age -d | tar -x; sha256sum -c   (baseline)", bo, cpu_h, "", base_o))
        for name, median, cpu, rss, runs in rows:
            print(f"{name:<44} {median:9.2f} {mib / median:8.1f} {statistics.median(cpu):7.2f} {rss:>13}   "
                  f"{fmt_runs(runs)}")

        floor = crypto_floor(evidence) / gib
        cc, ct, ck = statistics.median(cpu_c) / gib, statistics.median(cpu_tiny), statistics.median(cpu_cat) / gib
        ratio = cc / floor
        print(f"format floor: SHA-256 + ChaCha20-Poly1305 + SHA-256 over the evidence, in memory: {floor:.2f} CPU s/GiB")
        print(f"collect CPU: {cc:.2f} s/GiB = {ratio:.2f}x the format floor  "
              f"(goal <= {CPU_GOAL}x: {'met' if ratio <= CPU_GOAL else 'NOT met'})   runs (CPU s): {fmt_runs(cpu_c)}")
        least = floor + ck + ct / gib
        print(f"  not in the floor, measured in this run: collect of a 1-byte file {ct:.2f} CPU s (start-up, "
              f"policies, snapshot, signing);")
        print(f"  cat evidence > file {ck:.2f} CPU s/GiB (reading and writing the bytes once). Floor + these = "
              f"{least:.2f} s/GiB = {least / floor:.2f}x the floor,")
        print(f"  which no collect that snapshots and writes its bundle can spend less than; collect spends "
              f"{cc - least:+.2f} s/GiB beyond it")
        marginal = cc - ct / gib
        print(f"  without the 1-byte collect's fixed part (not how the goal is judged above): {marginal:.2f} s/GiB = "
              f"{marginal / floor:.2f}x the floor")
        print(f"collect throughput ours/baseline (tar | age): {bc / oc:.2f}x  (no goal: the old >= 1.5x was beyond "
              f"what the format allows on {os.cpu_count() or 1} cores)")
        print(f"verify time ours/baseline (sha256sum -c): {ov / bv:.2f}x  "
              f"(goal <= {VERIFY_GOAL}x: {'met' if ov / bv <= VERIFY_GOAL else 'NOT met'})")
        print(f"open time ours/baseline (age -d | tar -x; sha256sum -c): {oo / bo:.2f}x  (no goal set)")
        goal_mib = RSS_GOAL_BYTES / MIB
        at = "" if mib == 1024 else f"; the goal is stated for 1024 MiB, this run used {mib} MiB"
        for name, peak in (("collect", peak_c), ("verify", peak_v)):
            print(f"peak RSS {name}: {peak:.1f} MiB  (goal <= 100 MB = {goal_mib:.1f} MiB: "
                  f"{'met' if peak <= goal_mib else 'NOT met'}{at})")
        return 0
    except CommandFailed as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
