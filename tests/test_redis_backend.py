"""RedisBackend against a real loopback redis-server: storage layout, expiry, outages, hostile data."""

from __future__ import annotations

import asyncio
import os
import pickle
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("redis")

import redis

from scancache.cache.backend import Record
from scancache.cache.core import Cache
from scancache.cache.redis import (
    ASYNC_MAX_CONNECTIONS,
    RedisBackend,
    RedisUnavailable,
    parse_redis_url,
    redact_url,
)
from scancache.config import CacheConfig, CacheType
from scancache.testing.redis_cluster import RedisClusterServer
from scancache.testing.redis_server import RedisServer, find_redis_server
from support import FakeClock

pytestmark = pytest.mark.redis
needs_binary = pytest.mark.skipif(find_redis_server() is None, reason="redis-server binary not found on PATH")


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client on the flushed test database, to look behind the backend's back."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def make_cache(url: str, clock: FakeClock | None = None, **settings: object) -> Cache:
    config = CacheConfig(cache_type=CacheType.REDIS, redis_url=url, **settings)  # type: ignore[arg-type]
    if clock is None:
        return Cache(config)
    backend = RedisBackend(url, namespace=config.namespace, timeout_seconds=config.redis_timeout_seconds,
                           clock=clock)
    return Cache(config, backend=backend, clock=clock)


def command_calls(client: redis.Redis, command: str) -> int:
    """How many times the server ran command since the last CONFIG RESETSTAT."""
    stats = client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


# ---------------------------------------------------------------------- storage
def test_round_trip_through_cache_config(redis_url, raw):
    cache = make_cache(redis_url)
    values = {"none": None, "int": 2**62, "text": "héllo", "bytes": b"\x00\xff",
              "nested": {"ips": ["10.0.0.1", "::1"], "ttl": 30}, "big": "x" * 5000}
    for key, value in values.items():
        assert cache.set(key, value) is True
    assert cache.set("tuple", (1, 2)) is True
    for key, value in values.items():
        assert cache.get(key, "MISSING") == value
    assert cache.get("tuple") == [1, 2]  # tuples come back as lists from Redis
    assert raw.exists("scancache:default:nested") == 1  # the documented key layout
    assert len(cache) == len(values) + 1
    assert cache.delete("int") is True
    assert cache.delete("int") is False
    assert cache.get("int", "MISSING") == "MISSING"
    cache.close()


def test_expiry_follows_the_injected_clock_and_redis_carries_a_px(redis_url, raw):
    clock = FakeClock(time.time())
    cache = make_cache(redis_url, clock)
    assert cache.set("k", "v", ttl=30, stale_ttl=10)
    pttl = raw.pttl("scancache:default:k")
    assert 39_000 < pttl <= 40_000  # PX = stale_until - now: Redis drops it when nobody can use it
    clock.advance(29)
    assert cache.get("k") == "v"
    clock.advance(2)
    assert cache.get("k") is None  # past expires_at: not fresh...
    entry = cache.get_entry("k")
    assert entry is not None and entry.is_stale and entry.value == "v"  # ...but servable as stale
    clock.advance(10)
    assert cache.get_entry("k") is None
    assert raw.exists("scancache:default:k") == 0  # the expired entry was removed on read
    cache.close()


def test_px_uses_the_backend_clock_not_the_wall_clock(redis_url, raw):
    clock = FakeClock(time.time())
    clock.now = 1_700_000_000.0  # years in the past: a wall-clock PX would be negative
    cache = make_cache(redis_url, clock, ttl_seconds=100)
    assert cache.set("k", 1)
    assert 99_000 < raw.pttl("scancache:default:k") <= 100_000
    assert cache.get("k") == 1
    cache.close()


def test_entry_already_past_its_stale_window_is_not_stored_and_replaces_the_old(redis_url, raw):
    clock = FakeClock(time.time())
    backend = RedisBackend(redis_url, namespace="default", timeout_seconds=0.5, clock=clock)
    backend.set("k", Record(1, clock.now + 5, clock.now + 5, 1), b"blob")
    assert raw.get("scancache:default:k") == b"blob"
    backend.set("k", Record(2, clock.now - 5, clock.now - 1, 1), b"newer-but-dead")
    assert raw.exists("scancache:default:k") == 0
    backend.close()


