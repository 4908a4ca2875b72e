"""Early refresh (XFetch) in get_or_set, aget_or_set and @cached, from the measured compute time."""

from __future__ import annotations

import math
import threading
import time

import pytest

from scancache.cache import refresh
from scancache.cache.core import Cache
from scancache.cache.refresh import COMPUTE_SUFFIX, LEASE_SUFFIX, _state
from scancache.config import CacheConfig, CacheType
from support import FakeClock

# With rand() fixed at 0.5, XFetch recomputes once now >= expires_at - delta * beta * ln(2).
LN2 = math.log(2)


@pytest.fixture
def fixed_draw(monkeypatch):
    monkeypatch.setattr(refresh.random, "random", lambda: 0.5)


def _counting_factory():
    calls = []

    def factory() -> int:
        calls.append(1)
        return len(calls)

    return factory, calls


def test_fresh_entry_is_recomputed_early_only_inside_the_xfetch_window(fixed_draw):
    clock = FakeClock(time.time())
    cache = Cache(CacheConfig(ttl_seconds=1000), clock=clock)
    factory, calls = _counting_factory()
    assert cache.get_or_set("k", factory, ttl=100) == 1
    _state(cache).remember("k", 10.0)  # as if the factory had taken 10 s
    window = 10.0 * LN2  # 6.93 s before expiry
    clock.advance(100 - window - 0.5)
    assert cache.get_or_set("k", factory, ttl=100) == 1 and len(calls) == 1
    clock.advance(1.0)
    assert cache.get_or_set("k", factory, ttl=100) == 2 and len(calls) == 2  # refreshed before expiry
    assert cache.get_entry("k").expires_at == pytest.approx(clock() + 100)


def test_beta_zero_turns_early_refresh_off_and_larger_beta_refreshes_earlier(fixed_draw):
    clock = FakeClock(time.time())
    cache = Cache(CacheConfig(ttl_seconds=1000), clock=clock)
    factory, _ = _counting_factory()
    cache.get_or_set("k", factory, ttl=100)
    _state(cache).remember("k", 10.0)
    clock.advance(99)
    assert cache.get_or_set("k", factory, ttl=100, early_refresh=0) == 1
    clock.advance(-20)  # 21 s before expiry: outside beta=1's window, inside beta=4's (27.7 s)
    assert cache.get_or_set("k", factory, ttl=100) == 1
    assert cache.get_or_set("k", factory, ttl=100, early_refresh=4) == 2


def test_a_failed_early_refresh_serves_the_still_fresh_value(fixed_draw):
    clock = FakeClock(time.time())
    cache = Cache(CacheConfig(ttl_seconds=1000), clock=clock)
    cache.get_or_set("k", lambda: "v1", ttl=100)
    _state(cache).remember("k", 10.0)
    clock.advance(99)

    def broken() -> str:
        raise RuntimeError("upstream down")

    assert cache.get_or_set("k", broken, ttl=100) == "v1"
    clock.advance(2)  # expired now: the failure is the caller's
    with pytest.raises(RuntimeError):
        cache.get_or_set("k", broken, ttl=100)


def test_a_worker_that_never_computed_the_key_uses_the_stored_compute_time(tmp_path, fixed_draw):
    clock = FakeClock(time.time())
    config = CacheConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path), ttl_seconds=1000)
    writer, reader = Cache(config, clock=clock), Cache(config, clock=clock)

    def slow() -> str:
        time.sleep(0.01)  # a measurable compute time (>= 1 ms gets a companion entry)
        return "v1"

    assert writer.get_or_set("k", slow, ttl=100) == "v1"
    stored, lease_until = reader.get("k" + COMPUTE_SUFFIX)
    assert 0.01 <= stored < 5 and lease_until == 0.0
    clock.advance(100 - stored * LN2 + 0.001)  # just inside the window
    assert reader.get_or_set("k", lambda: "v2", ttl=100) == "v2"
    assert _state(reader).compute_seconds["k"] < stored  # now its own measurement of the fast factory
    writer.close()
    reader.close()


def test_fast_factories_store_no_companion_entry(tmp_path):
    config = CacheConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path))
    with Cache(config) as cache:
        cache.get_or_set("k", lambda: 1)
        assert len(cache) == 1


async def test_aget_or_set_refreshes_early_too(fixed_draw):
    clock = FakeClock(time.time())
    cache = Cache(CacheConfig(ttl_seconds=1000), clock=clock)
    factory, _ = _counting_factory()
    assert await cache.aget_or_set("k", factory, ttl=100) == 1
    _state(cache).remember("k", 10.0)
    clock.advance(95)
    assert await cache.aget_or_set("k", factory, ttl=100) == 2


def test_decorated_functions_refresh_early_and_count_it(fixed_draw):
    clock = FakeClock(time.time())
    cache = Cache(CacheConfig(ttl_seconds=1000), clock=clock)
    calls = []

    @cache.cached(ttl=100, name="hot")
    def hot() -> int:
        calls.append(1)
        return len(calls)

    hot()
    _state(cache).remember(hot.key_for(), 10.0)
    clock.advance(95)
    assert hot() == 2
    assert hot.cache_info().early_refreshes == 1


def test_a_missing_worker_waits_for_another_workers_leased_computation(tmp_path):
    config = CacheConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path), ttl_seconds=1000)
    holder, waiter = Cache(config), Cache(config)
    holder.set("k" + LEASE_SUFFIX, "recompute lease", ttl=5.0)  # another worker is computing "k"
    computed = []

    def store_soon() -> None:
        time.sleep(0.1)
        holder.set("k", "theirs", ttl=100)

    threading.Thread(target=store_soon).start()
    assert waiter.get_or_set("k", lambda: computed.append(1) or "mine", ttl=100) == "theirs"
    assert computed == []
    holder.close()
    waiter.close()


def test_a_lease_that_runs_out_lets_the_waiter_compute(tmp_path):
    config = CacheConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path), ttl_seconds=1000)
    with Cache(config) as cache:
        cache.set("k" + LEASE_SUFFIX, "recompute lease", ttl=0.05)  # a worker that died mid-compute
        assert cache.get_or_set("k", lambda: "mine", ttl=100) == "mine"
        assert cache.get("k" + LEASE_SUFFIX) is None  # the lease is released once the value is stored


def test_a_worker_meeting_an_expired_key_still_knows_its_compute_time(tmp_path):
    clock = FakeClock()
    config = CacheConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path), ttl_seconds=1000)
    writer, reader = Cache(config, clock=clock), Cache(config, clock=clock)
    assert writer.get_or_set("k", lambda: time.sleep(0.01) or "v1", ttl=100) == "v1"
    clock.advance(150)  # expired; the reader never saw it fresh, but the companion outlives it
    leases: list[float] = []

    def factory() -> str:
        lease = reader.get_entry("k" + LEASE_SUFFIX)
        assert lease is not None
        leases.append(lease.expires_at - clock())
        return "v2"

    assert reader.get_or_set("k", factory, ttl=100) == "v2"
    assert leases == [pytest.approx(refresh.MIN_LEASE_SECONDS)]  # known compute time: not the 5 s
    writer.close()
    reader.close()
