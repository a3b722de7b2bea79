"""playbooks/library/nanbu_shadow_password.py's lock-state rules, on shadow lines as usermod,
passwd and chage write them (the lab tests run the module itself on real hosts)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab import PROJECT_ROOT

SPEC = importlib.util.spec_from_file_location("nanbu_shadow_password",
                                              PROJECT_ROOT / "playbooks" / "library" / "nanbu_shadow_password.py")
module = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(module)

TODAY = 20000  # days since 1970-01-01, fixed: the rules compare shadow days with it
HASH = "$y$j9T$abcdefghijklmnop$ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"


def fields(line: str) -> list[str]:
    parts = line.split(":")
    return parts + [""] * (9 - len(parts))


@pytest.mark.parametrize("line, status, why", [
    (f"clerk:{HASH}:19990:0:99999:7:::", "usable", ""),
    ("clerk::19990:0:99999:7:::", "usable", ""),  # an empty password: a new one makes it stricter
    (f"clerk:!{HASH}:19990:0:99999:7:::", "locked", "locked"),  # usermod -L, passwd -l
    ("clerk:!:19990:0:99999:7:::", "locked", "locked"),  # useradd without a password
    ("clerk:!!:19990:0:99999:7:::", "locked", "locked"),  # the Red Hat family's never-set password
    ("clerk:*:19990:0:99999:7:::", "no-password", "no password"),  # key-only
    ("clerk:*LK*:19990:0:99999:7:::", "no-password", "no password"),
    ("clerk:x:19990:0:99999:7:::", "no-password", "no password"),
    (f"clerk:{HASH}:19990:0:99999:7::1:", "expired", "account expired"),  # usermod -e 1
    (f"clerk:{HASH}:19990:0:99999:7::{TODAY}:", "expired", "account expired"),  # expires today: pam_unix refuses
    (f"clerk:{HASH}:19990:0:99999:7::{TODAY + 1}:", "usable", ""),
    (f"clerk:{HASH}:19990:0:99999:7::0:", "expired", "account expired"),  # pam_unix: day 0 has passed
    (f"clerk:{HASH}:19000:0:90:7:30::", "expired", "account inactive"),  # 90 + 30 days after 19000 < TODAY
    (f"clerk:{HASH}:19900:0:90:7:30::", "usable", ""),  # past its maximum but still within inactive days
    (f"clerk:{HASH}:0:0:99999:7:::", "expired", "change forced"),  # passwd -e
    (f"clerk:{HASH}::0:99999:7:::", "usable", ""),  # ageing off
    (f"clerk:{HASH}:junk:x:y:z:w:v:", "usable", ""),  # unreadable numbers are not days
    ("clerk", "usable", ""),  # a truncated line: no lock, no expiry in it
])
def test_lock_state(line, status, why):
    found, reason = module.lock_state(fields(line), TODAY)
    assert found == status and why in reason


@pytest.mark.parametrize("how, status", [("-L", "locked"), ("-p '*'", "no-password"), ("-e 1", "expired")])
def test_lock_state_of_what_usermod_writes(tmp_path, how, status):
    """usermod --prefix on a copy of /etc is the writer: the module reads its result as intended."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\nclerk:x:1000:1000::/home/clerk:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\nclerk:x:1000:\n")
    (etc / "shadow").write_text(f"root:*:19000:0:99999:7:::\nclerk:{HASH}:19990:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\nclerk:!::\n")
    (etc / "login.defs").write_text("")
    subprocess.run(f"usermod --prefix {tmp_path} {how} clerk", shell=True, check=True, capture_output=True)
    line = next(row for row in (etc / "shadow").read_text().splitlines() if row.startswith("clerk:"))
    assert module.lock_state(fields(line), TODAY)[0] == status


def test_module_censors_its_hashes_at_vvv(tmp_path):
    """The argument spec marks the hashes no_log, so Ansible censors them without the task saying
    so. The module runs locally at -vvv for an account that does not exist: it refuses, writes
    nothing, and neither hash appears in what Ansible prints."""
    new, expected = "$6$censorcheck$NEWHASHNEWHASH", "$6$censorcheck$OLDHASHOLDHASH"
    done = subprocess.run([str(Path(sys.executable).with_name("ansible")), "localhost", "-c", "local", "-vvv",
                           "-M", str(PROJECT_ROOT / "playbooks" / "library"), "-m", "nanbu_shadow_password", "-a",
                           f'{{"name": "nanbu-no-such-user", "state": "set", "password": "{new}", "expected": "{expected}"}}'],
                          env={**os.environ, "ANSIBLE_HOME": str(tmp_path), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
                               "ANSIBLE_NOCOLOR": "1"},
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2 and "no such account" in output, output[-2000:]
    assert "NEWHASH" not in output and "OLDHASH" not in output
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in output
