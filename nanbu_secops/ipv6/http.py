"""An HTTP(S) GET over one address family, with the step that failed and how long each step took.

``ipv6 check`` must know whether a portal works over IPv6 *and* over IPv4, so the address family
is forced: the host is resolved through the caller's ``Resolve`` (the DNS server the operator
chose, never the system resolver, which may prefer one family or answer from a local hosts file)
and the socket is opened with that family. TLS is verified as a browser would (SNI, the system's
CAs or ``ca_file``, the certificate must name the host), because a site whose IPv6 address serves
another certificate is not usable over IPv6.

The whole fetch, redirects included, must end by ``timeout``: each blocking step gets the time
that is left, so a server that accepts and then says nothing ends as "timed out" at the step it
stalled in. Network trouble never raises; it is the ``error`` and ``stage`` of the :class:`Probe`.
"""

from __future__ import annotations

import codecs
import functools
import html
import http.client
import ipaddress
import re
import socket
import ssl
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

Resolve = Callable[[str, int], list[str]]

REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
USER_AGENT = "nanbu-secops-ipv6/0.1"
CHUNK = 64 * 1024
TIMED_OUT = "timed out"
URL_SAFE = "!#$%&'()*+,/:;=?@[]~"  # reserved characters and "%": what is already encoded stays so


