"""The SQLite cache file itself: connection settings, schema, corrupt-file recovery, locked-write retries.

SQLiteBackend (sqlite.py) stores and reads entries; this module makes sure there is a usable file to
do it in, private to this user (private_files.py).
A file at the path that is not an SQLite database (or is corrupt at open) is moved aside
to `<name>.corrupt-<time>-<pid>` with a warning, and a fresh cache is started: a cache is disposable
and a scan should not fail over it. If even that is impossible, opening raises BackendError naming
the path.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scancache._log import get_logger
from scancache.cache.private_files import (
    CacheNotWritable,
    FileIdentity,
    check_opened,
    private_directory,
    private_file,
)
from scancache.errors import BackendError

__all__ = ["BUSY_TIMEOUT_SECONDS", "SCHEMA_VERSION", "connect", "immediate", "is_busy", "open_database",
           "retry"]

# The backend's logger: callers filter one name for everything about the SQLite cache.
log = get_logger("scancache.cache.sqlite")

SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 5.0
_WRITE_ATTEMPTS = 5
_FIRST_BACKOFF_SECONDS = 0.01
_BUSY_CODES = frozenset((5, 6))  # SQLITE_BUSY, SQLITE_LOCKED
_CORRUPT_CODES = frozenset((11, 26))  # SQLITE_CORRUPT, SQLITE_NOTADB
_READ_ONLY_CODES = frozenset((3, 8, 14))  # SQLITE_PERM, SQLITE_READONLY, SQLITE_CANTOPEN

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS entries ("
    " namespace TEXT NOT NULL, key TEXT NOT NULL, blob BLOB NOT NULL, stale_until REAL NOT NULL,"
    " nbytes INTEGER NOT NULL, accessed_at REAL NOT NULL, PRIMARY KEY (namespace, key)) WITHOUT ROWID",
    # A narrow index for size() and size_bytes(). Not on stale_until: every write moves that value,
    # and keeping it indexed made each set ~35% slower; the purge that would use it runs once per
    # cleanup_interval and scans instead.
    "CREATE INDEX IF NOT EXISTS entries_size ON entries (namespace, nbytes)",
    "DROP INDEX IF EXISTS entries_expiry",  # files made by 0.1.0 development builds
)


def _code(exc: BaseException) -> int:
    """The primary SQLite result code of exc (0 when it carries none)."""
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def is_busy(exc: BaseException) -> bool:
    """True when exc means another connection holds the lock (worth retrying, not a real failure)."""
    return _code(exc) in _BUSY_CODES or "locked" in str(exc) or "busy" in str(exc)


def connect(path: Path, busy_timeout_seconds: float,
            identity: FileIdentity | None = None) -> sqlite3.Connection:
    """A new autocommit connection to path with the cache's pragmas; it waits busy_timeout on locks.

    SQLite opens the file by path as it connects: before anything is read or written, check_opened
    makes sure the path still names a private file of ours in a trusted directory (the file
    private_file checked, when identity is given), else UnsafeCacheFile.
    """
    conn = sqlite3.connect(
        path,
        timeout=busy_timeout_seconds,
        isolation_level=None,  # autocommit; transactions are explicit BEGIN IMMEDIATE
        check_same_thread=False,  # close() closes every thread's connection
        cached_statements=64,
    )
    try:
        check_opened(path, identity)
        conn.execute("PRAGMA synchronous=NORMAL")
        # A checkpoint fsyncs the database: every 4,000 WAL pages (~16 MB) instead of SQLite's 1,000
        # makes small writes ~15% cheaper; readers barely notice the longer WAL.
        conn.execute("PRAGMA wal_autocheckpoint=4000")
        conn.execute("PRAGMA temp_store=MEMORY")
    except BaseException:
        conn.close()
        raise
    return conn


def open_database(path: Path, busy_timeout_seconds: float) -> sqlite3.Connection:
    """A connection to path with the schema in place, after moving a corrupt file aside once.

    The directory and file are private to this user (private_files.py): UnsafeCacheFile for one
    another user owns or may write, or a symbolic link at path; CacheNotWritable for a read-only
    location. Raises BackendError when the file has another schema version, or it is unusable and
    cannot be moved aside.
    """
    private_directory(path.parent)
    for attempt in range(2):
        identity = private_file(path)  # again after a move aside: the new file must be private too
        inode = _inode(path)
        conn = None
        try:
            conn = connect(path, busy_timeout_seconds, identity)
            _init_schema(conn, path)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if _code(exc) in _READ_ONLY_CODES:
                raise CacheNotWritable(f"cannot write cache file {path}: {exc}") from None
            if _code(exc) not in _CORRUPT_CODES or attempt:
                raise BackendError(f"cannot open cache file {path}: {exc}") from None
            _move_aside(path, inode, exc)
            continue
        return conn
    raise AssertionError("unreachable")  # pragma: no cover


def _init_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Switch to WAL and create the tables once; refuse a file written by another schema version."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        retry(lambda: conn.execute("PRAGMA journal_mode=WAL"))

    def create() -> None:
        with immediate(conn.cursor()) as cursor:
            for statement in _SCHEMA:
                cursor.execute(statement)
            cursor.execute("INSERT OR IGNORE INTO settings VALUES ('schema_version', ?)",
                           (str(SCHEMA_VERSION),))

    row = None
    try:
        row = conn.execute("SELECT value FROM settings WHERE name = 'schema_version'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
    if row is None:
        retry(create)
    elif row[0] != str(SCHEMA_VERSION):
        raise BackendError(f"cache file {path} has schema version {row[0]}, this scancache "
                           f"reads version {SCHEMA_VERSION}; point cache_dir elsewhere or delete it")


def _move_aside(path: Path, inode: int | None, exc: BaseException) -> None:
    """Rename an unusable file (and its WAL) out of the way, unless another process already did."""
    if inode is not None and _inode(path) != inode:
        return  # another process already replaced it; open the new one
    backup = path.with_name(f"{path.name}.corrupt-{int(time.time())}-{os.getpid()}")
    try:
        os.replace(path, backup)
    except FileNotFoundError:
        return
    except OSError as move_exc:
        raise BackendError(f"cache file {path} is not a usable SQLite database ({exc}) "
                           f"and cannot be moved aside: {move_exc}") from None
    for suffix in ("-wal", "-shm"):
        try:
            if os.lstat(f"{path}{suffix}").st_size == 0:
                continue  # empty (as private_file creates them): nothing of the old file, it can stay
            os.replace(f"{path}{suffix}", f"{backup}{suffix}")
        except OSError:
            pass
    log.warning("cache file %s is not a usable SQLite database (%s); moved it to %s and "
                "started an empty cache", path, exc, backup)


def _inode(path: Path) -> int | None:
    """The file's inode (None if absent): tells whether another process replaced it meanwhile."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


@contextmanager
def immediate(cursor: sqlite3.Cursor) -> Iterator[sqlite3.Cursor]:
    """A write transaction taken at BEGIN (so it cannot fail half-way on a lock), rolled back on error."""
    cursor.execute("BEGIN IMMEDIATE")
    try:
        yield cursor
        cursor.execute("COMMIT")
    except BaseException:
        if cursor.connection.in_transaction:
            cursor.execute("ROLLBACK")
        raise


def retry(fn: Callable[[], Any], first_error: BaseException | None = None) -> Any:
    """fn() retried with exponential backoff while SQLite reports busy/locked (beyond busy_timeout,
    which WAL skips in some cases, e.g. a stale snapshot)."""
    delay = _FIRST_BACKOFF_SECONDS
    attempts = _WRITE_ATTEMPTS - (1 if first_error is not None else 0)
    for attempt in range(attempts):
        if first_error is not None or attempt:
            time.sleep(delay)
            delay *= 2
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or attempt == attempts - 1:
                raise
            first_error = exc
    raise AssertionError("unreachable")  # pragma: no cover
