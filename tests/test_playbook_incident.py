"""playbooks/incident_collect.yml on lab host h03 with the real agent, age and ssh-keygen.

The county office's key is made on the controller side (``keys new county``); the terminal makes
its own signing key the first time, and the controller trusts its allowed-signers line on first use.
The tests run in order and share the host and the controller's incident folder: check mode first
(nothing made), a real collect, a second one (same key), check mode again, a changed key, an agent
failure. The file included lives in the host's own /tmp (a tmpfs of the host); the host is reset
before and after, so its key folder and files go with it.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.playbook_output import flat, output, recap

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = ROOT / "playbooks" / "incident_collect.yml"
AGENT = ROOT / ".venv" / "bin" / "nanbu-secops"
HOST = "h03"
UNIT = "升钟镇人民政府"
KEY_DIR = "/var/lib/nanbu-secops/keys"
PHONE, MASKED = "13812345678", "138****5678"
FORM = {"incident_title": "终端疑似感染木马", "incident_category": "有害程序事件", "incident_severity": "一般",
        "incident_discovered_at": "2026-11-28T09:30", "incident_measures": "-已断开网络，保留现场"}


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(AGENT), *map(str, args)], capture_output=True, text=True, timeout=120, **kw)


def temp_folders(lab) -> list[str]:
    """The playbook's temporary folders left on the host (suffix .nanbu-incident)."""
    done = lab.ssh(HOST, "find / -xdev -maxdepth 3 -name '*.nanbu-incident' 2>/dev/null; "
                         "find /tmp /var/tmp -name '*.nanbu-incident' 2>/dev/null; true")
    return sorted(set(done.stdout.split()))


def bundles(site) -> list[Path]:
    return sorted((site["incidents"] / HOST).glob("*.nsb")) if (site["incidents"] / HOST).is_dir() else []


def all_files(site) -> list[Path]:
    return sorted(p for p in site["incidents"].rglob("*") if p.is_file()) if site["incidents"].exists() else []


@pytest.fixture(scope="module")
def site(lab, tmp_path_factory):
    """The host (reset), a file with a phone number on it, the county key and the incident folder."""
    lab.reset_host(HOST)
    folder = lab.ssh(HOST, "mktemp -d /tmp/nanbu-evidence.XXXXXX").stdout.strip()
    include = f"{folder}/值班记录.txt"
    lab.ssh(HOST, f"cat > '{include}'", input=f"值班电话 {PHONE}，已通知单位负责人。\n")
    keys = tmp_path_factory.mktemp("county-keys")
    made = cli("keys", "new", "county", "--out", keys)
    assert made.returncode == 0, made.stderr
    try:
        yield {"lab": lab, "include": include, "county": keys / "county.agekey",
               "recipient": (keys / "county.recipient").read_text().strip(),
               "incidents": tmp_path_factory.mktemp("controller") / "incidents"}
    finally:
        lab.reset_host(HOST)


def run(site, *args: str, form: dict | None = None):
    extra = {**FORM, "nanbu_agent": str(AGENT), "nanbu_incident_dir": str(site["incidents"]),
             "incident_include": [site["include"]], "incident_mask_pii": True, "incident_days": 3,
             "unit": {"name": UNIT}, "incident_recipients": [site["recipient"]], **(form or {})}
    return site["lab"].ansible_playbook(PLAYBOOK, "-e", f"target={HOST}", "-e", json.dumps(extra, ensure_ascii=False),
                                        *args)


def trust_file(site) -> Path:
    return site["incidents"] / "trust" / f"{HOST}.allowed_signers"


@pytest.fixture
def collected(site):
    """A terminal with its key, trusted by the controller, and one bundle (the tests below run in
    order and find it made by the collect test; run alone they make it here)."""
    if not bundles(site):
        result = run(site)
        assert result.returncode == 0, output(result)
    return site


def test_check_mode_collects_nothing_and_makes_no_key(site):
    lab = site["lab"]
    result = run(site, "--check")
    assert result.returncode == 0, output(result)
    assert "check mode: nothing is collected or fetched" in flat(result), output(result)
    assert f"check mode: {HOST} has no signing key yet" in flat(result)
    assert all_files(site) == [] and not site["incidents"].exists()
    assert lab.ssh(HOST, f"test -e {KEY_DIR}", check=False).returncode == 1
    assert recap(result)[HOST]["failed"] == 0
    assert temp_folders(lab) == []


