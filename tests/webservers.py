"""Real web servers for the IPv6 tests: nginx, Apache httpd and lighttpd (Debian packages), each
started by the tests from config files written here, in a temporary folder, inside a lab host's
network namespace (``ip netns exec``), never as the system service; stopped again (its whole
process group) when the ``with`` block ends, even on failure.

One model of virtual hosts (:class:`VHost`) is rendered into each server's own configuration
language, so the three are asked to serve exactly the same sites: name-based virtual hosts (the
first one on an address and port is the default, as all three servers do it), HTTPS with a
certificate chain (leaf + intermediate, selected by SNI), redirects that keep the path, HSTS,
gzip for HTML, and a request log ``access.log`` (``ADDRESS HOST "REQUEST" STATUS`` per line) that
tests read to count requests.

The test CA (:class:`ChainCA`) is a root and an intermediate: the servers send the intermediate,
clients trust only the root, as on the public web.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.ipv6lab import _die_with_parent, stop_process

SERVERS = ("nginx", "apache2", "lighttpd")
BINARIES = {"nginx": "/usr/sbin/nginx", "apache2": "/usr/sbin/apache2", "lighttpd": "/usr/sbin/lighttpd"}
WORKER_USER = "www-data"  # Apache and lighttpd drop to it for serving, so the served folders are world-readable
HSTS = "max-age=31536000"
APACHE_MODULES = ("mpm_event", "authz_core", "mime", "dir", "alias", "headers", "filter", "deflate",
                  "setenvif", "socache_shmcb", "ssl")


class ChainCA:
    """A root CA and an intermediate CA under it; leaf certificates are issued by the
    intermediate and written with it as a chain (``cert.pem`` = leaf + intermediate)."""

    def __init__(self, folder: Path) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._ca_cert("Nanbu Web Test Root CA", self.root_key, None, None, path_length=1)
        self.inter_key = ec.generate_private_key(ec.SECP256R1())
        self.inter = self._ca_cert("Nanbu Web Test Intermediate CA", self.inter_key, self.root, self.root_key,
                                   path_length=0)
        self.root_file = folder / "root.pem"
        self.root_file.write_bytes(self._pem(self.root))

    @staticmethod
    def _pem(cert: object) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return cert.public_bytes(serialization.Encoding.PEM)  # type: ignore[attr-defined]

    @staticmethod
    def _ca_cert(name: str, key: object, issuer: object, issuer_key: object, path_length: int) -> object:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        public = key.public_key()  # type: ignore[attr-defined]
        builder = (
            x509.CertificateBuilder().subject_name(subject)
            .issuer_name(issuer.subject if issuer is not None else subject)  # type: ignore[attr-defined]
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),  # type: ignore[attr-defined]
                critical=False)
        return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())  # type: ignore[arg-type]

    def issue(self, stem: str, names: list[str]) -> tuple[Path, Path]:
        """(chain, key) for a server certificate whose SANs are ``names`` (DNS names, or IP
        addresses, which go in as IP SANs)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.inter.subject).public_key(key.public_key())  # type: ignore[attr-defined]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.inter_key.public_key()),
                           critical=False)
            .sign(self.inter_key, hashes.SHA256())
        )
        chain, key_file = self.folder / f"{stem}.pem", self.folder / f"{stem}.key"
        chain.write_bytes(self._pem(cert) + self._pem(self.inter))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        os.chmod(key_file, 0o600)
        return chain, key_file


@dataclass(frozen=True)
class VHost:
    """One virtual host on ``addresses`` (IPv4 or IPv6) and ``port``. It serves the folder
    ``root``, or redirects (301) every path to the same path under the origin ``redirect``.
    With ``cert`` (chain, key) it speaks HTTPS; ``hsts`` adds Strict-Transport-Security."""

    names: tuple[str, ...]
    addresses: tuple[str, ...]
    port: int
    root: Path | None = None
    redirect: str | None = None
    cert: tuple[Path, Path] | None = None
    hsts: bool = False
    #: answer in HTTP/1.0 whatever the request's version; only Apache httpd can be told so
    #: (downgrade-1.0 and force-response-1.0), nginx and lighttpd answer HTTP/1.1 regardless
    http10: bool = False
    #: more lines for this server block, in nginx's language (nginx only): e.g. ``location``
    #: blocks that answer 500, or ``if ($connection ...)`` rules that fail chosen connections
    nginx_lines: tuple[str, ...] = ()


def _listens(vhosts: list[VHost]) -> list[tuple[str, int]]:
    return list(dict.fromkeys((address, v.port) for v in vhosts for address in v.addresses))


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address


# ------------------------------------------------------------------------------- nginx


