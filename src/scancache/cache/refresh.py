"""get-or-compute with early refresh (XFetch) and stale-while-revalidate, for get_or_set and @cached.

Early refresh is probabilistic early expiration (XFetch: Vattani, Chierichetti, Lowenstein, "Optimal
Probabilistic Cache Stampede Prevention", VLDB 2015): a reader of a fresh entry recomputes it early
when `now - delta * beta * ln(rand()) >= expires_at`, delta being how long the value took to
compute. A hot key is then refreshed by one reader shortly before it expires, while every other
reader keeps getting the fresh value, instead of all of them missing at once at expiry.

delta is measured around the factory and kept per key in this process. Backends shared with other
processes (SQLite, Redis, hybrid) also get it, when it is 1 ms or more, in a companion entry
`key + COMPUTE_SUFFIX` written in the same call (one pipeline on Redis) with the same lifetime, so a
worker that never computed the key still refreshes it early (the companion counts in size()).
(Storing it inside the entry's own record would need a codec field; the companion keeps the entry
format and every backend untouched.)

The companion is `[compute seconds, lease_until]`. A worker that draws an early refresh on a shared
backend reads it first: while another worker's lease runs it keeps serving the fresh value; else it
writes its own lease (LEASE_DELTAS compute times) and recomputes. Two workers then both refresh only
when they draw within one round trip of each other. The lease never touches the entry itself (an
unconditional write of the old value could overwrite a newer one); a failed refresh just lets the
lease run out.

The sync and async paths share `fresh_hit`, `_decide` and `_Plan`; they differ only in the calls that
wait.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scancache.cache.entry import _MISSING, TTL, CacheEntry
from scancache.cache.singleflight import call_factory

if TYPE_CHECKING:  # imported where a coroutine needs it: sync-only processes never do
    import asyncio

__all__ = ["COMPUTE_SUFFIX", "DEFAULT_BETA", "EARLY", "RefreshCounters", "aget_or_compute", "fresh_hit",
           "get_or_compute"]

log = logging.getLogger("scancache.cache")

#: XFetch's beta: 1 is the paper's optimum; larger refreshes earlier, 0 turns early refresh off.
DEFAULT_BETA = 1.0
#: Companion entry holding a key's measured compute time (seconds) on shared backends.
COMPUTE_SUFFIX = "\x00compute-seconds"
#: Shorter computes get no companion: their early window (about delta * ln(readers)) is too short to
#: matter, and a stampede of them costs little; the companion would only take room.
MIN_SHARED_COMPUTE_SECONDS = 0.001
_MAX_TRACKED_KEYS = 100_000  # per-process compute times kept (LRU); beyond, the companion is read
#: An early refresh on a shared backend first pushes the entry's expiry this many compute times later.
LEASE_DELTAS = 4.0
_MAX_DRAW = 37.0  # -ln(1 - random()) never exceeds 36.8 (random() is a multiple of 2**-53 below 1)
_MAX_LEASE_WAIT = 10.0  # seconds: a lease read back never holds a caller longer (a planted one neither)
_SAME_EXPIRY = 0.001  # seconds: expiries closer than this are the same write (see _fresh_elsewhere)
_HIT, _EARLY, _STALE, _MISS = range(4)
#: fresh_hit's answer when XFetch drew an early refresh.
EARLY = object()


@dataclass(slots=True)
class RefreshCounters:
    """What get-or-compute did, per decorated function (its cache_info())."""

    hits: int = 0
    misses: int = 0
    stale_hits: int = 0
    early_refreshes: int = 0
    computes: int = 0
    refresh_errors: int = 0


class _State:
    """Per-Cache bookkeeping: measured compute times and the background refreshes in flight."""

    def __init__(self) -> None:
        self.compute_seconds: OrderedDict[str, float] = OrderedDict()
        self.refreshing: set[str] = set()
        self.lock = threading.Lock()
        self.tasks: set[asyncio.Task[Any]] = set()  # strong refs: the loop keeps only weak ones

    def remember(self, key: str, seconds: float) -> None:
        with self.lock:
            self.compute_seconds[key] = seconds
            self.compute_seconds.move_to_end(key)
            if len(self.compute_seconds) > _MAX_TRACKED_KEYS:
                self.compute_seconds.popitem(last=False)

    def claim_refresh(self, key: str) -> bool:
        """True for the one caller that should start a background refresh of key."""
        with self.lock:
            if key in self.refreshing:
                return False
            self.refreshing.add(key)
            return True


_states_lock = threading.Lock()


def _state(cache: Any) -> _State:
    """The cache's refresh bookkeeping, kept on the cache object (one attribute read per call)."""
    try:
        return cache._refresh_state
    except AttributeError:
        with _states_lock:
            if not hasattr(cache, "_refresh_state"):
                cache._refresh_state = _State()
        return cache._refresh_state


