"""The rpm database read offline, with the real rpm as the writer and the oracle.

rpmbuild makes a tiny package named openssh-server; ``rpm --root R --dbpath ... -i --justdb``
records it in a fresh rpmdb.sqlite under a temporary root (nothing is installed on this machine),
and ``rpm -q`` on the same root says what the reader must find.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from nanbu_secops.cli import main
from nanbu_secops.collect import rpmdb
from nanbu_secops.collect.rootfs import RootFS
from tests.roots import AS_OF, make_root

SPEC = """\
Name: openssh-server
Version: {version}
Release: {release}
Summary: a stand-in for the test
License: none
BuildArch: noarch
%description
Only its name and version matter.
%files
"""


@pytest.fixture(scope="module")
def rpm_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("rpmbuild")
    spec = top / "openssh-server.spec"
    spec.write_text(SPEC.format(version="7.4p1", release="21.el7"))
    subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {top}", str(spec)], check=True, capture_output=True)
    [built] = top.glob("RPMS/noarch/*.rpm")
    return built


def rpm_root(base: Path, rpm_file: Path, dbpath: str) -> Path:
    root = make_root(base, {"var/lib/dpkg/status": None})
    common = ["rpm", "--root", str(root), "--dbpath", dbpath]
    subprocess.run([*common, "--initdb"], check=True, capture_output=True)
    subprocess.run([*common, "-i", "--justdb", "--nodeps", "--noscripts", str(rpm_file)], check=True,
                   capture_output=True)
    return root


def rpm_query(root: Path, dbpath: str) -> str:
    return subprocess.run(["rpm", "--root", str(root), "--dbpath", dbpath, "-q", "--qf", "%{VERSION}-%{RELEASE}",
                           "openssh-server"], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("dbpath", ["/var/lib/rpm", "/usr/lib/sysimage/rpm"])
def test_version_matches_rpm_q(tmp_path, rpm_file, dbpath):
    root = rpm_root(tmp_path, rpm_file, dbpath)
    assert rpmdb.package_version(RootFS(root), "openssh-server") == (rpm_query(root, dbpath),
                                                                     f"{dbpath}/rpmdb.sqlite")
    assert rpmdb.package_version(RootFS(root), "openssh-clients") is None


def test_check_uses_the_rpm_version_for_sshd_defaults(tmp_path, capsys, rpm_file):
    root = rpm_root(tmp_path, rpm_file, "/var/lib/rpm")
    (root / "etc/ssh/sshd_config").write_text("# all defaults\n")
    main(["check", "--root", str(root), "--as-of", AS_OF.isoformat(), "--format", "json", "--only", "NS26-SSH-005"])
    [found] = json.loads(capsys.readouterr().out)["results"]
    assert found["evidence"]["openssh"] == \
        "OpenSSH 7.4 (/var/lib/rpm/rpmdb.sqlite: openssh-server 7.4p1-21.el7): its defaults"
    assert "diffie-hellman-group14-sha1" in found["evidence"]["weak"]["kexalgorithms"]["algorithms"]


def test_a_berkeley_db_is_named_not_guessed(tmp_path, capsys):
    root = make_root(tmp_path, {"var/lib/dpkg/status": None, "var/lib/rpm/Packages": b"\x00\x06\x15\x61" * 64,
                                "etc/ssh/sshd_config": "# all defaults\n"})
    main(["check", "--root", str(root), "--as-of", AS_OF.isoformat(), "--format", "json", "--only", "NS26-SSH-001"])
    [found] = json.loads(capsys.readouterr().out)["results"]
    assert "Berkeley DB rpm database, which is not read" in found["evidence"]["openssh"]


@pytest.mark.parametrize("blob", [b"", b"\x00\x00\x00\x01", b"\xff\xff\xff\xff\x00\x00\x00\x00",
                                  b"\x00\x00\x00\x01\x00\x00\x00\x04"
                                  + b"\x00\x00\x03\xe8\x00\x00\x00\x06\x00\x00\x00\x09\x00\x00\x00\x01" + b"abcd"])
def test_malformed_headers_are_refused(blob):
    with pytest.raises(ValueError):
        rpmdb.header_strings(blob, (rpmdb.NAME,))


@pytest.mark.parametrize("content", [b"not a database at all", b""])
def test_a_broken_database_is_not_fatal(tmp_path, content):
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    (tmp_path / "var/lib/rpm/rpmdb.sqlite").write_bytes(content)
    assert rpmdb.package_version(RootFS(tmp_path), "openssh-server") is None


def test_garbage_rows_are_skipped(tmp_path):
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    with sqlite3.connect(tmp_path / "var/lib/rpm/rpmdb.sqlite") as db:
        db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)")
        db.executemany("INSERT INTO Packages (blob) VALUES (?)", [(b"\x00",), (b"\xff" * 40,)])
    db.close()
    assert rpmdb.package_version(RootFS(tmp_path), "openssh-server") is None


REMOTE_SPEC = SPEC.replace("Name: openssh-server", "Name: todesk")


def test_software_reads_the_rpm_database_for_the_remote_control_catalogue(tmp_path, capsys, rpm_file):
    """A ToDesk rpm recorded by the real rpm fails NS26-TERM-001 with the database as the origin;
    the openssh-server package alone passes it."""
    root = rpm_root(tmp_path / "clean", rpm_file, "/var/lib/rpm")
    assert main(["check", "--root", str(root), "--as-of", AS_OF.isoformat(), "--format", "json",
                 "--only", "NS26-TERM-001"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["evidence"]["rpm_database"] == "/var/lib/rpm/rpmdb.sqlite"
    top = tmp_path / "build"
    top.mkdir()
    spec = top / "todesk.spec"
    spec.write_text(REMOTE_SPEC.format(version="4.7.2.0", release="1"))
    subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {top}", str(spec)], check=True, capture_output=True)
    [todesk] = top.glob("RPMS/noarch/*.rpm")
    root = rpm_root(tmp_path / "todesk", rpm_file, "/usr/lib/sysimage/rpm")
    subprocess.run(["rpm", "--root", str(root), "--dbpath", "/usr/lib/sysimage/rpm", "-i", "--justdb", "--nodeps",
                    "--noscripts", str(todesk)], check=True, capture_output=True)
    assert main(["check", "--root", str(root), "--as-of", AS_OF.isoformat(), "--format", "json",
                 "--only", "NS26-TERM-001"]) == 1
    [found] = json.loads(capsys.readouterr().out)["results"][0]["evidence"]["found"]
    assert found["installed"] == [{"package": "todesk", "version": "4.7.2.0-1",
                                   "origin": "/usr/lib/sysimage/rpm/rpmdb.sqlite"}]
