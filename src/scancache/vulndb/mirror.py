"""OSVMirror: an OSV all.zip dump in its own SQLite file, answering queries offline.

Schema (one file, nothing shared with the cache): `records(id, modified, withdrawn, json)`, an index
`packages(ecosystem, name, id)` on PEP 503-normalised (PyPI) names, `aliases(alias, id)` and
`commits(commit_hash, id)` for GIT range events, and `rejected(ecosystem, name, id, reason)`: the
packages named by dump files refused as malformed (scancache.vulndb.records), so that a query for
one of them reports the advisory as skipped (status unknown) instead of answering "clean".
Importing a newer dump updates in place: records whose `modified` is unchanged are left alone,
changed ones are replaced, missing ones removed (a record that turned malformed keeps its previous
copy); the ImportReport says how many of each and names every skipped file. Queries evaluate
ranges with scancache.vulndb.ranges (PEP 440 for PyPI, semver for SEMVER ranges and semver
ecosystems, each record's `versions` list).

Offline, a cve_id query returns the records whose id or aliases name the CVE (the mirror holds no
NVD data). Records come back parsed from JSON; nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from scancache._log import get_logger
from scancache.vulndb.dump import iter_dump_files
from scancache.vulndb.query import Query, parse_query
from scancache.vulndb.ranges import normalize_name, record_affects
from scancache.vulndb.records import record_label, record_problem

__all__ = ["OSVMirror", "ImportReport"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records(id TEXT PRIMARY KEY, modified TEXT NOT NULL, withdrawn TEXT,
                                   json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packages(ecosystem TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL,
                                    PRIMARY KEY(ecosystem, name, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aliases(alias TEXT NOT NULL, id TEXT NOT NULL,
                                   PRIMARY KEY(alias, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commits(commit_hash TEXT NOT NULL, id TEXT NOT NULL,
                                   PRIMARY KEY(commit_hash, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS packages_by_id ON packages(id);
CREATE TABLE IF NOT EXISTS rejected(ecosystem TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL,
                                    reason TEXT NOT NULL, PRIMARY KEY(ecosystem, name, id)) WITHOUT ROWID;
"""
#: Progress callbacks fire every this many records (and once at the end).
PROGRESS_EVERY = 250
log = get_logger("scancache.vulndb.mirror")


@dataclass(frozen=True)
class ImportReport:
    """What an import changed: records added, updated (modified changed), unchanged, removed,
    and skipped (not JSON, not a valid OSV record, or an id already seen), with skipped_files
    naming each skipped file and why."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    skipped_files: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The counts as a plain dict (skipped_files as [{"file", "reason"}, ...])."""
        out = asdict(self)
        out["skipped_files"] = [{"file": name, "reason": reason} for name, reason in self.skipped_files]
        return out