def _shares_entries(cache: Any) -> bool:
    """True when other processes read this cache's entries (so the compute time goes with them)."""
    return not cache._memory_only


def _early(delta: float | None, expires_at: float, now: float, beta: float) -> bool:
    """XFetch's test: recompute now, ahead of expires_at, given compute time delta."""
    if not delta or beta <= 0:
        return False
    weight = delta * beta
    if expires_at - now > _MAX_DRAW * weight:
        return False  # no draw can reach that far: skip random() and log() (the common hit)
    return now - weight * math.log(1.0 - random.random()) >= expires_at  # 1-rand: in (0, 1]


def fresh_hit(cache: Any, key: str, beta: float, counters: RefreshCounters | None) -> Any:
    """The value of a fresh in-process (memory, hybrid front) entry that XFetch keeps, counted as a
    hit; EARLY when XFetch draws a refresh; _MISSING when the full path must decide. The hit path of
    get_or_set and @cached: two dict reads, no entry object."""
    index_get = cache._index_get
    if index_get is None:
        return _MISSING
    record = index_get(key)
    if record is None:
        return _MISSING
    expires_at = record.expires_at
    now = cache.clock()
    if now >= expires_at:
        return _MISSING
    delta = _state(cache).compute_seconds.get(key)
    if delta:
        if _early(delta, expires_at, now, beta):
            return EARLY
    elif delta is None and not cache._memory_only:
        return _MISSING  # another worker may have stored its compute time: the full path reads it
    try:
        cache._index_touch(key)
    except KeyError:  # removed by another thread meanwhile: still a valid read
        pass
    cache.stats.hits += 1
    if counters is not None:
        counters.hits += 1
    return record.value


def _decide(entry: CacheEntry | None, delta: float | None, now: float, beta: float, drawn: bool
            ) -> int:
    if entry is None:
        return _MISS
    if entry.is_stale:
        return _STALE
    return _EARLY if drawn or _early(delta, entry.expires_at, now, beta) else _HIT


def _fresh_elsewhere(again: CacheEntry | None, seen: float | None) -> bool:
    """Another caller stored a fresh value since we looked (seen: the expiry we saw, None on a miss).

    A refresh sets a later expiry; one within _SAME_EXPIRY of seen is the entry we saw (or our own
    lease), and recomputing it at worst repeats a refresh."""
    if again is None or again.is_stale:
        return False
    return seen is None or again.expires_at > seen + _SAME_EXPIRY


