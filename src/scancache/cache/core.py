"""Cache: the one front every scancache feature uses, over any backend.

It owns, once for all backends: the TTL policy (ttl_seconds is default and ceiling), stale windows,
serialization (via Codec), stats, single-flight, periodic cleanup and the rule that a failing backend
never raises from a read. State, policy and reads live in CacheBase (cache_base.py), the async twins
in AsyncCacheAPI (async_api.py); this module adds the sync writes, stats and lifecycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from scancache.cache.async_api import AsyncCacheAPI
from scancache.cache.entry import DEFAULT_BETA, TTL, CacheEntry

if TYPE_CHECKING:
    from scancache.cache.write_behind import WriteBehind

__all__ = ["Cache", "CacheEntry", "TTL"]


def _first_get_or_compute(*args: Any, **kwargs: Any) -> Any:
    """refresh.get_or_compute, imported at the first get_or_set and then called directly: refresh.py
    (random, the lease machinery) is for get-or-compute alone, and a process that only reads and
    writes (a warm CLI run) never imports it. An import inside get_or_set would cost its hit path
    ~0.4 us a call (about doubling it)."""
    global _get_or_compute
    from scancache.cache.refresh import get_or_compute

    _get_or_compute = get_or_compute
    return get_or_compute(*args, **kwargs)


_get_or_compute: Callable[..., Any] = _first_get_or_compute


class Cache(AsyncCacheAPI):
    """A key-value cache of JSON-like values with TTLs, over the backend that config names.

    Keys are str. Values are None, bool, int, float, str, bytes, lists, tuples and dicts of those
    (tuples read back as lists from byte backends); anything else is a TypeError on set.
    Reads never raise for backend failures (a miss, counted in stats["errors"]); writes return
    False when the backend failed (the hybrid memory tier still holds the value).
    `clock` returns epoch seconds; inject one to test expiry without sleeping.
    """

    # ------------------------------------------------------------------ sync API
    def set(self, key: str, value: Any, ttl: TTL = None, *, stale_ttl: float | None = None,
            tags: Iterable[str] | None = None, compress: bool = True) -> bool:
        """Store value for ttl seconds (default and ceiling: ttl_seconds) plus stale_ttl.

        Returns False if the backend failed (logged, counted); raises TypeError/ValueError for a
        key, value or ttl that can never be stored. tags: names that invalidate_tag(tag) removes
        this entry by (see cache/tags.py). compress=False stores the value uncompressed whatever
        its size (byte backends; config.compression_threshold_bytes decides otherwise): for values
        read on every run, which then cost no decompression, and a process that reads only such
        values never imports zstandard (~2.5 ms of a warm CLI run).
        """
        if tags is not None:
            from scancache.cache.tags import set_tagged

            return set_tagged(self, key, value, ttl, stale_ttl, tags, compress)
        self._set_countdown -= 1
        if self._set_countdown <= 0:
            self._set_countdown = self._sample_every
            return self._timed("set", self._set, key, value, ttl, stale_ttl, compress)
        return self._set(key, value, ttl, stale_ttl, compress)

    def _set(self, key: str, value: Any, ttl: TTL, stale_ttl: float | None,
             compress: bool = True) -> bool:
        made = self._make(key, value, ttl, stale_ttl, compress)
        if made is None:  # a zero lifetime: the write is "nothing cached", so the old value goes
            try:
                self.backend.delete(key)
            except Exception as exc:
                self._failed("set", exc, write=True)
                return False
            return True
        record, blob = made
        try:
            self.backend.set(key, record, blob)
        except Exception as exc:
            self._failed("set", exc, write=True)
            return False
        self.stats.sets += 1
        now = self.clock()
        if now >= self._next_cleanup:  # _maybe_cleanup inlined: one call fewer per set
            self._maybe_cleanup(now)
        return True

    def delete(self, key: str) -> bool:
        """Remove key; True if it was there. Backend failure: False, logged and counted."""
        self.stats.deletes += 1
        return bool(self._safe(self.backend.delete, key))

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """{key: value} for the fresh keys among keys (one round trip on Redis and SQLite)."""
        keys = list(keys)
        start = time.perf_counter_ns()
        try:
            found = self.backend.get_many(keys)
        except Exception as exc:
            self._failed("get_many", exc, misses=len(keys))
            return {}
        out = self._collect(keys, found)
        if self.config.enable_metrics:
            self.stats.record_latency("get_many", time.perf_counter_ns() - start)
        return out

    def set_many(self, mapping: Mapping[str, Any], ttl: TTL = None, *,
                 stale_ttl: float | None = None, compress: bool = True) -> bool:
        """Store every item (one transaction on SQLite, one pipeline on Redis); False on failure.
        compress: as for set."""
        start = time.perf_counter_ns()
        items, dead = self._items(mapping, ttl, stale_ttl, compress)
        try:
            self.backend.set_many(items)
            for key in dead:
                self.backend.delete(key)
        except Exception as exc:
            self._failed("set_many", exc, write=True)
            return False
        self.stats.sets += len(items)
        if self.config.enable_metrics:
            self.stats.record_latency("set_many", time.perf_counter_ns() - start)
        self._maybe_cleanup(self.clock())
        return True

    def invalidate_tag(self, tag: str) -> int | None:
        """Remove every entry set with tag before this call (on every backend, see cache/tags.py);
        returns how many keys the tag named, or None when the backend failed."""
        from scancache.cache.tags import invalidate_tag_counted

        return invalidate_tag_counted(self, tag)

    def invalidate(self, *, prefix: str) -> int | None:
        """Remove every entry whose key starts with prefix, on any backend (see cache/prefix.py for
        what readers may see meanwhile); returns how many, or None when the backend failed (as clear)."""
        from scancache.cache.prefix import invalidate_prefix

        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        try:
            return invalidate_prefix(self.backend, prefix)
        except Exception as exc:
            self._failed("invalidate", exc)
            return None

    def clear(self) -> int | None:
        """Remove every entry of this cache's namespace; returns how many.

        None when the backend failed (Redis down, file locked): unlike 0 ("there was nothing to
        clear"), the entries may still be there. The failure is logged and counted in errors.
        """
        try:
            return int(self.backend.clear() or 0)
        except Exception as exc:
            self._failed("clear", exc)
            return None

    def write_behind(self, *, max_items: int = 256, max_delay: float = 0.005) -> WriteBehind:
        """Gathered async writes for bulk work: put() many entries, stored with one set_many per
        max_items entries or max_delay seconds (see scancache.cache.write_behind). Use it as
        `async with cache.write_behind() as writes:`; an entry is stored once its batch is flushed."""
        from scancache.cache.write_behind import WriteBehind

        return WriteBehind(self, max_items=max_items, max_delay=max_delay)

    def get_or_set(self, key: str, factory: Callable[[], Any], ttl: TTL = None, *,
                   stale_ttl: float | None = None, early_refresh: float = DEFAULT_BETA) -> Any:
        """The cached value, or factory() stored and returned; threads missing one key call it once.

        early_refresh is XFetch's beta (0: off): a hot entry is recomputed by one caller shortly
        before it expires, from its measured compute time (see cache/refresh.py).
        """
        return _get_or_compute(self, key, factory, ttl, stale_ttl=stale_ttl, beta=early_refresh)

    def cached(self, ttl: TTL = None, *, key: str | Callable[..., str] | None = None,
               stale_ttl: float | None = None, name: str | None = None,
               early_refresh: float = DEFAULT_BETA) -> Callable[[Callable[..., Any]], Any]:
        """Decorator caching a sync or async function's results here (see cache/decorator.py).

        key: None (a digest of all arguments), a template such as "whois:{domain}", or a function of
        the arguments returning a str; name: the key prefix instead of module.qualname; stale_ttl:
        serve a stale result at once and refresh it in the background; early_refresh: XFetch beta.
        """
        from scancache.cache.decorator import cached  # lazy: inspect and hashlib only when used

        return cached(self, ttl, key=key, stale_ttl=stale_ttl, name=name, early_refresh=early_refresh)

    @property
    def inflight_joined(self) -> int:
        """How many callers waited for another caller's factory instead of running their own."""
        return self._flights.joined + self._thread_flights.joined

    # ------------------------------------------------------------------ stats and lifecycle
    def __len__(self) -> int:
        return int(self._safe(self.backend.size) or 0)

    def get_stats(self) -> dict[str, Any]:
        """hits, misses, stale_hits, hit_rate, size, bytes, evictions, expirations, errors, ..."""
        stats = self.stats.as_dict(
            size=int(self._safe(self.backend.size) or 0),
            size_bytes=int(self._safe(self.backend.size_bytes) or 0),
            evictions=int(getattr(self.backend, "evictions", 0)),
        )
        # A backend that meets bad entries or failures on its own (hybrid's back tier) reports them.
        stats["corrupt"] += int(getattr(self.backend, "corrupt", 0))
        stats["errors"] += int(getattr(self.backend, "corrupt", 0)) + int(
            getattr(self.backend, "back_errors", 0))
        stats["backend"] = self.config.cache_type.value
        stats["inflight_joined"] = self.inflight_joined
        return stats

    def close(self) -> None:
        """Release files and connections; the cache must not be used afterwards."""
        self._safe(self.backend.close)

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Cache {self.name!r} {self.config.cache_type.value}>"