def test_collect_fetches_a_bundle_the_county_can_verify_and_open(site, tmp_path):
    lab = site["lab"]
    result = run(site)
    assert result.returncode == 0, output(result)
    assert recap(result)[HOST]["changed"] == 4, output(result)  # key folder, key, trust line, bundle
    [bundle] = bundles(site)
    sig = bundle.with_name(bundle.name + ".sig")
    assert sig.is_file()
    assert re.fullmatch(rf"{HOST}-\d{{8}}T\d{{6}}Z\.nsb", bundle.name), bundle.name

    # The terminal made its key once, private parts stay there; the controller got the public line.
    assert lab.ssh(HOST, f"stat -c %a {KEY_DIR}").stdout.strip() == "700"
    assert lab.ssh(HOST, f"stat -c %a {KEY_DIR}/{HOST}_ed25519").stdout.strip() == "600"
    trust = trust_file(site)
    assert trust.read_text() == lab.ssh(HOST, f"cat {KEY_DIR}/{HOST}.allowed_signers").stdout
    assert trust.read_text().startswith(f'{HOST} namespaces="nanbu-secops" ssh-ed25519 ')
    for path in all_files(site):
        assert b"PRIVATE KEY" not in path.read_bytes() and b"AGE-SECRET-KEY" not in path.read_bytes(), path
    assert "PRIVATE KEY" not in result.stdout

    # The whole bundle holds, for the county office, against the trusted line.
    verify = cli("incident", "verify", bundle, "--identity", site["county"], "--trust", trust, "--format", "json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    outer = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(trust), "-I", HOST, "-n", "nanbu-secops",
                            "-s", str(sig)], stdin=bundle.open("rb"), capture_output=True, timeout=60)
    assert outer.returncode == 0, outer.stderr
    plain = subprocess.run(["age", "-d", "-i", str(site["county"]), str(bundle)], capture_output=True, timeout=60)
    assert plain.returncode == 0, plain.stderr
    listing = subprocess.run(["tar", "-t"], input=plain.stdout, capture_output=True, timeout=60).stdout.decode().split("\n")
    member = "evidence/files" + site["include"]
    assert member in listing and "manifest.json" in listing, listing

    # Opened, the included file has the phone number masked; the form carries the unit and measures.
    opened = tmp_path / "opened"
    done = cli("incident", "open", bundle, "--identity", site["county"], "--trust", trust, "--out", opened)
    assert done.returncode == 0, done.stdout + done.stderr
    text = (opened / member).read_text(encoding="utf-8")
    assert MASKED in text and PHONE not in text, text
    report = (opened / "report.json").read_text(encoding="utf-8")
    assert UNIT in report and FORM["incident_measures"] in report and FORM["incident_title"] in report

    # The controller's summary names the bundle and how to verify it; nothing is left on the terminal.
    assert f"verify with: nanbu-secops incident verify {bundle} --identity OFFICE.agekey --trust {trust}" in flat(result), output(result)
    assert temp_folders(lab) == []


def test_second_run_keeps_the_trust_line_and_recipients_come_from_the_unit(collected):
    site = collected
    trust = trust_file(site)
    before = trust.read_bytes()
    earlier = bundles(site)
    # No incident_recipients given: the unit's group_vars (unit.incident_recipients) are used.
    extra = {"unit": {"name": UNIT, "incident_recipients": [site["recipient"]]}}
    result = site["lab"].ansible_playbook(
        PLAYBOOK, "-e", f"target={HOST}", "-e", json.dumps({**FORM, "nanbu_agent": str(AGENT), **extra,
                                                            "nanbu_incident_dir": str(site["incidents"])},
                                                           ensure_ascii=False))
    assert result.returncode == 0, output(result)
    assert recap(result)[HOST]["changed"] == 1, output(result)  # the bundle (.nsb and .sig), nothing else
    assert trust.read_bytes() == before
    new = [b for b in bundles(site) if b not in earlier]
    assert len(new) == 1
    verify = cli("incident", "verify", new[0], "--identity", site["county"], "--trust", trust)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert temp_folders(site["lab"]) == []


def test_check_mode_with_a_key_collects_nothing(collected):
    site = collected
    before = all_files(site)
    result = run(site, "--check")
    assert result.returncode == 0, output(result)
    assert "check mode: nothing is collected or fetched" in flat(result)
    assert (recap(result)[HOST]["changed"], recap(result)[HOST]["failed"]) == (0, 0)
    assert all_files(site) == before
    assert temp_folders(site["lab"]) == []


def test_a_changed_key_fails_the_host_and_collects_nothing(collected, tmp_path):
    site = collected
    trust = trust_file(site)
    original = trust.read_bytes()
    other = cli("keys", "new", HOST, "--out", tmp_path / "other")
    assert other.returncode == 0, other.stderr
    before = all_files(site)
    try:
        trust.write_bytes((tmp_path / "other" / f"{HOST}.allowed_signers").read_bytes())
        replaced = trust.read_bytes()
        for args in ((), ("--check",)):
            result = run(site, *args)
            assert result.returncode != 0 and recap(result)[HOST]["failed"] == 1, output(result)
            assert f"SIGNING KEY CHANGED on {HOST}" in flat(result), output(result)
            assert "Nothing was collected" in flat(result)
            assert trust.read_bytes() == replaced  # never overwritten by the terminal's line
            assert all_files(site) == before
        # Same key, other text (an edited option) also stops the host, and says the key is the same.
        trust.write_bytes(original.replace(b'namespaces="nanbu-secops"', b'namespaces="nanbu-secops",valid-after="20260101"'))
        result = run(site)
        assert recap(result)[HOST]["failed"] == 1 and f"TRUST LINE DIFFERS on {HOST}" in flat(result), output(result)
        assert all_files(site) == before
    finally:
        trust.write_bytes(original)
    assert temp_folders(site["lab"]) == []


