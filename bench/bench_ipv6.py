"""Benchmark: crawling 500 links served by nginx over IPv6, beside a bare sequential fetch of the same links.

    .venv/bin/python bench/bench_ipv6.py [--links 500] [--concurrency 16] [--runs 3]

A real nginx (Debian's, started here from its own config in a temporary folder, as
tests/webservers.py starts it for the tests; never the system service), HTTPS with a test CA, on
``[::1]`` and ``127.0.0.1``, serves a portal whose homepage links to ``--links`` pages of its own.
Measured, median of ``--runs``, alternating in each round, each run in a forked child so that its
peak RSS is its own:

1. the crawl of ``ipv6 check --crawl-depth 1``: the homepage over IPv6, then every link on it
   checked over IPv6 (AAAA, TLS, status) with ``--concurrency`` at once; names resolve through a
   fixed in-process table, so no DNS is sent;
2. the baseline: one ``http.client`` GET per link over IPv6, one after the other, same TLS.

Prints both times, links per second, the ratio, each side's peak RSS, and the bound recorded
for 500 links. Nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client as httpclient
import os
import shutil
import socket
import ssl
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nanbu_secops.ipv6 import crawl, http  # noqa: E402
from tests.webservers import VHost, running, web_folder  # noqa: E402

NAME = "portal.test"
BOUND_500 = 30.0  # seconds: the bound a 500-link crawl must stay within on this 2-core machine


def certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a certificate for NAME, ::1 and 127.0.0.1."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def resolve(host: str, family: int) -> list[str]:
    """NAME is ::1 and 127.0.0.1: a fixed table, so the benchmark sends no DNS at all."""
    return (["::1"] if family == 6 else ["127.0.0.1"]) if host == NAME else []


def crawl_once(home: str, ca: Path, concurrency: int) -> dict:
    """What ``ipv6 check --crawl-depth 1`` does after DNS: the homepage over IPv6, then every
    link on it checked over IPv6 with ``concurrency`` at once."""
    page = http.fetch(home, 6, resolve, ca_file=str(ca), timeout=10)
    if not page.ok:
        raise SystemExit(f"homepage over IPv6 failed: {page.error}")
    checker = crawl.link_checker(lambda host: resolve(host, 6), resolve, ca_file=str(ca), timeout=10)
    return crawl.crawl(page.final_url, page.body, page.content_type, 1, checker, concurrency=concurrency).as_json()


class _Loopback6(httpclient.HTTPSConnection):
    """GET https://NAME:PORT/... over ::1, with NAME's certificate checked (SNI and name)."""

    def connect(self) -> None:
        raw = socket.create_connection(("::1", self.port), timeout=10)
        self.sock = self._context.wrap_socket(raw, server_hostname=NAME)  # type: ignore[attr-defined]


def baseline(urls: list[str], ca: Path) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    for url in urls:
        parts = urlsplit(url)
        connection = _Loopback6(NAME, parts.port, context=context, timeout=10)
        connection.request("GET", parts.path)
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status >= 400:
            raise SystemExit(f"baseline: {url} answered {response.status}")


def _free_port() -> int:
    """A port free on both loopback addresses (nginx listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET6) as six, socket.socket(socket.AF_INET) as four:
            six.bind(("::1", 0))
            port = six.getsockname()[1]
            try:
                four.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no port free on ::1 and 127.0.0.1")


def _page(title: str, hrefs: list[str]) -> bytes:
    items = "".join(f'<li><a href="{h}">{h}</a></li>' for h in hrefs)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><ul>{items}</ul></body></html>\n").encode()


def _in_child(work: Callable[[], None]) -> tuple[float, int]:
    """Run ``work`` in a forked child: (seconds, the child's peak RSS in KiB)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: time the work, report, and leave without running the parent's cleanup
        code = 0
        try:
            os.close(read)
            start = time.perf_counter()
            work()
            os.write(write, f"{time.perf_counter() - start}".encode())
        except BaseException as exc:  # noqa: BLE001 (reported to the parent, which stops)
            os.write(write, f"error {exc}".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        said = pipe.read()
    _, status, usage = os.wait4(pid, 0)
    if status != 0 or said.startswith("error"):
        raise SystemExit(f"benchmark child failed: {said}")
    return float(said), usage.ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("nginx", path="/usr/sbin:/usr/bin"):
        raise SystemExit("nginx is missing: run `bash scripts/setup.sh --test` (Debian package nginx)")
    folder = web_folder()
    try:
        ca, cert, key = certificates(folder)
        root = folder / "site"
        (root / "page").mkdir(parents=True)
        port = _free_port()
        links = [f"https://{NAME}:{port}/page/{i}.html" for i in range(args.links)]
        (root / "index.html").write_bytes(_page("portal", links))
        for i in range(args.links):
            (root / "page" / f"{i}.html").write_bytes(_page(f"page {i}", []))
        for path in (root, root / "page", *root.rglob("*.html")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        vhost = VHost((NAME,), ("::1", "127.0.0.1"), port, root=root, cert=(cert, key))
        ours: list[tuple[float, int]] = []
        theirs: list[tuple[float, int]] = []
        home = f"https://{NAME}:{port}/"

        def crawl_and_verify() -> None:
            level = crawl_once(home, ca, args.concurrency)["level2"]
            if level["total"] != args.links or level["ipv6"] != args.links:
                raise RuntimeError(f"crawl found {level}, expected {args.links} working links")

        with running("nginx", None, [vhost], folder):
            for round_ in range(args.runs):
                order = ("ours", "baseline") if round_ % 2 == 0 else ("baseline", "ours")
                for which in order:
                    if which == "ours":
                        ours.append(_in_child(crawl_and_verify))
                    else:
                        theirs.append(_in_child(lambda: baseline(links, ca)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ours_s, base_s = statistics.median(t for t, _ in ours), statistics.median(t for t, _ in theirs)
    ours_rss, base_rss = max(r for _, r in ours), max(r for _, r in theirs)
    print(f"links: {args.links}   concurrency: {args.concurrency}   runs: {args.runs}   server: nginx on [::1]")
    print(f"{'command':44} {'median s':>9} {'links/s':>9} {'peak RSS':>10}   runs (s)")
    print(f"{'crawl, depth 1 (ours)':44} {ours_s:9.2f} {args.links / ours_s:9.0f} {ours_rss / 1024:7.1f} MiB   "
          + ", ".join(f"{t:.2f}" for t, _ in ours))
    print(f"{'sequential http.client GET (baseline)':44} {base_s:9.2f} {args.links / base_s:9.0f} "
          f"{base_rss / 1024:7.1f} MiB   " + ", ".join(f"{t:.2f}" for t, _ in theirs))
    print(f"crawl time ours/baseline: {ours_s / base_s:.2f}x   peak RSS ours/baseline: {ours_rss / base_rss:.2f}x")
    if args.links == 500:
        print(f"500-link crawl: {ours_s:.2f} s (bound {BOUND_500:.0f} s: {'met' if ours_s <= BOUND_500 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
