"""Cache core against the libraries users would otherwise pick, measured in one run.

Prints nanoseconds per operation and ratios against the anchors (lower is better for scancache):
  sync memory hit   vs cachetools TTLCache under a Lock (target <= 1/3) and cachebox
  async memory hit  vs cashews mem:// (target <= 1/4) and aiocache SimpleMemoryCache
  disk hit / set    vs diskcache (targets: hit <= 1x, set <= 0.5x)
  redis hit         vs raw redis-py GET of the same bytes (target <= 1.15x; the two alternate per repeat)
  get_many(100)     round trips counted on the Redis server (target: 1)
  @cached hit       vs cachetools @cached (TTLCache + Lock) and cashews @cache (bench_cache_features.py)
  stampede          recomputes per expiry/refresh of one hot key read by 100 workers, XFetch off/on (aim: 1)
  invalidation      worker A's write -> worker B's first read of it, 1,000 writes (aim: p99 < 10 ms)
Run: python benchmarks/bench_cache.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench_cache_features import (  # beside this script
    bench_decorator,
    bench_invalidation,
    bench_stampede,
)
from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType

VALUE = {"ips": ["192.0.2.1", "2001:db8::1"], "ttl": 300, "name": "www.example.com"}
KEYS = [f"host-{i}.example.com" for i in range(1000)]


def per_op_ns(fn: Callable[[], Any], ops: int, repeats: int) -> float:
    """Median over repeats of the ns per operation of fn (which runs `ops` operations)."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / ops)
    return statistics.median(samples)


def paired_per_op_ns(fn_a: Callable[[], Any], fn_b: Callable[[], Any], ops: int, repeats: int
                     ) -> tuple[float, float, float]:
    """(median ns/op of fn_a, of fn_b, median of the per-repeat ratios a/b), the two run alternately.

    For anchors behind a network round trip (Redis): load on a shared machine drifts over seconds,
    and measuring one side completely before the other would put the drift into the ratio.
    """
    a_samples, b_samples = [], []
    for _ in range(repeats):
        for fn, samples in ((fn_a, a_samples), (fn_b, b_samples)):
            start = time.perf_counter_ns()
            fn()
            samples.append((time.perf_counter_ns() - start) / ops)
    ratios = [a / b for a, b in zip(a_samples, b_samples, strict=True)]
    return statistics.median(a_samples), statistics.median(b_samples), statistics.median(ratios)


def sync_get_loop(get: Callable[[str], Any], rounds: int) -> Callable[[], None]:
    keys = KEYS

    def run() -> None:
        for _ in range(rounds):
            for key in keys:
                get(key)

    return run


def async_get_loop(get: Callable[[str], Awaitable[Any]], rounds: int) -> Callable[[], None]:
    keys = KEYS

    async def body() -> None:
        for _ in range(rounds):
            for key in keys:
                await get(key)

    def run() -> None:
        asyncio.run(body())

    return run


def bench_memory(rounds: int, repeats: int) -> dict[str, float]:
    import cachebox
    import cachetools

    out: dict[str, float] = {}
    cache = Cache(CacheConfig(max_size=10_000))
    for key in KEYS:
        cache.set(key, VALUE)
    out["scancache memory get"] = per_op_ns(sync_get_loop(cache.get, rounds), rounds * len(KEYS), repeats)

    ttl = cachetools.TTLCache(maxsize=10_000, ttl=3600)
    lock = threading.Lock()
    for key in KEYS:
        ttl[key] = VALUE

    def locked_get(key: str) -> Any:
        with lock:
            return ttl.get(key)

    out["cachetools TTLCache+Lock get"] = per_op_ns(sync_get_loop(locked_get, rounds),
                                                    rounds * len(KEYS), repeats)
    box = cachebox.TTLCache(10_000, 3600)
    for key in KEYS:
        box[key] = VALUE
    out["cachebox TTLCache get"] = per_op_ns(sync_get_loop(box.get, rounds), rounds * len(KEYS), repeats)

    out["scancache memory set"] = per_op_ns(lambda: [cache.set(k, VALUE) for k in KEYS], len(KEYS), repeats)

    def ttl_set() -> None:
        for key in KEYS:
            with lock:
                ttl[key] = VALUE

    out["cachetools TTLCache+Lock set"] = per_op_ns(ttl_set, len(KEYS), repeats)
    return out


def bench_async_memory(rounds: int, repeats: int) -> dict[str, float]:
    out: dict[str, float] = {}
    cache = Cache(CacheConfig(max_size=10_000))
    for key in KEYS:
        cache.set(key, VALUE)
    out["scancache memory aget"] = per_op_ns(async_get_loop(cache.aget, rounds), rounds * len(KEYS),
                                             repeats)
    try:
        from cashews import Cache as CashewsCache

        cashews = CashewsCache()
        cashews.setup("mem://?size=10000")

        async def fill() -> None:
            for key in KEYS:
                await cashews.set(key, VALUE, expire=3600)

        asyncio.run(fill())
        out["cashews mem get"] = per_op_ns(async_get_loop(cashews.get, rounds), rounds * len(KEYS), repeats)
    except Exception as exc:  # an anchor that fails to run is reported, not fatal
        print(f"cashews skipped: {exc}", file=sys.stderr)
    try:
        from aiocache import SimpleMemoryCache

        aio = SimpleMemoryCache()

        async def fill_aio() -> None:
            for key in KEYS:
                await aio.set(key, VALUE, ttl=3600)

        asyncio.run(fill_aio())
        out["aiocache memory get"] = per_op_ns(async_get_loop(aio.get, rounds), rounds * len(KEYS), repeats)
    except Exception as exc:
        print(f"aiocache skipped: {exc}", file=sys.stderr)
    return out


