"""Invalidation across workers: a hybrid cache's memory follows other workers' writes (CLIENT TRACKING)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator

import pytest

from scancache.cache.backend import Record
from scancache.cache.core import Cache
from scancache.cache.invalidation import _MARK, TrackedHybridBackend, _Incomplete, parse_frame
from scancache.cache_config import CacheConfig, CacheType

pytestmark = pytest.mark.redis
pytest.importorskip("redis")

WAIT = 10.0  # seconds: the bound for anything that should take milliseconds


def until(condition: Callable[[], object], seconds: float = WAIT) -> bool:
    """Poll condition until it holds or seconds pass (a bound, not a sleep that hides a race)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.001)
    return bool(condition())


@pytest.fixture
def hybrid_config(redis_url: str, monkeypatch) -> CacheConfig:
    monkeypatch.delenv("SCANCACHE_REDIS_URL", raising=False)
    return CacheConfig(cache_type=CacheType.HYBRID, redis_url=redis_url, ttl_seconds=3600)


@pytest.fixture
def make(hybrid_config) -> Iterator[Callable[[], Cache]]:
    made: list[Cache] = []

    def factory() -> Cache:
        cache = Cache(hybrid_config)
        assert isinstance(cache.backend, TrackedHybridBackend)
        assert cache.backend.listener.connected.wait(WAIT)
        made.append(cache)
        return cache

    yield factory
    for cache in made:
        cache.close()


