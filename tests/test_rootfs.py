"""RootFS (collect/rootfs.py): paths of an audited tree resolved as a chroot would, and glob(3)
over it: sorted, hidden names only for patterns that start with a dot, dangling links left out,
symlinks (absolute ones included) followed inside the root, never out of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nanbu_secops.collect.rootfs import RootFS


@pytest.fixture
def tree(tmp_path: Path) -> RootFS:
    root = tmp_path / "root"
    for path in ("opt/zeta/bin/run", "opt/alpha/bin/run", "opt/.hidden/bin/run", "usr/lib/app/bin/run",
                 "etc/passwd"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(path)
    (root / "opt/linked").symlink_to("/usr/lib/app")        # absolute: inside the root, not this machine's
    (root / "opt/dangling").symlink_to("/nowhere")
    (root / "opt/escape").symlink_to("../../../../../../etc")  # climbs no higher than the root
    (root / "opt/file").write_text("a file, not a folder")
    return RootFS(root)


def test_glob_lists_sorted_visible_existing_matches(tree: RootFS) -> None:
    assert tree.glob("/opt/*") == ["/opt/alpha", "/opt/escape", "/opt/file", "/opt/linked", "/opt/zeta"]
    assert tree.glob("/opt/.*") == ["/opt/.hidden"]


def test_glob_follows_symlinks_inside_the_root(tree: RootFS) -> None:
    assert tree.glob("/opt/*/bin/run") == ["/opt/alpha/bin/run", "/opt/linked/bin/run", "/opt/zeta/bin/run"]
    assert tree.read_text("/opt/linked/bin/run") == "usr/lib/app/bin/run"
    assert tree.glob("/opt/escape/pass*") == ["/opt/escape/passwd"]
    assert tree.read_text("/opt/escape/passwd") == "etc/passwd"  # the tree's, not this machine's


def test_glob_literal_parts_must_exist(tree: RootFS) -> None:
    assert tree.glob("/opt/alpha/bin/run") == ["/opt/alpha/bin/run"]
    assert tree.glob("/opt/alpha/bin/missing") == []
    assert tree.glob("/opt/file/*") == []
    assert tree.glob("/nothing/*") == []


def test_glob_sees_a_file_replaced_by_a_dangling_link(tree: RootFS) -> None:
    root = tree.root
    os.unlink(root / "opt/zeta/bin/run")
    (root / "opt/zeta/bin/run").symlink_to("/gone")
    assert tree.glob("/opt/*/bin/run") == ["/opt/alpha/bin/run", "/opt/linked/bin/run"]
