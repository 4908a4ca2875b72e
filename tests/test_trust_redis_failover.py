"""A Redis Cluster master dies under load (issue 12.8): breakers per node keep the healthy shards
answering every read, the dead shard comes back when its replica is promoted, and no exception
reaches the caller. Six real redis-server nodes (3 masters, 3 replicas) from scancache.testing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

pytest.importorskip("redis")

from redis.crc import key_slot

from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType
from scancache.testing.redis_cluster import RedisClusterServer
from scancache.testing.redis_server import find_redis_server

pytestmark = [pytest.mark.redis, pytest.mark.slow,
              pytest.mark.skipif(find_redis_server() is None, reason="redis-server binary not found on PATH")]

NODE_TIMEOUT_MS = 1000
RECOVERY_LIMIT_SECONDS = 30.0  # a bound for a stuck test, far above the ~2-4 s a failover takes


@pytest.mark.parametrize("api", ["sync", "async"])
def test_killed_master_healthy_reads_never_stop_and_its_slots_recover_via_the_replica(api):
    try:
        cluster = RedisClusterServer(3, replicas=1, node_timeout_ms=NODE_TIMEOUT_MS).start()
    except Exception as exc:  # e.g. no free port pairs on this machine
        pytest.skip(f"cannot form a local Redis Cluster: {exc}")
    try:
        cache = Cache(CacheConfig(cache_type=CacheType.REDIS, redis_url=cluster.url,
                                  redis_timeout_seconds=0.5, enable_metrics=False))
        keys = [f"host-{i}.example" for i in range(300)]
        assert cache.set_many({key: i for i, key in enumerate(keys)}, 3600)
        cluster.wait_replicas_in_sync()
        victim_slots = cluster.slot_range(0)
        dead = [key for key in keys if key_slot(f"scancache:default:{key}".encode()) in victim_slots]
        healthy = [key for key in keys if key not in dead]
        assert dead and len(healthy) > len(dead)
        expected = {key: i for i, key in enumerate(keys)}

        if api == "sync":
            async def get(key: str) -> object:
                return cache.get(key)

            async def get_many(batch: list[str]) -> dict[str, object]:
                return cache.get_many(batch)
        else:
            get, get_many = cache.aget, cache.aget_many
        outcome = asyncio.run(_load_until_recovered(cluster, keys, dead, expected, get, get_many))
        exceptions, healthy_reads, healthy_misses, batch_healthy_misses, recovery = outcome
        assert exceptions == []
        assert healthy_misses == 0, f"{healthy_misses} of {healthy_reads} healthy reads missed"
        assert batch_healthy_misses == 0
        assert cache.get_stats()["errors"] > 0  # the dead shard was really down for a while
        print(f"\nfailover ({api}): dead slots back after {recovery:.2f} s "
              f"(cluster-node-timeout {NODE_TIMEOUT_MS} ms); {healthy_reads} healthy reads, 0 missed")
        cache.close()
    finally:
        cluster.close()


async def _load_until_recovered(cluster: RedisClusterServer, keys: list[str], dead: list[str],
                                expected: dict[str, int], get: Callable[[str], Awaitable[object]],
                                get_many: Callable[[list[str]], Awaitable[dict[str, object]]]
                                ) -> tuple[list[BaseException], int, int, int, float]:
    """Read every key in rounds, kill masters[0] after 0.3 s, stop at the first round in which every
    dead-slot key was read again: (exceptions, healthy reads, their misses, batch misses, seconds
    from the kill to that round)."""
    healthy = [key for key in keys if key not in dead]
    exceptions: list[BaseException] = []
    healthy_reads = healthy_misses = batch_healthy_misses = 0
    killed_at = None
    started = time.monotonic()
    while True:
        now = time.monotonic()
        if killed_at is None and now - started > 0.3:  # some load first, then the kill
            cluster.masters[0].stop()  # SIGKILL: the master vanishes mid-load
            killed_at = time.monotonic()
        assert now - started < RECOVERY_LIMIT_SECONDS, "the dead slots never came back"
        dead_hits = 0
        try:
            for key in keys:
                value = await get(key)
                if key in dead:
                    dead_hits += value == expected[key]
                else:
                    healthy_reads += 1
                    healthy_misses += value != expected[key]
            batch = await get_many(healthy[:50] + dead[:50])
            batch_healthy_misses += sum(batch.get(key) != expected[key] for key in healthy[:50])
        except Exception as exc:  # the promise under test: never reached
            exceptions.append(exc)
        if killed_at is not None and dead_hits == len(dead):
            return (exceptions, healthy_reads, healthy_misses, batch_healthy_misses,
                    time.monotonic() - killed_at)
