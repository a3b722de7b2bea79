"""``nanbu-secops ssh-probe`` against real sshd servers this test starts on loopback (127.0.0.1 and ::1).

Each server is the stock /usr/sbin/sshd with its own config and host key on a free port. It runs
in a private mount namespace whose /run is a fresh tmpfs, because sshd insists on its
privilege-separation folder /run/sshd and the real machine must not be changed to get one.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
import yaml

from nanbu_secops.cli import main

PROJECT = Path(__file__).resolve().parents[1]
SSHD = "/usr/sbin/sshd"

STRONG = """\
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org
HostKeyAlgorithms ssh-ed25519
"""
WEAK = """\
Ciphers +aes128-cbc
MACs +hmac-sha1
KexAlgorithms +diffie-hellman-group14-sha1
HostKeyAlgorithms +ssh-rsa
"""
# Nothing paramiko would agree to: a client that negotiates could not report this server at all.
WEAK_ONLY = """\
Ciphers 3des-cbc
MACs hmac-md5
KexAlgorithms diffie-hellman-group1-sha1
HostKeyAlgorithms ssh-rsa
"""

pytestmark = pytest.mark.skipif(not Path(SSHD).exists() or shutil.which("unshare") is None,
                                reason="needs openssh-server and util-linux unshare")


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]


def free_port() -> int:
    """A TCP port free on both 127.0.0.1 and ::1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s4:
            s4.bind(("127.0.0.1", 0))
            port = s4.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                    s6.bind(("::1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free on both loopback addresses")


def start_sshd(tmp: Path, algorithms: str, key_type: str) -> Server:
    tmp.mkdir(parents=True, exist_ok=True)
    key = tmp / f"host_{key_type}_key"
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(key)], check=True,
                   stdin=subprocess.DEVNULL)
    port = free_port()
    config = tmp / "sshd_config"
    config.write_text(f"ListenAddress 127.0.0.1:{port}\nListenAddress [::1]:{port}\nPidFile none\nUsePAM no\n"
                      f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nAuthorizedKeysFile none\n"
                      f"{algorithms}")
    script = f"mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec {SSHD} -D -e -f {config} -h {key}"
    log = (tmp / "sshd.log").open("wb")
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    server = Server(port, proc)
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited {proc.returncode}: {(tmp / 'sshd.log').read_text()}")
        try:
            socket.create_connection(("::1", port), timeout=0.5).close()
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            if time.monotonic() > deadline:
                stop(server)
                raise RuntimeError(f"sshd did not listen on {port}: {(tmp / 'sshd.log').read_text()}") from None
            time.sleep(0.05)


def stop(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """A strong-only, a weak-enabled and a weak-only sshd, always terminated at the end."""
    started: dict[str, Server] = {}
    try:
        base = tmp_path_factory.mktemp("sshd")
        started["strong"] = start_sshd(base / "strong", STRONG, "ed25519")
        started["weak"] = start_sshd(base / "weak", WEAK, "rsa")
        started["weak_only"] = start_sshd(base / "weak_only", WEAK_ONLY, "rsa")
        yield started
    finally:
        for server in started.values():
            stop(server)


def probe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["ssh-probe", "--format", "json", "--timeout", "5", *args])
    return code, json.loads(capsys.readouterr().out)


def test_strong_server_passes_on_ipv4_and_ipv6(servers, capsys):
    port = servers["strong"].port
    code, doc = probe(capsys, f"127.0.0.1:{port}", f"[::1]:{port}")
    assert code == 0
    assert doc["summary"] == {"ok": 2, "weak": 0, "error": 0}
    for host, expected in zip(doc["hosts"], ("127.0.0.1", "::1"), strict=True):
        assert (host["host"], host["port"], host["status"], host["weak"]) == (expected, port, "ok", {})
        assert host["banner"].startswith("SSH-2.0-OpenSSH_")
        assert host["algorithms"] == {
            "kex": ["curve25519-sha256", "curve25519-sha256@libssh.org"], "hostkey": ["ssh-ed25519"],
            "ciphers": ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"],
            "macs": ["hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com"]}


