"""Differential test of ``site inspect``'s dead links against LinkChecker (Debian package
``linkchecker``), the tool site maintainers already use: on the generated portal of
tests/test_site_inspect.py, served by real nginx in the lab, the dead links we report and the
ones LinkChecker reports are the same set, (link, page carrying it), at each depth.

LinkChecker runs inside the portal's lab namespace (``ip netns exec``), which has no default route
and no name server: its name lookups fail at once, as ours do at the lab unbound (NXDOMAIN or
REFUSED), and nothing leaves the lab. Its recursion level N is our depth N: the start page is
level 0, links on pages below level N are checked. ``mailto:`` links are left out of its run:
LinkChecker checks a mail address's MX record, which is no page and not this inspection's matter.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
from pathlib import Path

import pytest

from tests.test_site_inspect import Portal, inspect, portal  # noqa: F401  (the module fixture)

LINKCHECKER = "/usr/bin/linkchecker"


def linkchecker_dead(portal: Portal, depth: int, home: Path) -> set[tuple[str, str]]:
    """(url, parent page) of every link LinkChecker finds invalid, from its CSV output."""
    done = subprocess.run(
        ["ip", "netns", "exec", portal.netns, LINKCHECKER, "--no-status", "--check-extern", "-r", str(depth),
         "--ignore-url", "^mailto:", "--timeout", "5", "-o", "csv", portal.home],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HOME": str(home)}, cwd=home)
    assert done.returncode in (0, 1), done.stderr
    lines = [line for line in done.stdout.splitlines() if line and not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines)), delimiter=";"))
    assert rows and "valid" in rows[0], done.stdout[-2000:]
    return {(row["url"], row["parentname"]) for row in rows if row["valid"] != "True"}


@pytest.mark.skipif(not Path(LINKCHECKER).exists(), reason="linkchecker not installed: bash scripts/setup.sh --test")
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_dead_links_equal_linkcheckers(portal: Portal, depth: int, tmp_path: Path) -> None:  # noqa: F811
    tmp_path.chmod(0o777)  # LinkChecker drops from root to nobody
    theirs = linkchecker_dead(portal, depth, tmp_path)
    _, doc = inspect(portal, portal.home, "--probes", "1", "--depth", str(depth))
    ours = {(d["url"], d["from"]) for d in doc["sites"][0]["dead_links"]}
    assert ours == theirs
    assert len(ours) == {1: 6, 2: 7, 3: 8}[depth]  # worked out in test_site_inspect.py
