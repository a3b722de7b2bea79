"""Build small target root trees for ``check --root`` tests.

A tree starts compliant with the shipped article 26 policy; each test breaks one thing.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tests.clamdb import write_cud

AS_OF = dt.date(2026, 11, 28)
EPOCH = dt.date(1970, 1, 1)


def day(date: dt.date) -> int:
    """A date as /etc/shadow counts it."""
    return (date - EPOCH).days


def days_ago(n: int) -> int:
    return day(AS_OF - dt.timedelta(days=n))


LOGIN_DEFS = """\
# /etc/login.defs - test terminal
MAIL_DIR        /var/mail
PASS_MAX_DAYS   90
PASS_MIN_DAYS   1
PASS_WARN_AGE   7
UID_MIN         1000
"""

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
svc:x:998:998:service:/srv:/bin/bash
backup:x:999:999::/var/backups:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""

HASH = "$6$salt$abcdefghijklmnopqrstuvwxyz0123456789"


def shadow(**last_change: int | str) -> str:
    """Shadow text; ``last_change`` overrides per account (int day or a raw field)."""
    changes: dict[str, int | str] = {"root": days_ago(5), "alice": days_ago(10), "svc": days_ago(400),
                                     "daemon": days_ago(900), "backup": days_ago(900), "nobody": days_ago(900)}
    changes.update(last_change)
    hashes = {"root": HASH, "alice": HASH, "svc": HASH, "daemon": "*", "backup": "*", "nobody": "*"}
    return "".join(f"{name}:{hashes[name]}:{changes[name]}:1:90:7:::\n" for name in hashes)


SSHD_CONFIG = """\
# test sshd_config
Include /etc/ssh/sshd_config.d/*.conf
PermitRootLogin prohibit-password
MaxAuthTries 4
KbdInteractiveAuthentication no
UsePAM yes
AuthenticationMethods publickey
ClientAliveInterval 300
ClientAliveCountMax 3
MACs -hmac-sha1*,umac-64*
"""


# Article 5: an nftables ruleset that denies inbound by default and is enabled at boot, chrony
# with a server, and resolvers inside the shipped approved_resolvers (one of them IPv6, for article 9(2)).
NFTABLES_CONF = """\
#!/usr/sbin/nft -f
flush ruleset
table inet filter {
    chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iif "lo" accept
        tcp dport 22 accept
    }
}
"""

CHRONY_CONF = "# test chrony.conf\nserver 10.20.0.1 iburst\ndriftfile /var/lib/chrony/chrony.drift\n"

RESOLV_CONF = "# test resolv.conf\nnameserver 10.20.0.53\nnameserver fd12::53\n"  # IPv6 too: article 9(2)

# Article 26 terminals: sudo asks people for their password (a service account may go without),
# and dpkg knows no remote-control package.
SUDOERS = """\
Defaults\tenv_reset
Defaults\tsecure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
root\tALL=(ALL:ALL) ALL
%sudo\tALL=(ALL:ALL) ALL
svc ALL=(root) NOPASSWD: /usr/bin/systemctl restart nginx
@includedir /etc/sudoers.d
"""

GROUP = "root:x:0:\nsudo:x:27:alice\nsvc:x:998:\nalice:x:1000:\n"

DPKG_STATUS = """\
Package: openssh-server
Status: install ok installed
Version: 1:9.2p1-2+deb12u3

Package: sudo
Status: install ok installed
Version: 1.9.13p3-1+deb12u1
"""

# Article 27: ClamAV with clamd and freshclam enabled at boot, a day-old signature database, a scan
# completed yesterday (the project's scan log) and a weekly cron job that scans.
CLAMD_CONF = "LocalSocket /run/clamav/clamd.ctl\nUser clamav\nDatabaseDirectory /var/lib/clamav\n"
FRESHCLAM_CONF = "DatabaseOwner clamav\nDatabaseDirectory /var/lib/clamav\nPrivateMirror 10.20.0.80\n"
AV_SCAN_CRON = "30 12 * * 3 root /opt/nanbu-secops/bin/nanbu-secops av scan /home /root /tmp\n"


# Article 26 PAM (NS26-PASS-006/007): Debian's pam-auth-update layout with pam_pwquality before pam_unix and
# pam_faillock around it; the thresholds in the files the modules read.
COMMON_PASSWORD = """\
password\trequisite\t\t\tpam_pwquality.so retry=3
password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt
password\trequisite\t\t\tpam_deny.so
password\trequired\t\t\tpam_permit.so
"""
COMMON_AUTH = """\
auth\trequired\t\t\tpam_faillock.so preauth
auth\t[success=2 default=ignore]\tpam_unix.so nullok
auth\t[default=die]\t\t\tpam_faillock.so authfail
auth\trequisite\t\t\tpam_deny.so
auth\trequired\t\t\tpam_permit.so
"""
PWQUALITY_CONF = "# test pwquality.conf\nminlen = 12\nminclass = 3\n"
FAILLOCK_CONF = "# test faillock.conf\ndeny = 5\nunlock_time = 900\n"

# The Red Hat family (authselect's sssd/minimal profile with-faillock): the same rules in system-auth and
# password-auth.
REDHAT_AUTH = """\
auth        required      pam_env.so
auth        required      pam_faillock.so preauth silent
auth        sufficient    pam_unix.so nullok
auth        [default=die] pam_faillock.so authfail
auth        required      pam_deny.so

account     required      pam_faillock.so
account     required      pam_unix.so

password    requisite     pam_pwquality.so local_users_only
password    sufficient    pam_unix.so sha512 shadow nullok use_authtok
password    required      pam_deny.so

session     required      pam_unix.so
"""


def county_time(days_before: int, hour: int = 12) -> dt.datetime:
    """``days_before`` AS_OF at ``hour`` o'clock in the county's zone (+08:00)."""
    day_ = AS_OF - dt.timedelta(days=days_before)
    return dt.datetime(day_.year, day_.month, day_.day, hour, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def clamav_db(days_old: int = 1, version: int = 27000) -> bytes:
    """A daily.cud (EICAR signature) built ``days_old`` days before AS_OF, as bytes for make_root."""
    with tempfile.TemporaryDirectory() as folder:
        return write_cud(Path(folder), county_time(days_old), version).read_bytes()


def scan_record(days_old: int = 1, completed: bool = True) -> str:
    """One scan log line (nanbu_secops.av.records format) for a scan that ended ``days_old`` days before AS_OF."""
    return json.dumps({"started": county_time(days_old, 10).isoformat(), "finished": county_time(days_old, 11).isoformat(),
                       "engine": "clamscan", "paths": ["/home"], "completed": completed,
                       "reason": "" if completed else "timed out after 3600 s", "files_scanned": 1200,
                       "detections": [], "database": "ClamAV 1.4.6/27000"}) + "\n"


def make_root(base: Path, changes: Mapping[str, str | bytes | None] | None = None) -> Path:
    """A compliant root under ``base``; ``changes`` maps paths (``etc/shadow``) to new text (or
    bytes), or None to leave out."""
    tree: dict[str, str | bytes | None] = {
        "etc/hostname": "terminal-01\n",
        "etc/login.defs": LOGIN_DEFS,
        "etc/passwd": PASSWD,
        "etc/shadow": shadow(),
        "etc/ssh/sshd_config": SSHD_CONFIG,
        "etc/ssh/sshd_config.d/README": "not a .conf file, never included\n",
        "usr/sbin/sshd": "",
        "var/log/wtmp": "",  # a login record that is there but empty: nobody logged in yet
        "etc/nftables.conf": NFTABLES_CONF,
        "usr/sbin/nft": "",
        "etc/systemd/system/sysinit.target.wants/nftables.service": "",  # enabled at boot
        "etc/chrony/chrony.conf": CHRONY_CONF,
        "usr/sbin/chronyd": "",
        "etc/systemd/system/multi-user.target.wants/chrony.service": "",
        "etc/resolv.conf": RESOLV_CONF,
        "etc/sudoers": SUDOERS,
        "etc/sudoers.d/README": "# files here are read by sudo\n",
        "etc/group": GROUP,
        "var/lib/dpkg/status": DPKG_STATUS,
        "usr/bin/clamscan": "",
        "usr/sbin/clamd": "",
        "etc/clamav/clamd.conf": CLAMD_CONF,
        "etc/clamav/freshclam.conf": FRESHCLAM_CONF,
        "etc/systemd/system/multi-user.target.wants/clamav-daemon.service": "",
        "etc/systemd/system/multi-user.target.wants/clamav-freshclam.service": "",
        "var/lib/clamav/daily.cud": clamav_db(),
        "var/lib/nanbu-secops/av-scans.jsonl": scan_record(),
        "etc/cron.d/nanbu-av-scan": AV_SCAN_CRON,
        "usr/sbin/cron": "",
        "etc/pam.d/common-password": COMMON_PASSWORD,
        "etc/pam.d/common-auth": COMMON_AUTH,
        "etc/security/pwquality.conf": PWQUALITY_CONF,
        "etc/security/faillock.conf": FAILLOCK_CONF,
    }
    tree.update(changes or {})
    for rel, text in tree.items():
        if text is None:
            continue
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    return base


# The Red Hat family's layout (openEuler, Kylin Server V10, Rocky): no dpkg, PAM in system-auth and
# password-auth, sshd's drop-in including the crypto-policies back-end (RHEL 9 style), chrony at
# /etc/chrony.conf, firewalld instead of nftables.conf, /var/log/secure.
REDHAT_SSHD_CONFIG = SSHD_CONFIG.replace("MACs -hmac-sha1*,umac-64*\n", "")
REDHAT_50_CONF = "# as RHEL 9's openssh-server ships it\nInclude /etc/crypto-policies/back-ends/opensshserver.config\n"
CRYPTO_BACKEND = """\
Ciphers aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-ctr,aes128-gcm@openssh.com,aes128-ctr
MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha2-512
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,\
diffie-hellman-group-exchange-sha256,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512
HostKeyAlgorithms ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-ed25519,rsa-sha2-256,rsa-sha2-512
PubkeyAcceptedAlgorithms ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-ed25519,rsa-sha2-256,rsa-sha2-512
"""
FIREWALLD_CONF = "# test firewalld.conf\nDefaultZone=public\n"
PUBLIC_ZONE = '<?xml version="1.0" encoding="utf-8"?>\n<zone>\n  <short>Public</short>\n  <service name="ssh"/>\n</zone>\n'


def make_redhat_root(base: Path, changes: Mapping[str, str | bytes | None] | None = None) -> Path:
    """A compliant Red Hat-style root under ``base`` (see make_root for ``changes``)."""
    tree: dict[str, str | bytes | None] = {
        "etc/os-release": 'NAME="openEuler"\nID="openEuler"\nVERSION_ID="22.03"\nID_LIKE="rhel fedora"\n',
        "var/lib/dpkg/status": None,
        "etc/pam.d/common-password": None,
        "etc/pam.d/common-auth": None,
        "etc/pam.d/system-auth": REDHAT_AUTH,
        "etc/pam.d/password-auth": REDHAT_AUTH,
        "etc/pam.d/passwd": "auth include system-auth\npassword substack system-auth\n",
        "etc/ssh/sshd_config": REDHAT_SSHD_CONFIG,
        "etc/ssh/sshd_config.d/50-redhat.conf": REDHAT_50_CONF,
        "usr/share/crypto-policies/DEFAULT/opensshserver.txt": CRYPTO_BACKEND,
        "etc/chrony/chrony.conf": None,
        "etc/chrony.conf": CHRONY_CONF,
        "etc/systemd/system/multi-user.target.wants/chrony.service": None,
        "etc/systemd/system/multi-user.target.wants/chronyd.service": "",
        "etc/nftables.conf": None,
        "usr/sbin/nft": None,
        "etc/systemd/system/sysinit.target.wants/nftables.service": None,
        "etc/firewalld/firewalld.conf": FIREWALLD_CONF,
        "usr/lib/firewalld/zones/public.xml": PUBLIC_ZONE,
        "etc/systemd/system/multi-user.target.wants/firewalld.service": "",
        "etc/group": GROUP.replace("sudo:x:27:alice", "wheel:x:10:alice"),
        "etc/sudoers": SUDOERS.replace("%sudo", "%wheel"),
        "var/log/secure": "",
    }
    tree.update(changes or {})
    root = make_root(base, tree)
    link = root / "etc/crypto-policies/back-ends/opensshserver.config"
    if not link.exists() and not link.is_symlink() and "etc/crypto-policies/back-ends/opensshserver.config" not in tree:
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/usr/share/crypto-policies/DEFAULT/opensshserver.txt")  # as update-crypto-policies links it
    return root


# RHEL 8-style (Rocky 8, Kylin Server V10): sshd.service passes the crypto policy on sshd's command line.
RHEL8_SSHD_SERVICE = """\
[Unit]
Description=OpenSSH server daemon

[Service]
Type=notify
EnvironmentFile=-/etc/crypto-policies/back-ends/opensshserver.config
EnvironmentFile=-/etc/sysconfig/sshd
ExecStart=/usr/sbin/sshd -D $OPTIONS $CRYPTO_POLICY
"""
