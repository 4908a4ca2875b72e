"""invalidate(prefix=...) on every backend: exactly the matching keys go, and stay gone for readers."""

from __future__ import annotations

import time

import pytest

import test_cache_contract
from scancache.cache.backend import Record
from support import reads_after

make_cache = test_cache_contract.make_cache  # the fixture: one Cache factory per backend kind

KEYS = {"dns:a.com": 1, "dns:a.com:AAAA": 2, "dns:b.com": 3, "vuln:x": 4, "dns:a*": 5, "dns:a[b]": 6}


def test_only_keys_with_the_prefix_go(make_cache):
    cache = make_cache()
    cache.set_many(KEYS)
    assert cache.invalidate(prefix="dns:a.com") == 2
    assert cache.get_many(list(KEYS)) == {k: v for k, v in KEYS.items() if not k.startswith("dns:a.com")}
    assert cache.invalidate(prefix="dns:a*") == 1  # glob characters are literal
    assert cache.invalidate(prefix="dns:a[") == 1
    assert cache.get_many(list(KEYS)) == {"dns:b.com": 3, "vuln:x": 4}
    assert cache.invalidate(prefix="nothing:") == 0
    with pytest.raises(TypeError):
        cache.invalidate(prefix=b"dns")  # type: ignore[arg-type]


async def test_async_invalidate(make_cache):
    cache = make_cache()
    await cache.aset_many(KEYS)
    assert await cache.ainvalidate(prefix="dns:") == 5
    assert await cache.aget_many(list(KEYS)) == {"vuln:x": 4}


def test_readers_never_see_an_invalidated_entry_after_the_call_returns(make_cache):
    cache, other = make_cache(), make_cache()  # other: a second cache object on the same store
    keys = [f"scan:{i}" for i in range(200)]
    cache.set_many(dict.fromkeys(keys, "old"))
    if type(other.backend).__name__ != "MemoryBackend":  # (two memory caches share nothing)
        assert other.get_many(keys) == dict.fromkeys(keys, "old")  # warm other's memory tier, if any
    invalidated, late_reads = reads_after(cache.get, keys[::17], lambda: cache.invalidate(prefix="scan:"))
    assert invalidated == 200
    assert late_reads and all(value is None for value in late_reads)
    backend = other.backend
    if type(backend).__name__ == "MemoryBackend":
        return  # two memory caches share nothing
    if hasattr(backend, "listener"):  # another worker's memory follows within the invalidation delay
        deadline = time.monotonic() + 10
        while backend.front.size() and time.monotonic() < deadline:
            time.sleep(0.001)
    if not hasattr(backend, "front") or hasattr(backend, "listener"):  # hybrid over SQLite: until TTL
        assert other.get_many(keys) == {}


def test_a_fill_in_flight_is_barred_by_the_invalidation(make_cache):
    from scancache.cache.invalidation import _MARK

    cache = make_cache()
    backend = cache.backend
    if not hasattr(backend, "front"):
        pytest.skip("only a hybrid fills memory from a back store")
    listener = getattr(backend, "listener", None)
    seen = backend._epoch_of("k1")  # a read from the back store began before the invalidation...
    token = _MARK.set(listener.mark()) if listener is not None else None
    try:
        cache.invalidate(prefix="k")
        backend._fill("k1", Record("old", time.time() + 60, time.time() + 60, 4), seen)  # ...lands after
    finally:
        if token is not None:
            _MARK.reset(token)
    assert backend.front.peek("k1") is None


def test_decorated_function_invalidate_all(make_cache):
    cache = make_cache()
    calls = []

    @cache.cached(name="probe")
    def probe(x: int) -> int:
        calls.append(x)
        return x

    @cache.cached(name="probe2")
    def probe2(x: int) -> int:
        return x

    probe(1), probe(2), probe2(1)
    assert probe.invalidate_all() == 2
    probe(1), probe2(1)
    assert calls == [1, 2, 1] and probe2.cache_info().computes == 1
