"""Sections of bench_cache.py for the core's features: @cached against cachetools' @cached and cashews'
@cache, the stampede count (recomputes per expiry or early refresh with 100 concurrent callers), and the
invalidation delay between two hybrid workers (write in A -> B's first read of the new value).

Run through bench_cache.py (`python benchmarks/bench_cache.py`), or alone:
    python benchmarks/bench_cache_features.py [--quick]
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType

VALUE = {"ips": ["192.0.2.1", "2001:db8::1"], "ttl": 300, "name": "www.example.com"}
NAMES = [f"host-{i}.example.com" for i in range(1000)]


def _per_call_ns(run: Callable[[], None], calls: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        run()
        samples.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(samples)


def bench_decorator(rounds: int, repeats: int) -> dict[str, float]:
    """ns per hit of a decorated one-argument function, sync and async, against the anchors."""
    import cachetools

    out: dict[str, float] = {}
    cache = Cache(CacheConfig(max_size=10_000))

    @cache.cached(ttl=3600, name="resolve")
    def resolve(name: str) -> dict:
        return VALUE

    @cachetools.cached(cachetools.TTLCache(maxsize=10_000, ttl=3600), lock=threading.Lock())
    def resolve_ct(name: str) -> dict:
        return VALUE

    for fn, label in ((resolve, "scancache @cached hit"), (resolve_ct, "cachetools @cached+Lock hit")):
        for name in NAMES:
            fn(name)

        def run(fn: Callable[[str], Any] = fn) -> None:
            for _ in range(rounds):
                for name in NAMES:
                    fn(name)

        out[label] = _per_call_ns(run, rounds * len(NAMES), repeats)

    @cache.cached(ttl=3600, name="aresolve")
    async def aresolve(name: str) -> dict:
        return VALUE

    fns: list[tuple[Callable[[str], Any], str]] = [(aresolve, "scancache async @cached hit")]
    try:
        from cashews import Cache as CashewsCache

        cashews = CashewsCache()
        cashews.setup("mem://?size=10000")

        @cashews(ttl="1h")
        async def aresolve_cashews(name: str) -> dict:
            return VALUE

        fns.append((aresolve_cashews, "cashews @cache hit"))
    except Exception as exc:  # an anchor that fails to set up is reported, not fatal
        print(f"cashews decorator skipped: {exc}")
    for afn, label in fns:
        async def body(afn: Callable[[str], Any] = afn) -> None:
            for _ in range(rounds):
                for name in NAMES:
                    await afn(name)

        asyncio.run(body())  # fill

        def run_async(body: Callable[[], Any] = body) -> None:
            asyncio.run(body())

        out[label] = _per_call_ns(run_async, rounds * len(NAMES), repeats)
    return out


def _events(starts: list[float], gap: float) -> int:
    """How many bursts the compute start times form (a burst: starts less than gap apart)."""
    starts = sorted(starts)
    return sum(1 for i, t in enumerate(starts) if i == 0 or t - starts[i - 1] > gap)


def stampede(redis_url: str, beta: float, callers: int = 100, seconds: float = 3.0, ttl: float = 0.5,
             compute_seconds: float = 0.02) -> tuple[float, int, int]:
    """(recomputes per refresh, total recomputes, refreshes): `callers` workers, each its own Cache
    over one Redis (so no in-process single-flight joins them), reading one hot key for `seconds`.

    A refresh is a burst of computes starting less than 5 compute times apart: the stampede at one
    expiry (or one early refresh), whose callers all recompute the same value. With XFetch a hot key
    is refreshed early, so there are more refreshes than expiries; each should be one compute."""
    starts: list[float] = []
    lock = threading.Lock()
    def factory() -> str:
        with lock:
            starts.append(time.monotonic())
        time.sleep(compute_seconds)  # the upstream query
        return "answer"

    config = CacheConfig(cache_type=CacheType.REDIS, redis_url=redis_url, namespace=f"xfetch-{beta}")
    caches = [Cache(config) for _ in range(callers)]
    caches[0].clear()
    caches[0].get_or_set("hot", factory, ttl=ttl)  # warm: the cold start is not an expiry
    starts.clear()

    def worker(cache: Cache) -> None:
        while time.monotonic() < stop:
            cache.get_or_set("hot", factory, ttl=ttl, early_refresh=beta)
            time.sleep(0.002)

    stop = time.monotonic() + seconds
    threads = [threading.Thread(target=worker, args=(c,)) for c in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for cache in caches:
        cache.close()
    events = _events(starts, gap=5 * compute_seconds)
    return len(starts) / max(events, 1), len(starts), events


def bench_stampede(rounds: int, repeats: int) -> dict[str, float]:
    """Recomputes per expiry or early refresh of one hot key read by 100 workers, without and with
    XFetch (the recompute lease works in both)."""
    from scancache.testing.redis_server import RedisServer

    out: dict[str, float] = {}
    seconds = 1.5 if rounds < 10 else 5.0
    with RedisServer() as server:
        for beta, label in ((0.0, "XFetch off"), (1.0, "XFetch beta=1")):
            per_refresh, total, refreshes = stampede(server.url, beta, seconds=seconds)
            out[f"recomputes per refresh, 100 workers, {label}"] = per_refresh
            out[f"recomputes in {seconds:g} s, 100 workers, {label}"] = float(total)
            out[f"refreshes in {seconds:g} s, 100 workers, {label}"] = float(refreshes)
    return out


_READER = """
import sys, time
from scancache.cache.core import Cache
from scancache.cache_config import CacheConfig, CacheType
url = sys.argv[1]
cache = Cache(CacheConfig(cache_type=CacheType.HYBRID, redis_url=url, ttl_seconds=3600))
assert cache.backend.listener.connected.wait(10)
cache.set("warm", [0, 0.0])
start = time.perf_counter_ns()
for _ in range(100_000):
    cache.get("warm")