_WORKER = textwrap.dedent("""
    import asyncio, sys, time
    from scancache.cache.core import Cache
    from scancache.cache_config import CacheConfig, CacheType

    url, mode = sys.argv[1], sys.argv[2]
    cache = Cache(CacheConfig(cache_type=CacheType.HYBRID, redis_url=url, ttl_seconds=3600))
    assert cache.backend.listener.connected.wait(10)

    async def aget(key):
        return await cache.aget(key, "MISSING")

    def get(key):
        return asyncio.run(aget(key)) if mode == "async" else cache.get(key, "MISSING")

    def settled(key, value, expected):
        # A read that began before this worker heard of the write fills no memory (it may have read
        # the value the write replaced): read until the value is in memory too.
        return value == expected and (expected == "MISSING") == (cache.backend.front.peek(key) is None)

    for line in sys.stdin:  # "KEY EXPECTED": read KEY until it returns EXPECTED (10 s at most)
        key, expected = line.split()
        deadline = time.monotonic() + 10
        value = get(key)
        while not settled(key, value, expected) and time.monotonic() < deadline:
            value = get(key)
        print(value, len(cache.backend.front._data), flush=True)
""")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_another_workers_write_and_delete_evict_this_workers_memory_copy(hybrid_config, redis_url, mode):
    writer = Cache(hybrid_config)
    worker = subprocess.Popen([sys.executable, "-c", _WORKER, redis_url, mode], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert worker.stdin is not None and worker.stdout is not None

        def ask(key: str, expected: str) -> list[str]:
            worker.stdin.write(f"{key} {expected}\n")  # type: ignore[union-attr]
            worker.stdin.flush()  # type: ignore[union-attr]
            return worker.stdout.readline().split()  # type: ignore[union-attr]

        writer.set("k", "v1")
        assert ask("k", "v1") == ["v1", "1"]  # now in the worker's memory tier
        writer.set("k", "v2")  # TTL 3600: without tracking the worker would serve v1 for an hour
        assert ask("k", "v2") == ["v2", "1"]
        writer.delete("k")
        assert ask("k", "MISSING") == ["MISSING", "0"]
    finally:
        if worker.stdin:
            worker.stdin.close()
        worker.wait(20)
        writer.close()


def test_own_writes_stay_in_memory_and_other_writes_evict(make):
    a, b = make(), make()
    a.set("k", 1)
    assert until(lambda: not a.backend.listener._expected)  # our own write's echo came back...
    assert a.backend.front.peek("k") is not None  # ...and did not evict our copy
    # b hears of a's write too; a read of b's that starts before that news arrives fills nothing
    # (it may have read the value the write replaced), so wait for it before reading.
    assert until(lambda: b.backend.listener.invalidations >= 1)
    assert b.get("k") == 1 and b.backend.front.peek("k") is not None
    a.set("k", 2)
    assert until(lambda: b.backend.front.peek("k") is None)
    assert b.get("k") == 2


async def test_async_writes_evict_too(make):
    a, b = make(), make()
    await a.aset("k", "x")
    assert await b.aget("k") == "x"
    await a.aset_many({"k": "y", "j": "z"})
    assert until(lambda: b.backend.front.peek("k") is None)
    assert await b.aget_many(["k", "j"]) == {"k": "y", "j": "z"}


def test_a_read_in_flight_during_an_invalidation_does_not_fill_memory(make):
    cache = make()
    backend = cache.backend
    listener = backend.listener
    token = _MARK.set(listener.mark())  # a read from Redis starts here...
    try:
        listener._push([b"invalidate", [backend.back.prefix.encode() + b"k"]])  # ...another worker writes
        seen = backend._epoch_of("k")  # unmoved (no write of this process): the listener must bar it
        backend._fill("k", Record("old", time.time() + 60, time.time() + 60, 8), seen)  # ...old value lands
    finally:
        _MARK.reset(token)
    assert backend.front.peek("k") is None and backend.skipped_fills == 1


def test_an_invalidation_between_the_listeners_check_and_the_fill_still_bars_it(make):
    cache = make()
    backend = cache.backend
    listener = backend.listener
    seen = backend._epoch_of("k")  # a read from Redis starts here...
    listener._push([b"invalidate", [backend.back.prefix.encode() + b"k"]])  # ...another worker writes
    token = _MARK.set(listener.mark())  # (a mark from after it: the listener's own check lets it pass)
    try:
        backend._fill("k", Record("old", time.time() + 60, time.time() + 60, 8), seen)  # ...old value lands
    finally:
        _MARK.reset(token)
    assert backend.front.peek("k") is None and backend.skipped_fills == 1


def test_flushall_empties_memory(make, redis_server):
    cache = make()
    cache.set("k", 1)
    flushes = cache.backend.listener.flushes
    redis_server.flushall()
    assert until(lambda: cache.backend.listener.flushes > flushes)
    assert cache.backend.front.size() == 0 and cache.get("k") is None


def test_a_dropped_listener_reconnects_and_flushes_memory(make, redis_url):
    import redis

    a, b = make(), make()
    a.set("k", 1)
    assert b.get("k") == 1
    flushes = b.backend.listener.flushes
    # Kill every invalidation connection; the caches' own command connections stay up.
    with redis.Redis.from_url(redis_url) as admin:
        for client in admin.client_list():
            if client.get("name") == "scancache-invalidation":
                admin.client_kill_filter(_id=client["id"])
    assert until(lambda: b.backend.listener.flushes > flushes and b.backend.listener.healthy)
    assert b.backend.front.peek("k") is None  # flushed: writes made meanwhile could have been missed
    assert b.get("k") == 1
    a.set("k", 2)  # tracking works again
    assert until(lambda: b.backend.front.peek("k") is None)
    assert b.get("k") == 2


def test_redis_down_memory_still_answers_then_tracking_resumes(fresh_redis_server, monkeypatch):
    monkeypatch.delenv("SCANCACHE_REDIS_URL", raising=False)
    server = fresh_redis_server
    config = CacheConfig(cache_type=CacheType.HYBRID, redis_url=server.url, redis_timeout_seconds=0.3)
    with Cache(config) as cache:
        assert cache.backend.listener.connected.wait(WAIT)
        cache.set("k", "v")
        assert until(lambda: not cache.backend.listener._expected)
        server.stop()
        assert until(lambda: not cache.backend.listener.healthy)
        assert cache.get("k") == "v"  # memory still answers while Redis is down
        server.start()
        assert until(lambda: cache.backend.listener.healthy)
        assert cache.backend.front.peek("k") is None  # flushed when tracking came back


def test_cluster_writes_evict_keys_on_every_node(monkeypatch):
    from scancache.testing.redis_cluster import RedisClusterServer
    from scancache.testing.redis_server import find_redis_server

    if find_redis_server() is None:
        pytest.skip("redis-server binary not found")
    monkeypatch.delenv("SCANCACHE_REDIS_URL", raising=False)
    with RedisClusterServer(nodes=3) as cluster:
        config = CacheConfig(cache_type=CacheType.HYBRID, redis_url=cluster.url)
        with Cache(config) as a, Cache(config) as b:
            assert b.backend.listener.connected.wait(WAIT)
            keys = [f"host-{i}" for i in range(30)]  # spread over all three nodes' slots
            a.set_many(dict.fromkeys(keys, 1))
            assert b.get_many(keys) == dict.fromkeys(keys, 1)
            a.set_many(dict.fromkeys(keys, 2))
            assert until(lambda: b.backend.front.size() == 0)
            assert b.get_many(keys) == dict.fromkeys(keys, 2)


def test_resp3_frames_parse_incrementally():
    push = b">2\r\n$10\r\ninvalidate\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    assert parse_frame(push) == (("push", [b"invalidate", [b"a", b"b"]]), len(push))
    assert parse_frame(b">2\r\n$10\r\ninvalidate\r\n_\r\n")[0] == ("push", [b"invalidate", None])
    hello = b"%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n"
    assert parse_frame(hello)[0] == ["server", "redis", "proto", 3]
    for cut in range(len(push)):
        with pytest.raises(_Incomplete):
            parse_frame(push[:cut])


def test_asyncio_run_loops_share_the_listener_thread(make):
    a, b = make(), make()
    a.set("k", 1)
    assert asyncio.run(b.aget("k")) == 1
    a.set("k", 2)
    assert until(lambda: b.backend.front.peek("k") is None)
    assert asyncio.run(b.aget("k")) == 2
