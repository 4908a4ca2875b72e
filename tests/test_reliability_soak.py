"""Soak: a steady 5,000 operations per second on the memory cache stays within its limits.

CI runs the short form (3 s); SCANCACHE_LONG=1 runs the full minute the reliability section quotes.
"""

from __future__ import annotations

import os
import random
import time

import psutil
import pytest

from scancache.cache.core import Cache
from scancache.config import CacheConfig

RATE = 5000  # operations per second
SECONDS = 60.0 if os.environ.get("SCANCACHE_LONG") else 3.0


@pytest.mark.slow
def test_memory_cache_holds_5000_ops_per_second_without_growing():
    limit_mb = 1
    cache = Cache(CacheConfig(max_size=50_000, max_memory_mb=limit_mb, ttl_seconds=30))
    rng = random.Random(7)
    process = psutil.Process()
    payload = "x" * 200
    ops = 0
    peak_bytes = 0
    rss_start = process.memory_info().rss
    rss_samples = []
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < SECONDS:
        due = int(elapsed * RATE) - ops  # pace to the target rate: run what is due, then yield
        if due <= 0:
            time.sleep(0.001)
            continue
        for _ in range(due):
            key = f"host-{rng.randrange(1_000_000)}"
            if rng.random() < 0.5:
                cache.set(key, {"ips": [payload], "n": ops})
            else:
                cache.get(key)
            ops += 1
        peak_bytes = max(peak_bytes, cache.backend.size_bytes())
        if ops % 5000 < due:
            rss_samples.append(process.memory_info().rss)
    achieved = ops / (time.monotonic() - start)
    stats = cache.get_stats()
    assert achieved >= RATE * 0.95, f"only {achieved:.0f} ops/s"
    assert peak_bytes <= limit_mb * 1024 * 1024
    assert stats["evictions"] > 0 and stats["errors"] == 0
    # The process may grow by the cache's budget plus allocator slack, not with the number of operations.
    growth_mb = (max(rss_samples, default=rss_start) - rss_start) / 1024 / 1024
    assert growth_mb < limit_mb * 8 + 16, f"RSS grew {growth_mb:.1f} MB"
