"""set(..., tags=[...]) and invalidate_tag(tag) on every backend."""

from __future__ import annotations

import threading
import time

import pytest

import test_cache_contract
from scancache.cache.tags import register_tags
from support import reads_after

make_cache = test_cache_contract.make_cache  # the fixture: one Cache factory per backend kind


def test_invalidate_tag_removes_exactly_the_tagged_entries(make_cache):
    cache = make_cache()
    assert cache.set("dns:a", 1, tags=["host:a", "scan:1"])
    assert cache.set("dns:b", 2, tags=["host:b", "scan:1"])
    assert cache.set("vuln:a", 3, tags=["host:a"])
    assert cache.set("plain", 4)
    assert cache.invalidate_tag("host:a") == 2
    assert cache.get_many(["dns:a", "dns:b", "vuln:a", "plain"]) == {"dns:b": 2, "plain": 4}
    assert cache.invalidate_tag("scan:1") == 2  # names dns:a (already gone) and dns:b
    assert cache.get_many(["dns:b", "plain"]) == {"plain": 4}
    assert cache.invalidate_tag("never-used") == 0


def test_entries_tagged_after_an_invalidation_belong_to_the_next_one(make_cache):
    cache = make_cache()
    cache.set("k", "old", tags=["t"])
    cache.invalidate_tag("t")
    cache.set("k", "new", tags=["t"])
    assert cache.get("k") == "new"
    assert cache.invalidate_tag("t") == 1 and cache.get("k") is None


def test_a_set_overlapping_an_invalidation_is_registered_in_the_new_generation(make_cache):
    cache = make_cache()

    def store_after_an_invalidation() -> bool:
        cache.invalidate_tag("t")  # runs between the registration and the store
        return cache.set("k", "v")

    register_tags(cache, "k", ["t"], store_after_an_invalidation)
    assert cache.get("k") == "v"  # the set came after the invalidation: it stays...
    assert cache.invalidate_tag("t") == 1  # ...and the next invalidation still finds it
    assert cache.get("k") is None


def test_bad_tags_are_a_type_error(make_cache):
    cache = make_cache()
    for tags in ("abc", [""], [1], [b"x"]):
        with pytest.raises(TypeError):
            cache.set("k", 1, tags=tags)
    with pytest.raises(TypeError):
        cache.invalidate_tag("")
    assert cache.get("k") is None


async def test_async_tags(make_cache):
    cache = make_cache()
    assert await cache.aset("k", 1, tags=["t"])
    assert await cache.aset("j", 2)
    assert await cache.ainvalidate_tag("t") == 1
    assert await cache.aget_many(["k", "j"]) == {"j": 2}


def test_no_reader_sees_an_entry_of_an_invalidated_tag_after_the_call(make_cache):
    cache, other = make_cache(), make_cache()
    keys = [f"scan:{i}" for i in range(100)]
    for key in keys:
        cache.set(key, "old", tags=["scan"])
    shared = type(other.backend).__name__ != "MemoryBackend"
    if shared:
        assert other.get_many(keys) == dict.fromkeys(keys, "old")  # in other's memory tier, if any
    invalidated, late = reads_after(cache.get, keys[::9], lambda: cache.invalidate_tag("scan"))
    assert invalidated == 100
    assert late and all(value is None for value in late)
    backend = other.backend
    if hasattr(backend, "listener"):  # another worker's memory follows within the invalidation delay
        deadline = time.monotonic() + 10
        while backend.front.size() and time.monotonic() < deadline:
            time.sleep(0.001)
    if shared and (not hasattr(backend, "front") or hasattr(backend, "listener")):
        assert other.get_many(keys) == {}


def test_concurrent_tagged_writers_never_escape_a_later_invalidation(make_cache):
    cache = make_cache()
    stop = threading.Event()
    written: list[str] = []

    def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            key = f"w{n}-{i}"
            cache.set(key, i, tags=["batch"])
            written.append(key)
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(5):  # invalidations racing the writers
        cache.invalidate_tag("batch")
    stop.set()
    for thread in threads:
        thread.join(10)
    cache.invalidate_tag("batch")  # every set completed before this call: all must go
    assert written and cache.get_many(written) == {}
