"""The recompute lease: Backend.add (atomic set-if-absent) on every backend, and get-or-compute using
it so that one caller of all threads, tasks and processes recomputes an expired key."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from scancache.cache.core import Cache
from scancache.cache.refresh import COMPUTE_SUFFIX, LEASE_SUFFIX
from scancache.config import CacheConfig, CacheType
from scancache.testing.redis_server import find_redis_server
from support import FakeClock

KINDS = ["memory", "disk", "redis", "hybrid-disk", "hybrid-redis", "cluster"]
SHARED = [kind for kind in KINDS if kind != "memory"]  # stores that several processes share
_TYPES = {"memory": "memory", "disk": "disk", "redis": "redis", "hybrid-disk": "hybrid",
          "hybrid-redis": "hybrid", "cluster": "redis"}


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    """A three-node Redis Cluster for this module."""
    if find_redis_server() is None:
        pytest.skip("redis-server binary not found on PATH")
    from scancache.testing.redis_cluster import RedisClusterServer

    try:
        server = RedisClusterServer(3).start()
    except Exception as exc:  # e.g. no free port pairs on this machine
        pytest.skip(f"cannot form a local Redis Cluster: {exc}")
    try:
        yield server.url
    finally:
        server.close()


def _settings(kind: str, request: pytest.FixtureRequest, tmp_path) -> dict[str, object]:
    """CacheConfig keywords (JSON-able, for worker processes too) of one backend kind."""
    settings: dict[str, object] = {"cache_type": _TYPES[kind], "ttl_seconds": 100,
                                   "redis_timeout_seconds": 5.0}
    if kind in ("disk", "hybrid-disk"):
        settings["cache_dir"] = str(tmp_path)
    if kind in ("redis", "hybrid-redis"):
        settings["redis_url"] = request.getfixturevalue("redis_url")
    if kind == "cluster":
        settings["redis_url"] = request.getfixturevalue("cluster_url")
        settings["namespace"] = f"lease-{request.node.name}"  # the cluster is shared by the module
    return settings


def _config(settings: dict[str, object]) -> CacheConfig:
    return CacheConfig(**{**settings, "cache_type": CacheType(settings["cache_type"])})  # type: ignore[arg-type]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(kind: str, request: pytest.FixtureRequest, tmp_path) -> dict[str, object]:
    return _settings(kind, request, tmp_path)


@pytest.fixture
def make_cache(settings: dict[str, object]) -> Iterator[Callable[..., Cache]]:
    """Caches of one kind over one store (memory: each its own), one clock started at the real time."""
    clock = FakeClock(time.time())
    made: list[Cache] = []

    def factory() -> Cache:
        cache = Cache(_config(settings), clock=clock)
        cache.clock_control = clock  # type: ignore[attr-defined]
        made.append(cache)
        return cache

    yield factory
    for cache in made:
        cache.clear()
        cache.close()


def _add(cache: Cache, key: str, value: object, ttl: float) -> bool:
    made = cache._make(key, value, ttl, 0.0)
    assert made is not None
    return bool(cache.backend.add(key, made[0], made[1], cache.clock()))


async def _aadd(cache: Cache, key: str, value: object, ttl: float) -> bool:
    made = cache._make(key, value, ttl, 0.0)
    assert made is not None
    return bool(await cache.backend.aadd(key, made[0], made[1], cache.clock()))


def _gone(cache: Cache, key: str) -> None:
    """Wait until the store no longer holds key (Redis expires it on its own clock)."""
    deadline = time.monotonic() + 10
    backend = getattr(cache.backend, "back", cache.backend)
    while backend.get(key) is not None and time.monotonic() < deadline:
        time.sleep(0.01)


def test_add_stores_only_when_the_key_is_absent_or_dead(make_cache, kind):
    cache = make_cache()
    assert _add(cache, "k", "first", 0.3)
    assert not _add(cache, "k", "second", 0.3)  # a live entry stays as it was
    assert cache.get("k") == "first"
    cache.clock_control.advance(0.5)  # memory and SQLite: dead by the front's clock
    if "redis" in kind or kind == "cluster":
        _gone(cache, "k")  # Redis: gone at its PX
    assert _add(cache, "k", "third", 100)
    assert cache.get("k") == "third"
    assert cache.delete("k")
    assert _add(cache, "k", "fourth", 100)  # absent again


def test_delete_if_removes_only_what_this_add_stored(make_cache, kind):
    cache = make_cache()
    first = cache._make("lease", "holder one", 0.3, 0.0)
    assert first is not None and cache.backend.add("lease", *first, cache.clock())
    cache.clock_control.advance(0.5)  # the first holder outlived its lease...
    if "redis" in kind or kind == "cluster":
        _gone(cache, "lease")
    second = cache._make("lease", "holder two", 100, 0.0)
    assert second is not None and cache.backend.add("lease", *second, cache.clock())  # ...a second took it
    assert not cache.backend.delete_if("lease", *first)  # the first one's release leaves it alone
    assert cache.get("lease") == "holder two"
    assert cache.backend.delete_if("lease", *second)
    assert cache.get("lease") is None


async def test_adelete_if_is_delete_if(make_cache):
    cache = make_cache()
    made = cache._make("lease", "holder", 100, 0.0)
    other = cache._make("lease", "someone else", 100, 0.0)
    assert made is not None and other is not None
    assert await cache.backend.aadd("lease", *made, cache.clock())
    assert not await cache.backend.adelete_if("lease", *other)
    assert await cache.backend.adelete_if("lease", *made)
    assert await cache.aget("lease") is None


async def test_aadd_is_add(make_cache):
    cache = make_cache()
    assert await _aadd(cache, "k", "first", 100)
    assert not await _aadd(cache, "k", "second", 100)
    assert await cache.aget("k") == "first"


def test_of_concurrent_adds_exactly_one_wins(make_cache, kind):
    shared_one = make_cache()
    caches = [shared_one if kind == "memory" else make_cache() for _ in range(6)]
    for round_ in range(5):
        start = threading.Barrier(len(caches))
        won: list[bool] = []

        def race(cache: Cache, key: str = f"k{round_}", start: threading.Barrier = start,
                 won: list[bool] = won) -> None:
            start.wait(10)
            won.append(_add(cache, key, "mine", 100))

        threads = [threading.Thread(target=race, args=(cache,)) for cache in caches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert sorted(won) == [False] * (len(caches) - 1) + [True]


def test_a_hybrid_add_drops_the_older_memory_copy(make_cache, kind):
    if not kind.startswith("hybrid"):
        pytest.skip("only a hybrid has a memory tier in front of the store")
    cache = make_cache()
    cache.set("k", "old", ttl=0.2)
    assert cache.backend.front.peek("k") is not None
    cache.clock_control.advance(0.5)
    if kind == "hybrid-redis":
        _gone(cache, "k")
    assert _add(cache, "k", "new", 100)
    assert cache.backend.front.peek("k") is None and cache.get("k") == "new"


def test_threads_of_separate_caches_compute_an_expired_key_once(make_cache, kind):
    if kind == "memory":
        pytest.skip("separate memory caches share nothing")
    caches = [make_cache() for _ in range(8)]
    computed: list[int] = []
    start = threading.Barrier(len(caches))
    results: list[object] = []

    def factory() -> str:
        computed.append(1)
        time.sleep(0.05)  # long enough for every caller to miss meanwhile
        return "answer"

    def caller(cache: Cache) -> None:
        start.wait(10)
        results.append(cache.get_or_set("hot", factory, ttl=100))

    threads = [threading.Thread(target=caller, args=(cache,)) for cache in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == ["answer"] * len(caches)
    assert len(computed) == 1
    store = getattr(caches[0].backend, "back", caches[0].backend)  # (a hybrid's memory may hold a copy
    assert store.get("hot" + LEASE_SUFFIX) is None  # read while waiting) released once the value was stored


async def test_tasks_of_separate_caches_compute_an_expired_key_once(make_cache, kind):
    if kind == "memory":
        pytest.skip("separate memory caches share nothing")
    caches = [make_cache() for _ in range(4)]
    computed: list[int] = []

    async def factory() -> str:
        computed.append(1)
        await asyncio.sleep(0.05)
        return "answer"

    results = await asyncio.gather(*(cache.aget_or_set("hot", factory, ttl=100) for cache in caches))
    assert results == ["answer"] * len(caches) and len(computed) == 1


def test_an_early_refresh_is_taken_by_one_caller_the_others_serve_the_fresh_value(make_cache, kind,
                                                                                    monkeypatch):
    from scancache.cache import refresh

    monkeypatch.setattr(refresh.random, "random", lambda: 0.5)  # every caller draws the same
    caches = [make_cache()] * 2 if kind == "memory" else [make_cache() for _ in range(2)]
    for cache in caches:
        assert cache.get_or_set("k", lambda: "v1", ttl=100) == "v1"
        refresh._state(cache).remember("k", 10.0)  # a 10 s compute: the XFetch window is ~6.9 s
    caches[0].clock_control.advance(99)  # inside the window for both (one clock)
    holding, release = threading.Event(), threading.Event()

    def slow_refresh() -> str:
        holding.set()
        assert release.wait(10)
        return "v2"

    first = threading.Thread(target=lambda: caches[0].get_or_set("k", slow_refresh, ttl=100))
    first.start()
    assert holding.wait(10)
    # The other caller drew a refresh too, but the lease is held: it serves the still fresh value.
    assert caches[1].get_or_set("k", lambda: pytest.fail("a second refresh"), ttl=100) == "v1"
    release.set()
    first.join(10)
    if kind in ("memory", "disk", "redis", "cluster"):  # a hybrid's memory copy is fresh until its TTL
        assert caches[1].get("k") == "v2"


@pytest.mark.parametrize("kind", SHARED)
async def test_a_cancelled_holder_releases_its_lease(make_cache):
    cache, other = make_cache(), make_cache()
    started = asyncio.Event()

    async def forever() -> str:
        started.set()
        await asyncio.sleep(3600)
        return "never"

    holder = asyncio.create_task(cache.aget_or_set("k", forever, ttl=100))
    await asyncio.wait_for(started.wait(), 10)
    store = getattr(cache.backend, "back", cache.backend)
    assert store.get("k" + LEASE_SUFFIX) is not None  # held (for 5 s: the compute time is unknown)
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    assert store.get("k" + LEASE_SUFFIX) is None  # released: the next caller need not wait it out
    start = time.monotonic()
    assert await other.aget_or_set("k", lambda: "computed", ttl=100) == "computed"
    assert time.monotonic() - start < 2


def test_a_miss_racing_an_early_refresh_of_the_same_cache_waits_for_it_not_for_its_lease(tmp_path,
                                                                                        monkeypatch):
    """An early refresh holds the lease; the key expires; a miss of the same Cache leads its flight and
    waits for the lease holder's value. The early refresh must not join that flight (it would wait
    for a caller that waits for it)."""
    from scancache.cache import refresh

    monkeypatch.setattr(refresh.random, "random", lambda: 0.5)
    clock = FakeClock(time.time())
    cache = Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path), ttl_seconds=1000),
                  clock=clock)
    assert cache.get_or_set("k", lambda: "v1", ttl=100) == "v1"
    refresh._state(cache).remember("k", 0.05)
    clock.advance(100 - 0.01)  # inside the early window
    real_add = cache.backend.add
    miss_waits = threading.Event()
    results: list[object] = []

    def add_then_let_a_miss_in(*args: object) -> bool:
        taken = real_add(*args)
        if threading.current_thread() is threading.main_thread():  # the early refresh's lease
            clock.advance(0.1)  # the entry expires (its 0.25 s lease does not): the next caller misses
            threading.Thread(target=lambda: results.append(cache.get_or_set("k", lambda: "miss", ttl=100))
                             ).start()
            assert miss_waits.wait(10)
        else:
            miss_waits.set()  # the miss found the lease taken: it waits in its flight
        return taken

    monkeypatch.setattr(cache.backend, "add", add_then_let_a_miss_in)
    start = time.monotonic()
    assert cache.get_or_set("k", lambda: "early", ttl=100) == "early"
    deadline = time.monotonic() + 10
    while not results and time.monotonic() < deadline:
        time.sleep(0.01)
    assert results == ["early"] and time.monotonic() - start < 5
    cache.close()


async def test_a_key_that_would_be_another_keys_lease_or_companion_is_refused(make_cache):
    cache = make_cache()
    for planted in ("user:bob" + LEASE_SUFFIX, "user:bob" + COMPUTE_SUFFIX):
        with pytest.raises(ValueError, match="must not end with"):
            cache.get_or_set(planted, lambda: "x", ttl=100)
        with pytest.raises(ValueError, match="must not end with"):
            await cache.aget_or_set(planted, lambda: "x", ttl=100)
    assert cache.get("user:bob" + LEASE_SUFFIX) is None  # nothing planted
    calls: list[str] = []

    @cache.cached(ttl=100, key="user:{name}")
    def profile(name: str) -> str:
        calls.append(name)
        return name

    assert "\x00" not in profile.key_for("bob" + LEASE_SUFFIX)  # @cached keys escape it: no plant there
    assert profile("bob" + LEASE_SUFFIX) == "bob" + LEASE_SUFFIX and calls == ["bob" + LEASE_SUFFIX]


# ---------------------------------------------------------------------- across processes
WORKER = r"""
import json, os, sys, time
from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType
settings = json.loads(sys.argv[1])
settings["cache_type"] = CacheType(settings["cache_type"])
cache = Cache(CacheConfig(**settings))
print("ready", flush=True)
for line in sys.stdin:  # "KEY SECONDS": get_or_set(KEY) with a factory that takes SECONDS
    key, seconds = line.split()
    def factory():
        print("computing", key, flush=True)
        time.sleep(float(seconds))
        return str(os.getpid())
    print("value", key, cache.get_or_set(key, factory, ttl=100), flush=True)
