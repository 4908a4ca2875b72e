"""One view of every stats source (caches, DNS and vulnerability caches, module loaders) and its
Prometheus text exposition.

Sources register by name (`register_cache("dns", dns_cache)`, `register_loader("app", loader)`); a
plain `scancache.Cache` registers the same way. The registry holds them weakly, so registering never
keeps a cache alive. `get_monitoring_data()` gathers them into one JSON-able dict;
`render_prometheus(data)` turns that dict into the text format that Prometheus scrapes (version
0.0.4; the rules live in scancache/prometheus.py). Only the standard library is imported (its lock
and weak references through scancache.cache._threads, without threading and weakref themselves).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from scancache.cache._threads import Lock
from scancache.cache._threads import ref as weak_ref

__all__ = [
    "CONTENT_TYPE",
    "MetricsRegistry",
    "REGISTRY",
    "LoaderSource",
    "StatsSource",
    "get_monitoring_data",
    "register_automatically",
    "register_cache",
    "register_loader",
    "render_prometheus",
]

#: The Content-Type of the Prometheus text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StatsSource(Protocol):
    """A cache source: Cache, DNSCache, VulnerabilityDBCache, or anything with get_stats()."""

    def get_stats(self) -> dict[str, Any]: ...


class LoaderSource(Protocol):
    """A loader source: LazyModuleLoader, or anything with get_monitoring_data()."""

    def get_monitoring_data(self) -> dict[str, Any]: ...


def _jsonable(value: Any, depth: int = 0) -> Any:
    """value with anything JSON cannot hold turned into plain types (str for unknown objects)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth > 8:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v, depth + 1) for v in value]
    enum_value = getattr(value, "value", None)
    if isinstance(enum_value, str | int):
        return enum_value
    return str(value)


def _ref(source: Any) -> Callable[[], Any]:
    """A weak reference when the object allows one, else a strong one."""
    try:
        return weak_ref(source)
    except TypeError:
        return lambda: source


class MetricsRegistry:
    """Named stats sources gathered into one JSON-able dict; holds each source weakly.

    A cache source is anything with get_stats() -> dict (Cache, DNSCache, VulnerabilityDBCache);
    a loader source anything with get_monitoring_data() -> dict (LazyModuleLoader). Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = Lock()
        self._caches: dict[str, Callable[[], Any]] = {}
        self._loaders: dict[str, Callable[[], Any]] = {}

    def register_cache(self, name: str, source: StatsSource) -> None:
        """Report source.get_stats() under cache=name (replaces an earlier source of that name)."""
        if not callable(getattr(source, "get_stats", None)):
            raise TypeError(f"cache source {name!r} has no get_stats()")
        with self._lock:
            self._caches[str(name)] = _ref(source)

    def register_loader(self, name: str, loader: LoaderSource) -> None:
        """Report loader.get_monitoring_data() under loader=name."""
        if not callable(getattr(loader, "get_monitoring_data", None)):
            raise TypeError(f"loader source {name!r} has no get_monitoring_data()")
        with self._lock:
            self._loaders[str(name)] = _ref(loader)

    def add(self, base: str, source: StatsSource | LoaderSource, *, loader: bool = False) -> str:
        """Register source under base, or base#2, base#3... if a live source holds the name.

        Used by DNSCache, VulnerabilityDBCache and LazyModuleLoader to register themselves (when
        enable_metrics / enable_monitoring is on) without replacing each other. Returns the name.
        """
        method = "get_monitoring_data" if loader else "get_stats"
        if not callable(getattr(source, method, None)):
            raise TypeError(f"source {base!r} has no {method}()")
        with self._lock:
            table = self._loaders if loader else self._caches
            name, n = base, 1
            while name in table and table[name]() not in (None, source):
                n += 1
                name = f"{base}#{n}"
            table[name] = _ref(source)
        return name

    def unregister(self, name: str) -> None:
        """Forget the cache and loader registered under name (no error if there is none)."""
        with self._lock:
            self._caches.pop(name, None)
            self._loaders.pop(name, None)

    def clear(self) -> None:
        """Forget every source."""
        with self._lock:
            self._caches.clear()
            self._loaders.clear()

    def _live(self, table: dict[str, Callable[[], Any]]) -> list[tuple[str, Any]]:
        with self._lock:
            items = list(table.items())
        live = []
        for name, ref in items:
            source = ref()
            if source is None:
                with self._lock:
                    if table.get(name) is ref:
                        del table[name]
            else:
                live.append((name, source))
        return live

    def cache_sources(self) -> list[tuple[str, Any]]:
        """(name, source) of every live cache source, in registration order."""
        return self._live(self._caches)

    def collect(self) -> dict[str, Any]:
        """{"version", "time", "process", "caches": {name: stats}, "loaders": {name: data},
        "errors": {name: message}}. A source that raises is reported under errors, never raised.
        Cost: one get_stats() per source, whose size() is O(1) in memory, a scan of a narrow
        index for SQLite and a SCAN of the whole database for Redis (O(keys)): scrape slowly."""
        from scancache import __version__

        data: dict[str, Any] = {"version": __version__, "time": time.time(),
                                "process": _process_stats(), "caches": {}, "loaders": {},
                                "errors": {}}
        for key, table, method in (("caches", self._caches, "get_stats"),
                                   ("loaders", self._loaders, "get_monitoring_data")):
            for name, source in self._live(table):
                try:
                    data[key][name] = _jsonable(getattr(source, method)())
                except Exception as exc:  # one broken source must not hide the others
                    data["errors"][name] = f"{type(exc).__name__}: {exc}"
        return data


def _process_stats() -> dict[str, Any]:
    """This process's pid and resident memory (peak memory where /proc is missing)."""
    stats: dict[str, Any] = {"pid": os.getpid()}
    try:
        with open("/proc/self/statm", "rb") as statm:
            stats["resident_memory_bytes"] = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        try:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            stats["max_resident_memory_bytes"] = peak * 1024 if os.uname().sysname != "Darwin" else peak
        except (ImportError, OSError):
            pass
    return stats


#: The process-wide registry the module-level functions use.
REGISTRY = MetricsRegistry()


def register_cache(name: str, source: StatsSource) -> None:
    """Register a cache (a scancache.Cache, DNSCache, VulnerabilityDBCache: anything with get_stats())."""
    REGISTRY.register_cache(name, source)


def register_loader(name: str, loader: LoaderSource) -> None:
    """Register a loader (anything with get_monitoring_data()) in the process-wide registry."""
    REGISTRY.register_loader(name, loader)


def register_automatically(base: str, source: StatsSource | LoaderSource, *, loader: bool = False) -> str:
    """Add source to the process-wide registry under a free name derived from base."""
    return REGISTRY.add(base, source, loader=loader)


def get_monitoring_data(registry: MetricsRegistry | None = None) -> dict[str, Any]:
    """Every registered source's stats as one JSON-able dict (see MetricsRegistry.collect)."""
    return (registry or REGISTRY).collect()


def render_prometheus(data: Mapping[str, Any] | None = None) -> str:
    """The Prometheus text exposition of data (default: get_monitoring_data() of REGISTRY)."""
    from scancache.prometheus import render

    return render(get_monitoring_data() if data is None else data)
