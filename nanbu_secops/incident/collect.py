"""``incident collect``: the snapshot, the files named, and the report form, as bundle items.

The ``--include`` files are streamed by the packer while the snapshot (processes, logins, a full
``check``: about half a second) is taken in a forked process beside it; the snapshot and the
reports, which need its findings, follow the files into the tar. The snapshot and reports are
small and made in memory, so the files' size does not matter.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from nanbu_secops.bundle.archive import REPORT_JSON, REPORT_MD
from nanbu_secops.bundle.keys import private_key_files
from nanbu_secops.bundle.package import Item, plan_includes
from nanbu_secops.collect import Target
from nanbu_secops.incident.form import IncidentForm
from nanbu_secops.incident.snapshot import RESULTS, snapshot, to_json
from nanbu_secops.policy import PolicySet
from nanbu_secops.report import bundle as render

SKIPPED_FILES = "evidence/files-skipped.json"


@dataclass
class Collection:
    """What an incident bundle will hold; iterate it once to produce the items."""

    form: IncidentForm
    target: Target
    days: int
    policy: PolicySet | None
    lang: str
    files: list[Item] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def plan(cls, form: IncidentForm, target: Target, includes: Sequence[str], *, days: int,
             policy: PolicySet | None, lang: str, secrets: Sequence[Path] = ()) -> Collection:
        """``secrets``: the signing key; it and the private keys beside it are never packed."""
        files, skipped = plan_includes(includes, secrets=[p for s in secrets for p in private_key_files(s)])
        return cls(form, target, days, policy, lang, files, skipped)

    @property
    def size(self) -> int:
        """Bytes of the included files (the snapshot and reports add a little)."""
        return sum(item.size for item in self.files)

    def __iter__(self) -> Iterator[Item]:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            pending = pool.submit(snapshot, self.target, days=self.days, policy=self.policy, lang=self.lang)
            yield from self.files
            found = [Item(e.path, data=e.data) for e in pending.result()]
        if self.skipped:
            found.append(Item(SKIPPED_FILES, data=to_json(self.skipped)))
        listing = [{"path": item.path, "size": item.length} for item in (*found, *self.files)]
        results = next((item.data for item in found if item.path == RESULTS and item.data is not None), b"{}")
        findings = render.findings_of(results)
        report = render.incident_json(self.form, listing, findings)
        yield from found
        yield Item(REPORT_JSON, data=(json.dumps(report, ensure_ascii=False, indent=1) + "\n").encode())
        yield Item(REPORT_MD, data=render.incident_markdown(self.form, listing, findings, self.lang).encode())
