"""Where a memory hit's time goes: cachebox's TTLCache.get (Rust) against a ladder of Python read paths,
each adding one thing scancache's Cache.get does, up to Cache.get itself.

Each rung is timed over the same 1,000 warm keys, the rungs interleaved within every repeat (so machine
drift hits all of them alike); the table prints the fastest repeat's ns per get (on a shared machine the
minimum is the cost itself, the rest is other load) and the ratio to cachebox.
Run: python benchmarks/bench_memory_hit.py [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from scancache.cache.core import Cache
from scancache.cache_config import CacheConfig

VALUE = {"ips": ["192.0.2.1", "2001:db8::1"], "ttl": 300, "name": "www.example.com"}
KEYS = [f"host-{i}.example.com" for i in range(1000)]


class _Stats:
    __slots__ = ("hits", "misses")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0


def ladder() -> list[tuple[str, Callable[[str], Any]]]:
    """(what the rung adds, its get) from the C floor up to Cache.get."""
    import cachebox

    box = cachebox.TTLCache(10_000, 3600)
    plain: dict[str, Any] = {}
    ordered: OrderedDict[str, Any] = OrderedDict()
    expires = time.time() + 3600
    for key in KEYS:
        box[key] = VALUE
        plain[key] = (VALUE, expires)
        ordered[key] = (VALUE, expires)
    stats = _Stats()
    clock = time.time
    index_get, touch = ordered.get, ordered.move_to_end

    def py_dict(key: str) -> Any:  # one Python frame around a dict lookup
        record = plain.get(key)
        return None if record is None else record[0]

    def py_ttl(key: str) -> Any:  # + the expiry check (a clock call)
        record = plain.get(key)
        if record is not None and clock() < record[1]:
            return record[0]
        return None

    def py_ttl_lru(key: str) -> Any:  # + LRU order (move_to_end)
        record = index_get(key)
        if record is not None and clock() < record[1]:
            touch(key)
            return record[0]
        return None

    def py_ttl_lru_stats(key: str) -> Any:  # + a hit counter
        record = index_get(key)
        if record is not None and clock() < record[1]:
            touch(key)
            stats.hits += 1
            return record[0]
        stats.misses += 1
        return None

    countdown = 16

    def closure_sampled(key: str, default: Any = None) -> Any:  # Cache.get's body, state in cells
        nonlocal countdown
        countdown -= 1
        if countdown > 0:
            record = index_get(key)
            if record is not None and clock() < record[1]:
                try:
                    touch(key)
                except KeyError:
                    pass
                stats.hits += 1
                return record[0]
        else:
            countdown = 16
        return py_ttl_lru_stats(key)  # the slow path: a sampled or missing read

    cache = Cache(CacheConfig(max_size=10_000))
    for key in KEYS:
        cache.set(key, VALUE)
    return [
        ("cachebox TTLCache.get (Rust)", box.get),
        ("dict.get, no Python frame", plain.get),
        ("+ one Python function frame", py_dict),
        ("+ expiry check (clock call)", py_ttl),
        ("+ LRU move_to_end", py_ttl_lru),
        ("+ hit/miss counters", py_ttl_lru_stats),
        ("+ default argument, sampling countdown (a closure)", closure_sampled),
        ("scancache Cache.get (+ method call, latency sampling)", cache.get),
    ]


def run(rounds: int, repeats: int) -> dict[str, float]:
    rungs = ladder()
    samples: dict[str, list[float]] = {name: [] for name, _ in rungs}
    for _ in range(repeats):
        for name, get in rungs:
            start = time.perf_counter_ns()
            for _ in range(rounds):
                for key in KEYS:
                    get(key)
            samples[name].append((time.perf_counter_ns() - start) / (rounds * len(KEYS)))
    return {name: min(values) for name, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results = run(*((2, 10) if args.quick else (4, 80)))
    floor = results["cachebox TTLCache.get (Rust)"]
    print(f"{'read path':58} {'ns/get':>8} {'x cachebox':>11}")
    for name, ns in results.items():
        print(f"{name:58} {ns:8.0f} {ns / floor:11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