@dataclass(slots=True)
class _Plan:
    """One get-or-compute call: its arguments, shared by the sync and async paths."""

    cache: Any
    key: str
    factory: Callable[[], Any]
    ttl: TTL
    stale_ttl: float | None
    beta: float
    serve_stale: bool
    counters: RefreshCounters | None
    leased: bool = False  # we announced a refresh in the companion: our write must clear it

    def count(self, field: str) -> None:
        if self.counters is not None:
            setattr(self.counters, field, getattr(self.counters, field) + 1)

    def writes(self, result: Any, seconds: float) -> tuple[dict[str, Any], float, float]:
        """({key: value[, companion: compute seconds]}, ttl, stale) for one set_many."""
        ttl, stale = self.cache._lifetimes(result, self.ttl, self.stale_ttl)
        mapping = {self.key: result}
        if (seconds >= MIN_SHARED_COMPUTE_SECONDS or self.leased) and _shares_entries(self.cache):
            mapping[self.key + COMPUTE_SUFFIX] = [round(seconds, 6), 0.0]
        return mapping, ttl, stale

    def lease(self, entry: CacheEntry | None, delta: float, now: float
              ) -> tuple[dict[str, Any], float, float]:
        """The companion write that announces our refresh for LEASE_DELTAS compute times."""
        self.leased = True
        lease_until = now + LEASE_DELTAS * delta
        if entry is None:  # the companion outlives the lease: it still carries the compute time
            # Any: a type() check (float subclasses excluded) narrows nothing for a type checker.
            lifetime: Any = self.ttl if type(self.ttl) in (int, float) else self.cache.config.ttl_seconds
            ttl: float = max(lease_until - now, lifetime)
            return {self.key + COMPUTE_SUFFIX: [round(delta, 6), lease_until]}, ttl, 0.0
        ttl = max(entry.expires_at, lease_until) - now
        stale = entry.stale_until - entry.expires_at
        return {self.key + COMPUTE_SUFFIX: [round(delta, 6), lease_until]}, ttl, stale

    def wait_seconds(self, companion: Any, delta: float, now: float) -> float:
        """How long a missing caller waits for another worker's leased refresh (0: compute now)."""
        if not _leased_elsewhere(companion, now):
            return 0.0
        return min(companion[1] - now, LEASE_DELTAS * delta, _MAX_LEASE_WAIT)


def _leased_elsewhere(companion: Any, now: float) -> bool:
    """True while the companion read back announces another worker's refresh."""
    return type(companion) is list and len(companion) == 2 and type(companion[1]) is float and (
        companion[1] > now)


def _delta(plan: _Plan, state: _State, entry: CacheEntry | None) -> float | None:
    """The key's compute time from this process's table; None when unknown here."""
    if entry is None or entry.is_stale or plan.beta <= 0:
        return None
    return state.compute_seconds.get(plan.key)


def _take_companion(plan: _Plan, state: _State, companion: Any) -> float | None:
    seconds: Any = companion[0] if type(companion) is list and len(companion) == 2 else None
    if type(seconds) not in (int, float) or not 0 < seconds < 86400:
        # Absent (a compute under 1 ms) or implausible: no early refresh, and no second look.
        state.remember(plan.key, 0.0)
        return None
    state.remember(plan.key, float(seconds))
    return float(seconds)


def _refresh_failed(plan: _Plan, exc: BaseException) -> None:
    plan.count("refresh_errors")
    log.warning("cache %s: refresh of %r failed (serving the current value): %s: %s",
                plan.cache.name, plan.key[:80], type(exc).__name__, exc)


def _finish_background(plan: _Plan, state: _State) -> None:
    with state.lock:
        state.refreshing.discard(plan.key)


# ---------------------------------------------------------------------- sync
def get_or_compute(cache: Any, key: str, factory: Callable[[], Any], ttl: TTL = None, *,
                   stale_ttl: float | None = None, beta: float = DEFAULT_BETA, serve_stale: bool = False,
                   counters: RefreshCounters | None = None) -> Any:
    """The cached value of key, else factory()'s result stored and returned (threads share one call).

    beta > 0: a fresh entry may be recomputed early (XFetch) by one caller. serve_stale: an entry in
    its stale window is returned at once and refreshed in a background thread (one per key).
    A factory exception reaches the callers that waited for it and stores nothing; during an early
    or background refresh it is logged and the current value kept.
    """
    hit = fresh_hit(cache, key, beta, counters)
    if hit is not _MISSING and hit is not EARLY:
        return hit
    plan = _Plan(cache, key, factory, ttl, stale_ttl, beta, serve_stale, counters)
    return full_get_or_compute(plan, drawn=hit is EARLY)


