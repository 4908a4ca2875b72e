"""@cache.cached: sync and async functions and methods, single-flight, invalidation, serving stale."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from scancache.cache.core import Cache
from scancache.cache.refresh import _state
from scancache.config import CacheConfig, CacheType
from support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def cache(clock) -> Cache:
    return Cache(CacheConfig(ttl_seconds=100), clock=clock)


def test_sync_function_is_computed_once_per_arguments(cache):
    calls: list[Any] = []

    @cache.cached(ttl=10, name="square")
    def square(x: int, offset: int = 0) -> int:
        calls.append(x)
        return x * x + offset

    assert square(3) == 9
    assert square(3) == 9 and square(x=3) == 9 and square(3, 0) == 9 and square(3, offset=0) == 9
    assert square(4) == 16
    assert calls == [3, 4]
    info = square.cache_info()
    assert (info.hits, info.misses, info.computes) == (4, 2, 2)
    assert square.__name__ == "square" and square.__wrapped__ is not None


def test_entries_expire_with_ttl(cache, clock):
    calls = 0

    @cache.cached(ttl=10, name="counter")
    def counter() -> int:
        nonlocal calls
        calls += 1
        return calls

    assert counter() == 1
    clock.advance(9)
    assert counter() == 1
    clock.advance(2)
    assert counter() == 2


def test_unsupported_argument_is_a_type_error_before_the_function_runs(cache):
    ran = []

    @cache.cached(name="f")
    def f(target: Any) -> None:
        ran.append(target)

    with pytest.raises(TypeError, match="cannot be part of a cache key"):
        f(threading.Lock())
    assert ran == []


def test_exceptions_reach_the_caller_and_are_not_cached(cache):
    attempts = 0

    @cache.cached(name="flaky")
    def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("upstream down")
        return "ok"

    with pytest.raises(RuntimeError, match="upstream down"):
        flaky()
    assert flaky() == "ok" and attempts == 2


def test_invalidate_removes_one_call_result(cache):
    calls = []

    @cache.cached(name="g")
    def g(x: str) -> str:
        calls.append(x)
        return x.upper()

    g("a"), g("b")
    assert g.invalidate("a") is True
    assert g.invalidate("a") is False
    g("a"), g("b")
    assert calls == ["a", "b", "a"]


def test_template_key_is_readable_in_the_cache(cache):
    @cache.cached(key="whois:{domain}")
    def whois(domain: str, verbose: bool = False) -> dict:
        return {"domain": domain}

    whois("example.com")
    assert cache.get("whois:example.com") == {"domain": "example.com"}
    assert whois.key_for("a:b") == "whois:a%3Ab"


def test_threads_share_one_computation(cache):
    started, release = threading.Event(), threading.Event()
    calls = 0

    @cache.cached(name="slow")
    def slow(x: int) -> int:
        nonlocal calls
        calls += 1
        started.set()
        release.wait(10)
        return x

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(slow(7))) for _ in range(16)]
    threads[0].start()
    assert started.wait(10)
    for thread in threads[1:]:
        thread.start()
    # Every other thread must be waiting on the first one's flight before it is released.
    deadline = time.monotonic() + 10
    while cache._thread_flights.joined < 15 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == [7] * 16 and calls == 1


async def test_async_function_tasks_share_one_computation(cache):
    calls = 0
    gate = asyncio.Event()

    @cache.cached(ttl=30, name="fetch")
    async def fetch(url: str) -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "body of " + url

    tasks = [asyncio.create_task(fetch("http://x")) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*tasks) == ["body of http://x"] * 50
    assert calls == 1
    assert await fetch.ainvalidate("http://x") is True
    assert await fetch("http://x") == "body of http://x" and calls == 2


class Resolver:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.calls = 0

    def __cache_key__(self) -> str:
        return self.upstream


class Plain:
    calls = 0


def test_methods_key_on_the_class_and_the_instances_cache_key(cache):
    class Lookup(Resolver):
        @cache.cached(name="Lookup.resolve")
        def resolve(self, name: str) -> str:
            self.calls += 1
            return f"{name}@{self.upstream}"

    a, a2, b = Lookup("10.0.0.1"), Lookup("10.0.0.1"), Lookup("10.0.0.2")
    assert a.resolve("x") == "x@10.0.0.1"
    assert a2.resolve("x") == "x@10.0.0.1" and a2.calls == 0  # same upstream: shared entry
    assert b.resolve("x") == "x@10.0.0.2" and b.calls == 1  # another upstream: its own entry
    assert a.resolve.invalidate("x") is True
    assert a2.resolve("x") == "x@10.0.0.1" and a2.calls == 1
    assert a.resolve.cache_info().computes == 3


def test_instances_without_cache_key_share_entries_and_classmethods_work(cache):
    class Counter(Plain):
        @cache.cached(name="Counter.value")
        def value(self, x: int) -> int:
            type(self).calls += 1
            return x

        @classmethod
        @cache.cached(name="Counter.build")
        def build(cls, x: int) -> str:
            return f"{cls.__name__}:{x}"

    assert Counter().value(1) == 1 and Counter().value(1) == 1 and Counter.calls == 1
    assert Counter.build(2) == "Counter:2" and Counter.build(2) == "Counter:2"


def test_stale_result_is_served_at_once_and_refreshed_in_the_background(cache, clock):
    version = 0
    refreshed = threading.Event()

    @cache.cached(ttl=10, stale_ttl=60, name="feed")
    def feed() -> int:
        nonlocal version
        version += 1
        if version > 1:
            refreshed.set()
        return version

    assert feed() == 1
    clock.advance(11)  # stale, inside the stale window
    assert feed() == 1  # served stale, no waiting
    assert refreshed.wait(10)
    deadline = time.monotonic() + 10
    while cache.get(feed.key_for()) != 2 and time.monotonic() < deadline:
        time.sleep(0.001)  # the background thread stores after the function returns
    assert feed() == 2
    info = feed.cache_info()
    assert info.stale_hits == 1 and info.computes == 2
    clock.advance(100)  # past the stale window: a plain miss
    assert feed() == 3


async def test_async_stale_refresh_runs_once_per_key(cache, clock):
    calls = 0

    @cache.cached(ttl=10, stale_ttl=60, name="afeed")
    async def afeed() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return calls

    assert await afeed() == 1
    clock.advance(11)
    assert await asyncio.gather(*(afeed() for _ in range(20))) == [1] * 20
    await asyncio.gather(*_state(cache).tasks)
    assert calls == 2 and await afeed() == 2


def test_a_failed_background_refresh_keeps_the_stale_value(cache, clock, caplog):
    calls = 0

    @cache.cached(ttl=10, stale_ttl=60, name="breaks")
    def breaks() -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RuntimeError("boom")
        return 1

    breaks()
    clock.advance(11)
    assert breaks() == 1
    deadline = time.monotonic() + 10
    while breaks.cache_info().refresh_errors == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert breaks.cache_info().refresh_errors == 1
    assert breaks() == 1


def test_decorator_over_a_shared_backend_reuses_another_cache_objects_result(tmp_path):
    config = CacheConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path))
    one, two = Cache(config), Cache(config)
    calls = []

    def make(cache: Cache) -> Any:
        @cache.cached(name="shared")
        def shared(x: int) -> list[int]:
            calls.append(x)
            return [x]
        return shared

    assert make(one)(5) == [5] and make(two)(5) == [5]
    assert calls == [5]
    one.close()
    two.close()
