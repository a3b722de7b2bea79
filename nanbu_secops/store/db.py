"""The fleet database: check results of every terminal, in SQLite, for the quarterly report.

Why SQLite: one file the operator can copy and archive with the report, no server, and range
queries over a quarter of results from hundreds of terminals stay instant with an index.

Schema (``PRAGMA user_version`` is the schema version; :data:`MIGRATIONS` step *n* takes a
database from version *n* to *n + 1*):

``runs``
    one ``check --format json`` result file: ``host`` (the inventory name, from the file's own
    ``host`` and its folders checked against the inventory: :func:`nanbu_secops.store.ingest.attribute`),
    ``reported_host`` (the file's ``host``,
    the terminal's own hostname, which may differ), ``unit`` (the inventory unit at ingest time,
    NULL when unknown; the report may re-resolve it), ``generated`` (the RFC 3339 text as written)
    and ``generated_utc`` (the same moment as UTC epoch seconds, for range queries), ``as_of``,
    ``policy_version``, ``tool_version``, ``lang`` (the language of the titles), ``sha256`` of
    the file's bytes and ``source`` (its path under the collection directory when first seen).
    A run is identified by (host, sha256, generated): ingesting a file again adds nothing.
``results``
    one row per control of a run: ``control``, ``article``, ``status``, ``severity``, ``title``,
    and ``evidence`` as compact JSON for every status but ``pass``. The evidence of passes is
    over a third of a result's compact JSON and no report needs it (100k results: 14 MiB of
    database instead of about 29); the file, found by ``source`` and ``sha256``, still has it.
``unreachable``
    ``UNREACHABLE.json`` markers that ``playbooks/collect.yml`` writes for a terminal it could not
    reach: ``host``, ``at`` (RFC 3339 text), ``at_utc`` (epoch seconds), ``msg``; unique by (host, at).

``endpoint_runs`` (schema version 2)
    one ``ipv6 check --format json`` file of a unit's portals and app endpoints (article 9(2)),
    as ``playbooks/ipv6_readiness.yml`` writes it (``ipv6/<unit>-endpoints.json``): ``unit`` (the
    unit code of the file name), ``generated``, ``generated_utc``, ``sha256``, ``source``; a run is
    identified by (unit, sha256, generated).
``endpoints``
    one row per target of an endpoint run: ``target`` as given, ``verdict``, ``reason``, and
    ``detail``: compact JSON of what says why (the URL, the IPv6 homepage probe's outcome, the
    AAAA records, the link levels with their failing links, the success rate and the parity).

``site_runs`` (schema version 3)
    one ``site inspect --format json`` result of a unit's site (article 29), as
    ``playbooks/site_inspection.yml`` writes it (``site/<unit>-site.json``): ``unit`` (the unit
    code of the file name), ``generated``, ``generated_utc``, ``as_of``, ``sha256``, ``source``, and
    ``site``: the unit's entry of ``sites`` as compact JSON (home probes, columns, link findings).

Times: every ``*_utc`` column and every ``start``/``end`` argument is UTC epoch seconds; ranges
are half-open ``[start, end)``. A county quarter's bounds are ``Quarter.start_utc`` and
``Quarter.end_utc`` of :mod:`nanbu_secops.fleet.quarter` (midnights in Asia/Shanghai).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nanbu_secops.errors import InputError

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            host TEXT NOT NULL,
            reported_host TEXT NOT NULL,
            unit TEXT,
            generated TEXT NOT NULL,
            generated_utc INTEGER NOT NULL,
            as_of TEXT,
            policy_version TEXT NOT NULL,
            tool_version TEXT,
            lang TEXT,
            sha256 TEXT NOT NULL,
            source TEXT NOT NULL
        )""",
        # (host, sha256) first: ingest looks a file up by it before parsing it.
        "CREATE UNIQUE INDEX runs_identity ON runs (host, sha256, generated)",
        "CREATE INDEX runs_time ON runs (generated_utc)",
        "CREATE INDEX runs_host_time ON runs (host, generated_utc)",
        """CREATE TABLE results (
            run_id INTEGER NOT NULL REFERENCES runs (id),
            control TEXT NOT NULL,
            article TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pass', 'fail', 'error', 'skip')),
            severity TEXT NOT NULL,
            title TEXT NOT NULL,
            evidence TEXT,
            PRIMARY KEY (run_id, control)
        ) WITHOUT ROWID""",
        """CREATE TABLE unreachable (
            host TEXT NOT NULL,
            at TEXT NOT NULL,
            at_utc INTEGER NOT NULL,
            msg TEXT,
            PRIMARY KEY (host, at)
        ) WITHOUT ROWID""",
        "CREATE INDEX unreachable_time ON unreachable (at_utc)",
    ),
    (
        """CREATE TABLE endpoint_runs (
            id INTEGER PRIMARY KEY,
            unit TEXT NOT NULL,
            generated TEXT NOT NULL,
            generated_utc INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            source TEXT NOT NULL
        )""",
        "CREATE UNIQUE INDEX endpoint_runs_identity ON endpoint_runs (unit, sha256, generated)",
        "CREATE INDEX endpoint_runs_unit_time ON endpoint_runs (unit, generated_utc)",
        """CREATE TABLE endpoints (
            run_id INTEGER NOT NULL REFERENCES endpoint_runs (id),
            target TEXT NOT NULL,
            verdict TEXT NOT NULL CHECK (verdict IN ('ready', 'partial', 'not-ready', 'error')),
            reason TEXT,
            detail TEXT NOT NULL,
            PRIMARY KEY (run_id, target)
        ) WITHOUT ROWID""",
    ),
    (
        """CREATE TABLE site_runs (
            id INTEGER PRIMARY KEY,
            unit TEXT NOT NULL,
            generated TEXT NOT NULL,
            generated_utc INTEGER NOT NULL,
            as_of TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            source TEXT NOT NULL,
            site TEXT NOT NULL
        )""",
        "CREATE UNIQUE INDEX site_runs_identity ON site_runs (unit, sha256, generated)",
        "CREATE INDEX site_runs_unit_time ON site_runs (unit, generated_utc)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_RUN_COLUMNS = ("id, host, reported_host, unit, generated, generated_utc, as_of, policy_version, "
                "tool_version, lang, sha256, source")