def bench_disk(rounds: int, repeats: int) -> dict[str, float]:
    import diskcache

    out: dict[str, float] = {}
    root = Path(tempfile.mkdtemp(prefix="scancache-bench-"))
    try:
        cache = Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=str(root / "sc"),
                                  max_size=10_000))
        dc = diskcache.Cache(str(root / "dc"))
        out["scancache disk set"] = per_op_ns(lambda: [cache.set(k, VALUE) for k in KEYS], len(KEYS),
                                              repeats)
        out["diskcache set"] = per_op_ns(lambda: [dc.set(k, VALUE, expire=3600) for k in KEYS], len(KEYS),
                                         repeats)
        out["scancache disk get"] = per_op_ns(sync_get_loop(cache.get, rounds), rounds * len(KEYS), repeats)
        out["diskcache get"] = per_op_ns(sync_get_loop(dc.get, rounds), rounds * len(KEYS), repeats)
        hybrid = Cache(CacheConfig(cache_type=CacheType.HYBRID, cache_dir=str(root / "sc"), max_size=10_000))
        out["scancache hybrid(disk) get, memory tier"] = per_op_ns(
            sync_get_loop(hybrid.get, rounds), rounds * len(KEYS), repeats)
        front = hybrid.backend.front  # type: ignore[attr-defined]

        def from_disk() -> None:  # each read misses memory: SQLite, decode, then the fill barrier
            for key in KEYS:
                front.delete(key)
                hybrid.get(key)

        out["scancache hybrid(disk) get, from disk + fill"] = per_op_ns(from_disk, len(KEYS), repeats)
        hybrid.close()
        cache.close()
        dc.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def bench_redis(rounds: int, repeats: int) -> dict[str, float]:
    import redis

    from scancache.testing.redis_server import RedisServer

    out: dict[str, float] = {}
    with RedisServer() as server:
        cache = Cache(CacheConfig(cache_type=CacheType.REDIS, redis_url=server.url))
        for key in KEYS:
            cache.set(key, VALUE)
        raw = redis.Redis.from_url(server.url)
        blob = cache.codec.encode("x", VALUE, time.time() + 3600, time.time() + 3600)
        for key in KEYS:
            raw.set("raw:" + key, blob)
        raw_keys = ["raw:" + k for k in KEYS]
        mine, anchor, ratio = paired_per_op_ns(
            sync_get_loop(cache.get, rounds), lambda: [raw.get(k) for _ in range(rounds) for k in raw_keys],
            rounds * len(KEYS), repeats * 3)
        out["scancache redis get"], out["redis-py GET"] = mine, anchor
        out["redis get paired ratio"] = ratio
        raw.config_resetstat()
        cache.get_many(KEYS[:100])
        info = raw.info("commandstats")
        out["get_many(100) round trips"] = float(sum(v["calls"] for k, v in info.items()
                                                     if k in ("cmdstat_mget", "cmdstat_get")))
        cache.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    rounds, repeats = (3, 3) if args.quick else (30, 7)
    results: dict[str, float] = {}
    sections: list[tuple[str, Callable[[int, int], dict[str, float]]]] = [
        ("memory", bench_memory), ("async memory", bench_async_memory)]
    if shutil.which("redis-server"):
        sections.append(("redis", bench_redis))
    sections.insert(2, ("disk", bench_disk))
    sections.insert(2, ("decorator", bench_decorator))
    if shutil.which("redis-server"):
        sections.append(("stampede", bench_stampede))
        sections.append(("invalidation", bench_invalidation))
    for name, section in sections:
        try:
            disk_rounds = max(1, rounds // 3) if name in ("disk", "redis") else rounds
            results.update(section(disk_rounds, repeats))
        except Exception as exc:
            print(f"{name} skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
    ratios = {}
    for mine, anchor, target in [
        ("scancache memory get", "cachetools TTLCache+Lock get", 1 / 3),
        ("scancache memory get", "cachebox TTLCache get", None),
        ("scancache memory aget", "cashews mem get", 1 / 4),
        ("scancache memory aget", "aiocache memory get", None),
        ("scancache disk get", "diskcache get", 1.0),
        ("scancache disk set", "diskcache set", 0.5),
        ("scancache redis get", "redis-py GET", 1.15),
        ("scancache @cached hit", "cachetools @cached+Lock hit", None),
        ("scancache async @cached hit", "cashews @cache hit", None),
    ]:
        if mine in results and anchor in results:
            # Redis: the median of side-by-side ratios (see paired_per_op_ns), not of separate runs.
            paired = "redis get paired ratio" if "redis" in mine else None
            ratio = results[paired] if paired in results else results[mine] / results[anchor]
            ratios[f"{mine} / {anchor}"] = {"ratio": round(ratio, 3), "target": target,
                                            "met": None if target is None else ratio <= target}
    if args.json:
        print(json.dumps({"ns_per_op": results, "ratios": ratios}, indent=2))
        return 0
    print(f"{'operation':48} {'ns/op':>10}")
    for name, value in results.items():
        if "ratio" in name:
            continue
        counted = ("round trips", "recomputes", "refreshes", " us ")
        unit = "" if any(word in name for word in counted) else f"{value:10.0f}"
        print(f"{name:48} {unit or round(value, 1):>10}")
    print()
    print(f"{'ratio (scancache / anchor)':70} {'ratio':>7} {'target':>8}  met")
    for name, row in ratios.items():
        target = "-" if row["target"] is None else f"<={row['target']:.2f}"
        met = "-" if row["met"] is None else ("yes" if row["met"] else "NO")
        print(f"{name:70} {row['ratio']:7.3f} {target:>8}  {met}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