"""


def _worker(settings: dict[str, object]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_FLEET_INTERVAL"] = "0"
    process = subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(settings)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    return process


def _ask(process: subprocess.Popen[str], key: str, seconds: float) -> None:
    assert process.stdin is not None
    process.stdin.write(f"{key} {seconds}\n")
    process.stdin.flush()


def _until(process: subprocess.Popen[str], word: str, key: str) -> list[str]:
    """The lines process prints up to its `word key ...` line (which is last)."""
    assert process.stdout is not None
    lines = []
    while True:
        line = process.stdout.readline()
        assert line, f"worker ended before '{word} {key}'"
        lines.append(line.split())
        if lines[-1][:2] == [word, key]:
            return [" ".join(parts) for parts in lines]


@pytest.mark.parametrize("kind", SHARED)
def test_two_processes_racing_for_an_expired_key_compute_it_once(settings):
    workers = [_worker(settings), _worker(settings)]
    try:
        for round_ in range(4):
            key = f"hot{round_}"
            for worker in workers:  # both ask at once; the factory takes 0.3 s
                _ask(worker, key, 0.3)
            outputs = [_until(worker, "value", key) for worker in workers]
            computing = [line for lines in outputs for line in lines if line.startswith("computing")]
            values = {lines[-1].split()[2] for lines in outputs}
            assert len(computing) == 1, outputs
            assert len(values) == 1  # the loser waited for the winner's value
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(10)


@pytest.mark.parametrize("kind", SHARED)
def test_a_lease_whose_holder_was_killed_expires_and_the_key_is_not_stuck(settings):
    cache = Cache(_config(settings))  # the real clock: the dead holder's lease must run out
    try:
        # A known compute time (50 ms, in the companion) makes the lease 0.25 s (MIN_LEASE_SECONDS).
        assert cache.get_or_set("k", lambda: time.sleep(0.05) or "first", ttl=100) == "first"
        assert cache.get("k" + COMPUTE_SUFFIX) is not None
        assert cache.delete("k")
        holder = _worker(settings)
        try:
            _ask(holder, "k", 60)  # it takes the lease and computes for a minute...
            _until(holder, "computing", "k")
            assert cache.get("k" + LEASE_SUFFIX) is not None
            os.kill(holder.pid, signal.SIGKILL)  # ...and dies holding it
            holder.wait(10)
            start = time.monotonic()
            assert cache.get_or_set("k", lambda: "after", ttl=100) == "after"
            assert time.monotonic() - start < 5  # one lease (0.25 s) plus polling, not stuck
        finally:
            holder.kill()
            holder.wait(10)
    finally:
        cache.clear()
        cache.close()
