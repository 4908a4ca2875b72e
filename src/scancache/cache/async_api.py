"""The Cache's async API: the twins of its sync methods, for use inside an event loop.

Memory reads and writes run inline (a dict operation never blocks); every other backend is called
through its async methods, and work that may wait on another process (an SQLite purge) goes to a
thread, so nothing here blocks the loop. It shares the Cache's policy, stats and single-flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from scancache.cache.backend import to_thread
from scancache.cache.cache_base import CacheBase
from scancache.cache.entry import _MISSING, DEFAULT_BETA, TTL, CacheEntry

__all__ = ["AsyncCacheAPI"]


async def _first_aget_or_compute(*args: Any, **kwargs: Any) -> Any:
    """refresh.aget_or_compute, imported at the first aget_or_set and then called directly (as
    core.py does for get_or_set: a process that never computes through the cache never imports
    refresh.py)."""
    global _aget_or_compute
    from scancache.cache.refresh import aget_or_compute

    _aget_or_compute = aget_or_compute
    return await aget_or_compute(*args, **kwargs)


_aget_or_compute: Callable[..., Any] = _first_aget_or_compute


class AsyncCacheAPI(CacheBase):
    """Async twins of Cache's methods (aget, aset, aget_many, aget_or_set, ...): Cache's async face.

    It inherits the Cache's state, policy, stats and single-flight from CacheBase, as the sync face
    does, so both run the same steps and differ only in how they call the backend.
    """

    async def aget(self, key: str, default: Any = None) -> Any:
        """Async get; memory reads run inline (no thread hop), others use the backend's async API."""
        if self._memory_only:
            return self.get(key, default)
        if self._index_get is not None:  # hybrid: a fresh front hit needs no await
            record = self._index_get(key)
            if record is not None and self.clock() < record.expires_at:
                try:
                    self._index_touch(key)  # keep LRU order: async hits count as uses too
                except KeyError:
                    pass
                self.stats.hits += 1
                return record.value
        try:
            raw = await self.backend.aget(key)
        except Exception as exc:
            self._failed("aget", exc, misses=1)
            return default
        if raw is None:
            self.stats.misses += 1
            return default
        value = self._classify(key, raw, self.clock(), False)
        return default if value is _MISSING else value

    async def aget_entry(self, key: str, *, allow_stale: bool = True) -> CacheEntry | None:
        """Async get_entry; the hybrid back tier is awaited, never called from the event loop."""
        if self._memory_only:
            return self.get_entry(key, allow_stale=allow_stale)
        self._countdown -= 1
        sampled = self._countdown <= 0
        if sampled:  # one read in _sample_every is timed, as get() does
            self._countdown = self._sample_every
            start = time.perf_counter_ns()
        try:
            raw = await self.backend.aget(key)
        except Exception as exc:
            self._failed("aget", exc, misses=1)
            return None
        entry = self._entry(key, raw, allow_stale)
        if sampled:
            self.stats.record_latency("get", time.perf_counter_ns() - start)
        return entry

    async def aset(self, key: str, value: Any, ttl: TTL = None, *, stale_ttl: float | None = None,
                   tags: Iterable[str] | None = None, compress: bool = True) -> bool:
        """Async set (a tagged set runs in a thread unless the cache is memory-only)."""
        if tags is not None:
            from scancache.cache.tags import set_tagged

            if self._memory_only:
                return set_tagged(self, key, value, ttl, stale_ttl, tags, compress)
            return await to_thread(set_tagged, self, key, value, ttl, stale_ttl, tags, compress)
        made = self._make(key, value, ttl, stale_ttl, compress)
        if made is None:  # a zero lifetime: the old value goes
            try:
                await self.backend.adelete(key)
            except Exception as exc:
                self._failed("aset", exc, write=True)
                return False
            return True
        try:
            await self.backend.aset(key, made[0], made[1])
        except Exception as exc:
            self._failed("aset", exc, write=True)
            return False
        self.stats.sets += 1
        await self._amaybe_cleanup(self.clock())
        return True

    async def adelete(self, key: str) -> bool:
        """Async delete."""
        self.stats.deletes += 1
        try:
            return bool(await self.backend.adelete(key))
        except Exception as exc:
            self._failed("adelete", exc)
            return False

    async def aget_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Async get_many (MGET on Redis)."""
        keys = list(keys)
        try:
            found = await self.backend.aget_many(keys)
        except Exception as exc:
            self._failed("aget_many", exc, misses=len(keys))
            return {}
        return self._collect(keys, found)

    async def aget_entries(self, keys: Iterable[str]) -> dict[str, CacheEntry]:
        """Async get_entries: {key: CacheEntry} (fresh or stale) in one backend read."""
        keys = list(keys)
        if self._memory_only:
            return self.get_entries(keys)
        try:
            found = await self.backend.aget_many(keys)
        except Exception as exc:
            self._failed("aget_many", exc, misses=len(keys))
            return {}
        return self._collect(keys, found, as_entry=True)

    async def aset_many(self, mapping: Mapping[str, Any], ttl: TTL = None, *,
                        stale_ttl: float | None = None, compress: bool = True) -> bool:
        """Async set_many (one pipeline on Redis)."""
        items, dead = self._items(mapping, ttl, stale_ttl, compress)
        try:
            await self.backend.aset_many(items)
            for key in dead:
                await self.backend.adelete(key)
        except Exception as exc:
            self._failed("aset_many", exc, write=True)
            return False
        self.stats.sets += len(items)
        await self._amaybe_cleanup(self.clock())
        return True

    async def ainvalidate_tag(self, tag: str) -> int | None:
        """Async invalidate_tag: memory inline, other backends in a thread."""
        from scancache.cache.tags import invalidate_tag_counted

        if self._memory_only:
            return invalidate_tag_counted(self, tag)
        return await to_thread(invalidate_tag_counted, self, tag)

    async def ainvalidate(self, *, prefix: str) -> int | None:
        """Async invalidate(prefix=...): memory inline, other backends in a thread."""
        from scancache.cache.prefix import ainvalidate_prefix

        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        try:
            return await ainvalidate_prefix(self.backend, prefix)
        except Exception as exc:
            self._failed("invalidate", exc)
            return None

    async def aclear(self) -> int | None:
        """Async clear: how many entries went, or None when the backend failed (see Cache.clear)."""
        try:
            return int(await self.backend.aclear() or 0)
        except Exception as exc:
            self._failed("aclear", exc)
            return None

    async def acoalesce(self, key: Any, factory: Callable[[], Any]) -> Any:
        """Run factory once for all tasks asking for key at the same time; nothing is cached."""
        return await self._flights.run(key, factory)

    async def aget_or_set(self, key: str, factory: Callable[[], Any], ttl: TTL = None, *,
                          stale_ttl: float | None = None, early_refresh: float = DEFAULT_BETA) -> Any:
        """The cached value, or the result of factory() (sync or async) stored and returned.

        Concurrent callers of one missing key share one factory call (single-flight); a factory
        exception reaches every waiting caller and nothing is stored. ttl may be a function of the
        value. early_refresh: XFetch's beta (0: off), as for get_or_set.
        """
        return await _aget_or_compute(self, key, factory, ttl, stale_ttl=stale_ttl, beta=early_refresh)

    async def _amaybe_cleanup(self, now: float) -> None:
        # A purge may wait on another process's SQLite lock: never on the event loop.
        if now >= self._next_cleanup:
            self._next_cleanup = now + self.config.cleanup_interval
            if self._memory_only:
                self.cleanup(now)
            else:
                await to_thread(self.cleanup, now)

    async def aclose(self) -> None:
        """Async close."""
        try:
            await self.backend.aclose()
        except Exception as exc:
            self._burst_log.error("aclose", exc)

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
