"""The fleet database of check results (article 29's quarterly inspection report reads it).

``ingest`` loads what ``playbooks/collect.yml`` gathered, with each host's unit taken from
:func:`nanbu_secops.fleet.inventory.load_inventory`; ``Store`` answers the report's questions. The
schema and time conventions are described in :mod:`nanbu_secops.store.db`.
"""

from nanbu_secops.store.db import SCHEMA_VERSION, EndpointRow, EndpointRun, ResultRow, Run, Store, Unreachable
from nanbu_secops.store.ingest import IngestStats, ingest

__all__ = ["SCHEMA_VERSION", "EndpointRow", "EndpointRun", "IngestStats", "ResultRow", "Run", "Store", "Unreachable",
           "ingest"]
