"""CacheBase: what Cache's sync and async faces share: its state, its policy and the steps of a read.

The TTL policy (ttl_seconds is default and ceiling), stale windows, the codec, stats, the rule that a
failing backend never raises from a read, and the read path itself (get, get_entry: the async face
calls get inline for a memory backend). Cache (core.py) adds the sync writes and lifecycle, and
AsyncCacheAPI (async_api.py) the async twins; both inherit all of this instead of borrowing it.
"""


from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from scancache._log import get_logger
from scancache.cache.backend import Backend, Record, WriteItem
from scancache.cache.codec import Codec, CorruptEntry
from scancache.cache.entry import _MISSING, TTL, CacheEntry
from scancache.cache.singleflight import AsyncSingleFlight, SingleFlight
from scancache.cache.stats import SAMPLE_EVERY, CacheStats
from scancache.cache_config import CacheConfig

__all__ = ["CacheBase"]

log = get_logger("scancache.cache")

_record = tuple.__new__  # Record(...) without NamedTuple's Python-level __new__ (set hot path)
_ERROR_LOG_QUIET_SECONDS = 10.0
_INF = float("inf")
_T = TypeVar("_T")


def _no_index(key: str) -> None:
    """The index's touch for a backend without an index (never called: _index_get is None then)."""


