"""Memory backend: LRU order, entry and byte limits, thread safety."""

from __future__ import annotations

import random
import threading
import time

import pytest

from scancache.cache.core import Cache
from scancache.cache.memory import MemoryBackend
from scancache.config import CacheConfig


def test_least_recently_used_entry_is_evicted_first():
    cache = Cache(CacheConfig(max_size=3))
    for key in "abc":
        cache.set(key, key)
    assert cache.get("a") == "a"  # a is now the most recently used
    cache.set("d", "d")
    assert cache.get("b") is None
    assert cache.get_many(["a", "c", "d"]) == {"a": "a", "c": "c", "d": "d"}
    assert cache.get_stats()["evictions"] == 1


def test_byte_limit_evicts_before_the_entry_limit():
    cache = Cache(CacheConfig(max_size=1000, max_memory_mb=0.01))  # ~10 KiB
    for i in range(100):
        cache.set(f"k{i}", "x" * 500)
    stats = cache.get_stats()
    assert stats["bytes"] <= 0.01 * 1024 * 1024
    assert stats["size"] < 100 and stats["evictions"] == 100 - stats["size"]
    assert cache.get("k99") == "x" * 500


def test_entry_larger_than_the_byte_limit_is_refused_not_stored():
    cache = Cache(CacheConfig(max_memory_mb=0.001))
    assert cache.set("huge", "x" * 10_000) is False
    assert cache.get("huge") is None
    assert cache.get_stats()["write_failures"] == 1


def test_purge_expired_counts_and_frees_bytes():
    now = [1000.0]
    cache = Cache(CacheConfig(ttl_seconds=10), clock=lambda: now[0])
    cache.set_many({f"k{i}": i for i in range(10)}, ttl=5)
    cache.set("keep", 1)
    now[0] += 6
    assert cache.cleanup() == 10
    assert cache.get_stats()["size"] == 1


def test_periodic_cleanup_runs_on_writes_after_cleanup_interval():
    now = [1000.0]
    cache = Cache(CacheConfig(ttl_seconds=10, cleanup_interval=30), clock=lambda: now[0])
    cache.set_many({f"k{i}": i for i in range(10)}, ttl=5)
    now[0] += 31
    cache.set("trigger", 1)
    assert len(cache) == 1


def test_many_threads_keep_counts_exact():
    backend_limit = 200
    cache = Cache(CacheConfig(max_size=backend_limit))
    errors = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(3000):
                key = f"k{rng.randrange(500)}"
                op = rng.random()
                if op < 0.5:
                    cache.get(key)
                elif op < 0.9:
                    cache.set(key, key)
                else:
                    cache.delete(key)
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    backend = cache.backend
    assert isinstance(backend, MemoryBackend)
    assert backend.size() <= backend_limit
    assert backend.size_bytes() == sum(r.nbytes for r in backend._data.values())
    for key, record in list(backend._data.items()):
        assert record.value == key


def test_discard_only_removes_the_record_it_was_given():
    backend = MemoryBackend(10, 10_000)
    cache = Cache(CacheConfig(), backend=backend)
    cache.set("k", "old")
    old = backend.peek("k")
    cache.set("k", "new")
    backend.discard("k", old)
    assert cache.get("k") == "new"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_max_size_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="max_size"):
        CacheConfig(max_size=bad)


def test_enable_metrics_false_keeps_counters_but_samples_no_latency():
    quiet = Cache(CacheConfig(enable_metrics=False))
    measured = Cache(CacheConfig())
    for cache in (quiet, measured):
        for i in range(100):
            cache.set(f"k{i}", i)
            cache.get(f"k{i}")
        cache.get_many(["k1", "k2"])
    assert quiet.get_stats()["hits"] == measured.get_stats()["hits"] == 102
    assert quiet.get_stats()["latency"] == {}
    assert set(measured.get_stats()["latency"]) >= {"get", "set", "get_many"}


def test_a_refused_write_does_not_leave_the_old_value_behind():
    cache = Cache(CacheConfig(max_memory_mb=0.001))
    cache.set("k", "old")
    cache.set("m", "old")
    assert cache.set("k", "x" * 10_000) is False
    assert cache.set_many({"m": "x" * 10_000}) is False
    assert cache.get("k") is None and cache.get("m") is None


def test_zero_lifetime_in_set_many_removes_the_old_value():
    cache = Cache(CacheConfig())
    cache.set_many({"a": 1, "b": 2})
    assert cache.set_many({"a": 10, "b": 20}, ttl=0) is True
    assert cache.get_many(["a", "b"]) == {}


def test_cleanup_works_while_other_threads_read():
    now = [1000.0]
    cache = Cache(CacheConfig(max_size=50_000, ttl_seconds=10), clock=lambda: now[0])
    cache.set_many({f"old{i}": i for i in range(20_000)}, ttl=5)
    cache.set_many({f"hot{i}": i for i in range(100)})
    now[0] += 6
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            for i in range(100):
                cache.get(f"hot{i}")

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        removed = [cache.cleanup() for _ in range(3)]
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert removed[0] == 20_000 and cache.get_stats()["errors"] == 0
    assert len(cache) == 100


def test_aget_or_set_from_two_event_loops_in_two_threads_never_strands_a_caller():
    import asyncio

    cache = Cache(CacheConfig())
    started = threading.Event()
    results: dict[str, object] = {}

    async def slow_factory():
        started.set()
        await asyncio.sleep(0.2)
        return "v"

    def loop_a() -> None:
        results["a"] = asyncio.run(cache.aget_or_set("k", slow_factory))

    def loop_b() -> None:
        started.wait(5)  # join while loop A's flight is running

        async def call():
            return await asyncio.wait_for(cache.aget_or_set("k", slow_factory), 3)

        begun = time.monotonic()
        try:
            results["b"] = asyncio.run(call())
        except BaseException as exc:  # reported by the assertion below
            results["b"] = exc
        # A stranded caller wakes only when its own 3 s timer fires; a served one within ~0.2 s.
        results["b_woke_by_itself"] = time.monotonic() - begun < 2.5

    threads = [threading.Thread(target=loop_a), threading.Thread(target=loop_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {"a": "v", "b": "v", "b_woke_by_itself": True}