def test_weak_algorithms_are_flagged_with_the_policy_patterns(servers, capsys):
    code, doc = probe(capsys, f"127.0.0.1:{servers['weak'].port}")
    assert code == 1
    host = doc["hosts"][0]
    assert host["status"] == "weak"
    # "+" appends to OpenSSH's defaults, whose MACs already hold umac-64 and hmac-sha1 variants
    assert host["weak"] == {"kex": ["diffie-hellman-group14-sha1"], "hostkey": ["ssh-rsa"], "ciphers": ["aes128-cbc"],
                            "macs": ["umac-64-etm@openssh.com", "hmac-sha1-etm@openssh.com", "umac-64@openssh.com",
                                     "hmac-sha1"]}
    # the strong defaults are offered too, and are not flagged
    assert "rsa-sha2-512" in host["algorithms"]["hostkey"] and "aes256-ctr" in host["algorithms"]["ciphers"]


def test_a_server_offering_only_weak_algorithms_is_reported_though_no_client_could_negotiate(servers, capsys):
    port = servers["weak_only"].port
    transport = paramiko.Transport(("127.0.0.1", port))
    with pytest.raises(paramiko.SSHException, match="Incompatible"):
        transport.start_client(timeout=5)
    transport.close()
    code, doc = probe(capsys, f"[::1]:{port}")
    assert code == 1
    assert doc["hosts"][0]["weak"] == {"kex": ["diffie-hellman-group1-sha1"], "hostkey": ["ssh-rsa"],
                                       "ciphers": ["3des-cbc"], "macs": ["hmac-md5"]}


def test_unreachable_host_is_an_error_per_host_and_the_others_are_still_probed(servers, capsys):
    closed = free_port()
    code, doc = probe(capsys, f"127.0.0.1:{closed}", f"127.0.0.1:{servers['strong'].port}")
    assert code == 1
    down, up = doc["hosts"]
    assert down["status"] == "error" and f"port {closed}" in down["error"] and down["algorithms"] == {}
    assert up["status"] == "ok"
    assert doc["summary"] == {"ok": 1, "weak": 0, "error": 1}


def test_a_listener_that_is_not_ssh_is_an_error(capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        code, doc = probe(capsys, "--timeout", "1", f"127.0.0.1:{listener.getsockname()[1]}")
    assert code == 1 and doc["hosts"][0]["status"] == "error" and doc["hosts"][0]["error"]


def test_text_report_in_chinese_and_english(servers, capsys):
    weak = f"127.0.0.1:{servers['weak'].port}"
    assert main(["ssh-probe", weak]) == 1
    out = capsys.readouterr().out
    assert "有弱算法" in out and "*hmac-sha1" in out and "整改建议" in out and "密钥交换" in out
    assert main(["ssh-probe", "--lang", "en", f"[::1]:{servers['strong'].port}"]) == 0
    out = capsys.readouterr().out
    assert "no weak algorithm" in out and "key exchange" in out and "*" not in re.sub(r"\(\* = weak\)", "", out)


def test_json_to_a_file(servers, tmp_path, capsys):
    target = tmp_path / "probe.json"
    code = main(["ssh-probe", "--format", "json", "--output", str(target), f"127.0.0.1:{servers['weak'].port}"])
    assert code == 1 and capsys.readouterr().out == ""
    doc = json.loads(target.read_text())
    assert doc["lang"] == "zh" and doc["generated"].endswith("+08:00") and doc["hosts"][0]["status"] == "weak"
    assert "nanbu-a26@" in doc["policy_version"]


def test_the_policy_variables_decide_what_is_weak(servers, tmp_path, capsys):
    policy = yaml.safe_load((PROJECT / "policies" / "article26.yml").read_text(encoding="utf-8"))
    policy["variables"]["ssh_weak_algorithms"]["ciphers"].append("chacha20-*")
    (tmp_path / "article26.yml").write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    code, doc = probe(capsys, "--policy", str(tmp_path / "article26.yml"), f"127.0.0.1:{servers['strong'].port}")
    assert code == 1 and doc["hosts"][0]["weak"] == {"ciphers": ["chacha20-poly1305@openssh.com"]}


@pytest.mark.parametrize("target, message", [
    ("127.0.0.1:0", "port must be a number from 1 to 65535"),
    ("127.0.0.1:ssh", "port must be a number"),
    ("[::1", "[ADDRESS]:PORT"),
    ("[example.org]:22", "not an IPv6 address"),
    ("127.0.0.1:", "port is missing"),
])
def test_bad_input_exits_2_with_a_clear_message(target, message):
    done = subprocess.run([sys.executable, "-m", "nanbu_secops", "ssh-probe", target, "--lang", "en"], capture_output=True,
                          text=True, check=False, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_bad_timeout_exits_2(capsys):
    assert main(["ssh-probe", "--timeout", "0", "127.0.0.1"]) == 2
    assert "--timeout" in capsys.readouterr().err
