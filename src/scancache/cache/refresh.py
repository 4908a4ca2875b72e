"""get-or-compute with early refresh (XFetch), a recompute lease and stale-while-revalidate, for
get_or_set and @cached.

Early refresh is probabilistic early expiration (XFetch: Vattani, Chierichetti, Lowenstein, "Optimal
Probabilistic Cache Stampede Prevention", VLDB 2015): a reader of a fresh entry recomputes it early
when `now - delta * beta * ln(rand()) >= expires_at`, delta being how long the value took to
compute. A hot key is then refreshed by one reader shortly before it expires, while every other
reader keeps getting the fresh value, instead of all of them missing at once at expiry.

delta is measured around the factory and kept per key in this process. Backends shared with other
processes (SQLite, Redis, hybrid) also get it, when it is 1 ms or more, in a companion entry
`key + COMPUTE_SUFFIX` (`[compute seconds, 0.0]`) written right after the value, with its lifetime
plus one more ttl in the stale window, so a worker that never computed the key still refreshes it
early, and one that meets it only after it expired still leases it for a few compute times.

The recompute lease: whoever is about to compute a key (a miss on a store shared with other processes,
an XFetch draw, a background refresh of a stale entry) first stores `key + LEASE_SUFFIX` with the
backend's atomic set-if-absent (Backend.add: SET NX PX on Redis, a conditional upsert on SQLite,
under the lock in memory), for LEASE_DELTAS compute times (FIRST_LEASE_SECONDS while the compute
time is unknown). Exactly one caller of every thread, task and process sharing the store gets it.
The others: an early draw or a stale read serves the value it has; a miss waits for the holder's
value, polling the entry and the lease in one read, and takes the lease itself when it is gone (its
holder failed, or died: a lease expires by itself, so a killed holder leaves the key stuck for one
lease at most). The holder deletes the lease once its value is stored (or its factory failed or was
interrupted: Ctrl-C, a cancelled task), with Backend.delete_if: only if it still holds this holder's
unique value, so a holder that outlived its lease never deletes the next holder's. A backend failure
while taking the lease counts as taken (fail open: an outage must not stop computing).

The sync and async faces share one body per step (_lookup, _compute, _background): generators that
yield what to do (read, lease, sleep, call the factory, join a flight) and receive the answer; _run
and _arun carry those out, blocking or awaiting. Only the drivers differ.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scancache._log import get_logger
from scancache.cache.entry import _MISSING, DEFAULT_BETA, TTL, CacheEntry
from scancache.cache.singleflight import call_factory
from scancache.cache.steps import advance

if TYPE_CHECKING:  # imported where a coroutine needs it: sync-only processes never do
    import asyncio

__all__ = ["COMPUTE_SUFFIX", "DEFAULT_BETA", "EARLY", "LEASE_SUFFIX", "RefreshCounters", "aget_or_compute",
           "fresh_hit", "get_or_compute"]

log = get_logger("scancache.cache")

#: Companion entry holding a key's measured compute time (seconds) on shared backends.
COMPUTE_SUFFIX = "\x00compute-seconds"
#: The recompute lease of a key: present (unexpired) while one caller computes it.
LEASE_SUFFIX = "\x00recompute-lease"
#: Shorter computes get no companion: their early window (about delta * ln(readers)) is too short to
#: matter, and a stampede of them costs little; the companion would only take room.
MIN_SHARED_COMPUTE_SECONDS = 0.001
_MAX_TRACKED_KEYS = 100_000  # per-process compute times kept (LRU); beyond, the companion is read
#: A lease lasts this many compute times (at least MIN_LEASE_SECONDS): the holder deletes it when done,
#: so its length matters only when the holder dies or stalls (others wait that long at most).
LEASE_DELTAS = 4.0
MIN_LEASE_SECONDS = 0.25
#: A lease taken while the compute time is unknown (a key never computed, or computed in under 1 ms).
FIRST_LEASE_SECONDS = 5.0
_MAX_DRAW = 37.0  # -ln(1 - random()) never exceeds 36.8 (random() is a multiple of 2**-53 below 1)
_MAX_LEASE_WAIT = 10.0  # seconds a missing caller waits for leases before computing regardless
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
        """True for the one caller of this process that should start a background refresh of key."""
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

    A refresh sets a later expiry; one within _SAME_EXPIRY of seen is the entry we saw, and
    recomputing it at worst repeats a refresh."""
    if again is None or again.is_stale:
        return False
    return seen is None or again.expires_at > seen + _SAME_EXPIRY