def _mirror_meta(path: Path) -> dict[str, str] | None:
    """The meta table of the mirror at path, or None when path is no mirror (or does not exist)."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta"))
        finally:
            db.close()
    except sqlite3.DatabaseError:  # not SQLite, or SQLite without our meta table
        return None
    return meta if "schema_version" in meta else None


class OSVMirror:
    """A local, queryable copy of OSV dumps in SQLite (thread safe; one connection under a lock)."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        """Open the mirror at path. create=False: it must exist and hold an import (else a query
        would answer "no vulnerabilities" from nothing). Either way, a file that is some other
        database is refused rather than written into. Raises ValueError naming the path."""
        self.path = Path(path).expanduser()
        meta = _mirror_meta(self.path)
        if meta is None and self.path.exists() and self.path.stat().st_size > 0:
            raise ValueError(f"{self.path} is not a scancache mirror")
        if not create and (meta is None or "imported_at" not in meta):
            raise ValueError(f"no imported mirror at {self.path} "
                             "(build one with 'scancache mirror import FILE')")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    # ------------------------------------------------------------------ import / update
    def import_dump(self, source: str | os.PathLike[str] | bytes | IO[bytes], *,
                    progress: Callable[[int, int], None] | None = None,
                    remove_missing: bool = True) -> ImportReport:
        """Import or update from an all.zip (path, bytes, file object) or a directory of JSON files.

        One transaction: a failure leaves the mirror as it was. Records whose `modified` matches are
        not rewritten; with remove_missing, records absent from the dump are deleted (a dump is a
        full snapshot). progress(done, total) is called every PROGRESS_EVERY records.
        Cost: O(records in the dump); reads every file once. Raises zipfile.BadZipFile, OSError.
        """
        start = time.perf_counter()
        added = updated = unchanged = removed = done = 0
        skipped: list[tuple[str, str]] = []
        with self._lock:
            db = self._db
            known = dict(db.execute("SELECT id, modified FROM records"))
            seen: set[str] = set()
            db.execute("BEGIN IMMEDIATE")
            try:
                if remove_missing:  # a full snapshot: its own rejections replace the old ones
                    db.execute("DELETE FROM rejected")
                for total, name, raw in iter_dump_files(source):
                    done += 1
                    if progress is not None and done % PROGRESS_EVERY == 0:
                        progress(done, total)
                    record, problem = _parse(raw)
                    if problem is None and record["id"] in seen:
                        problem = f"repeats id {record['id']} (the first copy stands)"
                    elif problem is not None:
                        problem = self._reject(name, record, problem, known, seen)
                    if problem is not None:
                        log.warning("mirror import: skipped %s: %s", name, problem)
                        skipped.append((name, problem))
                        continue
                    vuln_id, modified = record["id"], record["modified"]
                    seen.add(vuln_id)
                    db.execute("DELETE FROM rejected WHERE id = ?", (vuln_id,))
                    if known.get(vuln_id) == modified:
                        unchanged += 1
                        continue
                    if vuln_id in known:
                        self._delete(vuln_id)
                        updated += 1
                    else:
                        added += 1
                    self._insert(record)
                if not seen:  # a wrong or empty archive must not wipe (or fake) a mirror
                    raise ValueError(f"no OSV records in {_describe(source)} ({len(skipped)} "
                                     "files were not OSV records)")
                if remove_missing:
                    for vuln_id in set(known) - seen:
                        self._delete(vuln_id)
                        removed += 1
                db.execute("INSERT OR REPLACE INTO meta VALUES ('imported_at', ?)",
                           (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        if progress is not None:
            progress(done, done)
        return ImportReport(added, updated, unchanged, removed, len(skipped),
                            time.perf_counter() - start, tuple(skipped))

    def _reject(self, name: str, record: Any, problem: str, known: dict[str, str],
                seen: set[str]) -> str:
        """Remember a malformed record under the packages it names, so that a query for one of
        them reports it (the package's status is then unknown, not clean); a record the mirror
        already holds keeps its previous copy. Returns the reason to report."""
        vuln_id = record_label(record) if record is not None else Path(name).stem
        if vuln_id in known and vuln_id not in seen:
            seen.add(vuln_id)  # not removed as missing: the last good copy stands
            problem += " (the previous copy is kept)"
        rows = {(eco, normalize_name(eco, package), vuln_id, problem)
                for eco, package in _named_packages(record)}
        self._db.executemany("INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?)", rows)
        return problem

    def _insert(self, record: dict[str, Any]) -> None:
        vuln_id = record["id"]
        db = self._db
        db.execute("INSERT INTO records VALUES (?, ?, ?, ?)",
                   (vuln_id, record["modified"], record.get("withdrawn"),
                    json.dumps(record, separators=(",", ":"))))
        packages, commits = set(), set()
        for entry in record.get("affected") or ():
            package = entry.get("package") or {}
            eco = str(package.get("ecosystem", ""))
            if package.get("name"):
                packages.add((eco, normalize_name(eco, str(package["name"])), vuln_id))
            for rng in entry.get("ranges") or ():
                if rng.get("type") == "GIT":
                    for event in rng.get("events") or ():
                        for value in event.values():
                            commits.add((str(value).lower(), vuln_id))
        db.executemany("INSERT OR IGNORE INTO packages VALUES (?, ?, ?)", packages)
        db.executemany("INSERT OR IGNORE INTO commits VALUES (?, ?)", commits)
        aliases = {(str(a).upper(), vuln_id) for a in [vuln_id, *(record.get("aliases") or ())]}
        db.executemany("INSERT OR IGNORE INTO aliases VALUES (?, ?)", aliases)

    def _delete(self, vuln_id: str) -> None:
        for table in ("records", "packages", "aliases", "commits"):
            self._db.execute(f"DELETE FROM {table} WHERE id = ?", (vuln_id,))

    # ------------------------------------------------------------------ queries
    def _load(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [json.loads(row[0]) for row in rows]

    def query(self, query: dict[str, Any] | Query) -> list[dict[str, Any]]:
        """The records answering a package, commit or cve_id query, sorted by id.

        Cost: one indexed lookup plus range evaluation of that package's records. Raises ValueError
        for an invalid query or an NVD search (cpe/keyword), which the mirror cannot answer.
        Malformed records (a mirror built before they were refused at import) are left out: use
        query_checked to learn about them.
        """
        return self.query_checked(query)[0]

    def query_checked(self, query: dict[str, Any] | Query
                      ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """(query(query), [(id, reason), ...] for candidate records that are malformed)."""
        q = parse_query(query)
        if q.kind == "cve":
            return self._load("SELECT json FROM records WHERE id IN "
                              "(SELECT id FROM aliases WHERE alias = ?) ORDER BY id", (q.cve_id,)), []
        if q.kind == "nvd":
            raise ValueError("the offline mirror holds OSV data only; cpe/keyword searches need NVD")
        if q.kind == "commit" and q.name is None:
            skipped: list[tuple[str, str]] = []
            candidates = self._load("SELECT json FROM records WHERE id IN "
                                    "(SELECT id FROM commits WHERE commit_hash = ?) ORDER BY id",
                                    (q.commit,))
        else:
            assert q.name is not None
            if q.ecosystem is not None:
                ecosystems = [q.ecosystem]
            else:
                with self._lock:
                    ecosystems = [r[0] for r in self._db.execute(
                        "SELECT ecosystem FROM packages UNION SELECT ecosystem FROM rejected")]
            candidates = []
            skipped = []
            for eco in ecosystems:
                name = normalize_name(eco, q.name)
                candidates += self._load(
                    "SELECT json FROM records WHERE id IN (SELECT id FROM packages "
                    "WHERE ecosystem = ? AND name = ?) ORDER BY id", (eco, name))
                with self._lock:
                    skipped += self._db.execute("SELECT id, reason FROM rejected WHERE ecosystem = ? "
                                                "AND name = ? ORDER BY id", (eco, name)).fetchall()
        found = []
        for record in candidates:
            problem = record_problem(record)
            if problem is not None:
                skipped.append((record_label(record), problem))
            elif record_affects(record, ecosystem=q.ecosystem, name=q.name, version=q.version,
                                commit=q.commit):
                found.append(record)
        return found, skipped

    def get(self, vuln_id: str) -> dict[str, Any] | None:
        """One record by id, or None."""
        found = self._load("SELECT json FROM records WHERE id = ?", (vuln_id,))
        return found[0] if found else None

    def stats(self) -> dict[str, Any]:
        """records, withdrawn, packages, newest modified (the high-water mark) and imported_at."""
        with self._lock:
            db = self._db
            records, withdrawn, newest = db.execute(
                "SELECT COUNT(*), COUNT(withdrawn), MAX(modified) FROM records").fetchone()
            packages = db.execute(
                "SELECT COUNT(DISTINCT ecosystem || ':' || name) FROM packages").fetchone()[0]
            meta = dict(db.execute("SELECT key, value FROM meta"))
        return {"records": records, "withdrawn": withdrawn, "packages": packages,
                "high_water_mark": newest, "imported_at": meta.get("imported_at"), "path": str(self.path)}

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> OSVMirror:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _named_packages(record: Any) -> set[tuple[str, str]]:
    """(ecosystem, name) of every package a (possibly malformed) record names, as far as readable."""
    affected = record.get("affected") if isinstance(record, dict) else None
    named = set()
    for entry in affected if isinstance(affected, list) else ():
        package = entry.get("package") if isinstance(entry, dict) else None
        if isinstance(package, dict) and isinstance(package.get("name"), str) \
                and isinstance(package.get("ecosystem"), str):
            named.add((package["ecosystem"], package["name"]))
    return named


def _parse(raw: bytes) -> tuple[Any, str | None]:
    """(record, None) for a usable OSV record file, else (None, why it is not one)."""
    try:
        record = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError included
        return None, f"not JSON ({exc})"
    problem = record_problem(record)
    if problem is not None:
        return record, f"record {record_label(record)}: {problem}"
    return record, None


def _describe(source: Any) -> str:
    """A short name for an import source, for error messages."""
    return "the dump" if isinstance(source, bytes | bytearray) or hasattr(source, "read") else str(source)
