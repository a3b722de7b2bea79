"""A small HTTP(S) server with the behaviours ``ipv6 check`` must measure, for the tests here and
for the lab (inside network namespaces)::

    python -m tests.ipv6web --bind ADDR [--bind ADDR...] --port P [--cert C --key K] --site KIND
                            [--name NAME] [--links FILE] [--to URL]

One process serves one site on every ``--bind`` address (IPv4 or IPv6) on the same port, so one
URL reaches it over both families; with ``--port 0`` a free port is chosen. When listening it
prints ``ready PORT`` on standard output. With ``--cert``/``--key`` it speaks HTTPS (the
handshake runs in the connection's thread, so a stalled client blocks no one). SIGTERM stops it.

Sites (``--site``):

- ``portal``: HTML pages whose links come from ``--links FILE``, a JSON object mapping a path to
  its list of hrefs (default: ``/`` links to ``/a.html`` and ``/b.html``, which have none); other
  paths are 404.
- ``plain``: one page whose text includes ``--name``.
- ``different``: a page whose text depends on the family the request came in on, so the same URL
  differs over IPv4 and IPv6.
- ``slow``: accepts (and completes TLS) but never answers.
- ``loop``: every path redirects (302) to itself.
- ``huge``: ``/`` is a 50 MiB HTML page, streamed; ``/bin`` 1 MiB of ``application/octet-stream``.
- ``redirect``: every path is a 301 to ``--to URL``.
- ``close``: closes the connection after each response, as most real servers do for a client
  that sends ``Connection: close``: ``/http10`` answers as HTTP/1.0 without a length (the body ends
  at EOF), ``/chunked`` as HTTP/1.1 chunked with ``Connection: close``, any other path as HTTP/1.1
  with ``Content-Length`` and ``Connection: close``.
- ``flaky``: every second request (counted over all paths and families) is a 503.
- ``gzip``: ``Content-Encoding: gzip`` whatever the client asked: ``/`` a page, ``/deflate`` the
  page as zlib-wrapped and ``/rawdeflate`` as raw deflate, ``/bomb`` 64 MiB of zeros in ~64 KiB of
  gzip, ``/corrupt`` a gzip body cut and garbled halfway.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import signal
import socket
import ssl
import sys
import threading
import zlib
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HUGE_SIZE = 50 * 1024 * 1024
BIN_SIZE = 1024 * 1024
FILLER = b"<p>" + "南部县人民政府 portal filler text ".encode() * 30 + b"</p>\n"


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer for one address of either family, with the site's settings."""

    daemon_threads = True

    def __init__(self, address: str, port: int, options: argparse.Namespace, context: ssl.SSLContext | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.options, self.context = options, context
        self.stop = threading.Event()  # wakes the "slow" handlers on shutdown
        super().__init__((address, port), Handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(10)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except OSError:  # the client gave up or refused our certificate: its business
            return
        with tls:
            tls.settimeout(None)
            super().finish_request(tls, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            super().handle_error(request, client_address)  # a client hanging up is not an error here


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base class signature)
        """Quiet: tests read standard output, and the lab keeps no logs."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        getattr(self, f"_{self.server.options.site}")()

    def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8",
              location: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def _page(self, title: str, text: str, hrefs: Sequence[str] = ()) -> bytes:
        items = "".join(f'<li><a href="{html.escape(h)}">{html.escape(h)}</a></li>' for h in hrefs)
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                f"<style>body{{margin:0}}</style></head><body><h1>{html.escape(title)}</h1>"
                f"<p>{html.escape(text)}</p><ul>{items}</ul></body></html>").encode()

    def _portal(self) -> None:
        path = self.path.split("?", 1)[0]
        pages = self.server.options.pages
        if path not in pages:
            self._send(404, self._page("404", f"{path} not found"))
            return
        self._send(200, self._page(f"{self.server.options.name} {path}", "南部县人民政府门户网站", pages[path]))

    def _plain(self) -> None:
        name = self.server.options.name
        self._send(200, self._page(name, f"Welcome to {name}, the Nanbu County government portal. 欢迎访问{name}。"))

    def _different(self) -> None:
        family = "IPv6" if self.server.address_family == socket.AF_INET6 else "IPv4"
        words = {"IPv4": "the real portal with news notices services and open government information",
                 "IPv6": "default web server page: it works, nothing configured here yet"}
        self._send(200, self._page(self.server.options.name, words[family]))

    def _slow(self) -> None:
        self.server.stop.wait()
        self.close_connection = True

    def _loop(self) -> None:
        self._send(302, b"", location=self.path)

    def _redirect(self) -> None:
        self._send(301, b"", location=self.server.options.to)

    def _close(self) -> None:
        body = self._page(self.server.options.name, "closing after this response")
        self.close_connection = True
        path = self.path.split("?", 1)[0]
        if path == "/http10":
            self.protocol_version = "HTTP/1.0"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Connection", "close")
        if path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = len(body) // 2
            for part in (body[:half], body[half:], b""):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _flaky(self) -> None:
        with self.server.options.lock:
            self.server.options.served += 1
            failing = self.server.options.served % 2 == 0
        if failing:
            self._send(503, self._page("503", "try again later"))
        else:
            self._plain()

    def _gzip(self) -> None:
        page = self._page(self.server.options.name, "南部县人民政府 compressed " * 50)
        path = self.path.split("?", 1)[0]
        encoding = "gzip"
        if path == "/deflate":
            body, encoding = zlib.compress(page), "deflate"
        elif path == "/rawdeflate":
            packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            body, encoding = packer.compress(page) + packer.flush(), "deflate"
        elif path == "/bomb":
            packer = zlib.compressobj(9, wbits=16 + zlib.MAX_WBITS)
            zeros = bytes(1024 * 1024)
            body = b"".join(packer.compress(zeros) for _ in range(64)) + packer.flush()
        elif path == "/corrupt":
            whole = gzip.compress(page)
            body = whole[:len(whole) // 2] + bytes(b ^ 0x5A for b in whole[len(whole) // 2:])
        else:
            body = gzip.compress(page)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _huge(self) -> None:
        if self.path == "/bin":
            self._send(200, bytes(range(256)) * (BIN_SIZE // 256), "application/octet-stream")
            return
        head, tail = b"<!doctype html><html><body>", b"</body></html>"
        count = (HUGE_SIZE - len(head) - len(tail)) // len(FILLER)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(head) + count * len(FILLER) + len(tail)))
        self.end_headers()
        self.wfile.write(head)
        for _ in range(count):
            self.wfile.write(FILLER)
        self.wfile.write(tail)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.ipv6web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bind", action="append", required=True, help="address to listen on (repeatable)")
    parser.add_argument("--port", type=int, required=True, help="0: a free port, the same on every address")
    parser.add_argument("--cert", help="PEM certificate chain: serve HTTPS")
    parser.add_argument("--key", help="PEM private key of --cert")
    parser.add_argument("--site", required=True, choices=("portal", "plain", "different", "slow", "loop", "huge",
                                                          "redirect", "close", "gzip", "flaky"))
    parser.add_argument("--name", default="plain", help="the site's name, shown in its pages")
    parser.add_argument("--links", type=Path, help="portal: JSON object of path -> list of hrefs")
    parser.add_argument("--to", help="redirect: where to")
    options = parser.parse_args(argv)
    if options.site == "redirect" and not options.to:
        parser.error("--site redirect needs --to")
    if bool(options.cert) != bool(options.key):
        parser.error("--cert and --key go together")
    options.lock, options.served = threading.Lock(), 0  # flaky: one count for every address's server
    options.pages = json.loads(options.links.read_text()) if options.links else {"/": ["/a.html", "/b.html"],
                                                                                 "/a.html": [], "/b.html": []}
    return options


def _bind_all(options: argparse.Namespace, context: ssl.SSLContext | None) -> list[Server]:
    """Every address on one port; with port 0, the first address picks it and, should another
    address have it taken, the whole set is tried again."""
    for _ in range(20):
        servers: list[Server] = []
        try:
            for address in options.bind:
                port = servers[0].server_address[1] if servers else options.port
                servers.append(Server(address, port, options, context))
            return servers
        except OSError:
            for server in servers:
                server.server_close()
            if options.port:
                raise
    raise OSError("no port free on every address")


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    options = _arguments(argv)
    context = None
    if options.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(options.cert, options.key)
    servers = _bind_all(options, context)
    signal.signal(signal.SIGTERM, _terminate)
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    print(f"ready {servers[0].server_address[1]}", flush=True)
    try:
        servers[0].serve_forever(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.stop.set()
            server.shutdown()  # returns at once for a loop that has already ended
            server.server_close()


if __name__ == "__main__":
    main()
