"""SQLite promises kept (issue 12.13): the event loop never waits on another process's lock, and a
trim that fails keeps the record of which keys were read (they must not be evicted first)."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from scancache.cache.core import Cache
from scancache.cache.sqlite import SQLiteBackend
from scancache.config import CacheConfig, CacheType


def _lock_exclusively(path) -> sqlite3.Connection:
    """What another process can do: hold the file's exclusive lock, which WAL readers wait on too
    (it needs every other connection to the file closed first)."""
    locker = sqlite3.connect(path, isolation_level=None, timeout=0)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("UPDATE settings SET value = value WHERE name = 'schema_version'")
    return locker


def _cache_opened_in_a_finished_thread(directory) -> Cache:
    """A disk cache holding one entry, whose connections (per thread) all closed with their thread."""
    def build() -> Cache:
        cache = Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=directory))
        assert cache.set("k", "v")
        return cache

    with ThreadPoolExecutor(1) as pool:
        cache = pool.submit(build).result()
    gc.collect()  # the finished thread's connection may sit in a reference cycle
    return cache


@pytest.mark.parametrize("many", [False, True], ids=["aget", "aget_many"])
async def test_async_reads_never_block_the_event_loop_on_a_locked_file(tmp_path, many):
    cache = _cache_opened_in_a_finished_thread(tmp_path)
    locker = _lock_exclusively(tmp_path / "scancache.sqlite3")
    try:
        read = asyncio.create_task(cache.aget_many(["k"]) if many else cache.aget("k"))
        await asyncio.sleep(0)  # the read starts (and, inline, would hold the loop for 5 s)
        start = time.monotonic()
        await asyncio.sleep(0.01)
        stalled = time.monotonic() - start
        assert not read.done()  # it waits for the lock, in a thread
    finally:
        locker.close()  # rolls back and releases the exclusive lock
    assert await read == ({"k": "v"} if many else "v")
    assert stalled < 1.0, f"the event loop stalled {stalled:.2f} s behind another process's lock"
    cache.close()


def _row(i: int) -> tuple:
    return ("n", f"k{i}", b"blob", 1e12, 4, 1000.0 + i)  # accessed_at: k0 is the oldest


def test_a_failed_trim_keeps_the_keys_read_since_the_last_one(tmp_path):
    path = tmp_path / "c.sqlite3"
    back = SQLiteBackend(path, namespace="n", max_entries=10)
    other = sqlite3.connect(path, isolation_level=None)  # another writer of the shared file
    other.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?)", [_row(i) for i in range(11)])
    assert back.get("k0") == b"blob"  # k0 is used: the trim must not take it for the oldest
    # A write inside the trim's transaction fails (as a full disk would), once.
    other.execute("CREATE TRIGGER refuse BEFORE UPDATE OF accessed_at ON entries"
                  " BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(sqlite3.IntegrityError):
        back.trim()
    other.execute("DROP TRIGGER refuse")
    assert back.trim() == 2  # 11 entries, limit 10, a little slack
    assert back.get("k0") == b"blob"
    assert back.get("k1") is None and back.get("k2") is None
    other.close()
    back.close()
