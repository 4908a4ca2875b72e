"""`@cache.cached(...)`: cache a sync or async function's (or method's) results in a Cache.

    @cache.cached(ttl=300, stale_ttl=60)
    async def whois(domain: str) -> dict: ...

    await whois("example.com")          # computed once; concurrent callers share the call
    whois.invalidate("example.com")     # or: await whois.ainvalidate("example.com")
    whois.cache_info()                  # hits, misses, stale_hits, early_refreshes, computes, ...

Keys come from callkeys.KeyBuilder (stable across processes; an argument without a stable encoding
is a TypeError at call time). Reads, single-flight, early refresh (XFetch) and stale-while-revalidate
are refresh.get_or_compute's, the same code path as Cache.get_or_set.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, NamedTuple

from scancache.cache.callkeys import InstanceKey, KeyBuilder
from scancache.cache.entry import _MISSING, TTL
from scancache.cache.refresh import (
    DEFAULT_BETA,
    EARLY,
    RefreshCounters,
    _Plan,
    afull_get_or_compute,
    fresh_hit,
    full_get_or_compute,
)

__all__ = ["CacheInfo", "CachedFunction", "cached"]


class CacheInfo(NamedTuple):
    """Counters of one decorated function, since it was decorated (this process only)."""

    hits: int
    misses: int
    stale_hits: int
    early_refreshes: int
    computes: int
    refresh_errors: int


class CachedFunction:
    """A function whose results live in a Cache; calls, invalidate and cache_info.

    Used as a method, `self` is not an ordinary argument: its class's name, and the instance's
    `__cache_key__()` if the class defines one, go into the key (see callkeys.InstanceKey).
    """

    def __init__(self, cache: Any, fn: Callable[..., Any], ttl: TTL, key: str | Callable[..., str] | None,
                 stale_ttl: float | None, name: str | None, early_refresh: float) -> None:
        if not callable(fn):
            raise TypeError(f"cached() decorates functions, got {type(fn).__name__}")
        self.cache = cache
        self.fn = fn
        self.ttl = ttl
        self.stale_ttl = stale_ttl
        self.early_refresh = early_refresh
        self.is_async = inspect.iscoroutinefunction(fn)
        self.keys = KeyBuilder(fn, key, name)
        self.counters = RefreshCounters()
        self._serve_stale = stale_ttl is not None and stale_ttl > 0
        functools.update_wrapper(self, fn)

    def key_for(self, *args: Any, **kwargs: Any) -> str:
        """The cache key a call with these arguments uses (TypeError if they cannot form one)."""
        return self.keys.build(args, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(args, args, kwargs)

    def _call(self, key_args: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The cached result (a coroutine for async functions) of fn(*args, **kwargs)."""
        key = self.keys.build(key_args, kwargs)
        if self.is_async:
            return self._acall(key, args, kwargs)
        hit = fresh_hit(self.cache, key, self.early_refresh, self.counters)
        if hit is not _MISSING and hit is not EARLY:
            return hit
        return full_get_or_compute(self._plan(key, args, kwargs), drawn=hit is EARLY)

    async def _acall(self, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        hit = fresh_hit(self.cache, key, self.early_refresh, self.counters)
        if hit is not _MISSING and hit is not EARLY:
            return hit
        return await afull_get_or_compute(self._plan(key, args, kwargs), drawn=hit is EARLY)

    def _plan(self, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fn = self.fn
        return _Plan(self.cache, key, lambda: fn(*args, **kwargs), self.ttl, self.stale_ttl,
                     self.early_refresh, self._serve_stale, self.counters)

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Remove the cached result of the call with these arguments; True if there was one."""
        return bool(self.cache.delete(self.keys.build(args, kwargs)))

    async def ainvalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Async invalidate (awaits the backend instead of blocking the event loop)."""
        return bool(await self.cache.adelete(self.keys.build(args, kwargs)))

    def invalidate_all(self) -> int | None:
        """Remove every cached result of this function (its key prefix); how many, None on failure.
        Not for template or key-function keys, whose prefix is the caller's to choose."""
        if self.keys.key is not None:
            raise TypeError("invalidate_all() needs the default keys; use cache.invalidate(prefix=...)")
        return self.cache.invalidate(prefix=self.keys.prefix)

    def cache_info(self) -> CacheInfo:
        """hits, misses, stale_hits, early_refreshes, computes, refresh_errors of this function."""
        return CacheInfo(**asdict(self.counters))

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return _BoundCached(self, instance)

    def __repr__(self) -> str:
        return f"<cached {self.keys.prefix[:-1]} in {self.cache!r}>"


class _BoundCached:
    """A CachedFunction bound to an instance (a method call): self goes in as an InstanceKey."""

    __slots__ = ("_instance", "_owner")

    def __init__(self, owner: CachedFunction, instance: Any) -> None:
        self._owner = owner
        self._instance = instance

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        instance = self._instance
        return self._owner._call((InstanceKey(instance), *args), (instance, *args), kwargs)

    def key_for(self, *args: Any, **kwargs: Any) -> str:
        return self._owner.keys.build((InstanceKey(self._instance), *args), kwargs)

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        return bool(self._owner.cache.delete(self.key_for(*args, **kwargs)))

    async def ainvalidate(self, *args: Any, **kwargs: Any) -> bool:
        return bool(await self._owner.cache.adelete(self.key_for(*args, **kwargs)))

    def cache_info(self) -> CacheInfo:
        return self._owner.cache_info()


def cached(cache: Any, ttl: TTL = None, *, key: str | Callable[..., str] | None = None,
           stale_ttl: float | None = None, name: str | None = None,
           early_refresh: float = DEFAULT_BETA) -> Callable[[Callable[..., Any]], CachedFunction]:
    """A decorator caching a function's results in cache (see Cache.cached for the options)."""
    if early_refresh < 0:
        raise ValueError(f"early_refresh must not be negative, got {early_refresh}")

    def decorate(fn: Callable[..., Any]) -> CachedFunction:
        return CachedFunction(cache, fn, ttl, key, stale_ttl, name, early_refresh)

    return decorate
