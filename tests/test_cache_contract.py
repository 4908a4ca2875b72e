"""One behavioural suite for every backend: the Cache front must act the same over each of them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType
from support import FakeClock

KINDS = ["memory", "disk", "redis", "hybrid-disk", "hybrid-redis"]


@pytest.fixture(params=KINDS)
def make_cache(request: pytest.FixtureRequest, tmp_path) -> Iterator[Callable[..., Cache]]:
    """A factory of Caches of one backend kind, all sharing one clock and one store."""
    kind = request.param
    extra: dict = {}
    if kind in ("disk", "hybrid-disk"):
        extra["cache_dir"] = str(tmp_path)
    if kind in ("redis", "hybrid-redis"):
        extra["redis_url"] = request.getfixturevalue("redis_url")
        # These tests are about the contract, not outages: a loaded CI machine must not turn a slow
        # connect (200 tasks opening connections at once) into a breaker trip. Outages: test_trust_redis*.
        extra["redis_timeout_seconds"] = 10.0
    cache_type = {"memory": CacheType.MEMORY, "disk": CacheType.DISK, "redis": CacheType.REDIS,
                  "hybrid-disk": CacheType.HYBRID, "hybrid-redis": CacheType.HYBRID}[kind]
    clock = FakeClock(time.time())  # Redis needs real epoch seconds
    made: list[Cache] = []

    def factory(**overrides: object) -> Cache:
        settings = {"cache_type": cache_type, "ttl_seconds": 100, **extra, **overrides}
        cache = Cache(CacheConfig(**settings), clock=clock)
        cache.clock_control = clock  # type: ignore[attr-defined]
        made.append(cache)
        return cache

    yield factory
    for cache in made:
        cache.close()


VALUES = [None, True, 0, -7, 2**62, 1.5, "", "héllo", b"\x00\xff", [1, "a", [2]], {"a": {"b": [1, 2]}},
          {"ips": ["10.0.0.1", "::1"], "ttl": 30}]


@pytest.mark.parametrize("value", VALUES)
def test_round_trip_keeps_json_like_values(make_cache, value):
    cache = make_cache()
    assert cache.set("k", value) is True
    assert cache.get("k", "MISSING") == value


def test_missing_key_returns_default_and_counts_a_miss(make_cache):
    cache = make_cache()
    assert cache.get("nope", 42) == 42
    stats = cache.get_stats()
    assert stats["misses"] == 1 and stats["hits"] == 0 and stats["hit_rate"] == 0.0


def test_entry_expires_after_its_ttl(make_cache):
    cache = make_cache()
    cache.set("k", "v", ttl=10)
    cache.clock_control.advance(9.9)
    assert cache.get("k") == "v"
    cache.clock_control.advance(0.2)
    assert cache.get("k") is None
    assert cache.get_stats()["expirations"] >= 1


def test_ttl_seconds_is_the_ceiling(make_cache):
    cache = make_cache(ttl_seconds=50)
    cache.set("k", "v", ttl=10_000)
    cache.clock_control.advance(51)
    assert cache.get("k") is None


def test_callable_ttl_receives_the_value(make_cache):
    cache = make_cache()
    cache.set("k", {"ttl": 5}, ttl=lambda v: v["ttl"])
    cache.clock_control.advance(6)
    assert cache.get("k") is None


def test_stale_window_serves_flagged_entries(make_cache):
    cache = make_cache()
    cache.set("k", "v", ttl=10, stale_ttl=20)
    cache.clock_control.advance(15)
    assert cache.get("k") is None  # plain get never returns stale values
    entry = cache.get_entry("k")
    assert entry is not None and entry.is_stale and entry.value == "v"
    assert cache.get_entry("k", allow_stale=False) is None
    cache.clock_control.advance(20)
    assert cache.get_entry("k") is None
    assert cache.get_stats()["stale_hits"] == 1


def test_an_entry_is_an_immutable_value_with_its_times(make_cache):
    cache = make_cache()
    cache.set("k", {"v": 1}, ttl=10, stale_ttl=20)
    now = cache.clock()
    entry = cache.get_entry("k")
    assert entry is not None
    assert (entry.value, entry.is_stale) == ({"v": 1}, False)
    assert entry.stale_until - entry.expires_at == pytest.approx(20)
    assert entry.ttl_remaining(now) == pytest.approx(10)
    assert entry == cache.get_entries(["k"])["k"]
    assert repr(entry).startswith("CacheEntry(value={'v': 1}, expires_at=")
    with pytest.raises(AttributeError):
        entry.value = "changed"  # type: ignore[misc]
    assert entry._replace(is_stale=True).is_stale and not entry.is_stale


def test_zero_ttl_stores_nothing_and_negative_ttl_is_rejected(make_cache):
    cache = make_cache()
    cache.set("k", "old")
    assert cache.set("k", "v", ttl=0) is True
    assert cache.get("k") is None
    with pytest.raises(ValueError, match="ttl"):
        cache.set("k", "v", ttl=-1)


def test_unserializable_values_and_non_str_keys_are_type_errors(make_cache):
    cache = make_cache()
    with pytest.raises(TypeError, match="cannot be cached"):
        cache.set("k", object())
    with pytest.raises(TypeError, match="keys are str"):
        cache.set(1, "v")  # type: ignore[arg-type]


def test_delete_and_clear(make_cache):
    cache = make_cache()
    cache.set_many({"a": 1, "b": 2, "c": 3})
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    assert cache.get_many(["a", "b", "c"]) == {"b": 2, "c": 3}
    assert cache.clear() >= 2
    assert cache.get_many(["b", "c"]) == {}
    assert len(cache) == 0


def test_get_many_skips_missing_and_expired(make_cache):
    cache = make_cache()
    cache.set_many({"a": 1, "b": 2}, ttl=5)
    cache.set("c", 3, ttl=50)
    cache.clock_control.advance(10)
    assert cache.get_many(["a", "b", "c", "d"]) == {"c": 3}


def test_large_values_survive_compression(make_cache):
    cache = make_cache(compression_threshold_bytes=64)
    value = {"records": ["x" * 100] * 200}
    cache.set("big", value)
    assert cache.get("big") == value


def test_signed_cache_round_trips(make_cache):
    cache = make_cache(signing_key="a-very-secret-signing-key")
    cache.set("k", {"v": 1})
    assert cache.get("k") == {"v": 1}


def test_get_or_set_runs_the_factory_once_across_threads(make_cache):
    cache = make_cache()
    calls = []
    gate = threading.Event()
    results = []

    def factory():
        calls.append(1)
        gate.wait(5)
        return "computed"

    threads = [threading.Thread(target=lambda: results.append(cache.get_or_set("k", factory)))
               for _ in range(8)]
    for t in threads:
        t.start()
    # Wait until every thread has either joined the flight or is about to; then release the leader.
    for _ in range(500):
        if cache.inflight_joined >= 7:
            break
        threading.Event().wait(0.01)
    gate.set()
    for t in threads:
        t.join(10)
    assert results == ["computed"] * 8
    assert len(calls) == 1


async def _until(condition, timeout: float = 5.0) -> None:
    """Yield to the loop until condition() holds (a bounded wait for tasks to line up, not a race)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "tasks never lined up"
        await asyncio.sleep(0.001)


