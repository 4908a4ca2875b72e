"""SQLite backend: through the Cache front (CacheType.DISK) and directly on SQLiteBackend."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scancache.cache.backend import Record, WriteItem
from scancache.cache.core import Cache
from scancache.cache.factory import SQLITE_FILENAME
from scancache.cache.refresh import COMPUTE_SUFFIX
from scancache.cache.sqlite import SCHEMA_VERSION, SQLiteBackend
from scancache.config import CacheConfig, CacheType
from scancache.errors import BackendError
from support import FakeClock

FAR = 4_000_000_000.0  # a stale_until far in the future (epoch seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_cache(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[..., Cache]]:
    """Disk caches in tmp_path sharing one fake clock; closed at the end."""
    made: list[Cache] = []

    def factory(**overrides: object) -> Cache:
        settings = {"cache_type": CacheType.DISK, "cache_dir": str(tmp_path), "ttl_seconds": 100,
                    **overrides}
        cache = Cache(CacheConfig(**settings), clock=clock)  # type: ignore[arg-type]
        made.append(cache)
        return cache

    yield factory
    for cache in made:
        cache.close()


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SQLiteBackend]:
    back = SQLiteBackend(tmp_path / "b.sqlite3", namespace="ns", max_entries=None, delete_on_close=False)
    yield back
    back.close()


def _record(blob: bytes, stale_until: float = FAR) -> Record:
    return Record(None, stale_until, stale_until, len(blob))


def _put(back: SQLiteBackend, key: str, blob: bytes, stale_until: float = FAR) -> None:
    back.set(key, _record(blob, stale_until), blob)


# ---------------------------------------------------------------------- through the Cache front
@pytest.mark.parametrize("value", [None, True, 7, 2**63 - 1, 1.25, "héllo", b"\x00\xff",
                                   {"ips": ["10.0.0.1", "::1"], "ttl": 30}, "x" * 5000])
def test_round_trip(make_cache, value):
    cache = make_cache()
    assert cache.set("k", value) is True
    assert cache.get("k", "MISSING") == value
    assert cache.get("other", "MISSING") == "MISSING"


def test_tuples_come_back_as_lists(make_cache):
    cache = make_cache()
    cache.set("k", (1, (2, 3)))
    assert cache.get("k") == [1, [2, 3]]


def test_ttl_expiry_with_injected_clock_removes_the_row(make_cache, clock):
    cache = make_cache()
    cache.set("short", "a", ttl=10)
    cache.set("long", "b", ttl=50)
    clock.now += 9.9
    assert cache.get("short") == "a"
    clock.now += 0.2
    assert cache.get("short") is None
    assert cache.get("long") == "b"
    assert len(cache) == 1  # the expired row was discarded on read
    assert cache.get_stats()["expirations"] >= 1


def test_stale_window_is_served_by_get_entry_only(make_cache, clock):
    cache = make_cache()
    cache.set("k", "v", ttl=10, stale_ttl=20)
    clock.now += 15
    assert cache.get("k") is None
    entry = cache.get_entry("k")
    assert entry is not None and entry.is_stale and entry.value == "v"
    clock.now += 20
    assert cache.get_entry("k") is None


def test_values_persist_across_reopen(make_cache, tmp_path):
    first = make_cache()
    first.set("k", {"a": [1, 2]})
    first.set_many({"m1": 1, "m2": 2})
    first.close()
    again = make_cache()
    assert again.get("k") == {"a": [1, 2]}
    assert again.get_many(["m1", "m2", "m3"]) == {"m1": 1, "m2": 2}
    assert (tmp_path / SQLITE_FILENAME).exists()


def test_temporary_cache_deletes_its_file_on_close(make_cache):
    cache = make_cache(enable_persistence=False)
    cache.set("k", "v")
    path = cache.backend.path
    assert path.exists() and cache.get("k") == "v"
    cache.close()
    assert not path.exists()
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()


def test_namespaces_in_one_file_are_isolated(make_cache):
    dns = make_cache(namespace="dns")
    vuln = make_cache(namespace="vulndb")
    assert dns.backend.path == vuln.backend.path
    dns.set("k", "dns-value")
    vuln.set("k", "vuln-value")
    vuln.set("only-vuln", 1)
    assert dns.get("k") == "dns-value" and vuln.get("k") == "vuln-value"
    assert dns.get("only-vuln") is None
    assert (len(dns), len(vuln)) == (1, 2)
    assert dns.clear() == 1
    assert dns.get("k") is None and vuln.get("k") == "vuln-value" and len(vuln) == 2


def test_clear_returns_the_count_and_empties(make_cache):
    cache = make_cache()
    cache.set_many({f"k{i}": i for i in range(5)})
    assert cache.clear() == 5
    assert len(cache) == 0 and cache.get("k1") is None
    assert cache.get_stats()["bytes"] == 0


def test_get_many_and_set_many_cross_the_chunk_size(make_cache):
    cache = make_cache()
    mapping = {f"key-{i}": {"n": i} for i in range(1200)}
    assert cache.set_many(mapping) is True
    asked = [*mapping, "absent-1", "key-3", "absent-2"]  # duplicates and misses
    got = cache.get_many(asked)
    assert got == mapping
    assert len(cache) == 1200


def test_get_many_reads_1200_keys_with_one_statement(make_cache, sqlite_statements):
    cache = make_cache()
    mapping = {f"key-{i}": {"n": i} for i in range(1200)}
    cache.set_many(mapping)
    sqlite_statements.clear()
    assert cache.get_many([*mapping, "absent"]) == mapping
    assert len(sqlite_statements.reads()) == 1  # not one per 500 keys (issue 14: an audit's records)


def test_get_many_splits_at_the_builds_variable_limit(make_cache, sqlite_statements):
    cache = make_cache()
    mapping = {f"key-{i}": {"n": i} for i in range(1200)}
    cache.set_many(mapping)
    cache.backend._keys_per_read = 500  # as on a build whose limit is 501 variables
    sqlite_statements.clear()
    assert cache.get_many(list(mapping)) == mapping
    assert len(sqlite_statements.reads()) == 3


def test_stats_size_and_bytes(make_cache):
    cache = make_cache()
    cache.set("a", "x" * 100)
    cache.set("b", "y" * 10)
    stats = cache.get_stats()
    assert stats["size"] == 2 and stats["backend"] == "disk"
    assert stats["bytes"] == cache.backend.size_bytes() > 110


def test_corrupt_blob_is_a_counted_miss_and_is_removed(make_cache):
    cache = make_cache()
    cache.set("good", "fine")
    path = cache.backend.path
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO entries VALUES ('default', 'bad', ?, ?, 4, 0)", (b"junk", FAR))
    assert cache.get("bad", "MISSING") == "MISSING"
    stats = cache.get_stats()
    assert stats["errors"] == 1 and stats["misses"] == 1
    assert cache.backend.get("bad") is None  # the front deleted the row
    assert cache.get("good") == "fine"


def test_random_bytes_file_is_moved_aside(tmp_path, caplog):
    junk = os.urandom(64 * 1024)
    (tmp_path / SQLITE_FILENAME).write_bytes(junk)
    with caplog.at_level(logging.WARNING, logger="scancache.cache.sqlite"):
        cache = Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path)))
    try:
        assert cache.set("k", "v") is True and cache.get("k") == "v"
        backups = list(tmp_path.glob(f"{SQLITE_FILENAME}.corrupt-*"))
        assert len(backups) == 1 and backups[0].read_bytes() == junk
        assert "not a usable SQLite database" in caplog.text and str(backups[0]) in caplog.text
    finally:
        cache.close()


def test_garbage_inside_a_valid_file_never_raises_from_reads(tmp_path):
    config = CacheConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path))
    with Cache(config) as cache:
        cache.set_many({f"k{i}": "v" * 300 for i in range(400)})
    path = tmp_path / SQLITE_FILENAME
    data = bytearray(path.read_bytes())
    assert len(data) > 16 * 4096
    data[8 * 4096:] = os.urandom(len(data) - 8 * 4096)  # keep the header and schema pages
    path.write_bytes(bytes(data))
    with Cache(config) as cache:
        results = [cache.get(f"k{i}", "MISSING") for i in range(400)]
        assert cache.get_many([f"k{i}" for i in range(400)]) is not None
        assert isinstance(cache.set("new", 1), bool)
        stats = cache.get_stats()
    damaged = [r for r in results if r == "MISSING"]
    assert damaged and stats["errors"] > 0  # garbage was read as a counted miss, not an exception


def test_unusable_path_raises_backend_error_naming_it(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(BackendError, match="not-a-dir"):
        SQLiteBackend(blocker / "sub" / "c.sqlite3", namespace="n", max_entries=None, delete_on_close=False)
    with pytest.raises(BackendError, match="cannot open cache file .*" + tmp_path.name):
        SQLiteBackend(tmp_path, namespace="n", max_entries=None, delete_on_close=False)  # a directory


def test_newer_schema_version_is_refused(tmp_path):
    path = tmp_path / "c.sqlite3"
    SQLiteBackend(path, namespace="n", max_entries=None, delete_on_close=False).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE settings SET value = ? WHERE name = 'schema_version'",
                     (str(SCHEMA_VERSION + 1),))
    with pytest.raises(BackendError, match="schema version"):
        SQLiteBackend(path, namespace="n", max_entries=None, delete_on_close=False)


def test_file_has_wal_and_parent_directory_is_created(tmp_path):
    path = tmp_path / "deep" / "er" / "c.sqlite3"
    back = SQLiteBackend(path, namespace="n", max_entries=None, delete_on_close=False)
    try:
        _put(back, "k", b"v")
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            assert {"entries", "settings", "entries_size"} <= names
            assert conn.execute("SELECT value FROM settings WHERE name='schema_version'").fetchone() == (
                str(SCHEMA_VERSION),)
    finally:
        back.close()


def test_closed_cache_reads_are_counted_misses(make_cache):
    cache = make_cache()
    cache.set("k", "v")
    back = cache.backend
    back.close()
    with pytest.raises(BackendError, match="closed"):
        back.get("k")
    assert cache.get("k", "MISSING") == "MISSING"
    assert cache.set("k", "v") is False
    assert cache.get_stats()["errors"] >= 2


# ---------------------------------------------------------------------- directly on the backend
def test_purge_expired_removes_only_dead_rows_of_its_namespace(backend, tmp_path):
    other = SQLiteBackend(tmp_path / "b.sqlite3", namespace="other", max_entries=None, delete_on_close=False)
    try:
        for i in range(10):
            _put(backend, f"k{i}", b"v", stale_until=100.0 + i)
            _put(other, f"k{i}", b"v", stale_until=100.0 + i)
        assert backend.purge_expired(104.0) == 5  # stale_until <= now goes
        assert backend.size() == 5 and backend.get("k4") is None and backend.get("k5") == b"v"
        assert other.size() == 10
        assert backend.purge_expired(104.0) == 0
    finally:
        other.close()


def test_cache_cleanup_purges_through_the_index(make_cache, clock):
    cache = make_cache()
    cache.set_many({f"k{i}": i for i in range(10)}, ttl=10)
    cache.set("keeper", 1, ttl=90)
    clock.now += 11
    assert cache.cleanup() == 10
    assert len(cache) == 1


def test_max_entries_evicts_the_oldest_and_counts(tmp_path):
    back = SQLiteBackend(tmp_path / "c.sqlite3", namespace="n", max_entries=10, delete_on_close=False)
    try:
        for i in range(50):
            _put(back, f"k{i}", b"v%d" % i)
            assert back.size() <= 10
        assert back.evictions == 50 - back.size()
        assert back.get("k49") == b"v49" and back.get("k0") is None
    finally:
        back.close()


def test_recently_read_keys_survive_eviction(tmp_path):
    back = SQLiteBackend(tmp_path / "c.sqlite3", namespace="n", max_entries=10, delete_on_close=False)
    try:
        for i in range(10):
            _put(back, f"k{i}", b"v")
        assert back.get("k0") == b"v"  # k0 is now the most recently used
        for i in range(10, 15):
            _put(back, f"new{i}", b"v")
        assert back.get("k0") == b"v"
        assert back.get("k1") is None
    finally:
        back.close()


def test_disk_max_size_through_the_front(make_cache):
    cache = make_cache(disk_max_size=20)
    cache.set_many({f"k{i}": i for i in range(100)})
    for i in range(30):
        cache.set(f"s{i}", i)
    stats = cache.get_stats()
    assert stats["size"] <= 20 and stats["evictions"] == 130 - stats["size"]
    assert cache.get("s29") == 29


def test_discard_keeps_a_newer_value(backend):
    _put(backend, "k", b"old")
    raw = backend.get("k")
    _put(backend, "k", b"new")
    backend.discard("k", raw)
    assert backend.get("k") == b"new"
    backend.discard("k", b"new")
    assert backend.get("k") is None


def test_delete_and_set_many_all_or_nothing(backend):
    _put(backend, "k", b"v")
    assert backend.delete("k") is True and backend.delete("k") is False
    good = WriteItem("a", _record(b"1"), b"1")
    with pytest.raises(ValueError):
        backend.set_many([good, WriteItem("b", _record(b"2"), None)])
    assert backend.get("a") is None
    backend.set_many([])
    assert backend.size() == 0


def test_locked_database_is_retried_then_reported(tmp_path):
    path = tmp_path / "c.sqlite3"
    back = SQLiteBackend(path, namespace="n", max_entries=None, delete_on_close=False,
                         busy_timeout_seconds=0.005)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock ...
        release = threading.Timer(0.02, holder.execute, args=("COMMIT",))
        release.start()  # ... and lets go while our retries are backing off
        _put(back, "k", b"v")
        release.join()
        assert back.get("k") == b"v"
        holder.execute("BEGIN IMMEDIATE")  # now it never lets go: the write fails after retries
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            _put(back, "k2", b"v")
        assert back.get("k") == b"v"  # WAL readers are not blocked by the writer
        holder.execute("ROLLBACK")
    finally:
        holder.close()
        back.close()


def test_threads_share_one_file_consistently(make_cache):
    cache = make_cache()
    errors: list[BaseException] = []
    threads_n, rounds = 8, 60

    def work(t: int) -> None:
        try:
            for i in range(rounds):
                key = f"t{t}-k{i % 10}"
                assert cache.set(key, [t, i]) is True
                assert cache.get(key) == [t, i]
                cache.get(f"t{(t + 1) % threads_n}-k{i % 10}")  # another thread's key: any answer
                if i % 7 == 0:
                    cache.set_many({f"t{t}-m{j}": i for j in range(5)})
                    assert cache.get_many([f"t{t}-m{j}" for j in range(5)]) == {
                        f"t{t}-m{j}": i for j in range(5)}
                if i % 11 == 0:
                    cache.delete(f"t{t}-gone")
                    cache.set(f"shared-{i % 3}", t)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert errors == []
    for t in range(threads_n):
        for k in range(10):
            last = max(i for i in range(rounds) if i % 10 == k)
            assert cache.get(f"t{t}-k{k}") == [t, last]
    assert len(cache) == threads_n * 15 + 3
    assert cache.get_stats()["errors"] == 0
    with sqlite3.connect(cache.backend.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_async_api(make_cache, clock):
    cache = make_cache()
    assert await cache.aset("k", {"v": 1}) is True
    assert await cache.aget("k") == {"v": 1}
    assert await cache.aset_many({f"m{i}": i for i in range(600)}) is True
    assert await cache.aget_many([f"m{i}" for i in range(600)]) == {f"m{i}": i for i in range(600)}
    assert await cache.aget_many(["m1", "nope"]) == {"m1": 1}
    assert await cache.adelete("k") is True and await cache.aget("k") is None
    calls = 0

    async def factory() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return "made"

    results = await asyncio.gather(*(cache.aget_or_set("once", factory) for _ in range(10)))
    assert results == ["made"] * 10 and calls == 1
    assert cache.get("once") == "made"
    # A factory that took over 1 ms (a loaded machine) also left its compute-time companion entry.
    companions = 0 if cache.get("once" + COMPUTE_SUFFIX) is None else 1
    assert await cache.aclear() == 601 + companions
    await cache.aclose()
    assert not cache.backend._connections.holders  # every thread's connection was closed


async def test_async_write_never_blocks_the_loop_on_a_locked_file(make_cache):
    cache = make_cache()
    await cache.aset("warm", 1)  # the loop thread's connections exist before the lock is taken
    holder = sqlite3.connect(cache.backend.path, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN IMMEDIATE")
        loop = asyncio.get_running_loop()
        started = loop.time()
        write = asyncio.create_task(cache.aset("k", "v"))
        deleting = asyncio.create_task(cache.adelete("warm"))
        await asyncio.sleep(0.05)  # the loop keeps running while both wait for the lock in a thread
        assert not write.done() and not deleting.done()
        holder.execute("COMMIT")
        assert loop.time() - started < 2  # far below the 5 s busy timeout
        assert await write is True and await deleting is True
    finally:
        holder.close()
    assert await cache.aget("k") == "v" and await cache.aget("warm") is None


async def test_compress_false_stores_large_values_uncompressed_through_every_write(make_cache):
    cache = make_cache()
    big = {"ids": [[f"GHSA-{i:04d}", "2024-01-01T00:00:00Z"] for i in range(200)]}  # ~7 KB packed
    assert cache.set("plain", big, 60, compress=False)
    assert cache.set("tagged", big, 60, tags=["t"], compress=False)
    assert cache.set_many({"many": big}, 60, compress=False)
    assert await cache.aset("aplain", big, 60, compress=False)
    assert await cache.aset("atagged", big, 60, tags=["t"], compress=False)
    assert await cache.aset_many({"amany": big}, 60, compress=False)
    assert cache.set("default", big, 60)
    uncompressed = ["plain", "tagged", "many", "aplain", "atagged", "amany"]
    flags = {key: cache.backend.get(key)[3] for key in [*uncompressed, "default"]}
    assert flags == {**dict.fromkeys(uncompressed, 0), "default": 1}  # bit 1: zstd
    assert cache.get_many([*uncompressed, "default"]) == dict.fromkeys([*uncompressed, "default"], big)