class _Failure(Exception):
    """A step of one request failed; ``stage`` names the step."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


@dataclass(frozen=True)
class Probe:
    """One fetch. ``ok``: an HTTP response with status < 400 arrived in full (body up to
    ``max_body``, gzip and deflate decoded). ``address``, ``tls_verified`` and the step timings are those of the last
    request made (after redirects); ``timings["total_ms"]`` covers the whole fetch. A step not
    reached has no timing (None). ``tls_verified`` is None for plain HTTP or when no TLS
    handshake was attempted, False when the handshake failed."""

    url: str
    family: int
    address: str | None
    ok: bool
    status: int | None
    final_url: str  # the URL of the last request made
    redirects: int
    error: str | None
    stage: str | None  # "dns" | "tcp" | "tls" | "http" | "redirects"
    tls_verified: bool | None
    timings: dict[str, float | None]
    content_type: str | None
    body: bytes = field(repr=False)
    truncated: bool
    hsts: str | None = None  # the Strict-Transport-Security header of the last response

    def as_json(self) -> dict[str, Any]:
        """Everything but the body."""
        doc = asdict(self)
        del doc["body"]
        return doc


@dataclass
class _Hop:
    """What one request got, filled in as it goes so a failure keeps what was measured."""

    address: str | None = None
    status: int | None = None
    location: str | None = None
    content_type: str | None = None
    body: bytes = b""
    truncated: bool = False
    tls_verified: bool | None = None
    hsts: str | None = None
    timings: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(
        ("dns_ms", "tcp_ms", "tls_ms", "first_byte_ms")))


@functools.lru_cache(maxsize=8)
def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Loading the system CA store costs milliseconds; a crawl fetches thousands of links, and an
    SSLContext is safe to share between threads."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(ca_file)
    return context


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 1)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(TIMED_OUT)
    return left


def _addresses(host: str, family: int, resolve: Resolve) -> list[str]:
    """IP literals as they are; names through ``resolve``. Anything that is not an address of
    the family is refused, so ``socket.connect`` never falls back to the system resolver."""
    literal = host.split("%", 1)[0]
    try:
        version = ipaddress.ip_address(literal).version
    except ValueError:
        pass
    else:
        if version != family:
            raise _Failure("dns", f"{host} is not an IPv{family} address")
        return [host]
    try:
        found = resolve(host, family)
    except OSError as exc:
        raise _Failure("dns", f"cannot resolve {host}: {exc}") from None
    if not found:
        raise _Failure("dns", f"no {'AAAA' if family == 6 else 'A'} record for {host}")
    for address in found:
        try:
            ok = ipaddress.ip_address(address.split("%", 1)[0]).version == family
        except ValueError:
            ok = False
        if not ok:
            raise _Failure("dns", f"resolver returned {address!r} for {host}, not an IPv{family} address")
    return found


def _connect(addresses: list[str], port: int, family: int, deadline: float, hop: _Hop) -> socket.socket:
    """Each address in turn; each gets an equal share of the time left, so one black-holed
    address does not use up the time of the others."""
    errors = []
    for i, address in enumerate(addresses):
        hop.address = address
        share = _left(deadline) / (len(addresses) - i)
        try:
            sock = socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_STREAM)
        except OSError as exc:  # IPv6 disabled on this machine
            raise _Failure("tcp", f"cannot open an IPv{family} socket: {exc.strerror or exc}") from None
        sock.settimeout(share)
        try:
            sock.connect((address, port))
            return sock
        except OSError as exc:
            sock.close()
            errors.append(f"{address} port {port}: {exc.strerror or TIMED_OUT}")
    raise _Failure("tcp", "cannot connect to " + "; ".join(errors))


def _handshake(sock: socket.socket, host: str, ca_file: str | None, deadline: float, hop: _Hop) -> ssl.SSLSocket:
    hop.tls_verified = False
    try:
        sock.settimeout(_left(deadline))
        tls = _tls_context(ca_file).wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raise _Failure("tls", f"certificate verification failed: {exc.verify_message}") from None
    except ssl.SSLError as exc:
        raise _Failure("tls", f"TLS handshake failed: {exc.reason or exc}") from None
    except TimeoutError:
        raise _Failure("tls", TIMED_OUT) from None
    except OSError as exc:
        raise _Failure("tls", f"TLS handshake failed: {exc.strerror or exc}") from None
    hop.tls_verified = True
    return tls


def _request(sock: socket.socket, host: str, host_header: str, target: str, deadline: float, max_body: int,
             hop: _Hop) -> None:
    """Send the GET, read the status, headers and up to ``max_body`` bytes of the body (a
    redirect's body is not read).

    When the response will close (``Connection: close``, HTTP/1.0, a body that ends at EOF),
    http.client closes ``sock`` itself once the body is read, so the loop asks the response
    whether it is closed before touching the socket again (issue 15: "Bad file descriptor")."""
    conn = http.client.HTTPConnection(host)
    conn.sock = sock  # already connected (and wrapped): http.client only frames the exchange
    sock.settimeout(_left(deadline))
    sent = time.monotonic()
    conn.request("GET", target, headers={"Host": host_header, "User-Agent": USER_AGENT, "Accept": "*/*",
                                         "Accept-Encoding": "gzip, deflate", "Connection": "close"})
    with conn.getresponse() as response:
        hop.timings["first_byte_ms"] = _ms(sent)
        hop.status, hop.location = response.status, response.getheader("Location")
        hop.content_type = response.getheader("Content-Type")
        hop.hsts = response.getheader("Strict-Transport-Security")
        if hop.status in REDIRECTS and hop.location:
            return
        decoder = _decoder(response.getheader("Content-Encoding"))
        chunks, size = [], 0
        while size <= max_body and not response.isclosed():
            sock.settimeout(_left(deadline))
            chunk = response.read(CHUNK)
            if not chunk:
                break
            if decoder is not None:
                try:  # never more than max_body + 1 bytes out: a small gzip bomb stays small
                    chunk = decoder.decompress(decoder.unconsumed_tail + chunk, max_body + 1 - size)
                except zlib.error as exc:
                    coding = response.getheader("Content-Encoding")
                    raise http.client.HTTPException(f"malformed {coding} body: {exc}") from None
            chunks.append(chunk)
            size += len(chunk)
    body = b"".join(chunks)
    hop.truncated = len(body) > max_body
    hop.body = body[:max_body]


def _decoder(encoding: str | None) -> Any:
    """A zlib decompressor for the ``Content-Encoding`` asked for (gzip, deflate), None for an
    identity body. Browsers decode these, so links and content parity are judged on the page a
    visitor sees, not on compressed bytes. Other codings are not asked for and are left as sent."""
    kind = (encoding or "").strip().lower()
    if kind in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "deflate":
        return _Deflate()
    return None


class _Deflate:
    """``deflate`` as zlib data (RFC 9110) or, as some servers send it, raw deflate."""

    def __init__(self) -> None:
        self._inner: Any = None
        self.unconsumed_tail = b""

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._inner is None:
            zlib_wrapped = len(data) >= 2 and (data[0] & 0x0F) == 8 and int.from_bytes(data[:2], "big") % 31 == 0
            self._inner = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
        out = self._inner.decompress(data, max_length)
        self.unconsumed_tail = self._inner.unconsumed_tail
        return out


def _get(url: str, family: int, resolve: Resolve, ca_file: str | None, deadline: float, max_body: int,
         hop: _Hop) -> None:
    """One request, no redirects; raises _Failure with the stage that failed."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        host = (parts.hostname or "").encode("idna").decode("ascii")  # 南部.gov.cn as DNS and TLS know it
    except (ValueError, UnicodeError) as exc:
        raise _Failure("dns", f"malformed URL {url!r}: {exc}") from None
    if not host or port is None:
        raise _Failure("dns", f"malformed URL {url!r}: needs http(s) and a host")
    bracketed = f"[{host}]" if ":" in host else host
    host_header = f"{bracketed}:{parts.port}" if parts.port else bracketed
    # a link's non-ASCII path or query is sent percent-encoded (UTF-8), as browsers send it
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=URL_SAFE)
    started = time.monotonic()
    addresses = _addresses(host, family, resolve)
    hop.timings["dns_ms"] = _ms(started)
    started = time.monotonic()
    try:
        sock = _connect(addresses, port, family, deadline, hop)
    except TimeoutError:
        raise _Failure("tcp", TIMED_OUT) from None
    hop.timings["tcp_ms"] = _ms(started)
    try:
        if parts.scheme == "https":
            started = time.monotonic()
            sock = _handshake(sock, host, ca_file, deadline, hop)
            hop.timings["tls_ms"] = _ms(started)
        _request(sock, host, host_header, target, deadline, max_body, hop)
    except TimeoutError:
        raise _Failure("http", TIMED_OUT) from None
    except (http.client.HTTPException, OSError) as exc:
        raise _Failure("http", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    finally:
        sock.close()


def _redirect_target(url: str, location: str) -> str | None:
    """Where a redirect leads (relative locations resolved); None unless an http(s) URL."""
    try:
        target = urljoin(url, location)
        return target if urlsplit(target).scheme in DEFAULT_PORTS else None
    except ValueError:  # e.g. "Location: http://[broken"
        return None


def fetch(url: str, family: int, resolve: Resolve, *, ca_file: str | None = None, timeout: float = 10.0,
          max_redirects: int = 5, max_body: int = 2 * 1024 * 1024) -> Probe:
    """GET ``url`` over IPv``family`` only, following up to ``max_redirects`` redirects, each
    resolved again for the same family. Never raises for network trouble."""
    start = time.monotonic()
    deadline = start + timeout
    current, redirects = url, 0
    while True:
        hop = _Hop()
        error = stage = None
        try:
            _get(current, family, resolve, ca_file, deadline, max_body, hop)
        except _Failure as failure:
            error, stage = str(failure), failure.stage
        if error is None and hop.status in REDIRECTS and hop.location:
            target = _redirect_target(current, hop.location)
            if target is None:
                error, stage = f"redirect to {hop.location!r}, not an http(s) URL", "redirects"
            elif redirects >= max_redirects:
                error, stage = f"more than {max_redirects} redirects (limit {max_redirects}), last to {target}", "redirects"
            else:
                current, redirects = target, redirects + 1
                continue
        return Probe(url=url, family=family, address=hop.address,
                     ok=error is None and hop.status is not None and hop.status < 400,
                     status=hop.status, final_url=current, redirects=redirects, error=error, stage=stage,
                     tls_verified=hop.tls_verified, timings={**hop.timings, "total_ms": _ms(start)},
                     content_type=hop.content_type, body=hop.body, truncated=hop.truncated, hsts=hop.hsts)


def probe_many(url: str, family: int, resolve: Resolve, n: int, **kw: Any) -> list[Probe]:
    """``n`` fetches one after the other (the success rate of article 9(2)); ``kw`` as for fetch."""
    return [fetch(url, family, resolve, **kw) for _ in range(n)]


# --- content similarity ---------------------------------------------------------------------

# Visible text is found with regular expressions rather than html.parser: they run in C, and
# html.parser needs ~0.3 s for a 2 MiB page where this needs a few hundredths.
_HIDDEN = re.compile(rb"<(script|style|template|noscript)\b.*?</\1\s*>|<!--.*?-->", re.S | re.I)
_TAG = re.compile(rb"<[^>]*>")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", re.I)
_CJK = "\u2e80-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")  # a CJK character, or a run of other word characters
# Bounds on the work for huge pages (a 2 MiB page compares in well under 0.1 s); a homepage is
# far smaller than either.
MAX_BYTES = 1024 * 1024
MAX_TOKENS = 30_000
TEXT_TYPES = ("text/", "application/xhtml+xml", "application/json", "application/xml", "application/javascript")


