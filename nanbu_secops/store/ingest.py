"""Load the result files ``playbooks/collect.yml`` gathered into the fleet database.

The collection directory holds ``check --format json`` results and ``UNREACHABLE.json`` markers
where ``playbooks/collect.yml`` put them, ``<results>/<inventory hostname>/``, at any depth
(``results/2026Q3/<host>/…``, ``results/<host>/2026-11-28/…``).

Attribution never guesses and is never silent (:func:`attribute`): a file's host is the one it names
(its ``host`` field) and the one its folders name, checked against the inventory. Folders that
name no inventory host (``2026Q3``, a date) say nothing. A file whose folder names one inventory
host while the file names another, or whose host is in no inventory and sits in no host's
folder, is not stored: it is listed in :attr:`IngestStats.refused` with the reason. A terminal's
own hostname that is not an inventory name (``debian`` in ``results/szz-term-01/``) is not a
disagreement: it is kept as ``reported_host`` beside the folder's inventory name.
Ingest is run again and again on the same, growing directory, so it must be idempotent and a
file already loaded must cost only a read and a hash: a run is identified by (host, sha256,
generated), and a file whose (host, sha256) is known is not even parsed. A file that is not a
check result never stops the ingest: it is listed in :attr:`IngestStats.bad` with the reason.

``playbooks/ipv6_readiness.yml`` writes into the same directory, in ``DIR/ipv6/`` (article 9(2)):
``<host>-terminal.json`` is a check result of the inventory host ``<host>`` (stored as its run,
not as a host named "ipv6"), and ``<unit>-endpoints.json`` is the ``ipv6 check --format json``
result of that unit's portals and app endpoints, stored as the unit's endpoint verdicts
(``endpoint_runs`` and ``endpoints``), identified like runs by (unit, sha256, generated).

``playbooks/site_inspection.yml`` writes ``DIR/site/<unit>-site.json``: the ``site inspect
--format json`` result of that unit's site (article 29), stored in ``site_runs``, identified by
(unit, sha256, generated) too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nanbu_secops.errors import InputError
from nanbu_secops.fileutil import require_private_tree
from nanbu_secops.progress import Meter
from nanbu_secops.results import SEVERITIES, Status
from nanbu_secops.store.db import Store

STATUSES = frozenset(s.value for s in Status)
RESULT_FIELDS = ("control", "article", "title", "status", "severity")
BATCH = 20_000  # result rows per executemany: bounded memory whatever the size of the directory


class NotAResult(ValueError):
    """The file is not a check result or an unreachable marker; the message says why."""


class Misattributed(ValueError):
    """The file's host cannot be told for sure (a disagreement, a host outside the inventory)."""


