"""Benchmark: crawling 500 links over IPv6, beside a bare sequential fetch of the same links.

    .venv/bin/python bench/bench_ipv6.py [--links 500] [--concurrency 16] [--runs 3]

A portal (``tests/ipv6web.py``, HTTPS with a test CA) on ``::1`` and ``127.0.0.1`` links to
``--links`` pages of its own. Measured, median of ``--runs``, alternating in each round:

1. the crawl of ``ipv6 check --crawl-depth 1``: the homepage over IPv6, then every link on it
   checked over IPv6 (AAAA, TLS, status) with ``--concurrency`` at once; names resolve through a
   fixed in-process table, so no DNS is sent;
2. the baseline: one ``http.client`` GET per link over IPv6, one after the other, same TLS.

Prints both times, links per second, the ratio, and the bound recorded for 500 links.
Nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client as httpclient
import json
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nanbu_secops.ipv6 import crawl, http  # noqa: E402

NAME = "portal.test"
BOUND_500 = 30.0  # seconds: the bound a 500-link crawl must stay within on this 2-core machine


def certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a certificate for NAME, ::1 and 127.0.0.1."""
    now = dt.datetime.now(dt.timezone.utc)
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


def _serve(folder: Path, cert: Path, key: Path, *site: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, "-m", "tests.ipv6web", "--bind", "::1", "--bind", "127.0.0.1",
                                "--port", "0", "--cert", str(cert), "--key", str(key), "--name", NAME, "--site", *site],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return process, int(process.stdout.readline().split()[1])  # type: ignore[union-attr]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ipv6-") as work:
        folder = Path(work)
        ca, cert, key = certificates(folder)
        servers: list[subprocess.Popen[str]] = []
        try:
            plain, plain_port = _serve(folder, cert, key, "plain")  # answers every path with 200
            servers.append(plain)
            links = [f"https://{NAME}:{plain_port}/page/{i}.html" for i in range(args.links)]
            (folder / "links.json").write_text(json.dumps({"/": links}))
            portal, portal_port = _serve(folder, cert, key, "portal", "--links", str(folder / "links.json"))
            servers.append(portal)
            ours, theirs = [], []
            result: dict = {}
            for round_ in range(args.runs):
                order = ("ours", "baseline") if round_ % 2 == 0 else ("baseline", "ours")
                for which in order:
                    start = time.perf_counter()
                    if which == "ours":
                        result = crawl_once(f"https://{NAME}:{portal_port}/", ca, args.concurrency)
                        ours.append(time.perf_counter() - start)
                    else:
                        baseline(links, ca)
                        theirs.append(time.perf_counter() - start)
            level = result["level2"]
            if level["total"] != args.links or level["ipv6"] != args.links:
                raise SystemExit(f"crawl found {level}, expected {args.links} working links")
        finally:
            for process in servers:
                process.terminate()
                process.wait()
    ours_s, base_s = statistics.median(ours), statistics.median(theirs)
    print(f"links: {args.links}   concurrency: {args.concurrency}   runs: {args.runs}")
    print(f"{'command':44} {'median s':>9} {'links/s':>9}   runs (s)")
    print(f"{'crawl, depth 1 (ours)':44} {ours_s:9.2f} {args.links / ours_s:9.0f}   "
          + ", ".join(f"{t:.2f}" for t in ours))
    print(f"{'sequential http.client GET (baseline)':44} {base_s:9.2f} {args.links / base_s:9.0f}   "
          + ", ".join(f"{t:.2f}" for t in theirs))
    print(f"crawl time ours/baseline: {ours_s / base_s:.2f}x")
    if args.links == 500:
        print(f"500-link crawl: {ours_s:.2f} s (bound {BOUND_500:.0f} s: {'met' if ours_s <= BOUND_500 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