def full_get_or_compute(plan: _Plan, drawn: bool = False) -> Any:
    """get_or_compute past the in-process fast path; drawn: XFetch already chose to refresh."""
    cache, key, state = plan.cache, plan.key, _state(plan.cache)
    entry = cache.get_entry(key, allow_stale=plan.serve_stale)
    delta = _delta(plan, state, entry)
    if delta is None and entry is not None and not entry.is_stale and plan.beta > 0 and _shares_entries(
            cache):
        delta = _take_companion(plan, state, cache.get(key + COMPUTE_SUFFIX))
    action = _decide(entry, delta, cache.clock(), plan.beta, drawn)
    if action == _HIT:
        plan.count("hits")
        return entry.value
    if action == _STALE:
        plan.count("stale_hits")
        if state.claim_refresh(key):
            threading.Thread(target=_background, args=(plan, state, entry.expires_at),
                             name="scancache-refresh", daemon=True).start()
        return entry.value
    if action == _EARLY:
        assert entry is not None
        delta = delta or state.compute_seconds.get(key)
        if delta and _shares_entries(cache):
            now = cache.clock()
            if _leased_elsewhere(cache.get(key + COMPUTE_SUFFIX), now):
                plan.count("hits")
                return entry.value  # another worker is refreshing it: keep serving the fresh value
            mapping, ttl, stale = plan.lease(entry, delta, now)
            cache.set_many(mapping, ttl, stale_ttl=stale)
        plan.count("early_refreshes")
        seen = entry.expires_at
        try:
            return cache._thread_flights.run(key, lambda: _compute(plan, state, seen))
        except Exception as exc:  # the entry is still fresh: serve it
            _refresh_failed(plan, exc)
            return entry.value
    plan.count("misses")
    return cache._thread_flights.run(key, lambda: _compute(plan, state, None))


def _compute(plan: _Plan, state: _State, seen: float | None) -> Any:
    cache = plan.cache
    again = cache.get_entry(plan.key, allow_stale=False)
    if _fresh_elsewhere(again, seen):
        return again.value
    if seen is None and _shares_entries(cache):
        delta = _miss_delta(plan, state, cache.get)
        if delta:
            give_up = time.monotonic() + _MAX_LEASE_WAIT
            # Another worker is computing it: wait for its value; when its lease runs out, look again
            # (a third may have taken over), and compute only when nobody holds one.
            while (wait := plan.wait_seconds(cache.get(plan.key + COMPUTE_SUFFIX), delta, cache.clock())
                   ) and time.monotonic() < give_up:
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline:
                    time.sleep(_poll_step(delta))
                    again = cache.get_entry(plan.key, allow_stale=False)
                    if _fresh_elsewhere(again, None):
                        return again.value
                again = cache.get_entry(plan.key, allow_stale=False)  # it may have landed as it ran out
                if _fresh_elsewhere(again, None):
                    return again.value
            mapping, ttl, stale = plan.lease(None, delta, cache.clock())
            cache.set_many(mapping, ttl, stale_ttl=stale)
    plan.count("computes")
    start = time.perf_counter()
    result = plan.factory()
    seconds = time.perf_counter() - start
    state.remember(plan.key, seconds)
    mapping, ttl, stale = plan.writes(result, seconds)
    cache.set_many(mapping, ttl, stale_ttl=stale)
    return result


def _miss_delta(plan: _Plan, state: _State, get: Callable[[str], Any]) -> float | None:
    """The compute time a missing caller uses for leases (this process's, else the companion's)."""
    delta = state.compute_seconds.get(plan.key)
    if not delta:  # unknown, or absent when last read: a miss is rare enough to look again
        delta = _take_companion(plan, state, get(plan.key + COMPUTE_SUFFIX))
    return delta


def _poll_step(delta: float) -> float:
    """Seconds between looks at a leased key: jittered, so waiters whose lease ran out together do
    not all take the next one at once."""
    return min(max(delta / 2, 0.002), 0.05) * (0.5 + random.random())


def _background(plan: _Plan, state: _State, seen: float) -> None:
    try:
        plan.cache._thread_flights.run(plan.key, lambda: _compute(plan, state, seen))
    except Exception as exc:
        _refresh_failed(plan, exc)
    finally:
        _finish_background(plan, state)