@dataclass(slots=True)
class _Plan:
    """One get-or-compute call: its arguments, shared by the sync and async drivers."""

    cache: Any
    key: str
    factory: Callable[[], Any]
    ttl: TTL
    stale_ttl: float | None
    beta: float
    serve_stale: bool
    counters: RefreshCounters | None
    held: tuple[str, Any, bytes | None] | None = None  # (name, record, blob) of the lease we hold

    def count(self, field: str) -> None:
        if self.counters is not None:
            setattr(self.counters, field, getattr(self.counters, field) + 1)

    def writes(self, result: Any) -> tuple[dict[str, Any], float, float]:
        """({key: value}, ttl, stale) for the set_many that stores the result."""
        ttl, stale = self.cache._lifetimes(result, self.ttl, self.stale_ttl)
        return {self.key: result}, ttl, stale

    def companion(self, seconds: float, ttl: float, stale: float
                  ) -> tuple[dict[str, Any], float, float] | None:
        """The set_many of the companion entry (the compute time), or None when it gets none (a
        memory cache, a compute under 1 ms). It lives one ttl past the value's stale window: a
        worker that meets the key only after it expired still knows its compute time (its lease
        then lasts LEASE_DELTAS compute times, not FIRST_LEASE_SECONDS)."""
        if seconds < MIN_SHARED_COMPUTE_SECONDS or not _shares_entries(self.cache):
            return None
        return {self.key + COMPUTE_SUFFIX: [round(seconds, 6), 0.0]}, ttl, stale + ttl

    def lease(self, delta: float | None) -> tuple[str, Any, bytes | None, float] | None:
        """The arguments of the Backend.add that takes this key's lease (kept in held, for the
        release); None when the lease would store nothing (a zero ttl_seconds). Its value is unique,
        so the release deletes this lease and never a later holder's."""
        seconds = FIRST_LEASE_SECONDS if not delta else min(
            max(LEASE_DELTAS * delta, MIN_LEASE_SECONDS), _MAX_LEASE_WAIT)
        name = self.key + LEASE_SUFFIX
        made = self.cache._make(name, f"recompute lease {random.getrandbits(64):016x}", seconds, 0.0)
        if made is None:
            return None
        record, blob = made
        self.held = (name, record, blob)
        return name, record, blob, self.cache.clock()


def _delta(plan: _Plan, state: _State, entry: CacheEntry | None) -> float | None:
    """The key's compute time from this process's table; None when unknown here."""
    if entry is None or entry.is_stale or plan.beta <= 0:
        return None
    return state.compute_seconds.get(plan.key)


def _take_companion(plan: _Plan, state: _State, entry: CacheEntry | None) -> float | None:
    """The compute time in the companion entry read (stale or not), remembered in this process."""
    companion = entry.value if entry is not None else None
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


def _poll_step(delta: float | None) -> float:
    """Seconds between looks at a leased key: jittered, so waiters whose lease ran out together do
    not all try the next one at once."""
    return min(max((delta or 0.1) / 2, 0.002), 0.05) * (0.5 + random.random())


# ---------------------------------------------------------------------- the shared body
# A step yields requests, tuples whose first item says what to do for its plan, and receives the
# result (or has the exception thrown in, for its own try/except); _run and _arun carry them out.
_ENTRY = 0  # (_ENTRY, key, allow_stale) -> CacheEntry | None
_GET_MANY = 1  # (_GET_MANY, keys) -> {key: value} of the fresh ones
_SET_MANY = 2  # (_SET_MANY, mapping, ttl, stale) -> bool
_LEASE = 3  # (_LEASE, delta) -> True if this caller holds the key's lease now
_RELEASE = 4  # (_RELEASE,) -> None: delete the lease we hold, if it is still ours (best effort)
_SLEEP = 5  # (_SLEEP, seconds) -> None
_FACTORY = 6  # (_FACTORY,) -> the factory's result
_FLIGHT = 7  # (_FLIGHT, step, *args) -> step(plan, *args)'s result, one run per key in this process
_SPAWN = 8  # (_SPAWN, step, *args) -> None: step(plan, *args) runs in the background (thread, task)

_Step = Generator[tuple[Any, ...], Any, Any]
_RESERVED_SUFFIXES = (LEASE_SUFFIX, COMPUTE_SUFFIX)