def test_namespaces_are_isolated_and_clear_touches_only_its_prefix(redis_url, raw):
    first = make_cache(redis_url, namespace="a")
    second = make_cache(redis_url, namespace="ab")  # shares "a" as a string prefix
    globby = make_cache(redis_url, namespace="n*")  # glob characters are escaped in SCAN MATCH
    plain = make_cache(redis_url, namespace="nX")
    for cache, value in ((first, 1), (second, 2), (globby, 3), (plain, 4)):
        assert cache.set("k", value)
    raw.set("unrelated:key", b"keep me")
    assert (first.get("k"), second.get("k"), globby.get("k"), plain.get("k")) == (1, 2, 3, 4)
    assert first.clear() == 1
    assert globby.clear() == 1
    assert first.get("k") is None and globby.get("k") is None
    assert second.get("k") == 2 and plain.get("k") == 4
    assert raw.get("unrelated:key") == b"keep me"
    assert len(second) == 1 and len(first) == 0
    for cache in (first, second, globby, plain):
        cache.close()


def test_clear_uses_scan_and_unlink_in_batches_never_keys_or_flushdb(redis_url, raw):
    cache = make_cache(redis_url)
    assert cache.set_many({f"k{i}": i for i in range(1200)})
    raw.set("other", b"x")
    raw.config_resetstat()
    assert cache.clear() == 1200
    assert command_calls(raw, "scan") >= 1
    assert command_calls(raw, "unlink") >= 3  # 1200 keys in batches of at most 500
    assert command_calls(raw, "keys") == 0
    assert command_calls(raw, "flushdb") == 0 and command_calls(raw, "flushall") == 0
    assert raw.dbsize() == 1
    cache.close()


def test_get_many_is_one_mget_and_set_many_sets_expiries(redis_url, raw):
    cache = make_cache(redis_url)
    assert cache.set_many({f"k{i}": {"n": i} for i in range(50)}, ttl=60)
    assert all(0 < raw.pttl(f"scancache:default:k{i}") <= 60_000 for i in range(50))
    raw.config_resetstat()
    keys = [f"k{i}" for i in range(60)]
    found = cache.get_many(keys)
    assert found == {f"k{i}": {"n": i} for i in range(50)}
    assert command_calls(raw, "mget") == 1
    assert command_calls(raw, "get") == 0
    cache.close()


async def test_async_api_round_trip(redis_url, raw):
    cache = make_cache(redis_url)
    assert await cache.aset("a", 1)
    assert await cache.aset_many({"b": [2], "c": {"x": 3}})
    assert await cache.aget("a") == 1
    raw.config_resetstat()
    assert await cache.aget_many(["a", "b", "c", "z"]) == {"a": 1, "b": [2], "c": {"x": 3}}
    assert command_calls(raw, "mget") == 1
    entry = await cache.aget_entry("b")
    assert entry is not None and entry.value == [2]
    assert await cache.adelete("a") is True
    assert await cache.aget("a", "gone") == "gone"
    assert await cache.aclear() == 2
    assert raw.dbsize() == 0
    await cache.aclose()


async def test_many_concurrent_tasks_share_a_bounded_number_of_connections(redis_url, raw):
    cache = make_cache(redis_url)
    assert all(await asyncio.gather(*[cache.aset(f"k{i}", i) for i in range(300)]))
    values = await asyncio.gather(*[cache.aget(f"k{i}") for i in range(300)])
    assert values == list(range(300))
    assert len(raw.client_list()) <= ASYNC_MAX_CONNECTIONS + 1  # + the raw client itself
    assert cache.get_stats()["errors"] == 0
    await cache.aclose()


def test_async_clients_are_per_event_loop(redis_url):
    cache = make_cache(redis_url)

    async def write_then_read(value: int) -> object:
        assert await cache.aset("k", value)
        return await cache.aget("k")

    # Two loops one after the other: a client bound to the first (now closed) loop must not be reused.
    assert asyncio.run(write_then_read(1)) == 1
    assert asyncio.run(write_then_read(2)) == 2
    assert cache.get("k") == 2
    cache.close()


# ---------------------------------------------------------------------- outages
def test_stopped_server_gives_misses_and_false_then_recovers_within_a_second(fresh_redis_server):
    server = fresh_redis_server
    cache = make_cache(server.url, redis_timeout_seconds=0.3)
    assert cache.set("k", "v")
    server.stop()
    start = time.monotonic()
    for _ in range(50):
        assert cache.get("k", "MISS") == "MISS"
        assert cache.set("k", "w") is False
        assert cache.get_many(["k", "j"]) == {}
        assert cache.delete("k") is False
    assert time.monotonic() - start < 1.0  # the breaker answers without waiting for timeouts
    assert cache.get_stats()["errors"] >= 150
    assert cache.backend.breaker_trips >= 1

    server.start()  # same port, empty
    restarted = time.monotonic()
    while not cache.set("k", "back") and time.monotonic() - restarted < 2.0:
        time.sleep(0.01)  # poll for recovery, bounded; the cool-down is 0.2 s
    assert time.monotonic() - restarted < 1.0
    assert cache.get("k") == "back"
    cache.close()