@dataclass(frozen=True, slots=True)
class Run:
    """One ingested check result file (a row of ``runs``)."""

    id: int
    host: str
    reported_host: str
    unit: str | None
    generated: str
    generated_utc: int
    as_of: str | None
    policy_version: str
    tool_version: str | None
    lang: str | None
    sha256: str
    source: str


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One control's outcome in one run; ``evidence`` is None for a pass (not kept)."""

    run_id: int
    control: str
    article: str
    status: str
    severity: str
    title: str
    evidence: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Unreachable:
    """A terminal that ``collect.yml`` could not reach at ``at``."""

    host: str
    at: str
    at_utc: int
    msg: str | None


@dataclass(frozen=True, slots=True)
class EndpointRun:
    """One ingested ``ipv6 check`` file of a unit (a row of ``endpoint_runs``)."""

    id: int
    unit: str
    generated: str
    generated_utc: int
    sha256: str
    source: str


@dataclass(frozen=True, slots=True)
class EndpointRow:
    """One portal or app endpoint's verdict in an endpoint run."""

    run_id: int
    target: str
    verdict: str
    reason: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SiteRun:
    """One ingested ``site inspect`` result of a unit (a row of ``site_runs``)."""

    id: int
    unit: str
    generated: str
    generated_utc: int
    as_of: str
    sha256: str
    source: str
    site: dict[str, Any]


