"""Stateful model test: memory and SQLite caches, driven from many threads, agree with a plain dict.

Each rule runs a batch of operations split over several threads; every thread owns its own keys, so the
final state is deterministic and can be checked against the model, while the backends still see real
concurrent calls (locks, connections, LRU touches racing with writes).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType

THREADS = 4
KEYS_PER_THREAD = 6
ints = st.integers(-(2**63), 2**64 - 1)  # msgpack's range; beyond it set() is a documented TypeError
values = st.one_of(st.none(), ints, st.text(max_size=20), st.lists(ints, max_size=4),
                   st.dictionaries(st.text(max_size=5), ints, max_size=3))


def _key(thread: int, index: int) -> str:
    return f"t{thread}-k{index}"


class CacheModel(RuleBasedStateMachine):
    """The cache must return exactly what the model holds and nothing it does not."""

    cache_type = CacheType.MEMORY

    def __init__(self) -> None:
        super().__init__()
        self.now = time.time()
        self.dir = tempfile.mkdtemp(prefix="scancache-model-")
        self.cache = Cache(CacheConfig(cache_type=self.cache_type, cache_dir=self.dir, ttl_seconds=100,
                                       max_size=10_000), clock=lambda: self.now)
        self.model: dict[str, tuple[object, float]] = {}  # key -> (value, expires_at)
        self.errors: list[BaseException] = []

    def _in_threads(self, work) -> None:
        def run(thread: int) -> None:
            try:
                work(thread)
            except BaseException as exc:  # reported by the invariant below
                self.errors.append(exc)

        threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)

    @rule(index=st.integers(0, KEYS_PER_THREAD - 1), value=values, ttl=st.integers(1, 200))
    def set_everywhere(self, index, value, ttl):
        self._in_threads(lambda t: self.cache.set(_key(t, index), value, ttl=ttl))
        for t in range(THREADS):
            self.model[_key(t, index)] = (value, self.now + min(ttl, 100))

    @rule(index=st.integers(0, KEYS_PER_THREAD - 1))
    def delete_everywhere(self, index):
        self._in_threads(lambda t: self.cache.delete(_key(t, index)))
        for t in range(THREADS):
            self.model.pop(_key(t, index), None)

    @rule(mapping=st.dictionaries(st.integers(0, KEYS_PER_THREAD - 1), values, max_size=4))
    def set_many_everywhere(self, mapping):
        self._in_threads(lambda t: self.cache.set_many({_key(t, i): v for i, v in mapping.items()}))
        for t in range(THREADS):
            for i, v in mapping.items():
                self.model[_key(t, i)] = (v, self.now + 100)

    @rule(seconds=st.floats(0, 150))
    def time_passes(self, seconds):
        self.now += seconds

    @precondition(lambda self: len(self.model) > 0)
    @rule()
    def clear(self):
        self.cache.clear()
        self.model.clear()

    @invariant()
    def reads_match_the_model(self):
        assert self.errors == []
        seen: dict[int, dict[str, object]] = {}

        def read(thread: int) -> None:
            keys = [_key(thread, i) for i in range(KEYS_PER_THREAD)]
            seen[thread] = {k: self.cache.get(k, "<missing>") for k in keys}

        self._in_threads(read)
        for reads in seen.values():
            for key, got in reads.items():
                value, expires_at = self.model.get(key, ("<missing>", float("inf")))
                expected = value if self.now < expires_at else "<missing>"
                assert got == expected, (key, got, expected)

    def teardown(self) -> None:
        self.cache.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class DiskCacheModel(CacheModel):
    cache_type = CacheType.DISK


MODEL_SETTINGS = settings(max_examples=30, stateful_step_count=12, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])


def test_memory_cache_matches_the_model_under_threads():
    run_state_machine_as_test(CacheModel, settings=MODEL_SETTINGS)


def test_disk_cache_matches_the_model_under_threads():
    run_state_machine_as_test(DiskCacheModel, settings=MODEL_SETTINGS)
