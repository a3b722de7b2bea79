"""Reading systemd daemon configuration the way systemd does: drop-in order, list settings, enablement."""

from __future__ import annotations

from pathlib import Path

from nanbu_secops.collect import systemd
from nanbu_secops.collect.rootfs import RootFS


def tree(base: Path, files: dict[str, str]) -> RootFS:
    (base / "etc").mkdir(exist_ok=True)
    for rel, text in files.items():
        path = base / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return RootFS(base)


def test_drop_ins_sorted_by_name_and_etc_replaces_usr_lib(tmp_path):
    fs = tree(tmp_path, {
        "/etc/systemd/timesyncd.conf": "[Time]\nNTP=a\n",
        "/usr/lib/systemd/timesyncd.conf.d/20-vendor.conf": "[Time]\nNTP=vendor\n",
        "/etc/systemd/timesyncd.conf.d/20-vendor.conf": "[Time]\nNTP=local\n",
        "/run/systemd/timesyncd.conf.d/10-run.conf": "[Time]\nNTP=run\n",
    })
    files = systemd.config_files(fs, "/etc/systemd/timesyncd.conf")
    assert files == ["/etc/systemd/timesyncd.conf", "/run/systemd/timesyncd.conf.d/10-run.conf",
                     "/etc/systemd/timesyncd.conf.d/20-vendor.conf"]
    assert [v for v, _ in systemd.list_setting(fs, files, "Time", "NTP")] == ["a", "run", "local"]


def test_an_empty_assignment_resets_the_list_and_other_sections_do_not_count(tmp_path):
    fs = tree(tmp_path, {"/etc/systemd/resolved.conf": "[Resolve]\nDNS=1.1.1.1 8.8.8.8\n[Other]\nDNS=9.9.9.9\n",
                         "/etc/systemd/resolved.conf.d/50-unit.conf": "[Resolve]\nDNS=\nDNS=10.0.0.53\n"})
    files = systemd.config_files(fs, "/etc/systemd/resolved.conf")
    assert systemd.list_setting(fs, files, "Resolve", "DNS") == [
        ("10.0.0.53", "/etc/systemd/resolved.conf.d/50-unit.conf:3")]


def test_enabled_and_masked_units(tmp_path):
    fs = tree(tmp_path, {})
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "chrony.service").symlink_to("/lib/systemd/system/chrony.service")  # dangling in an image: still enabled
    assert systemd.enabled(fs, "chrony.service") == "/etc/systemd/system/multi-user.target.wants/chrony.service"
    (tmp_path / "etc/systemd/system/chrony.service").symlink_to("/dev/null")
    assert systemd.enabled(fs, "chrony.service") is None
    assert systemd.enabled(fs, "ntp.service") is None