class Store:
    """An open fleet database, migrated to :data:`SCHEMA_VERSION`. Use as a context manager.

    The connection is in autocommit mode: every write goes through :meth:`transaction`, so a
    whole ingest (or a whole migration) commits at once or not at all.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Store:
        """Open (and with ``create``, make) the database at ``path``, applying pending migrations.

        Refused with :class:`InputError`: a missing file without ``create``, a file that is not
        SQLite, and a database of a newer schema than this code knows (it would be misread).
        """
        if not path.exists():
            if not create:
                raise InputError("no such database (load results with `nanbu-secops ingest` first)", path)
            _create_private(path)
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        store = cls(conn, path)
        try:
            store._prepare()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise InputError(f"not a usable database: {exc}", path) from None
        except BaseException:
            conn.close()
            raise
        return store

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception (and always without ``commit``:
        a dry run).

        IMMEDIATE takes the write lock up front, so two concurrent ingests queue (busy timeout)
        instead of failing half-way with SQLITE_BUSY on their first insert.
        """
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT" if commit else "ROLLBACK")

    def _prepare(self) -> None:
        self._refuse_newer(self.version)  # before WAL, which rewrites the header of the file
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")  # WAL stays consistent; a re-ingest redoes a lost commit
        self.conn.execute("PRAGMA foreign_keys = ON")
        if self.version < SCHEMA_VERSION:
            self._migrate()

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise InputError(f"database schema version {version} is newer than this nanbu-secops knows "
                             f"({SCHEMA_VERSION}); use the nanbu-secops release that wrote it, or a later one",
                             self.path)

    def _migrate(self) -> None:
        """Apply the pending steps and the new version number in one transaction.

        The version is read again under the write lock: another process may have migrated
        the file meanwhile.
        """
        with self.transaction() as conn:
            version = self.version
            self._refuse_newer(version)
            for step in MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # --- queries for the report ---------------------------------------------------------------

    def hosts(self) -> list[str]:
        """Every host that has a run or an unreachable marker, sorted."""
        rows = self.conn.execute("SELECT host FROM runs UNION SELECT host FROM unreachable ORDER BY 1")
        return [host for (host,) in rows]

    def runs_between(self, start_utc: int, end_utc: int) -> list[Run]:
        """Every run generated in ``[start_utc, end_utc)``, by host then time."""
        rows = self.conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE generated_utc >= ? AND generated_utc < ? "
            "ORDER BY host, generated_utc, id", (start_utc, end_utc))
        return [Run(*row) for row in rows]

    def latest_runs(self, start_utc: int, end_utc: int) -> list[Run]:
        """For each host, its latest run generated in ``[start_utc, end_utc)``, by host.

        A host with no run in the range is absent (look it up in :meth:`unreachable` and the
        inventory). Two runs in the same second: the one ingested last wins.
        """
        rows = self.conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM ("
            f"  SELECT {_RUN_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY host ORDER BY generated_utc DESC, id DESC) AS n"
            "   FROM runs WHERE generated_utc >= ? AND generated_utc < ?"
            ") WHERE n = 1 ORDER BY host", (start_utc, end_utc))
        return [Run(*row) for row in rows]

    def results(self, run_ids: Sequence[int]) -> list[ResultRow]:
        """The per-control results of these runs, by run id then control.

        The ids travel as one JSON array (``json_each``), so any number of them fits in one query.
        """
        rows = self.conn.execute(
            "SELECT run_id, control, article, status, severity, title, evidence FROM results "
            "WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, control",
            (json.dumps(list(run_ids)),))
        return [ResultRow(*row[:6], json.loads(row[6]) if row[6] is not None else None) for row in rows]

    def unreachable(self, start_utc: int, end_utc: int) -> list[Unreachable]:
        """Unreachable markers with ``at`` in ``[start_utc, end_utc)``, by host then time.

        A marker does not say the host stayed unreachable: compare with its runs in the range.
        """
        rows = self.conn.execute(
            "SELECT host, at, at_utc, msg FROM unreachable WHERE at_utc >= ? AND at_utc < ? ORDER BY host, at_utc",
            (start_utc, end_utc))
        return [Unreachable(*row) for row in rows]


    def latest_endpoint_runs(self, start_utc: int, end_utc: int) -> list[EndpointRun]:
        """For each unit, its latest endpoint run generated in ``[start_utc, end_utc)``, by unit."""
        rows = self.conn.execute(
            "SELECT id, unit, generated, generated_utc, sha256, source FROM ("
            "  SELECT *, ROW_NUMBER() OVER (PARTITION BY unit ORDER BY generated_utc DESC, id DESC) AS n"
            "  FROM endpoint_runs WHERE generated_utc >= ? AND generated_utc < ?"
            ") WHERE n = 1 ORDER BY unit", (start_utc, end_utc))
        return [EndpointRun(*row) for row in rows]

    def latest_site_runs(self, start_utc: int, end_utc: int) -> list[SiteRun]:
        """For each unit, its latest site inspection generated in ``[start_utc, end_utc)``, by unit."""
        rows = self.conn.execute(
            "SELECT id, unit, generated, generated_utc, as_of, sha256, source, site FROM ("
            "  SELECT *, ROW_NUMBER() OVER (PARTITION BY unit ORDER BY generated_utc DESC, id DESC) AS n"
            "  FROM site_runs WHERE generated_utc >= ? AND generated_utc < ?"
            ") WHERE n = 1 ORDER BY unit", (start_utc, end_utc))
        return [SiteRun(*row[:7], json.loads(row[7])) for row in rows]

    def endpoints(self, run_ids: Sequence[int]) -> list[EndpointRow]:
        """The endpoint verdicts of these endpoint runs, by run id then target."""
        rows = self.conn.execute(
            "SELECT run_id, target, verdict, reason, detail FROM endpoints "
            "WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, target",
            (json.dumps(list(run_ids)),))
        return [EndpointRow(*row[:4], json.loads(row[4])) for row in rows]


def _create_private(path: Path) -> None:
    """Create an empty database file readable by its owner only: results name accounts and hosts.

    SQLite gives its -wal and -shm files the main file's permissions, so this covers them too.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise InputError(f"cannot create the database: {exc.strerror}", path) from None