def _is_text(content_type: str | None) -> bool:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind.startswith(TEXT_TYPES) or kind.endswith(("+json", "+xml"))


def is_html(content_type: str | None) -> bool:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind in ("text/html", "application/xhtml+xml")


def charset(body: bytes, content_type: str | None) -> str:
    """The header's charset, else a ``<meta charset>`` near the top, else UTF-8. GB2312 and GBK
    are read as their superset GB18030, as browsers do."""
    match = re.search(r"charset\s*=\s*\"?([\w-]+)", content_type or "", re.I) or _META_CHARSET.search(body[:4096])
    name = match.group(1) if match else "utf-8"
    name = name.decode("ascii", "replace") if isinstance(name, bytes) else name
    if name.lower() in ("gb2312", "gbk", "x-gbk"):
        return "gb18030"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"


def _tokens(body: bytes, content_type: str | None, visible: bool) -> list[str]:
    body = body[:MAX_BYTES]
    if visible:
        body = _TAG.sub(b" ", _HIDDEN.sub(b" ", body))
    text = body.decode(charset(body, content_type), "replace")
    return _TOKEN.findall(html.unescape(text) if visible else text)[:MAX_TOKENS]


def similarity(a: bytes, b: bytes, content_type_a: str | None, content_type_b: str | None) -> float:
    """How alike two responses are, 0..1 (v4/v6 content parity).

    Text bodies are compared by their word bigrams as multisets (Dice: twice the shared bigrams
    over all bigrams): linear in the page size, unlike difflib, which needs seconds for long
    pages with scattered changes; and a changed word only costs the two bigrams it is in, so a
    timestamp or a session token barely moves the score while another page (a default server
    page, an error page, an old copy of the site) scores near 0. HTML is compared by its visible
    text (tags, scripts, styles, comments removed); when neither page has visible text (an app
    shell), by its whole text. Words are runs of letters and digits; each CJK character is a
    word, as Chinese is not written with spaces. Only the first MAX_BYTES of a body and the first
    MAX_TOKENS words count. Other bodies are equal (1.0) or not (0.0)."""
    if a == b:
        return 1.0
    if not (_is_text(content_type_a) and _is_text(content_type_b)):
        return 0.0
    html_a, html_b = is_html(content_type_a), is_html(content_type_b)
    tokens_a, tokens_b = _tokens(a, content_type_a, html_a), _tokens(b, content_type_b, html_b)
    if not tokens_a and not tokens_b and (html_a or html_b):
        tokens_a, tokens_b = _tokens(a, content_type_a, False), _tokens(b, content_type_b, False)
    # a one-word text is the bigram (word, ""), so it still compares
    bigrams_a = Counter(zip(tokens_a, tokens_a[1:] or [""], strict=False))  # one pair fewer than tokens
    bigrams_b = Counter(zip(tokens_b, tokens_b[1:] or [""], strict=False))
    total = sum(bigrams_a.values()) + sum(bigrams_b.values())
    if not total:
        return 1.0
    return 2 * sum((bigrams_a & bigrams_b).values()) / total