@dataclass
class IngestStats:
    """What one ingest did (or, in a dry run, would do).

    ``bad`` lists (file, reason) for every file skipped as unreadable, ``refused`` every file not
    stored because its host is in doubt, ``stored`` (dry run only) what each stored file became:
    (file, "run"/"unreachable"/"endpoints"/"site", host or unit, unit, reported host, time).
    """

    files: int = 0
    runs_added: int = 0
    runs_skipped: int = 0
    results_added: int = 0
    unreachable_added: int = 0
    endpoint_runs_added: int = 0
    endpoints_added: int = 0
    site_runs_added: int = 0
    bad: list[tuple[Path, str]] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)
    stored: list[tuple[Path, str, str, str | None, str | None, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Run:
    """A parsed check result, ready to insert."""

    row: tuple[Any, ...]  # the runs columns after id, in _INSERT_RUN's order, without unit (host: None)
    results: list[tuple[str, str, str, str, str, str | None]]


_INSERT_RUN = ("INSERT OR IGNORE INTO runs (host, reported_host, unit, generated, generated_utc, as_of, "
               "policy_version, tool_version, lang, sha256, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_RESULT = ("INSERT INTO results (run_id, control, article, status, severity, title, evidence) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)")
_INSERT_UNREACHABLE = "INSERT OR IGNORE INTO unreachable (host, at, at_utc, msg) VALUES (?, ?, ?, ?)"
_INSERT_ENDPOINT_RUN = ("INSERT OR IGNORE INTO endpoint_runs (unit, generated, generated_utc, sha256, source) "
                        "VALUES (?, ?, ?, ?, ?)")
_INSERT_ENDPOINT = "INSERT INTO endpoints (run_id, target, verdict, reason, detail) VALUES (?, ?, ?, ?, ?)"
_INSERT_SITE_RUN = ("INSERT OR IGNORE INTO site_runs (unit, generated, generated_utc, as_of, sha256, source, site) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)")
SITE_FOLDER, SITE_SUFFIX = "site", "-site.json"
SITE_STATUSES = frozenset({"ok", "stale", "blank", "error"})
IPV6_FOLDER = "ipv6"
TERMINAL_SUFFIX, ENDPOINTS_SUFFIX = "-terminal.json", "-endpoints.json"
VERDICTS = frozenset({"ready", "partial", "not-ready", "error"})


def ingest(folder: Path, db: Path, inventory: Mapping[str, str | None] | None = None, *,
           dry_run: bool = False, progress: Meter | None = None) -> IngestStats:
    """Load every ``*.json`` under ``folder`` into the database at ``db`` (created when missing).

    ``inventory`` maps every inventory host to its unit group, None for a host outside every
    unit (``Inventory.host_units`` of :mod:`nanbu_secops.fleet.inventory`); without it a file is
    stored only when its folders name the host it names, or it lies directly in ``folder``.
    Everything is written in one transaction: an interrupted ingest leaves the database as it
    was, and running it again finishes the job. ``dry_run`` does all of it and rolls back, so the
    stats tell what would be stored (a missing database is not created; an older schema is still
    migrated, as by any command that opens it). ``progress`` learns how many files there are,
    then counts each one loaded.
    """
    if not folder.is_dir():
        raise InputError("not a directory", folder)
    require_private_tree(folder, "results folder")  # a file planted by others must not count
    with tempfile.TemporaryDirectory(prefix="nanbu-ingest-") as scratch:
        target = Path(scratch) / "dry-run.db" if dry_run and not db.exists() else db
        with Store.open(target) as store, store.transaction(commit=not dry_run) as conn:
            loader = _Loader(conn, folder, inventory, dry_run)
            files = list(_result_files(folder))  # sorted, so listed whole in any case
            if progress is not None:
                progress.expect(len(files))
            for path, folders, unit in files:
                try:
                    site_unit = _site_unit(path)
                    if site_unit is not None:
                        loader.load_site(path, site_unit)
                    elif unit is not None:
                        loader.load_endpoints(path, unit)
                    else:
                        loader.load(path, folders)
                except NotAResult as exc:
                    loader.stats.bad.append((path, str(exc)))
                except Misattributed as exc:
                    loader.stats.refused.append((path, str(exc)))
                if progress is not None:
                    progress(1)
            loader.flush()
    return loader.stats


def attribute(folders: Sequence[str], reported: str, inventory: Mapping[str, str | None] | None) -> str:
    """The inventory host a file belongs to, from the host it names and the folders it sits in.

    ``folders`` are the folder names between the collection directory and the file, outermost
    first. Misattributed (with the reason) when the two disagree or the host is unknown.
    """
    where = "/".join(folders)
    if inventory is None:
        if not folders or reported in folders:
            return reported
        raise Misattributed(f"the file names host {reported!r} but its folders ({where}/) do not, and without "
                            "--inventory the folder cannot be checked: not stored")
    listed = list(dict.fromkeys(f for f in folders if f in inventory))
    if len(listed) > 1:
        raise Misattributed(f"its folders ({where}/) name several inventory hosts ({', '.join(listed)}): not stored")
    if not listed:
        if reported in inventory:
            return reported
        place = f" and none of its folders ({where}/) names one" if folders else ""
        raise Misattributed(f"host {reported!r} is not in the inventory{place}: not stored")
    if reported != listed[0] and reported in inventory:
        raise Misattributed(f"the file names host {reported!r} but sits in the folder of {listed[0]!r} "
                            f"({where}/); both are inventory hosts: not stored")
    return listed[0]


class _Loader:
    """Inserts files one by one into an open transaction, their results in batches."""

    def __init__(self, conn: sqlite3.Connection, folder: Path, inventory: Mapping[str, str | None] | None,
                 dry_run: bool = False):
        self.conn = conn
        self.folder = folder
        self.root = folder.resolve()
        self.inventory = inventory
        self.units: Mapping[str, str | None] = inventory or {}
        self.dry_run = dry_run
        self.stats = IngestStats()
        self.pending: list[tuple[Any, ...]] = []

    def load(self, path: Path, folders: Sequence[str]) -> None:
        """Add one file: a run with its results, or an unreachable marker; NotAResult when it is
        neither, Misattributed when its host is in doubt."""
        self.stats.files += 1
        data = self._read(path)
        sha256 = hashlib.sha256(data).hexdigest()
        # the host a file in an inventory host's folder was stored under: its very bytes there are known
        candidate = next((f for f in reversed(folders) if f in self.units), None)
        if candidate is not None and self._known(candidate, sha256):
            self.stats.runs_skipped += 1
            return
        document = _load(data)
        source = path.relative_to(self.folder).as_posix()
        if document.get("unreachable") is True:
            marker = _marker(document)
            host = attribute(folders, marker[0], self.inventory)
            self.stats.unreachable_added += self.conn.execute(_INSERT_UNREACHABLE, (host, *marker[1:])).rowcount
            self._record(path, "unreachable", host, marker[0], marker[1])
            return
        run = _parse_run(document, sha256, source)
        host = attribute(folders, run.row[1], self.inventory)
        cursor = self.conn.execute(_INSERT_RUN, (host, run.row[1], self.units.get(host), *run.row[2:]))
        if cursor.rowcount == 0:  # ignored: the same run in another file (a copy), or directly in DIR
            self.stats.runs_skipped += 1
            return
        self.stats.runs_added += 1
        self._record(path, "run", host, run.row[1], run.row[2])
        self.pending.extend((cursor.lastrowid, *result) for result in run.results)
        if len(self.pending) >= BATCH:
            self.flush()

    def _record(self, path: Path, kind: str, owner: str, reported: str | None, when: str) -> None:
        """In a dry run, what was stored (a real run's stats stay small for a large directory)."""
        if self.dry_run:
            unit = owner if kind in ("endpoints", "site") else self.units.get(owner)
            self.stats.stored.append((path, kind, owner, unit, reported, when))

    def load_endpoints(self, path: Path, unit: str) -> None:
        """Add one ``ipv6 check`` result of ``unit``'s endpoints; NotAResult when it is not one."""
        self.stats.files += 1
        data = self._read(path)
        sha256 = hashlib.sha256(data).hexdigest()
        if self.conn.execute("SELECT 1 FROM endpoint_runs WHERE unit = ? AND sha256 = ? LIMIT 1",
                             (unit, sha256)).fetchone() is not None:
            self.stats.runs_skipped += 1
            return
        document = _load(data)
        what = "not an ipv6 check result"
        generated = _text(document, "generated", what)
        rows = _endpoints(document.get("targets"))
        cursor = self.conn.execute(_INSERT_ENDPOINT_RUN, (unit, generated, _epoch(generated, "generated"), sha256,
                                                          path.relative_to(self.folder).as_posix()))
        if cursor.rowcount == 0:
            self.stats.runs_skipped += 1
            return
        self.conn.executemany(_INSERT_ENDPOINT, [(cursor.lastrowid, *row) for row in rows])
        self._record(path, "endpoints", unit, None, generated)
        self.stats.endpoint_runs_added += 1
        self.stats.endpoints_added += len(rows)

    def load_site(self, path: Path, unit: str) -> None:
        """Add one ``site inspect`` result of ``unit``'s site; NotAResult when it is not one."""
        self.stats.files += 1
        data = self._read(path)
        sha256 = hashlib.sha256(data).hexdigest()
        if self.conn.execute("SELECT 1 FROM site_runs WHERE unit = ? AND sha256 = ? LIMIT 1",
                             (unit, sha256)).fetchone() is not None:
            self.stats.runs_skipped += 1
            return
        document = _load(data)
        what = "not a site inspect result"
        generated, as_of = _text(document, "generated", what), _text(document, "as_of", what)
        site = _site(document)
        cursor = self.conn.execute(_INSERT_SITE_RUN, (
            unit, generated, _epoch(generated, "generated"), as_of, sha256, path.relative_to(self.folder).as_posix(),
            json.dumps(site, ensure_ascii=False, separators=(",", ":"))))
        if cursor.rowcount == 0:
            self.stats.runs_skipped += 1
            return
        self._record(path, "site", unit, None, generated)
        self.stats.site_runs_added += 1

    def _read(self, path: Path) -> bytes:
        """The file's bytes; a symbolic link on the way is not followed (it could lead anywhere on
        the controller, and ingest runs as whoever owns the results: often root)."""
        relative = path.relative_to(self.folder)
        if path.resolve() != self.root / relative:
            raise NotAResult("a symbolic link (or inside one): not followed")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise NotAResult(exc.strerror or str(exc)) from None

    def flush(self) -> None:
        self.conn.executemany(_INSERT_RESULT, self.pending)
        self.stats.results_added += len(self.pending)
        self.pending.clear()

    def _known(self, host: str, sha256: str) -> bool:
        """This host already has a run with exactly these bytes (so the same ``generated`` too): skip parsing."""
        return self.conn.execute("SELECT 1 FROM runs WHERE host = ? AND sha256 = ? LIMIT 1",
                                 (host, sha256)).fetchone() is not None


def _result_files(folder: Path) -> Iterator[tuple[Path, tuple[str, ...], str | None]]:
    """Each ``*.json`` under ``folder`` in a stable order, as (path, folders, unit).

    ``folders`` are the folder names that place the file (see :func:`attribute`). In an
    ``ipv6/`` folder (ipv6_readiness.yml's, at any depth), ``<host>-terminal.json`` is placed by
    the host in its name, and ``<unit>-endpoints.json`` is the endpoint result of ``<unit>``
    (unit set, no host).
    """
    for path in sorted(folder.rglob("*.json")):
        if not path.is_file():
            continue
        *folders, name = path.relative_to(folder).parts
        if folders and folders[-1] == IPV6_FOLDER:
            if name.endswith(ENDPOINTS_SUFFIX) and len(name) > len(ENDPOINTS_SUFFIX):
                yield path, tuple(folders), name[:-len(ENDPOINTS_SUFFIX)]
                continue
            if name.endswith(TERMINAL_SUFFIX) and len(name) > len(TERMINAL_SUFFIX):
                yield path, (*folders[:-1], name[:-len(TERMINAL_SUFFIX)]), None
                continue
        yield path, tuple(folders), None


def _site_unit(path: Path) -> str | None:
    """The unit of ``<unit>-site.json`` in a ``site/`` folder (site_inspection.yml's, at any
    depth); None for any other file."""
    if path.parent.name == SITE_FOLDER and path.name.endswith(SITE_SUFFIX) and len(path.name) > len(SITE_SUFFIX):
        return path.name[:-len(SITE_SUFFIX)]
    return None


def _site(document: dict[str, Any]) -> dict[str, Any]:
    """The one site of a ``site inspect`` document, checked for what the report reads."""
    sites = document.get("sites")
    if not isinstance(sites, list) or len(sites) != 1 or not isinstance(sites[0], dict):
        raise NotAResult("not a site inspect result of one unit: 'sites' must hold one site")
    site = sites[0]
    home = site.get("home")
    if not isinstance(home, dict) or not all(isinstance(home.get(k), int) and not isinstance(home.get(k), bool)
                                             and home[k] >= 0 for k in ("probes", "ok")) or home["ok"] > home["probes"]:
        raise NotAResult("sites[0].home: probes and ok must be counts, ok at most probes")
    columns = site.get("columns")
    if not isinstance(columns, list) or not all(isinstance(c, dict) and c.get("status") in SITE_STATUSES
                                                and isinstance(c.get("name"), str) for c in columns):
        raise NotAResult(f"sites[0].columns: each needs a name and a status of {', '.join(sorted(SITE_STATUSES))}")
    for key in ("dead_links", "external_links", "ad_suspects"):
        if not isinstance(site.get(key), list) or not all(isinstance(x, dict) for x in site[key]):
            raise NotAResult(f"sites[0].{key}: not a list of objects")
    return site


def _endpoints(targets: Any) -> list[tuple[str, str, str | None, str]]:
    """(target, verdict, reason, detail JSON) per target of an ``ipv6 check`` document."""
    if not isinstance(targets, list):
        raise NotAResult("not an ipv6 check result: no 'targets' list")
    rows = []
    seen: set[str] = set()
    for index, item in enumerate(targets):
        where = f"targets[{index}]"
        if not isinstance(item, dict):
            raise NotAResult(f"{where}: not an object")
        target, verdict, reason = item.get("target"), item.get("verdict"), item.get("reason")
        if not isinstance(target, str) or not target:
            raise NotAResult(f"{where}.target: missing or not text")
        if verdict not in VERDICTS:
            raise NotAResult(f"{where}.verdict: {verdict!r} is not one of {', '.join(sorted(VERDICTS))}")
        if reason is not None and not isinstance(reason, str):
            raise NotAResult(f"{where}.reason: not text")
        if target in seen:
            raise NotAResult(f"{where}: target {target} appears twice")
        seen.add(target)
        rows.append((target, verdict, reason, json.dumps(_detail(item), ensure_ascii=False, separators=(",", ":"))))
    return rows


def _detail(item: dict[str, Any]) -> dict[str, Any]:
    """What the report needs to say why (the probes' timings and headers are left in the file)."""
    v6 = item.get("v6") if isinstance(item.get("v6"), dict) else {}
    dns = item.get("dns") if isinstance(item.get("dns"), dict) else {}
    links = item.get("links") if isinstance(item.get("links"), dict) else {}
    return {
        "url": item.get("url"),
        "v6": {key: v6.get(key) for key in ("ok", "final_url", "status", "stage", "error")},
        "dns": {"aaaa": dns.get("aaaa") if isinstance(dns.get("aaaa"), list) else []},
        "links": {level: _level(value) for level, value in links.items()
                  if level in ("level2", "level3") and isinstance(value, dict)},
        "success_rate_v6": item.get("success_rate_v6"),
        "parity": item.get("parity"),
    }


def _level(level: dict[str, Any]) -> dict[str, Any]:
    """A link level's counts (numbers or None) and failing links (those with a URL)."""
    def number(value: Any) -> float | int | None:
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    failing = [{key: item.get(key) for key in ("url", "stage", "error", "status_v6")}
               for item in level.get("failing") or [] if isinstance(item, dict) and isinstance(item.get("url"), str)]
    return {"total": number(level.get("total")), "ipv6": number(level.get("ipv6")), "ratio": number(level.get("ratio")),
            "found": number(level.get("found")), "capped": level.get("capped") is True, "failing": failing}


def _load(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data.decode("utf-8-sig"))  # check writes UTF-8; a BOM from a Windows editor is dropped
    except UnicodeDecodeError as exc:
        raise NotAResult(f"not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise NotAResult(f"malformed JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
    if not isinstance(document, dict):
        raise NotAResult("not a check result: not a JSON object")
    return document


def _parse_run(document: dict[str, Any], sha256: str, source: str) -> _Run:
    """The row of ``runs`` (its host and unit left to the caller) and the rows of ``results`` of a
    ``check --format json`` document."""
    reported_host = _text(document, "host")
    generated = _text(document, "generated")
    policy_version = _text(document, "policy_version")
    results = document.get("results")
    if not isinstance(results, list):
        raise NotAResult("not a check result: no 'results' list")
    tool = document.get("tool")
    tool_version = _optional_text(tool.get("version")) if isinstance(tool, dict) else None
    row = (None, reported_host, generated, _epoch(generated, "generated"),
           _optional_text(document.get("as_of")), policy_version, tool_version, _optional_text(document.get("lang")),
           sha256, source)
    return _Run(row, _results(results))


def _results(results: list[Any]) -> list[tuple[str, str, str, str, str, str | None]]:
    """(control, article, status, severity, title, evidence JSON or None for a pass) per result."""
    rows = []
    seen: set[str] = set()
    for index, item in enumerate(results):
        where = f"results[{index}]"
        if not isinstance(item, dict):
            raise NotAResult(f"{where}: not an object")
        missing = [name for name in RESULT_FIELDS if not isinstance(item.get(name), str)]
        if missing:
            raise NotAResult(f"{where}: missing or not text: {', '.join(missing)}")
        control, status, severity = item["control"], item["status"], item["severity"]
        if status not in STATUSES:
            raise NotAResult(f"{where}.status: {status!r} is not one of {', '.join(sorted(STATUSES))}")
        if severity not in SEVERITIES:
            raise NotAResult(f"{where}.severity: {severity!r} is not one of {', '.join(SEVERITIES)}")
        if control in seen:
            raise NotAResult(f"{where}: control {control} appears twice")
        seen.add(control)
        evidence = item.get("evidence")
        kept = None if status == "pass" or evidence is None else json.dumps(evidence, ensure_ascii=False,
                                                                            separators=(",", ":"))
        rows.append((control, item["article"], status, severity, item["title"], kept))
    return rows


def _marker(document: dict[str, Any]) -> tuple[str, str, int, str | None]:
    """The ``unreachable`` row of an ``UNREACHABLE.json`` marker, with the host it names."""
    what = "not an unreachable marker"
    at = _text(document, "at", what)
    return (_text(document, "host", what), at, _epoch(at, "at"), _optional_text(document.get("msg")))


def _text(document: dict[str, Any], name: str, what: str = "not a check result") -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise NotAResult(f"{what}: '{name}' missing or not text")
    return value


def _optional_text(value: Any) -> str | None:
    """An optional field as text; anything else (absent, null, a number) is stored as NULL."""
    return value if isinstance(value, str) else None


def _epoch(text: str, name: str) -> int:
    """UTC epoch seconds of an RFC 3339 time; a time without an offset is refused, as it is ambiguous."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise NotAResult(f"{name}: not an RFC 3339 time: {text!r}") from None
    if moment.tzinfo is None:
        raise NotAResult(f"{name}: no UTC offset in {text!r}")
    return int(moment.timestamp())
