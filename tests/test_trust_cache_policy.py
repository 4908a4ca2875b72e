"""Per-call lifetimes are validated on every backend (issue 12.10): a NaN or infinite stale_ttl is
refused like a bad ttl, instead of living forever in memory or failing inside SQLite or Redis."""

from __future__ import annotations

import math

import pytest

from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType

BAD = [math.nan, math.inf, -math.inf, -1.0, "10", True]


@pytest.fixture(params=["memory", "disk", "hybrid"])
def cache(request, tmp_path):
    made = Cache(CacheConfig(cache_type=CacheType(request.param), cache_dir=tmp_path))
    yield made
    made.close()


@pytest.mark.parametrize("stale_ttl", BAD, ids=repr)
def test_set_refuses_a_stale_ttl_that_is_not_a_finite_non_negative_number(cache, stale_ttl):
    with pytest.raises(ValueError, match="stale_ttl"):
        cache.set("k", "v", 10, stale_ttl=stale_ttl)
    with pytest.raises(ValueError, match="stale_ttl"):
        cache.set("k", "v", stale_ttl=stale_ttl)  # the default ttl takes the slow path
    with pytest.raises(ValueError, match="stale_ttl"):
        cache.set_many({"a": 1}, 10, stale_ttl=stale_ttl)
    assert cache.get("k") is None
    assert cache.get_stats()["errors"] == 0  # refused up front, never a backend failure


@pytest.mark.parametrize("stale_ttl", [math.nan, math.inf], ids=repr)
async def test_aset_refuses_a_nan_or_infinite_stale_ttl(cache, stale_ttl):
    with pytest.raises(ValueError, match="stale_ttl"):
        await cache.aset("k", "v", 10, stale_ttl=stale_ttl)
    with pytest.raises(ValueError, match="stale_ttl"):
        await cache.aset_many({"k": "v"}, 10, stale_ttl=stale_ttl)


def test_a_finite_stale_ttl_still_works(cache):
    assert cache.set("k", "v", 10, stale_ttl=5)
    entry = cache.get_entry("k")
    assert entry is not None and entry.stale_until - entry.expires_at == pytest.approx(5)
