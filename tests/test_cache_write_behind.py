"""Gathered writes (issue 19, the cache side): many put()s become a few set_many batches, each entry
keeps its own lifetime, a failing backend is counted (never raised), and nothing is acknowledged
before its batch is stored."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType


@pytest.fixture
def disk(tmp_path):
    cache = Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=tmp_path))
    yield cache
    cache.close()


def _rows(cache: Cache) -> int:
    """Entries in the SQLite file, counted by another connection (what is really stored)."""
    with sqlite3.connect(cache.backend.path) as conn:
        return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])


async def test_a_thousand_puts_are_stored_in_a_few_batches(disk):
    async with disk.write_behind(max_items=256, max_delay=10.0) as writes:
        for i in range(1000):
            writes.put(f"host-{i}", [f"192.0.2.{i % 250}"], 300)
        assert writes.pending < 256  # full batches went as soon as they filled
    assert writes.pending == 0 and writes.stored == 1000 and writes.failed == 0
    assert writes.batches == 4  # 256 + 256 + 256 + the 232 left at close
    assert _rows(disk) == 1000
    assert disk.get_many([f"host-{i}" for i in range(0, 1000, 111)]) == {
        f"host-{i}": [f"192.0.2.{i % 250}"] for i in range(0, 1000, 111)}
    assert disk.get_stats()["sets"] == 1000


async def test_a_small_batch_is_flushed_after_max_delay(disk):
    writes = disk.write_behind(max_items=1000, max_delay=0.001)
    writes.put("a", 1)
    writes.put("b", 2)
    assert disk.get("a") is None  # not acknowledged, not stored yet
    for _ in range(10_000):  # bounded: the timer fires within a few loop turns on a loaded machine too
        if writes.batches:
            break
        await asyncio.sleep(0.001)
    assert writes.batches == 1 and disk.get_many(["a", "b"]) == {"a": 1, "b": 2}
    assert await writes.aclose()


async def test_each_entry_keeps_its_own_lifetime_and_a_zero_ttl_removes_the_old_value(disk):
    assert disk.set("gone", "old")
    async with disk.write_behind() as writes:
        writes.put("short", "s", 10)
        writes.put("long", "l", 1000, stale_ttl=50)
        writes.put("gone", "new", 0)
    short, long = disk.get_entry("short"), disk.get_entry("long")
    assert short is not None and long is not None
    assert long.expires_at - short.expires_at == pytest.approx(990, abs=1)
    assert long.stale_until - long.expires_at == pytest.approx(50)
    assert disk.get("gone") is None


async def test_bad_input_is_refused_at_put_not_at_flush(disk):
    async with disk.write_behind() as writes:
        with pytest.raises(TypeError):
            writes.put("k", object())
        with pytest.raises(ValueError, match="stale_ttl"):
            writes.put("k", 1, 10, stale_ttl=float("nan"))
        assert writes.pending == 0


async def test_a_failing_backend_is_counted_not_raised(tmp_path):
    cache = Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=tmp_path))
    writes = cache.write_behind()
    writes.put("k", 1)
    cache.backend.close()  # the store goes away under the batch
    assert await writes.aclose() is False
    assert writes.failed == 1 and writes.stored == 0
    assert cache.get_stats()["write_failures"] == 1


async def test_memory_and_redis_caches_take_gathered_writes_too(redis_url):
    for config in (CacheConfig(), CacheConfig(cache_type=CacheType.REDIS, redis_url=redis_url)):
        cache = Cache(config)
        async with cache.write_behind(max_items=10) as writes:
            for i in range(25):
                writes.put(f"k{i}", i)
        assert await cache.aget_many([f"k{i}" for i in range(25)]) == {f"k{i}": i for i in range(25)}
        await cache.aclose()
