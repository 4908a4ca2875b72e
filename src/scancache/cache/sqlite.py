"""SQLite storage for encoded cache entries: one file, many namespaces, many threads and processes.

Layout: `entries(namespace, key, blob, stale_until, nbytes, accessed_at)` with (namespace, key) as the
primary key, plus a narrow index on (namespace, nbytes) that serves size() and size_bytes() without
touching the blobs; `settings` holds the schema version. purge_expired scans the namespace (it runs
once per cleanup_interval; an index on stale_until would tax every write instead).

Concurrency: WAL journal with synchronous=NORMAL (a commit is durable against process crashes, and
against power loss up to the last checkpoint), a busy timeout, and a short retry loop on "database is
locked" for writes. Each thread gets its own connection, and a forked child opens its own
(sqlite_connections.py). Async reads and small async writes run inline on a connection that fails
at once on a lock (a local read costs less than a thread hop); one that finds the file locked moves
to a thread, so the event loop never waits on another process's lock.

Opening the file, its schema and what happens to a corrupt one live in sqlite_file.py. Corruption
found later surfaces as exceptions from reads, which the Cache front counts as misses.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from scancache._log import get_logger
from scancache.cache.backend import ByteBackendBase, Record, WriteItem, to_thread
from scancache.cache.sqlite_connections import ThreadConnections
from scancache.cache.sqlite_file import (
    BUSY_TIMEOUT_SECONDS,
    SCHEMA_VERSION,
    immediate,
    is_busy,
    open_database,
    retry,
)

__all__ = ["SQLiteBackend", "SCHEMA_VERSION"]

log = get_logger("scancache.cache.sqlite")

#: Async reads of up to this many keys run inline (a few ms at most); more go to a thread.
_CHUNK = 500
#: Async batches up to this size are written inline when the file is free (about 1.5 ms for 256 small
#: rows); larger ones in a thread. 256 is Cache.write_behind()'s batch: a bulk run's batches written
#: in a thread cost ~20 us more CPU per entry than inline (the GIL passed back and forth around every
#: row's sqlite3_step, futex sys time); measured, 30,000-name cold `resolve -i` on disk, interleaved:
#: CPU 3.03 -> 2.45 s (sys 1.00 -> 0.54 s) (issue 19). Inline, a batch whose commit crosses the WAL's
#: auto-checkpoint (every 4,000 pages, ~40,000 small entries) holds the loop ~40 ms (the fsyncs).
_INLINE_BATCH = 256

_GET = "SELECT blob FROM entries WHERE namespace = ? AND key = ?"
# An upsert, not INSERT OR REPLACE: rewriting an existing key updates the row in place and leaves
# the size index alone unless nbytes changed (REPLACE deletes and re-inserts into every index).
_SET = ("INSERT INTO entries (namespace, key, blob, stale_until, nbytes, accessed_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, key) DO UPDATE SET blob = excluded.blob,"
        " stale_until = excluded.stale_until, nbytes = excluded.nbytes, accessed_at = excluded.accessed_at")
# add(): the same upsert, which replaces only a dead row (rowcount 0 when a live one is kept).
_ADD = _SET + " WHERE entries.stale_until <= ?"
_DELETE = "DELETE FROM entries WHERE namespace = ? AND key = ?"
_DISCARD = "DELETE FROM entries WHERE namespace = ? AND key = ? AND blob = ?"
_CLEAR = "DELETE FROM entries WHERE namespace = ?"
_PURGE = "DELETE FROM entries WHERE namespace = ? AND stale_until <= ?"
_COUNT = "SELECT count(*) FROM entries INDEXED BY entries_size WHERE namespace = ?"
_BYTES = "SELECT total(nbytes) FROM entries INDEXED BY entries_size WHERE namespace = ?"
_TOUCH = "UPDATE entries SET accessed_at = ? WHERE namespace = ? AND key = ?"
_EVICT = ("DELETE FROM entries WHERE namespace = ? AND key IN"
          " (SELECT key FROM entries WHERE namespace = ? ORDER BY accessed_at LIMIT ?)")


class SQLiteBackend(ByteBackendBase):
    """Encoded entries of one namespace in an SQLite file that other namespaces and processes share.

    Cost: get is one indexed lookup (~10 us), set one autocommit INSERT (no fsync with WAL+NORMAL),
    get_many one query (up to the build's variable limit), set_many one transaction, purge_expired
    a scan of the namespace, size()/size_bytes() a scan of the narrow size index.
    With max_entries, the namespace is trimmed to max_entries every few writes (least recently
    stored or read in this process goes first) and `evictions` counts what was trimmed.
    Failures: reads and writes raise sqlite3 errors (the Cache front counts reads as misses and turns
    writes into False); writes retry "database is locked" a few times with backoff first.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        namespace: str = "default",
        max_entries: int | None = None,
        delete_on_close: bool = False,
        busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS,
    ) -> None:
        if max_entries is not None and max_entries <= 0:
            raise ValueError(f"max_entries must be positive, got {max_entries}")
        self.path = Path(path)
        self.namespace = namespace
        self.max_entries = max_entries
        self.delete_on_close = delete_on_close
        self.busy_timeout_seconds = busy_timeout_seconds
        self.evictions = 0
        # LRU-ish bookkeeping: keys read since the last trim get a fresh accessed_at before it.
        self._touched: set[str] | None = set() if max_entries is not None else None
        self._writes_until_trim = 1
        self._connections = ThreadConnections(self.path, busy_timeout_seconds)
        first = open_database(self.path, busy_timeout_seconds)
        #: Keys one get_many statement may name: the build's variable limit (999 on old builds,
        #: 32,766 since SQLite 3.32), less the namespace's. An audit's records are one query.
        self._keys_per_read = first.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 1
        self._connections.adopt(first)
        # This thread's waiting cursor, and its fail-fast one for the event loop and best-effort deletes.
        self._cursor = self._connections.cursor
        self._nowait_cursor = self._connections.nowait_cursor

    @property
    def closed(self) -> bool:
        """True once close() ran: every call then raises BackendError."""
        return self._connections.closed

    # ------------------------------------------------------------------ reads
    def get(self, key: str) -> bytes | None:
        """The stored blob for key or None; expiry is left to the front (it owns the clock)."""
        try:
            cursor = self._connections.local.cursor
        except AttributeError:
            cursor = self._cursor()
        return self._read(cursor, key)

    def _read(self, cursor: sqlite3.Cursor, key: str) -> bytes | None:
        """get's body on a given cursor (the waiting one, or the event loop's fail-fast one)."""
        row = cursor.execute(_GET, (self.namespace, key)).fetchone()
        if row is None:
            return None
        if self._touched is not None:
            self._touched.add(key)
        return row[0]

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """{key: blob} for the stored keys among keys: one query (one per 32,765 distinct keys, or
        per 998 on SQLite builds older than 3.32)."""
        return self._read_many(self._cursor(), keys)

    def _read_many(self, cursor: sqlite3.Cursor, keys: Sequence[str]) -> dict[str, bytes]:
        """get_many's body on a given cursor."""
        unique = list(dict.fromkeys(keys))
        out: dict[str, bytes] = {}
        step = self._keys_per_read
        for start in range(0, len(unique), step):
            chunk = unique[start:start + step]
            sql = ("SELECT key, blob FROM entries WHERE namespace = ? AND key IN ("
                   + ",".join("?" * len(chunk)) + ")")
            out.update(cursor.execute(sql, (self.namespace, *chunk)).fetchall())
        if self._touched is not None:
            self._touched.update(out)
        return out

    def keys(self, prefix: str, limit: int) -> list[str]:
        """Up to limit stored keys starting with prefix, sorted: a range scan of the primary key."""
        rows = self._cursor().execute(
            "SELECT key FROM entries WHERE namespace = ? AND key >= ? AND substr(key, 1, ?) = ?"
            " ORDER BY key LIMIT ?", (self.namespace, prefix, len(prefix), prefix, limit))
        return [row[0] for row in rows]

    def size(self) -> int:
        """Entries of this namespace (expired ones not yet purged included). O(n) on a narrow index."""
        return int(self._cursor().execute(_COUNT, (self.namespace,)).fetchone()[0])

    def size_bytes(self) -> int:
        """Sum of the blob lengths of this namespace. O(n) on a narrow index, blobs untouched."""
        return int(self._cursor().execute(_BYTES, (self.namespace,)).fetchone()[0])

    # ------------------------------------------------------------------ writes
    def set(self, key: str, record: Record, blob: bytes | None) -> None:
        """Store blob for key in one autocommit statement; raises after retries if still locked."""
        params = self._row(key, record, blob, time.time())
        cursor = self._cursor()
        try:
            cursor.execute(_SET, params)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            retry(lambda: cursor.execute(_SET, params), first_error=exc)
        if self.max_entries is not None:
            self._after_writes(1)

    def set_many(self, items: Iterable[WriteItem]) -> None:
        """Store every item in one transaction (all or nothing); retried as a whole when locked."""
        rows = self._rows(items)
        if not rows:
            return
        cursor = self._cursor()
        retry(lambda: self._write_rows(cursor, rows))
        if self.max_entries is not None:
            self._after_writes(len(rows))

    def _row(self, key: str, record: Record, blob: bytes | None, now: float) -> tuple[Any, ...]:
        """The _SET parameters for one entry; ValueError without a blob (this backend stores bytes)."""
        if blob is None:
            raise ValueError("SQLiteBackend stores encoded entries: blob is required")
        return (self.namespace, key, blob, record.stale_until, len(blob), now)

    def _rows(self, items: Iterable[WriteItem]) -> list[tuple[Any, ...]]:
        """The _SET parameters of every item, all stamped with one access time."""
        now = time.time()
        return [self._row(item.key, item.record, item.blob, now) for item in items]

    @staticmethod
    def _write_rows(cursor: sqlite3.Cursor, rows: list[tuple[Any, ...]]) -> None:
        """Every row in one transaction: all stored or none."""
        with immediate(cursor):
            cursor.executemany(_SET, rows)

    def add(self, key: str, record: Record, blob: bytes | None, now: float) -> bool:
        """Store blob for key only if the namespace holds no live row for it (stale_until > now):
        one autocommit upsert, atomic across threads and processes; True if it stored the row."""
        params = (*self._row(key, record, blob, time.time()), now)
        cursor = self._cursor()
        return bool(retry(lambda: cursor.execute(_ADD, params).rowcount))

    def delete(self, key: str) -> bool:
        """Remove key from this namespace; True if it was there."""
        cursor = self._cursor()
        return bool(retry(lambda: cursor.execute(_DELETE, (self.namespace, key)).rowcount))

    def delete_if(self, key: str, record: Record, blob: bytes | None) -> bool:
        """Remove key only while its row still holds blob; True if removed (one DELETE)."""
        cursor = self._cursor()
        return bool(retry(lambda: cursor.execute(_DISCARD, (self.namespace, key, blob)).rowcount))

    def discard(self, key: str, raw: Any) -> None:
        """Delete key only while it still holds raw, so a newer value written meanwhile survives.

        Best effort and never waits (the front calls it from reads, also on the event loop): when
        the file is locked the row stays, and purge_expired removes it later.
        """
        try:
            self._nowait_cursor().execute(_DISCARD, (self.namespace, key, raw))
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise

    def clear(self) -> int:
        """Remove every entry of this namespace (others in the file stay); returns how many."""
        cursor = self._cursor()
        return int(retry(lambda: cursor.execute(_CLEAR, (self.namespace,)).rowcount))

    def purge_expired(self, now: float) -> int:
        """Remove entries of this namespace whose stale_until <= now; returns how many. A scan."""
        cursor = self._cursor()
        removed = int(retry(lambda: cursor.execute(_PURGE, (self.namespace, now)).rowcount))
        if self.max_entries is not None:
            self.trim()
        return removed

    # ------------------------------------------------------------------ size limit
    def _after_writes(self, count: int) -> None:
        """Count count writes toward the next trim, and trim when it is due (a failed trim waits)."""
        self._writes_until_trim -= count
        if self._writes_until_trim <= 0:
            try:
                self.trim()
            except sqlite3.OperationalError as exc:
                # The write itself succeeded; trimming waits for the next write or purge.
                log.debug("trimming %s to max_entries failed: %s", self.path, exc)

    def trim(self) -> int:
        """Bring this namespace under max_entries now; returns how many entries were evicted.

        The oldest by accessed_at go first (write time, refreshed for keys this process read since
        the last trim). It trims a little below the limit so the next check is a few writes away,
        and counts the namespace only then: writes stay O(1) amortised. Other processes' writes can
        push the count past the limit until this process writes or purges again.
        """
        limit = self.max_entries
        if limit is None:
            return 0
        slack = max(1, limit // 16)
        cursor = self._cursor()
        # Reads since the last eviction count as uses: refreshed before choosing. They are forgotten
        # only once that commits: a failed or retried attempt must not lose them (they would then
        # look like the oldest entries and be evicted first).
        touched = set(self._touched or ())

        def run() -> int:
            with immediate(cursor):
                count = cursor.execute(_COUNT, (self.namespace,)).fetchone()[0]
                excess = count - limit
                if excess > 0:
                    excess += min(slack, limit - 1, count - 1)
                    now = time.time()
                    cursor.executemany(_TOUCH, ((now, self.namespace, key) for key in touched))
                    cursor.execute(_EVICT, (self.namespace, self.namespace, excess))
                    count -= excess
            self._writes_until_trim = max(1, limit - count)
            return max(excess, 0)

        evicted = retry(run)
        if evicted and self._touched is not None:
            self._touched -= touched  # keys read while it ran stay for the next trim
        self.evictions += evicted
        return evicted

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close every thread's connection; with delete_on_close also remove the file, its WAL and
        its directory once empty (the private temp dir the factory made for a non-persistent cache).

        Later calls raise BackendError (the front turns reads into misses). Idempotent.
        """
        if self.closed:
            return
        self._connections.close()
        if self.delete_on_close:
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(f"{self.path}{suffix}")
                except FileNotFoundError:
                    pass
            with contextlib.suppress(OSError):  # the private temp dir it lived in, once empty
                os.rmdir(self.path.parent)

    # Measured: a read from a local file takes ~5-10 us inline, ~50-90 us through asyncio.to_thread;
    # an uncontended write ~35 us inline, ~110-140 us through a thread. So both run inline on the
    # fail-fast connection (busy timeout 0), and a read or write that finds the file locked by
    # another process (an exclusive lock, a recovery, a checkpoint) moves to a thread, where it
    # waits up to the busy timeout without blocking the event loop. Large batches always go to a
    # thread.
    async def aget(self, key: str) -> bytes | None:
        """get inline when the file is free at once, else in a thread (the loop never waits)."""
        try:
            return self._read(self._nowait_cursor(), key)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        return await to_thread(self.get, key)

    async def aget_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """get_many inline for up to one chunk of keys when the file is free, else in a thread."""
        if len(keys) <= _CHUNK:
            try:
                return self._read_many(self._nowait_cursor(), keys)
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
        return await to_thread(self.get_many, keys)

    async def aset(self, key: str, record: Record, blob: bytes | None) -> None:
        """set inline when the file is free at once, else in a thread with the usual waits/retries."""
        params = self._row(key, record, blob, time.time())
        try:
            self._nowait_cursor().execute(_SET, params)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            await to_thread(self.set, key, record, blob)
            return
        if self.max_entries is not None:
            await self._aafter_writes(1)

    async def aset_many(self, items: Sequence[WriteItem]) -> None:
        """set_many inline for small batches when the file is free at once, else in a thread."""
        if len(items) > _INLINE_BATCH:
            await to_thread(self.set_many, items)
            return
        rows = self._rows(items)
        if not rows:
            return
        cursor = self._nowait_cursor()
        try:
            self._write_rows(cursor, rows)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            await to_thread(self.set_many, items)
            return
        if self.max_entries is not None:
            await self._aafter_writes(len(rows))

    async def aadd(self, key: str, record: Record, blob: bytes | None, now: float) -> bool:
        """add inline when the file is free at once, else in a thread."""
        params = (*self._row(key, record, blob, time.time()), now)
        try:
            return bool(self._nowait_cursor().execute(_ADD, params).rowcount)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        return await to_thread(self.add, key, record, blob, now)

    async def adelete_if(self, key: str, record: Record, blob: bytes | None) -> bool:
        """delete_if inline when the file is free at once, else in a thread."""
        try:
            return bool(self._nowait_cursor().execute(_DISCARD, (self.namespace, key, blob)).rowcount)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        return await to_thread(self.delete_if, key, record, blob)

    async def adelete(self, key: str) -> bool:
        """delete inline when the file is free at once, else in a thread."""
        try:
            return bool(self._nowait_cursor().execute(_DELETE, (self.namespace, key)).rowcount)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        return await to_thread(self.delete, key)

    async def _aafter_writes(self, count: int) -> None:
        """_after_writes for the event loop: a due trim (it counts the namespace) runs in a thread."""
        self._writes_until_trim -= count
        if self._writes_until_trim <= 0:
            await to_thread(self._after_writes, 0)  # counts the namespace: O(n)

    def __repr__(self) -> str:
        return f"<SQLiteBackend {str(self.path)!r} namespace={self.namespace!r}>"
