"""``incident collect``: the snapshot, the files named, and the report form, as bundle items.

The snapshot and reports are small and made in memory; ``--include`` files are streamed by the
packer, so their size does not matter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from nanbu_secops.bundle.archive import REPORT_JSON, REPORT_MD
from nanbu_secops.bundle.package import Item, plan_includes
from nanbu_secops.collect import Target
from nanbu_secops.incident.form import IncidentForm
from nanbu_secops.incident.snapshot import RESULTS, snapshot, to_json
from nanbu_secops.policy import PolicySet
from nanbu_secops.report import bundle as render

SKIPPED_FILES = "evidence/files-skipped.json"


def items(form: IncidentForm, target: Target, includes: Sequence[str], *, days: int, policy: PolicySet | None,
          lang: str) -> list[Item]:
    """Everything an incident bundle holds, reports first."""
    found = [Item(e.path, data=e.data) for e in snapshot(target, days=days, policy=policy, lang=lang)]
    files, skipped = plan_includes(includes)
    if skipped:
        found.append(Item(SKIPPED_FILES, data=to_json(skipped)))
    found += files
    listing = [{"path": item.path, "size": item.length} for item in found]
    results = next((item.data for item in found if item.path == RESULTS and item.data is not None), b"{}")
    findings = render.findings_of(results)
    report = render.incident_json(form, listing, findings)
    return [Item(REPORT_JSON, data=(json.dumps(report, ensure_ascii=False, indent=1) + "\n").encode()),
            Item(REPORT_MD, data=render.incident_markdown(form, listing, findings, lang).encode()),
            *found]