print((time.perf_counter_ns() - start) / 100_000, flush=True)  # a hit in B's memory tier
for line in sys.stdin:  # "I": spin on get("k") until it returns write I, print the delay since it began
    want = int(line)
    value = cache.get("k")
    while value is None or value[0] != want:
        value = cache.get("k")
    print(time.monotonic() - value[1], flush=True)
"""


def bench_invalidation(rounds: int, repeats: int) -> dict[str, float]:
    """Worker A writes a key 1,000 times; worker B (another process, hybrid, spinning on get) reports
    how long after each write began it first read the new value. Also B's memory hit."""
    import subprocess
    import sys

    from scancache.testing.redis_server import RedisServer

    writes = 100 if rounds < 10 else 1000
    out: dict[str, float] = {}
    with RedisServer() as server:
        writer = Cache(CacheConfig(cache_type=CacheType.HYBRID, redis_url=server.url, ttl_seconds=3600))
        reader = subprocess.Popen([sys.executable, "-c", _READER, server.url], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        assert reader.stdin is not None and reader.stdout is not None
        try:
            out["hybrid hit in worker B (tracking on)"] = float(reader.stdout.readline())
            delays = []
            for i in range(writes):
                writer.set("k", [i, time.monotonic()])
                reader.stdin.write(f"{i}\n")
                reader.stdin.flush()
                delays.append(float(reader.stdout.readline()) * 1e6)
        finally:
            reader.stdin.close()
            reader.wait(30)
            writer.close()
    delays.sort()
    out[f"write -> other worker's new read, median us ({writes} writes)"] = statistics.median(delays)
    out[f"write -> other worker's new read, p99 us ({writes} writes)"] = delays[int(len(delays) * 0.99) - 1]
    plain = Cache(CacheConfig(max_size=10_000))
    plain.set("warm", [0, 0.0])
    out["memory hit, same value (reference)"] = _per_call_ns(
        lambda: [plain.get("warm") for _ in range(100_000)], 100_000, 3)
    return out


if __name__ == "__main__":
    import argparse
    import shutil

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, repeats = (3, 3) if args.quick else (30, 7)
    results = bench_decorator(rounds, repeats)
    if shutil.which("redis-server"):
        results.update(bench_stampede(rounds, repeats))
        results.update(bench_invalidation(rounds, repeats))
    for name, value in results.items():
        print(f"{name:55} {value:10.1f}")