async def test_stopped_server_async_calls_miss_and_return_false(fresh_redis_server):
    server = fresh_redis_server
    cache = make_cache(server.url, redis_timeout_seconds=0.3)
    assert await cache.aset("k", "v")
    server.stop()
    start = time.monotonic()
    assert await cache.aget("k", "MISS") == "MISS"
    assert await cache.aset("k", "w") is False
    assert await cache.aget_many(["k"]) == {}
    assert await cache.aclear() is None  # not 0: the entries may still be there
    assert time.monotonic() - start < 1.0
    server.start()
    restarted = time.monotonic()
    while not await cache.aset("k", "back") and time.monotonic() - restarted < 2.0:
        await asyncio.sleep(0.01)
    assert time.monotonic() - restarted < 1.0
    assert await cache.aget("k") == "back"
    await cache.aclose()


def test_paused_server_calls_return_within_the_timeout(fresh_redis_server):
    server = fresh_redis_server
    cache = make_cache(server.url, redis_timeout_seconds=0.3)
    assert cache.set("k", "v")
    server.pause()
    try:
        start = time.monotonic()
        assert cache.get("k", "MISS") == "MISS"
        first = time.monotonic() - start
        assert 0.25 < first < 0.9  # waited for the socket timeout, not forever
        start = time.monotonic()
        assert cache.set("k", "w") is False  # inside the cool-down: no second wait
        assert time.monotonic() - start < 0.05
    finally:
        server.resume()
    resumed = time.monotonic()
    while cache.get("k") != "v" and time.monotonic() - resumed < 2.0:
        time.sleep(0.01)
    assert cache.get("k") == "v"
    cache.close()


async def test_paused_server_async_call_returns_within_the_timeout(fresh_redis_server):
    server = fresh_redis_server
    cache = make_cache(server.url, redis_timeout_seconds=0.3)
    assert await cache.aset("k", "v")
    server.pause()
    try:
        start = time.monotonic()
        assert await cache.aget("k", "MISS") == "MISS"
        assert time.monotonic() - start < 0.9
    finally:
        server.resume()
    await cache.aclose()


def test_breaker_fails_fast_then_lets_one_call_through(fresh_redis_server):
    server = fresh_redis_server
    backend = RedisBackend(server.url, namespace="t", timeout_seconds=0.3, cooldown_seconds=0.1)
    server.stop()
    with pytest.raises(redis.ConnectionError):
        backend.get("k")
    assert not backend.available
    with pytest.raises(RedisUnavailable):
        backend.get("k")
    server.start()
    deadline = time.monotonic() + 1.0
    while not backend.available and time.monotonic() < deadline:
        time.sleep(0.01)
    assert backend.get("k") is None  # the cool-down is over: Redis is asked again
    backend.close()


