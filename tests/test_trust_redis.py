"""Trust in the Redis side of the cache core (issue 12): breakers that recover after an error
reply, an outage that is never reported as "nothing to clear", a password-protected test server."""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("redis")

import redis

from scancache.cache.backend import Record
from scancache.cache.core import Cache
from scancache.cache.redis import RedisBackend, RedisUnavailable
from scancache.config import CacheConfig, CacheType
from scancache.testing.redis_server import RedisServer, find_redis_server

pytestmark = pytest.mark.redis
needs_binary = pytest.mark.skipif(find_redis_server() is None, reason="redis-server binary not found on PATH")


def _record(seconds: float = 60.0) -> Record:
    now = time.time()
    return Record("v", now + seconds, now + seconds, 1)


def _wait_until_available(backend: RedisBackend, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit  # bounded by the cool-down; the limit only guards a hang
    while not backend.available:
        assert time.monotonic() < deadline, "breaker never half-opened"
        time.sleep(0.01)


def test_breaker_closes_after_a_probe_answered_with_an_error_reply(fresh_redis_server):
    """Issue 12.9: a probe answered with OOM proves the server alive; calls must not keep failing
    fast for cooldown + timeout."""
    server = fresh_redis_server
    backend = RedisBackend(server.url, namespace="t", timeout_seconds=2.0, cooldown_seconds=0.05)
    server.stop()
    with pytest.raises(redis.ConnectionError):
        backend.get("k")
    server.start()
    assert server.command("CONFIG", "SET", "maxmemory", "1") == b"+OK"  # every write: OOM
    _wait_until_available(backend)
    with pytest.raises(redis.ResponseError, match="maxmemory"):
        backend.set("k", _record(), b"blob")  # the half-open probe gets an answer: an error reply
    assert backend.available
    assert backend.get("k") is None  # at once, not RedisUnavailable for the next 2 s
    backend.close()


async def test_async_breaker_closes_after_a_probe_answered_with_an_error_reply(fresh_redis_server):
    server = fresh_redis_server
    backend = RedisBackend(server.url, namespace="t", timeout_seconds=2.0, cooldown_seconds=0.05)
    server.stop()
    with pytest.raises(redis.ConnectionError):
        await backend.aget("k")
    server.start()
    assert server.command("CONFIG", "SET", "maxmemory", "1") == b"+OK"
    while not backend.available:
        await asyncio.sleep(0.01)  # bounded by the 0.05 s cool-down (pytest-timeout guards a hang)
    with pytest.raises(redis.ResponseError, match="maxmemory"):
        await backend.aset("k", _record(), b"blob")
    assert backend.available
    assert await backend.aget("k") is None
    await backend.aclose()


def test_breaker_still_fails_fast_while_the_server_is_down(fresh_redis_server):
    server = fresh_redis_server
    backend = RedisBackend(server.url, namespace="t", timeout_seconds=0.5, cooldown_seconds=5.0)
    server.stop()
    with pytest.raises(redis.ConnectionError):
        backend.get("k")
    with pytest.raises(RedisUnavailable):
        backend.get("k")
    backend.close()


def test_clear_during_an_outage_is_none_not_zero(fresh_redis_server):
    """Issue 12, rough edge: 0 means "nothing was there"; an outage must not say that."""
    server = fresh_redis_server
    cache = Cache(CacheConfig(cache_type=CacheType.REDIS, redis_url=server.url, redis_timeout_seconds=0.3))
    assert cache.set("k", "v")
    server.stop()
    assert cache.clear() is None
    assert cache.get_stats()["errors"] >= 1
    server.start()
    _wait_until_available(cache.backend)
    assert cache.clear() == 0  # the restarted server is empty: now 0 is the truth
    cache.close()


async def test_aclear_during_an_outage_is_none_not_zero(fresh_redis_server):
    server = fresh_redis_server
    cache = Cache(CacheConfig(cache_type=CacheType.REDIS, redis_url=server.url, redis_timeout_seconds=0.3))
    assert await cache.aset("k", "v")
    assert await cache.aclear() == 1
    server.stop()
    assert await cache.aclear() is None
    await cache.aclose()


@needs_binary
def test_password_protected_test_server_becomes_ready_and_serves_the_cache():
    """Issue 12, rough edge: RedisServer(extra_args=["--requirepass", ...]) never became ready."""
    with RedisServer(extra_args=["--requirepass", "s3cr3t/pw"]) as server:
        assert server.ping()
        assert "s3cr3t" not in repr(server)
        cache = Cache(CacheConfig(cache_type=CacheType.REDIS, redis_url=server.url))
        assert cache.set("k", {"a": 1})
        assert cache.get("k") == {"a": 1}
        cache.close()
        server.flushall()
        # Without the password the server refuses: the protection is real.
        stranger = redis.Redis(host=server.host, port=server.port)
        with pytest.raises(redis.AuthenticationError):
            stranger.ping()
        stranger.close()