def _lookup(plan: _Plan, drawn: bool) -> _Step:
    """get-or-compute past the in-process fast path; drawn: XFetch already chose to refresh."""
    cache, key, state = plan.cache, plan.key, _state(plan.cache)
    if key.endswith(_RESERVED_SUFFIXES):
        # Such a key would be another key's lease or companion: a caller able to put "\0recompute-lease"
        # in a key (a user name in f"user:{name}") could hold off that other key's computation.
        raise ValueError(f"get-or-compute keys must not end with {_RESERVED_SUFFIXES!r}: {key[:80]!r}")
    entry = yield (_ENTRY, key, plan.serve_stale)
    delta = _delta(plan, state, entry)
    if delta is None and entry is not None and not entry.is_stale and plan.beta > 0 and _shares_entries(
            cache):
        delta = _take_companion(plan, state, (yield (_ENTRY, key + COMPUTE_SUFFIX, True)))
    action = _decide(entry, delta, cache.clock(), plan.beta, drawn)
    if action == _HIT:
        plan.count("hits")
        return entry.value
    if action == _STALE:
        plan.count("stale_hits")
        if state.claim_refresh(key):
            yield (_SPAWN, _background, state, entry.expires_at)
        return entry.value
    if action == _EARLY:
        assert entry is not None
        if not (yield (_LEASE, delta or state.compute_seconds.get(key))):
            plan.count("hits")
            return entry.value  # another caller (thread, task or worker) is refreshing it
        plan.count("early_refreshes")
        try:  # no single-flight: the lease already makes this the one caller, and a miss's flight
            # may be waiting for this very lease (joining it would wait out _MAX_LEASE_WAIT)
            return (yield from _compute(plan, state, entry.expires_at, True))
        except Exception as exc:  # the entry is still fresh: serve it
            _refresh_failed(plan, exc)
            return entry.value
    plan.count("misses")
    return (yield (_FLIGHT, _compute, state, None, False))


def _compute(plan: _Plan, state: _State, seen: float | None, leased: bool) -> _Step:
    """Compute and store the key unless a fresh value landed meanwhile (seen: the expiry we saw,
    None on a miss). Without the lease (a miss), take it first, or wait for its holder's value."""
    cache, key = plan.cache, plan.key
    # A miss on a memory cache needs no lease: one process holds the store, and its single-flights
    # (threads, tasks) already let one caller compute; the lease would only cost the miss path.
    if not leased and _shares_entries(cache):
        delta = state.compute_seconds.get(key)
        if not delta:  # unknown, or absent when last read: look again
            delta = _take_companion(plan, state, (yield (_ENTRY, key + COMPUTE_SUFFIX, True)))
        give_up = time.monotonic() + _MAX_LEASE_WAIT
        while not (leased := (yield (_LEASE, delta))) and time.monotonic() < give_up:
            # Another caller holds it: wait for its value, or for the lease to end (then try again).
            while time.monotonic() < give_up:
                yield (_SLEEP, _poll_step(delta))
                found = yield (_GET_MANY, [key, key + LEASE_SUFFIX])
                if key in found:
                    return found[key]
                if key + LEASE_SUFFIX not in found:
                    break
    # Looked at again with the lease held: a holder that finished between our last look and our
    # lease has stored its value by now (it releases only after storing).
    again = yield (_ENTRY, key, False)
    if _fresh_elsewhere(again, seen):
        if leased:
            yield (_RELEASE,)
        assert again is not None
        return again.value
    plan.count("computes")
    start = time.perf_counter()
    try:
        result = yield (_FACTORY,)
    except BaseException as exc:  # a failure, Ctrl-C or a cancelled task: another caller may take over
        if leased and not isinstance(exc, GeneratorExit):  # (a step being closed can yield no more)
            yield (_RELEASE,)
        raise
    seconds = time.perf_counter() - start
    state.remember(key, seconds)
    mapping, ttl, stale = plan.writes(result)
    yield (_SET_MANY, mapping, ttl, stale)
    companion = plan.companion(seconds, ttl, stale)
    if companion is not None:
        yield (_SET_MANY, *companion)
    if leased:
        yield (_RELEASE,)
    return result


def _background(plan: _Plan, state: _State, seen: float) -> _Step:
    """Refresh a stale entry that was just served, if this caller gets the lease."""
    try:
        if (yield (_LEASE, state.compute_seconds.get(plan.key))):
            yield from _compute(plan, state, seen, True)  # (no flight: as an early refresh)
    except Exception as exc:
        _refresh_failed(plan, exc)
    finally:
        with state.lock:
            state.refreshing.discard(plan.key)


def _lease_failed(plan: _Plan, exc: Exception) -> bool:
    """A backend failure while taking the lease: counted, and the lease counts as taken (fail open:
    an outage must not stop the computation)."""
    plan.cache._failed("lease", exc, write=True)
    return True