# ---------------------------------------------------------------------- hostile data
class _Exploit:
    """Unpickling this creates a marker file: proof that a payload ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_planted_pickle_is_a_miss_and_never_runs(redis_url, raw, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(str(marker)))
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Exploit(str(control)))).close()  # the payload does work when unpickled
    assert control.exists()

    cache = make_cache(redis_url)
    raw.set("scancache:default:k", payload)
    assert cache.get("k", "MISS") == "MISS"
    assert cache.get_many(["k"]) == {}
    assert not marker.exists()
    assert cache.get_stats()["corrupt"] >= 1
    assert raw.exists("scancache:default:k") == 0  # a corrupt entry is removed
    cache.close()


def test_random_bytes_are_a_miss(redis_url, raw):
    cache = make_cache(redis_url)
    raw.set("scancache:default:k", os.urandom(64))
    raw.set("scancache:default:j", b"SC\x01\x00" + os.urandom(64))  # right header, garbage body
    assert cache.get("k", "MISS") == "MISS"
    assert cache.get("j", "MISS") == "MISS"
    assert cache.get_stats()["corrupt"] == 2
    cache.close()


def test_unsigned_or_foreign_signed_entries_are_misses_when_signing(redis_url):
    signed = make_cache(redis_url, signing_key="k" * 32)
    unsigned = make_cache(redis_url)
    other = make_cache(redis_url, signing_key="o" * 32)
    assert unsigned.set("a", "planted")
    assert signed.get("a", "MISS") == "MISS"
    assert other.set("b", "planted")
    assert signed.get("b", "MISS") == "MISS"
    assert signed.set("c", "genuine")
    assert signed.get("c") == "genuine"
    assert signed.get_stats()["corrupt"] == 2
    for cache in (signed, unsigned, other):
        cache.close()


# ---------------------------------------------------------------------- URLs, cluster, server helper
@pytest.mark.parametrize(("url", "expected"), [
    ("redis://h:1/0", ("redis://h:1/0", False)),
    ("redis+cluster://h:1", ("redis://h:1", True)),
    ("rediss+cluster://u:p@h:1/0", ("rediss://u:p@h:1/0", True)),
    ("redis://h:1/0?cluster=true&socket_keepalive=1", ("redis://h:1/0?socket_keepalive=1", True)),
    ("redis://h:1/0?cluster=false", ("redis://h:1/0", False)),
])
def test_parse_redis_url(url, expected):
    assert parse_redis_url(url) == expected


def test_password_never_reaches_messages(fresh_redis_server):
    url = f"redis://user:s3cret@127.0.0.1:{fresh_redis_server.port}/0"
    backend = RedisBackend(url, namespace="t", timeout_seconds=0.3)
    assert redact_url(url) == f"redis://user:***@127.0.0.1:{fresh_redis_server.port}/0"
    fresh_redis_server.stop()
    with pytest.raises(redis.ConnectionError):
        backend.get("k")
    with pytest.raises(RedisUnavailable) as caught:
        backend.get("k")
    assert "s3cret" not in str(caught.value) and "s3cret" not in repr(backend)
    backend.close()


@pytest.mark.slow
@needs_binary
def test_cluster_mode_against_three_local_nodes():
    try:
        cluster = RedisClusterServer(3).start()
    except Exception as exc:  # e.g. no free port pairs on this machine
        pytest.skip(f"cannot form a local Redis Cluster: {exc}")
    try:
        cache = make_cache(cluster.url)
        assert cache.backend.cluster
        keys = [f"k{i}" for i in range(100)]  # spread over many slots and all three nodes
        assert cache.set_many({key: i for i, key in enumerate(keys)})
        assert cache.get_many(keys) == {key: i for i, key in enumerate(keys)}
        assert len(cache) == 100
        assert cache.clear() == 100
        assert len(cache) == 0

        async def async_part() -> None:
            assert await cache.aset_many({"a": 1, "b": 2})
            assert await cache.aget_many(["a", "b", "z"]) == {"a": 1, "b": 2}
            assert await cache.aclear() == 2
            await cache.aclose()

        asyncio.run(async_part())
    finally:
        cluster.close()


@needs_binary
def test_redis_server_restart_keeps_the_port_and_kills_on_exit():
    with RedisServer() as server:
        port = server.port
        assert server.ping()
        server.stop()
        assert not server.ping(timeout=0.2)
        server.start()
        assert server.port == port and server.ping()
        server.pause()
        assert not server.ping(timeout=0.2)
        server.resume()
        assert server.ping()
        pid = server.pid
    assert pid is not None and not os.path.exists(f"/proc/{pid}")


async def test_after_the_cool_down_one_call_probes_a_hung_server_and_the_rest_fail_fast(
        fresh_redis_server):
    cache = Cache(CacheConfig(cache_type=CacheType.REDIS, redis_url=fresh_redis_server.url,
                              redis_timeout_seconds=0.5))
    await cache.aset("k", 1)
    fresh_redis_server.pause()
    try:
        assert await cache.aget("k") is None  # times out and opens the breaker
        backend = cache.backend
        while not backend.available:  # wait out the cool-down (bounded by the breaker itself)
            await asyncio.sleep(0.01)

        async def timed_read() -> float:
            started = time.perf_counter()
            assert await cache.aget("k") is None
            return time.perf_counter() - started

        took = await asyncio.gather(*(timed_read() for _ in range(20)))
        assert sum(t > 0.4 for t in took) == 1  # the single probe waited for the timeout
        assert sum(t < 0.1 for t in took) == 19  # everyone else was told at once
    finally:
        fresh_redis_server.resume()
    await cache.aclose()