async def test_async_api_round_trip(make_cache):
    cache = make_cache()
    assert await cache.aset("k", [1, 2]) is True
    assert await cache.aget("k") == [1, 2]
    assert await cache.aset_many({"a": 1, "b": 2}) is True
    assert await cache.aget_many(["a", "b", "z"]) == {"a": 1, "b": 2}
    entry = await cache.aget_entry("a")
    assert entry is not None and entry.value == 1 and not entry.is_stale
    assert await cache.adelete("a") is True
    assert await cache.aget("a") is None
    assert await cache.aclear() >= 2


async def test_aget_or_set_single_flight_across_tasks(make_cache):
    cache = make_cache()
    calls = 0
    release = asyncio.Event()

    async def factory():
        nonlocal calls
        calls += 1
        await release.wait()
        return {"answer": 42}

    tasks = [asyncio.create_task(cache.aget_or_set("q", factory)) for _ in range(200)]
    await _until(lambda: cache.inflight_joined >= 199)
    release.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert all(r == {"answer": 42} for r in results)
    assert await cache.aget("q") == {"answer": 42}


async def test_aget_or_set_failure_reaches_every_waiter_and_stores_nothing(make_cache):
    cache = make_cache()
    calls = 0

    release = asyncio.Event()

    async def factory():
        nonlocal calls
        calls += 1
        await release.wait()
        raise RuntimeError("upstream down")

    tasks = [asyncio.create_task(cache.aget_or_set("q", factory)) for _ in range(20)]
    await _until(lambda: cache.inflight_joined >= 19)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert calls == 1
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await cache.aget("q") is None


def test_stats_have_the_promised_keys(make_cache):
    cache = make_cache()
    for i in range(40):
        cache.set(f"k{i}", i)
        cache.get(f"k{i}")
    stats = cache.get_stats()
    for key in ("hits", "misses", "hit_rate", "size", "evictions", "stale_hits", "errors",
                "expirations", "bytes", "latency"):
        assert key in stats
    assert stats["hits"] == 40 and stats["size"] == 40
    assert "get" in stats["latency"] and stats["latency"]["get"]["p50_us"] > 0


async def test_entry_reads_are_sampled_for_latency(make_cache):
    # The DNS and vulnerability caches read only entries: their latency must show too.
    cache = make_cache()
    cache.set("k", 1)
    for _ in range(40):
        assert cache.get_entry("k") is not None
    assert cache.get_stats()["latency"]["get"]["samples"] >= 2
    asynchronous = make_cache()
    asynchronous.set("k", 1)
    for _ in range(40):
        assert await asynchronous.aget_entry("k") is not None
    assert asynchronous.get_stats()["latency"]["get"]["samples"] >= 2