# ---------------------------------------------------------------------- sync driver
def _run(plan: _Plan, step: _Step) -> Any:
    """Carry out step's requests for plan, blocking; the step's return value."""
    cache = plan.cache
    answer: Any = None
    error: BaseException | None = None
    while True:
        finished, request = advance(step, answer, error)
        if finished:
            return request
        answer, error, kind = None, None, request[0]
        try:
            if kind == _ENTRY:
                answer = cache.get_entry(request[1], allow_stale=request[2])
            elif kind == _GET_MANY:
                answer = cache.get_many(request[1])
            elif kind == _SET_MANY:
                answer = cache.set_many(request[1], request[2], stale_ttl=request[3])
            elif kind == _LEASE:
                lease = plan.lease(request[1])
                try:
                    answer = lease is None or bool(cache.backend.add(*lease))
                except Exception as exc:
                    answer = _lease_failed(plan, exc)
            elif kind == _RELEASE:
                if plan.held is not None:
                    cache._safe(cache.backend.delete_if, *plan.held)
            elif kind == _SLEEP:
                time.sleep(request[1])
            elif kind == _FACTORY:
                answer = plan.factory()
            elif kind == _FLIGHT:
                inner = request[1](plan, *request[2:])
                answer = cache._thread_flights.run(plan.key, lambda inner=inner: _run(plan, inner))
            else:  # _SPAWN
                threading.Thread(target=_run, args=(plan, request[1](plan, *request[2:])),
                                 name="scancache-refresh", daemon=True).start()
        except BaseException as exc:  # thrown into the step: its own try/except decides
            error = exc


def get_or_compute(cache: Any, key: str, factory: Callable[[], Any], ttl: TTL = None, *,
                   stale_ttl: float | None = None, beta: float = DEFAULT_BETA, serve_stale: bool = False,
                   counters: RefreshCounters | None = None) -> Any:
    """The cached value of key, else factory()'s result stored and returned (one computation per key
    across threads, and across processes on a shared backend: the recompute lease).

    beta > 0: a fresh entry may be recomputed early (XFetch) by one caller. serve_stale: an entry in
    its stale window is returned at once and refreshed in a background thread (one per key).
    A factory exception reaches the callers that waited for it in this process and stores nothing;
    during an early or background refresh it is logged and the current value kept.
    """
    hit = fresh_hit(cache, key, beta, counters)
    if hit is not _MISSING and hit is not EARLY:
        return hit
    plan = _Plan(cache, key, factory, ttl, stale_ttl, beta, serve_stale, counters)
    return _run(plan, _lookup(plan, hit is EARLY))


def full_get_or_compute(plan: _Plan, drawn: bool = False) -> Any:
    """get_or_compute past the in-process fast path; drawn: XFetch already chose to refresh."""
    return _run(plan, _lookup(plan, drawn))


# ---------------------------------------------------------------------- async driver
async def _arun(plan: _Plan, step: _Step) -> Any:
    """Carry out step's requests for plan, awaiting (the async twin of _run)."""
    import asyncio  # here, not at the top: a sync-only process never imports it

    cache = plan.cache
    answer: Any = None
    error: BaseException | None = None
    while True:
        finished, request = advance(step, answer, error)
        if finished:
            return request
        answer, error, kind = None, None, request[0]
        try:
            if kind == _ENTRY:
                answer = await cache.aget_entry(request[1], allow_stale=request[2])
            elif kind == _GET_MANY:
                answer = await cache.aget_many(request[1])
            elif kind == _SET_MANY:
                answer = await cache.aset_many(request[1], request[2], stale_ttl=request[3])
            elif kind == _LEASE:
                lease = plan.lease(request[1])
                try:
                    answer = lease is None or bool(await cache.backend.aadd(*lease))
                except Exception as exc:
                    answer = _lease_failed(plan, exc)
            elif kind == _RELEASE:
                try:
                    if plan.held is not None:
                        await cache.backend.adelete_if(*plan.held)
                except Exception as exc:
                    cache._failed("delete_if", exc)
            elif kind == _SLEEP:
                await asyncio.sleep(request[1])
            elif kind == _FACTORY:
                answer = await call_factory(plan.factory)
            elif kind == _FLIGHT:
                answer = await cache._flights.call(plan.key, _arun, plan, request[1](plan, *request[2:]))
            else:  # _SPAWN
                task = asyncio.get_running_loop().create_task(_arun(plan, request[1](plan, *request[2:])))
                tasks = request[2].tasks  # the _State: strong refs while the task runs
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except BaseException as exc:
            error = exc


async def aget_or_compute(cache: Any, key: str, factory: Callable[[], Any], ttl: TTL = None, *,
                          stale_ttl: float | None = None, beta: float = DEFAULT_BETA,
                          serve_stale: bool = False, counters: RefreshCounters | None = None) -> Any:
    """Async get_or_compute: factory may be sync or async; tasks share one call per key; the
    background refresh of a stale entry is a task of the running loop."""
    hit = fresh_hit(cache, key, beta, counters)
    if hit is not _MISSING and hit is not EARLY:
        return hit
    plan = _Plan(cache, key, factory, ttl, stale_ttl, beta, serve_stale, counters)
    return await _arun(plan, _lookup(plan, hit is EARLY))


async def afull_get_or_compute(plan: _Plan, drawn: bool = False) -> Any:
    """Async full_get_or_compute."""
    return await _arun(plan, _lookup(plan, drawn))