# ---------------------------------------------------------------------- async
async def aget_or_compute(cache: Any, key: str, factory: Callable[[], Any], ttl: TTL = None, *,
                          stale_ttl: float | None = None, beta: float = DEFAULT_BETA,
                          serve_stale: bool = False, counters: RefreshCounters | None = None) -> Any:
    """Async get_or_compute: factory may be sync or async; tasks share one call per key; the
    background refresh of a stale entry is a task of the running loop."""
    hit = fresh_hit(cache, key, beta, counters)
    if hit is not _MISSING and hit is not EARLY:
        return hit
    plan = _Plan(cache, key, factory, ttl, stale_ttl, beta, serve_stale, counters)
    return await afull_get_or_compute(plan, drawn=hit is EARLY)


async def afull_get_or_compute(plan: _Plan, drawn: bool = False) -> Any:
    """Async full_get_or_compute."""
    cache, key, state = plan.cache, plan.key, _state(plan.cache)
    entry = await cache.aget_entry(key, allow_stale=plan.serve_stale)
    delta = _delta(plan, state, entry)
    if delta is None and entry is not None and not entry.is_stale and plan.beta > 0 and _shares_entries(
            cache):
        delta = _take_companion(plan, state, await cache.aget(key + COMPUTE_SUFFIX))
    action = _decide(entry, delta, cache.clock(), plan.beta, drawn)
    if action == _HIT:
        plan.count("hits")
        return entry.value
    if action == _STALE:
        plan.count("stale_hits")
        if state.claim_refresh(key):
            import asyncio

            task = asyncio.get_running_loop().create_task(_abackground(plan, state, entry.expires_at))
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)
        return entry.value
    if action == _EARLY:
        assert entry is not None
        delta = delta or state.compute_seconds.get(key)
        if delta and _shares_entries(cache):
            now = cache.clock()
            if _leased_elsewhere(await cache.aget(key + COMPUTE_SUFFIX), now):
                plan.count("hits")
                return entry.value
            mapping, ttl, stale = plan.lease(entry, delta, now)
            await cache.aset_many(mapping, ttl, stale_ttl=stale)
        plan.count("early_refreshes")
        seen = entry.expires_at
        try:
            return await cache._flights.call(key, _acompute, plan, state, seen)
        except Exception as exc:
            _refresh_failed(plan, exc)
            return entry.value
    plan.count("misses")
    return await cache._flights.call(key, _acompute, plan, state, None)


async def _acompute(plan: _Plan, state: _State, seen: float | None) -> Any:
    cache = plan.cache
    again = await cache.aget_entry(plan.key, allow_stale=False)
    if _fresh_elsewhere(again, seen):
        return again.value
    if seen is None and _shares_entries(cache):
        delta = state.compute_seconds.get(plan.key)
        if not delta:  # as _miss_delta
            delta = _take_companion(plan, state, await cache.aget(plan.key + COMPUTE_SUFFIX))
        if delta:
            give_up = time.monotonic() + _MAX_LEASE_WAIT
            while (wait := plan.wait_seconds(await cache.aget(plan.key + COMPUTE_SUFFIX), delta,
                                             cache.clock())) and time.monotonic() < give_up:
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline:
                    import asyncio

                    await asyncio.sleep(_poll_step(delta))
                    again = await cache.aget_entry(plan.key, allow_stale=False)
                    if _fresh_elsewhere(again, None):
                        return again.value
                again = await cache.aget_entry(plan.key, allow_stale=False)
                if _fresh_elsewhere(again, None):
                    return again.value
            mapping, ttl, stale = plan.lease(None, delta, cache.clock())
            await cache.aset_many(mapping, ttl, stale_ttl=stale)
    plan.count("computes")
    start = time.perf_counter()
    result = await call_factory(plan.factory)
    seconds = time.perf_counter() - start
    state.remember(plan.key, seconds)
    mapping, ttl, stale = plan.writes(result, seconds)
    await cache.aset_many(mapping, ttl, stale_ttl=stale)
    return result


async def _abackground(plan: _Plan, state: _State, seen: float) -> None:
    try:
        await plan.cache._flights.call(plan.key, _acompute, plan, state, seen)
    except Exception as exc:
        _refresh_failed(plan, exc)
    finally:
        _finish_background(plan, state)
