"""HybridBackend: memory in front of SQLite and of a real loopback Redis."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from scancache.cache.backend import Record
from scancache.cache.core import Cache
from scancache.cache.hybrid import HybridBackend
from scancache.config import CacheConfig, CacheType
from support import FakeClock

Factory = Callable[..., Cache]


@pytest.fixture(params=["disk", "redis"])
def make_cache(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[Factory]:
    """Hybrid Caches over one shared back store (a SQLite file or a flushed Redis) and one clock."""
    monkeypatch.delenv("SCANCACHE_REDIS_URL", raising=False)
    if request.param == "disk":
        pytest.importorskip("scancache.cache.sqlite")
        extra: dict[str, object] = {"cache_dir": str(tmp_path)}
    else:
        pytest.importorskip("redis")
        request.applymarker(pytest.mark.redis)
        extra = {"redis_url": request.getfixturevalue("redis_url")}
    clock = FakeClock(time.time())
    made: list[Cache] = []

    def factory(**overrides: object) -> Cache:
        config = CacheConfig(cache_type=CacheType.HYBRID, **{**extra, **overrides})  # type: ignore[arg-type]
        cache = Cache(config, clock=clock)
        made.append(cache)
        return cache

    factory.clock = clock  # type: ignore[attr-defined]
    factory.kind = request.param  # type: ignore[attr-defined]
    yield factory
    for cache in made:
        cache.close()


def hybrid(cache: Cache) -> HybridBackend:
    assert isinstance(cache.backend, HybridBackend)
    return cache.backend


def test_writes_go_through_to_both_tiers(make_cache):
    cache = make_cache()
    assert cache.set("k", {"v": 1})
    assert hybrid(cache).front.peek("k") is not None
    assert isinstance(hybrid(cache).back.get("k"), bytes)  # the back holds the encoded blob


def _tracking_up(cache: Cache) -> None:
    """Over Redis, wait (bounded) until the front follows the back: tracking coming up flushes the
    front, which would otherwise empty it in the middle of a test on a loaded machine."""
    listener = getattr(hybrid(cache), "listener", None)
    if listener is not None:
        assert listener.connected.wait(timeout=10.0)


def _seen_by(cache: Cache, write: Callable[[], object]) -> None:
    """Run write (another instance's), then over Redis wait (bounded) until cache's listener has
    heard of it: a read racing that message is, by design, not kept in memory."""
    listener = getattr(hybrid(cache), "listener", None)
    mark = listener.seq if listener is not None else 0
    assert write()
    deadline = time.monotonic() + 10.0
    while listener is not None and listener.seq <= mark:
        assert time.monotonic() < deadline, "the invalidation never arrived"
        time.sleep(0.001)


def test_second_instance_sees_the_first_ones_writes_and_fills_its_front(make_cache):
    first, second = make_cache(), make_cache()
    _tracking_up(second)
    _seen_by(second, lambda: first.set("k", ["a", 1]))
    assert hybrid(second).front.size() == 0
    assert second.get("k") == ["a", 1]
    assert hybrid(second).front.size() == 1 and hybrid(second).fills == 1
    listener = getattr(hybrid(second), "listener", None)
    if listener is not None:  # over Redis the front follows the back (test_invalidation.py): stop that
        listener.close()
    hybrid(second).back.delete("k")  # now only the front has it
    assert second.get("k") == ["a", 1]


def test_get_many_reads_the_front_then_the_back_for_the_rest(make_cache, request):
    first, second = make_cache(), make_cache()
    assert first.set_many({"a": 1, "b": 2, "c": 3})
    assert second.get("a") == 1  # now in second's front
    if make_cache.kind == "redis":
        import redis

        raw = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        raw.config_resetstat()
    assert second.get_many(["a", "b", "c", "z"]) == {"a": 1, "b": 2, "c": 3}
    if make_cache.kind == "redis":
        stats = raw.info("commandstats")
        assert stats["cmdstat_mget"]["calls"] == 1  # the three missing keys in one MGET
        assert "cmdstat_get" not in stats
        raw.close()
    assert hybrid(second).front.size() == 3


def test_expiry_follows_the_clock_and_drops_the_memory_copy(make_cache):
    cache = make_cache()
    assert cache.set("k", "v", ttl=10)
    make_cache.clock.advance(11)
    assert cache.get("k") is None
    assert hybrid(cache).front.peek("k") is None
    # The back copy is left to the back's own expiry (Redis PX, SQLite's purge): a read never pays
    # a round trip to delete it. It is never served again.
    assert cache.get_many(["k"]) == {} and cache.get_entry("k") is None


def test_expired_front_copy_does_not_delete_a_newer_value_in_the_back(make_cache):
    first, second = make_cache(), make_cache()
    assert first.set("k", "old", ttl=10)
    make_cache.clock.advance(5)
    assert second.set("k", "new", ttl=60)
    make_cache.clock.advance(6)
    # first's own copy expired: it reads through to the back, which holds second's newer value
    assert first.get("k") == "new"
    assert first.get_entry("k").is_stale is False


def test_size_is_the_backs_and_evictions_and_bytes_are_the_fronts(make_cache):
    cache = make_cache(max_size=2)
    assert cache.set_many({"a": 1, "b": 2, "c": 3})
    stats = cache.get_stats()
    assert stats["size"] == 3 == len(cache)
    assert stats["evictions"] == 1
    assert stats["bytes"] == hybrid(cache).front.size_bytes() > 0
    assert cache.get("a") == 1  # evicted from memory, still in the back


def test_corrupt_blob_in_the_back_is_a_miss_deleted_and_counted(make_cache):
    cache = make_cache()
    now = make_cache.clock()
    hybrid(cache).back.set("k", Record(None, now + 60, now + 60, 8), os.urandom(40))
    assert cache.get("k", "MISS") == "MISS"
    assert hybrid(cache).corrupt == 1
    assert hybrid(cache).back.get("k") is None
    hybrid(cache).back.set("j", Record(None, now + 60, now + 60, 8), b"garbage!")
    assert cache.get_many(["j"]) == {}
    assert hybrid(cache).corrupt == 2
    stats = cache.get_stats()
    assert stats["corrupt"] == 2 and stats["errors"] >= 2


def test_unsigned_back_entry_is_refused_by_a_signing_cache(make_cache):
    unsigned, signed = make_cache(), make_cache(signing_key="s" * 32)
    assert unsigned.set("k", "planted")
    assert signed.get("k", "MISS") == "MISS"
    assert hybrid(signed).corrupt == 1


def test_delete_and_clear_reach_both_tiers(make_cache):
    cache = make_cache()
    assert cache.set_many({"a": 1, "b": 2, "c": 3})
    assert cache.delete("a") is True
    assert hybrid(cache).front.peek("a") is None and hybrid(cache).back.get("a") is None
    assert cache.clear() == 2
    assert hybrid(cache).front.size() == 0 and len(cache) == 0


def test_entry_too_big_for_memory_lives_in_the_back_only(make_cache):
    cache = make_cache(max_memory_mb=0.001, enable_compression=False)  # about 1 KB of memory
    blob = os.urandom(4000)
    assert cache.set("big", blob)
    assert hybrid(cache).front.peek("big") is None
    assert cache.get("big") == blob


async def test_async_api_uses_the_backs_async_calls(make_cache):
    first, second = make_cache(), make_cache()
    _tracking_up(second)
    listener = getattr(hybrid(second), "listener", None)
    mark = listener.seq if listener is not None else 0
    assert await first.aset("a", 1)
    assert await first.aset_many({"b": 2, "c": 3})
    deadline = time.monotonic() + 10.0  # over Redis: until second heard of those writes (see _seen_by)
    while listener is not None and not all(listener.changed_since(k, mark) for k in "abc"):
        assert time.monotonic() < deadline, "the invalidations never arrived"
        await asyncio.sleep(0.001)
    record = await hybrid(second).aget("a")  # front miss: through the back's async API
    assert record is not None and record.value == 1
    assert hybrid(second).front.peek("a") is not None
    assert await second.aget_many(["a", "b", "c", "z"]) == {"a": 1, "b": 2, "c": 3}
    assert await second.adelete("a") is True
    assert await first.aget("a", "gone") in (1, "gone")  # first's front may still hold its copy
    assert await second.aclear() == 2
    assert len(second) == 0
    await first.aclose()
    await second.aclose()


# ---------------------------------------------------------------------- Redis outages
@pytest.mark.redis
def test_redis_down_hybrid_still_serves_from_memory(fresh_redis_server, monkeypatch):
    pytest.importorskip("redis")
    monkeypatch.delenv("SCANCACHE_REDIS_URL", raising=False)
    server = fresh_redis_server
    cache = Cache(CacheConfig(cache_type=CacheType.HYBRID, redis_url=server.url,
                              redis_timeout_seconds=0.3))
    assert cache.set("k", "v")
    server.stop()
    start = time.monotonic()
    assert cache.get("k") == "v"  # memory answers; Redis is not asked
    assert cache.set("j", 2) is False  # the back failed...
    assert cache.get("j") == 2  # ...but memory holds the value
    assert cache.get("absent", "MISS") == "MISS"
    assert cache.get_many(["k", "j", "absent"]) == {"k": "v", "j": 2}
    assert hybrid(cache).back_errors == 1
    assert time.monotonic() - start < 1.0
    assert cache.get_stats()["errors"] >= 2

    server.start()
    restarted = time.monotonic()
    while not cache.set("j", 3) and time.monotonic() - restarted < 2.0:
        time.sleep(0.01)  # poll for recovery, bounded; the breaker's cool-down is 0.2 s
    assert time.monotonic() - restarted < 1.0
    other = Cache(CacheConfig(cache_type=CacheType.HYBRID, redis_url=server.url))
    assert other.get("j") == 3
    other.close()
    cache.close()



async def test_async_reads_run_the_same_body_as_sync_ones(make_cache):
    """get/aget and get_many/aget_many share one body past memory: the async faces also delete and
    count a corrupt blob, and return the back's records."""
    cache = make_cache()
    back, now = hybrid(cache).back, make_cache.clock()
    for name in ("k", "j"):
        back.set(name, Record(None, now + 60, now + 60, 8), b"garbage!")
    assert await hybrid(cache).aget("k") is None
    assert await hybrid(cache).aget_many(["j"]) == {}
    assert hybrid(cache).corrupt == 2
    assert back.get("k") is None and back.get("j") is None
    other = make_cache()
    assert other.set_many({"a": 1, "b": 2})
    found = await hybrid(cache).aget_many(["b", "z", "a"])
    assert {key: r.value for key, r in found.items()} == {"b": 2, "a": 1}


@pytest.mark.redis
async def test_redis_down_async_reads_serve_memory_like_sync_ones(fresh_redis_server, monkeypatch):
    redis = pytest.importorskip("redis")
    monkeypatch.delenv("SCANCACHE_REDIS_URL", raising=False)
    server = fresh_redis_server
    cache = Cache(CacheConfig(cache_type=CacheType.HYBRID, redis_url=server.url,
                              redis_timeout_seconds=0.3))
    assert cache.set("k", "v")
    server.stop()
    found = await hybrid(cache).aget_many(["k", "absent"])  # the back fails: memory's entries
    assert [(key, r.value) for key, r in found.items()] == [("k", "v")]
    assert hybrid(cache).back_errors == 1
    with pytest.raises(redis.exceptions.RedisError):  # memory has none of them: the back's failure
        await hybrid(cache).aget_many(["absent"])
    with pytest.raises(redis.exceptions.RedisError):
        await hybrid(cache).aget("absent")
    assert hybrid(cache).back_errors == 1
    await cache.aclose()

def test_the_memory_tier_counts_decoded_bytes_not_compressed_ones(tmp_path):
    from scancache.cache.core import Cache
    from scancache.config import CacheConfig, CacheType

    cache = Cache(CacheConfig(cache_type=CacheType.HYBRID, cache_dir=str(tmp_path), max_memory_mb=1))
    for i in range(20):
        assert cache.set(f"k{i}", "x" * 200_000)  # compresses to a few hundred bytes on disk
    front = cache.backend.front
    assert front.size_bytes() <= 1024 * 1024
    assert front.size() <= 5  # 200 kB each decoded: at most five fit the 1 MB budget
    assert cache.get("k0") == "x" * 200_000  # evicted from memory, still on disk
    assert front.size_bytes() <= 1024 * 1024
    cache.close()


def test_an_expired_front_copy_is_still_served_stale_when_the_back_has_nothing_newer(make_cache):
    cache = make_cache()
    assert cache.set("k", "v", ttl=10, stale_ttl=100)
    make_cache.clock.advance(20)
    entry = cache.get_entry("k")
    assert entry is not None and entry.value == "v" and entry.is_stale
    assert cache.get("k") is None


CHANGES: dict[str, tuple[Callable[[Cache], object], object]] = {
    # what runs while a read is in flight, and what every read must return once it has returned
    "delete": (lambda cache: cache.delete("scan:k"), None),
    "set": (lambda cache: cache.set("scan:k", "new"), "new"),
    "invalidate_tag": (lambda cache: cache.invalidate_tag("t"), None),
    "invalidate_prefix": (lambda cache: cache.invalidate(prefix="scan:"), None),
    "clear": (lambda cache: cache.clear(), None),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_read_in_flight_cannot_put_an_older_value_in_memory_after_a_change_returned(make_cache, change):
    """The fill barrier: a reader fetched "old" from the back, the change runs and returns, and only
    then does the reader go on to fill memory: that fill must not happen."""
    cache = make_cache()
    assert cache.set("scan:k", "old", tags=["t"])
    hybrid = cache.backend
    hybrid.front.clear()  # the next read goes to the back store
    fetched, release = threading.Event(), threading.Event()
    back_get = hybrid.back.get

    def get_then_pause(key: str) -> object:
        raw = back_get(key)  # the old value, read before the change
        fetched.set()
        assert release.wait(10)
        return raw

    hybrid.back.get = get_then_pause
    returned: list[object] = []
    reader = threading.Thread(target=lambda: returned.append(cache.get("scan:k")))
    reader.start()
    assert fetched.wait(10)
    del hybrid.back.get  # the change's own reads are not paused
    run, expected = CHANGES[change]
    run(cache)
    release.set()
    reader.join(10)
    assert returned == ["old"]  # it read before the change returned: the old value is its answer
    held = hybrid.front.peek("scan:k")
    assert held is None or held.value == expected  # but memory did not keep it
    assert cache.get("scan:k") == expected
    assert hybrid.skipped_fills >= 1


async def test_an_async_read_in_flight_cannot_refill_memory_after_a_delete(make_cache):
    cache = make_cache()
    assert await cache.aset("k", "old")
    hybrid = cache.backend
    hybrid.front.clear()
    fetched, release = asyncio.Event(), asyncio.Event()
    back_aget = hybrid.back.aget

    async def aget_then_pause(key: str) -> object:
        raw = await back_aget(key)
        fetched.set()
        await release.wait()
        return raw

    hybrid.back.aget = aget_then_pause
    reader = asyncio.create_task(cache.aget("k"))
    await asyncio.wait_for(fetched.wait(), 10)
    del hybrid.back.aget
    assert await cache.adelete("k")
    release.set()
    assert await asyncio.wait_for(reader, 10) == "old"
    assert hybrid.front.peek("k") is None and await cache.aget("k") is None