class _BurstLog:
    """Logs the first backend error of a burst, then stays quiet for a while (no log floods)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.quiet_until = 0.0
        self.suppressed = 0

    def error(self, operation: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now < self.quiet_until:
            self.suppressed += 1
            return
        from scancache.cache.urls import redact_text  # here: a run without errors never needs it

        extra = f" ({self.suppressed} more suppressed)" if self.suppressed else ""
        log.warning("cache %s: %s failed: %s: %s%s", self.name, operation,
                    type(exc).__name__, redact_text(str(exc)), extra)
        self.suppressed = 0
        self.quiet_until = now + _ERROR_LOG_QUIET_SECONDS


class CacheBase:
    """A Cache's state, policy and read steps, shared by its sync face (Cache) and async face
    (AsyncCacheAPI). Not used on its own: construct a Cache."""

    _index_get: Callable[[str], Any] | None  # the memory index's dict.get, when there is one
    _index_touch: Callable[[str], Any]  # its move_to_end (LRU order)

    def __init__(
        self,
        config: CacheConfig | None = None,
        *,
        backend: Backend | None = None,
        clock: Callable[[], float] = time.time,
        name: str | None = None,
    ) -> None:
        self.config = config = config if config is not None else CacheConfig()
        self.name = name or config.namespace
        self.clock = clock
        self.codec = Codec(
            compression_threshold=config.compression_threshold_bytes
            if config.enable_compression else None,
            signing_key=config.signing_key,
        )
        if backend is None:
            from scancache.cache.factory import make_backend

            backend = make_backend(config, self.codec, clock=clock)
        self.backend = backend
        self.stats = CacheStats()
        self._burst_log = _BurstLog(self.name)
        self._flights = AsyncSingleFlight()
        self._thread_flights = SingleFlight()
        # enable_metrics=False: counters only, no latency sampling (the countdown never runs out).
        self._sample_every = SAMPLE_EVERY if config.enable_metrics else 1 << 62
        self._countdown = self._sample_every  # get's; set has its own, so neither biases the other
        self._set_countdown = self._sample_every
        self._next_cleanup = clock() + config.cleanup_interval
        self._backend_get = backend.get
        self._holds_records = backend.holds_records
        self._wants_blob = backend.wants_blob
        self._size_of = self.codec.size_of
        # Only a pure in-process backend may be called synchronously from the event loop.
        self._memory_only = backend.holds_records and not backend.wants_blob
        # A backend with an in-process index (memory, hybrid's front) lends get() its dict methods:
        # the hit path then costs two dict operations and no extra call frame.
        lookup = getattr(backend, "lookup_functions", None)
        self._index_get, self._index_touch = lookup() if lookup is not None else (None, _no_index)
        if config.redis_url and config.enable_metrics:  # workers sharing Redis show in the fleet view
            from scancache.fleet import attach

            attach(self)

    # ------------------------------------------------------------------ policy
    def _lifetimes(self, value: Any, ttl: TTL, stale_ttl: float | None) -> tuple[float, float]:
        """(ttl, stale) in seconds after clamping; ttl_seconds is the default and the ceiling."""
        config = self.config
        ceiling = config.ttl_seconds
        kind = type(ttl)
        # Any: type() identity (cheaper than isinstance) narrows nothing for a type checker.
        seconds: Any
        if kind is float or kind is int:  # the common case first: no callable() or isinstance()
            seconds = ttl
        else:
            seconds = ttl(value) if callable(ttl) else ttl
            if seconds is None:
                seconds = ceiling
            elif not isinstance(seconds, int | float) or isinstance(seconds, bool):
                raise ValueError(f"ttl must be a number of seconds, got {seconds!r}")
        if seconds != seconds:
            raise ValueError(f"ttl must be a number of seconds, got {seconds!r}")
        if seconds < 0:
            raise ValueError(f"ttl must not be negative, got {seconds}")
        stale = config.stale_ttl_seconds if stale_ttl is None else stale_ttl
        if not isinstance(stale, int | float) or isinstance(stale, bool) or not 0 <= stale < _INF:
            # NaN would never be purged from memory; inf overflows SQLite's REAL and Redis's PX.
            raise ValueError(f"stale_ttl must be a finite number of seconds >= 0, got {stale!r}")
        return (float(seconds) if seconds < ceiling else float(ceiling)), float(stale)

    def _make(self, key: str, value: Any, ttl: Any, stale_ttl: Any, compress: bool = True
              ) -> tuple[Record, bytes | None] | None:
        """(record, blob) to store for key, or None for a zero lifetime. ttl is a TTL and stale_ttl a
        float | None, typed Any because the fast path checks them by type() identity (no narrowing);
        compress=False: the blob is never compressed (see Cache.set)."""
        if type(key) is not str and not isinstance(key, str):
            raise TypeError(f"cache keys are str, got {type(key).__name__}")
        kind = type(ttl)
        stale_kind = type(stale_ttl)
        if ((kind is float or kind is int) and ttl >= 0
                and (stale_kind is float or stale_kind is int) and 0 <= stale_ttl < _INF):
            # The hot path (DNS answers: explicit ttl and stale_ttl): _lifetimes without its call.
            ceiling = self.config.ttl_seconds
            seconds, stale = (ttl if ttl < ceiling else ceiling), stale_ttl
        else:
            seconds, stale = self._lifetimes(value, ttl, stale_ttl)
        if seconds <= 0 and stale <= 0:
            return None  # a zero lifetime stores nothing
        expires_at = self.clock() + seconds
        stale_until = expires_at + stale
        if self._wants_blob:
            blob = self.codec.encode(key, value, expires_at, stale_until, compress)
            # A hybrid's memory tier holds the decoded value: count that, not the compressed blob.
            nbytes = self._size_of(value) if self._holds_records else len(blob)
            return _record(Record, (value, expires_at, stale_until, nbytes)), blob
        # Sizing packs the value once: it also proves the value storable (TypeError otherwise),
        # so memory refuses exactly what the byte backends refuse.
        return _record(Record, (value, expires_at, stale_until, self._size_of(value))), None

    def _load(self, key: str, raw: Any) -> Record | None:
        """A Record from what the backend returned; None (and the row removed) when corrupt."""
        if self._holds_records:
            record: Record = raw  # a record-holding backend returns its Record
            return record
        try:
            value, expires_at, stale_until = self.codec.decode(key, raw)
        except CorruptEntry as exc:
            self.stats.corrupt += 1
            self.stats.errors += 1
            self._burst_log.error("decode", exc)
            self._safe(self.backend.discard, key, raw)  # discard never waits on a locked file
            return None
        return _record(Record, (value, expires_at, stale_until, len(raw)))

    def _failed(self, operation: str, exc: BaseException, *, misses: int = 0, write: bool = False
                ) -> None:
        """Count and log (once per burst) a backend failure; reads count it as misses too."""
        self.stats.errors += 1
        self.stats.misses += misses
        if write:
            self.stats.write_failures += 1
        self._burst_log.error(operation, exc)

    def _safe(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            self._failed(getattr(fn, "__name__", "call"), exc)
            return None

    def _classify(self, key: str, raw: Any, now: float, as_entry: bool, allow_stale: bool = False
                  ) -> Any:
        """The value (or a CacheEntry when as_entry) for raw, or _MISSING; counts stats."""
        record = self._load(key, raw)
        if record is None:
            self.stats.misses += 1
            return _MISSING
        if now < record.expires_at:
            self.stats.hits += 1
            if as_entry:
                return CacheEntry(record.value, record.expires_at, record.stale_until, False)
            return record.value
        if now < record.stale_until:
            if allow_stale:
                self.stats.stale_hits += 1
                return CacheEntry(record.value, record.expires_at, record.stale_until, True)
            self.stats.misses += 1
            return _MISSING
        self.stats.expirations += 1
        self.stats.misses += 1
        self._safe(self.backend.discard, key, raw)
        return _MISSING

    def _maybe_cleanup(self, now: float) -> None:
        if now >= self._next_cleanup:
            self._next_cleanup = now + self.config.cleanup_interval
            self.cleanup(now)

    def cleanup(self, now: float | None = None) -> int:
        """Remove entries past their stale window now; returns how many. A scan of the entries."""
        removed = self._safe(self.backend.purge_expired, self.clock() if now is None else now) or 0
        self.stats.expirations += removed
        return removed

    # ------------------------------------------------------------------ reads (both faces)
    def get(self, key: str, default: Any = None) -> Any:
        """The fresh value for key, else default. O(1) in memory; never raises on backend failure."""
        self._countdown -= 1
        if self._countdown > 0 and self._index_get is not None:
            record = self._index_get(key)
            if record is not None and self.clock() < record.expires_at:
                try:
                    self._index_touch(key)
                except KeyError:  # removed by another thread meanwhile: still a valid read
                    pass
                self.stats.hits += 1
                return record.value
        if self._countdown <= 0:
            self._countdown = self._sample_every
            return self._timed("get", self._get, key, default)
        return self._get(key, default)

    def _get(self, key: str, default: Any) -> Any:
        try:
            raw = self._backend_get(key)
        except Exception as exc:
            self._failed("get", exc, misses=1)
            return default
        if raw is None:
            self.stats.misses += 1
            return default
        # Inline fast path of _classify for memory/hybrid records that are fresh.
        if self._holds_records and self.clock() < raw.expires_at:
            self.stats.hits += 1
            return raw.value
        value = self._classify(key, raw, self.clock(), False)
        return default if value is _MISSING else value

    def _timed(self, operation: str, fn: Callable[..., _T], *args: Any) -> _T:
        start = time.perf_counter_ns()
        try:
            return fn(*args)
        finally:
            self.stats.record_latency(operation, time.perf_counter_ns() - start)

    def get_entry(self, key: str, *, allow_stale: bool = True) -> CacheEntry | None:
        """The entry for key with its times, including a stale one when allow_stale; else None."""
        self._countdown -= 1
        if self._countdown <= 0:  # sampled like get(), so callers that only read entries show latency
            self._countdown = self._sample_every
            return self._timed("get", self._get_entry, key, allow_stale)
        return self._get_entry(key, allow_stale)

    def _get_entry(self, key: str, allow_stale: bool) -> CacheEntry | None:
        try:
            raw = self._backend_get(key)
        except Exception as exc:
            self._failed("get", exc, misses=1)
            return None
        return self._entry(key, raw, allow_stale)

    def _entry(self, key: str, raw: Any, allow_stale: bool) -> CacheEntry | None:
        """The CacheEntry for what the backend returned (None: a counted miss); sync and async."""
        if raw is None:
            self.stats.misses += 1
            return None
        entry = self._classify(key, raw, self.clock(), True, allow_stale)
        return None if entry is _MISSING else entry

    def get_entries(self, keys: Iterable[str]) -> dict[str, CacheEntry]:
        """{key: CacheEntry} for the keys among keys with a fresh or stale entry: get_entry for many
        keys in one backend read (get_many: one query per 500 keys on SQLite, one MGET on Redis)."""
        keys = list(keys)
        try:
            found = self.backend.get_many(keys)
        except Exception as exc:
            self._failed("get_many", exc, misses=len(keys))
            return {}
        return self._collect(keys, found, as_entry=True)

    def _collect(self, keys: Sequence[str], found: Mapping[str, Any], *, as_entry: bool = False
                 ) -> dict[str, Any]:
        """{key: value} of the fresh keys among found (as_entry: {key: CacheEntry}, stale ones too);
        counts stats. The body of get_many and get_entries, sync and async."""
        now = self.clock()
        out = {}
        hits = 0
        holds_records = self._holds_records
        decode = self.codec.decode
        for key in keys:
            raw = found.get(key)
            if raw is None:
                self.stats.misses += 1
                continue
            # Fresh entries, the bulk of a warm batch, skip _classify's frames and Record.
            if holds_records:
                if now < raw.expires_at:
                    hits += 1
                    out[key] = (CacheEntry(raw.value, raw.expires_at, raw.stale_until, False)
                                if as_entry else raw.value)
                    continue
            else:
                try:
                    value, expires_at, stale_until = decode(key, raw)
                except CorruptEntry:
                    pass  # _classify below counts it and removes the row
                else:
                    if now < expires_at:
                        hits += 1
                        out[key] = (CacheEntry(value, expires_at, stale_until, False)
                                    if as_entry else value)
                        continue
            value = self._classify(key, raw, now, as_entry, as_entry)
            if value is not _MISSING:
                out[key] = value
        self.stats.hits += hits
        return out

    def _items(self, mapping: Mapping[str, Any], ttl: TTL, stale_ttl: float | None,
               compress: bool = True) -> tuple[list[WriteItem], list[str]]:
        """(entries to store, keys whose zero lifetime means their old value must go)."""
        items, dead = [], []
        for key, value in mapping.items():
            made = self._make(key, value, ttl, stale_ttl, compress)
            if made is None:
                dead.append(key)
            else:
                items.append(WriteItem(key, made[0], made[1]))
        return items, dead