def test_the_signing_key_is_never_included(collected):
    """An include that holds the key folder would pack the private key into the bundle: refused,
    also through a symbolic link or `..`; a file beside the key folder is fine."""
    site = collected
    lab = site["lab"]
    lab.ssh(HOST, "mkdir -p /srv && ln -sfn /var/lib /srv/varlib && touch /var/lib/nanbu-secops/av-scans.jsonl")
    before = all_files(site)
    for include in ("/var/lib/nanbu-secops", "/", "/srv/varlib/nanbu-secops/", f"{KEY_DIR}/../keys/{HOST}_ed25519",
                    "/srv/varlib"):
        result = run(site, form={"incident_include": ["/var/lib/nanbu-secops/av-scans.jsonl", include]})
        assert recap(result)[HOST]["failed"] == 1, (include, output(result))
        assert f"would put the terminal's private signing key ({KEY_DIR}) into the bundle: {include}." in flat(result), output(result)
        assert all_files(site) == before
    result = run(site, "--check", form={"incident_include": ["/var"]})
    assert recap(result)[HOST]["failed"] == 1 and "private signing key" in flat(result), output(result)
    assert temp_folders(lab) == []


def test_agent_failure_fails_the_host_and_removes_the_temporary_folder(site):
    before = all_files(site)
    result = run(site, form={"incident_severity": "不存在的级别"})
    assert recap(result)[HOST]["failed"] == 1, output(result)
    assert "incident collect exited with 2" in flat(result) and "No bundle from h03" in flat(result), output(result)
    assert all_files(site) == before
    assert temp_folders(site["lab"]) == []


def test_missing_form_and_bad_recipients_stop_before_anything(site):
    before = all_files(site)
    result = run(site, form={"incident_discovered_at": ""})
    assert recap(result)[HOST]["failed"] == 1
    assert "Missing or empty: incident_discovered_at" in flat(result), output(result)
    result = run(site, form={"incident_recipients": ["/root/county.recipient"]})
    assert recap(result)[HOST]["failed"] == 1
    assert "incident_recipients must list the age1" in flat(result), output(result)
    result = run(site, form={"incident_recipients": [], "unit": {"name": UNIT}})
    assert recap(result)[HOST]["failed"] == 1 and "got []" in flat(result), output(result)
    for include in ("var/log/auth.log", "/tmp/a\n/etc/shadow"):
        result = run(site, form={"incident_include": [include]})
        assert recap(result)[HOST]["failed"] == 1, output(result)
        assert "incident_include must be a list of absolute paths" in flat(result), output(result)
    result = run(site, form={"incident_days": "7d"})
    assert recap(result)[HOST]["failed"] == 1 and "incident_days must be a whole number" in flat(result), output(result)
    assert all_files(site) == before


def test_a_sudo_account_gets_the_bundle_fetched_as_a_file(collected):
    """The usual terminal: Ansible logs in as an administrator and becomes root with sudo. The
    bundle is handed to that account and fetched without become (not slurped through memory)."""
    site = collected
    lab = site["lab"]
    lab.ssh(HOST, "useradd -m -s /bin/bash ops-wang && install -d -o ops-wang -m 700 /home/ops-wang/.ssh && "
                  "install -o ops-wang -m 600 /root/.ssh/authorized_keys /home/ops-wang/.ssh/ && "
                  "echo 'ops-wang ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/ops-wang && chmod 440 /etc/sudoers.d/ops-wang")
    before = bundles(site)
    result = run(site, "-vvv", "-e", "ansible_user=ops-wang")
    assert result.returncode == 0, output(result)
    assert recap(result)[HOST]["changed"] == 1, output(result)
    new = [b for b in bundles(site) if b not in before]
    assert len(new) == 1
    assert re.search(rf"FETCH \S*/{re.escape(new[0].name)} TO ", result.stdout), "fetched through slurp?"
    verify = cli("incident", "verify", new[0], "--identity", site["county"], "--trust", trust_file(site))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert lab.ssh(HOST, f"stat -c '%U %a' {KEY_DIR} {KEY_DIR}/{HOST}_ed25519").stdout.split() == ["root", "700", "root", "600"]
    assert temp_folders(lab) == []