def nginx_conf(work: Path, vhosts: list[VHost]) -> str:
    temp = work / "tmp"
    lines = [
        # one process, no workers: it dies with the test run even when that is killed (PR_SET_PDEATHSIG)
        "master_process off;", "daemon off;", f"pid {work}/nginx.pid;",
        f"error_log {work}/error.log warn;", "events { worker_connections 256; }", "http {",
        "  types { text/html html; text/plain txt; }", "  default_type application/octet-stream;",
        "  log_format t '$remote_addr $host \"$request\" $status';", f"  access_log {work}/access.log t;",
        *(f"  {kind}_temp_path {temp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        "  gzip on;", "  gzip_types text/html;", "  gzip_min_length 20;", "  charset utf-8;",
    ]
    defaults: set[tuple[str, int]] = set()
    for vhost in vhosts:
        lines.append("  server {")
        for address in vhost.addresses:
            first = (address, vhost.port) not in defaults
            defaults.add((address, vhost.port))
            lines.append(f"    listen {_bracket(address)}:{vhost.port}{' ssl' if vhost.cert else ''}"
                         f"{' default_server' if first else ''};")
        lines.append(f"    server_name {' '.join(vhost.names)};")
        if vhost.cert:
            lines += [f"    ssl_certificate {vhost.cert[0]};", f"    ssl_certificate_key {vhost.cert[1]};"]
        if vhost.hsts:
            lines.append(f'    add_header Strict-Transport-Security "{HSTS}" always;')
        if vhost.redirect:
            lines.append(f"    return 301 {vhost.redirect}$request_uri;")
        else:
            lines += [f"    root {vhost.root};", "    index index.html;"]
        lines += [f"    {line}" for line in vhost.nginx_lines]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def nginx_command(work: Path, conf: Path) -> list[str]:
    (work / "tmp").mkdir(exist_ok=True)
    return [BINARIES["nginx"], "-e", str(work / "error.log"), "-p", str(work), "-c", str(conf)]


# ------------------------------------------------------------------------------ apache2


def apache2_conf(work: Path, vhosts: list[VHost]) -> str:
    lines = [
        f"ServerRoot {work}", f"DefaultRuntimeDir {work}/run", f"PidFile {work}/apache2.pid",
        f"Mutex file:{work}/run default", f"ErrorLog {work}/error.log", "LogLevel warn",
        f"User {WORKER_USER}", f"Group {WORKER_USER}", "ServerName localhost",
        *(f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so" for m in APACHE_MODULES),
        f"TypesConfig {work}/mime.types", "AddType text/html .html", "AddType text/plain .txt",
        "AddDefaultCharset utf-8",
        'LogFormat "%a %{Host}i \\"%r\\" %>s" t', f"CustomLog {work}/access.log t",
        "SSLSessionCache none", "AddOutputFilterByType DEFLATE text/html",
        *(f"Listen {_bracket(a)}:{p}" for a, p in _listens(vhosts)),
    ]
    for vhost in vhosts:
        lines.append("<VirtualHost " + " ".join(f"{_bracket(a)}:{vhost.port}" for a in vhost.addresses) + ">")
        lines.append(f"  ServerName {vhost.names[0]}")
        if vhost.names[1:]:
            lines.append(f"  ServerAlias {' '.join(vhost.names[1:])}")
        if vhost.cert:
            lines += ["  SSLEngine on", f"  SSLCertificateFile {vhost.cert[0]}",
                      f"  SSLCertificateKeyFile {vhost.cert[1]}"]
        if vhost.hsts:
            lines.append(f'  Header always set Strict-Transport-Security "{HSTS}"')
        if vhost.http10:
            lines.append('  SetEnvIf Request_Method "." downgrade-1.0 force-response-1.0')
        if vhost.redirect:
            lines.append(f"  Redirect 301 / {vhost.redirect}/")
        else:
            lines += [f"  DocumentRoot {vhost.root}", f"  <Directory {vhost.root}>", "    Require all granted",
                      "  </Directory>", "  DirectoryIndex index.html"]
        lines.append("</VirtualHost>")
    return "\n".join(lines) + "\n"


def apache2_command(work: Path, conf: Path) -> list[str]:
    (work / "run").mkdir(exist_ok=True)
    (work / "mime.types").write_text("")  # the types are the AddType lines of the config
    return [BINARIES["apache2"], "-d", str(work), "-f", str(conf), "-DFOREGROUND"]


# ----------------------------------------------------------------------------- lighttpd


def _lighttpd_site(vhost: VHost, indent: str) -> list[str]:
    """A site's options. A host condition inherits what the socket's default site set, so every
    option is written, empty when unused."""
    lines = []
    if vhost.cert:
        lines += [f'{indent}ssl.pemfile = "{vhost.cert[0]}"', f'{indent}ssl.privkey = "{vhost.cert[1]}"']
    hsts = f'"Strict-Transport-Security" => "{HSTS}"' if vhost.hsts else ""
    lines.append(f"{indent}setenv.add-response-header = ({hsts})")
    redirect = f'"^/(.*)" => "{vhost.redirect}/$1"' if vhost.redirect else ""
    lines.append(f"{indent}url.redirect = ({redirect})")
    if vhost.root:
        lines.append(f'{indent}server.document-root = "{vhost.root}"')
    return lines


def lighttpd_conf(work: Path, vhosts: list[VHost]) -> str:
    listens = _listens(vhosts)
    empty = work / "empty"
    empty.mkdir(exist_ok=True)
    lines = [
        'server.modules = ("mod_access", "mod_redirect", "mod_setenv", "mod_deflate", "mod_openssl", "mod_accesslog")',
        f'server.document-root = "{empty}"', f'server.errorlog = "{work}/error.log"',
        f'server.pid-file = "{work}/lighttpd.pid"', f'server.username = "{WORKER_USER}"',
        f'server.groupname = "{WORKER_USER}"', 'index-file.names = ("index.html")',
        'mimetype.assign = (".html" => "text/html; charset=utf-8", ".txt" => "text/plain; charset=utf-8")',
        f'accesslog.filename = "{work}/access.log"', 'accesslog.format = "%h %V \\"%r\\" %>s"',
        'deflate.mimetypes = ("text/html")', 'deflate.allowed-encodings = ("gzip", "deflate")',
        f'server.bind = "{listens[0][0]}"', f"server.port = {listens[0][1]}",
    ]
    for address, port in listens:
        here = [v for v in vhosts if address in v.addresses and v.port == port]
        lines.append(f'$SERVER["socket"] == "{_bracket(address)}:{port}" {{')
        if here[0].cert:
            lines.append('  ssl.engine = "enable"')
        lines += _lighttpd_site(here[0], "  ")  # the default site of this address and port
        for vhost in here[1:]:
            pattern = "|".join(name.replace(".", "\\.") for name in vhost.names)
            lines.append(f'  $HTTP["host"] =~ "^({pattern})(:[0-9]+)?$" {{')
            lines += _lighttpd_site(vhost, "    ")
            lines.append("  }")
        lines.append("}")
    return "\n".join(lines) + "\n"


def lighttpd_command(work: Path, conf: Path) -> list[str]:
    shutil.chown(work, WORKER_USER, WORKER_USER)  # lighttpd opens its logs after dropping to it
    return [BINARIES["lighttpd"], "-D", "-f", str(conf)]


RENDER = {"nginx": (nginx_conf, nginx_command), "apache2": (apache2_conf, apache2_command),
          "lighttpd": (lighttpd_conf, lighttpd_command)}


# ------------------------------------------------------------------------------ running


@dataclass
class WebServer:
    """A running server: its kind, process, folder and request log."""

    kind: str
    proc: subprocess.Popen[bytes]
    work: Path

    @property
    def access_log(self) -> Path:
        return self.work / "access.log"

    def requests(self) -> list[str]:
        """The request log's lines so far (``ADDRESS HOST "REQUEST" STATUS``). lighttpd buffers
        its log; SIGHUP (what logrotate sends it) makes it write what it holds."""
        if self.kind == "lighttpd" and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)
            time.sleep(0.3)
        return self.access_log.read_text(errors="replace").splitlines() if self.access_log.exists() else []

    def error_log(self) -> str:
        path = self.work / "error.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def web_folder() -> Path:
    """A temporary folder the servers' workers (``www-data``) can read."""
    work = Path(tempfile.mkdtemp(prefix="nsweb-"))
    work.chmod(0o755)
    return work


def _wait_listening(proc: subprocess.Popen[bytes], listens: list[tuple[str, int]], timeout: float) -> str | None:
    """None once every address accepts connections; else why not."""
    deadline = time.monotonic() + timeout
    pending = list(listens)
    while pending:
        if proc.poll() is not None:
            return f"exited with rc={proc.returncode}"
        address, port = pending[0]
        try:
            with socket.create_connection((address, port), timeout=0.5):
                pending.pop(0)
                continue
        except OSError:
            pass
        if time.monotonic() > deadline:
            return f"not listening on {_bracket(address)}:{port} within {timeout:g} s"
        time.sleep(0.05)
    return None


@contextlib.contextmanager
def running(kind: str, netns: str | None, vhosts: list[VHost], work: Path, timeout: float = 20.0) -> Iterator[WebServer]:
    """Start ``kind`` (one of :data:`SERVERS`) inside ``netns`` (None: this namespace, for
    loopback addresses) serving ``vhosts``, with its config, logs and runtime files in ``work``;
    stopped when the block ends, even on failure."""
    render, command = RENDER[kind]
    server_dir = work / kind
    server_dir.mkdir(mode=0o755, exist_ok=True)
    conf = server_dir / f"{kind}.conf"
    conf.write_text(render(server_dir, vhosts))
    cmd = [*(["ip", "netns", "exec", netns] if netns else []), *command(server_dir, conf)]
    log = open(server_dir / "stderr.log", "wb")  # noqa: SIM115 (the server's output; closed at teardown)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=_die_with_parent)
    try:
        problem = _wait_listening(proc, _listens(vhosts), timeout)
        server = WebServer(kind, proc, server_dir)
        if problem:
            raise RuntimeError(f"{kind} {problem}: {(server_dir / 'stderr.log').read_text(errors='replace')[-2000:]}"
                               f"\n{server.error_log()}\nconfig:\n{conf.read_text()}")
        yield server
    finally:
        stop_process(proc)
        log.close()
