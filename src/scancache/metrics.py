"""One view of every stats source (caches, DNS and vulnerability caches, module loaders) and its
Prometheus text exposition.

Sources register by name (`register_cache("dns", dns_cache)`, `register_loader("app", loader)`); the
registry holds them weakly, so registering never keeps a cache alive. `get_monitoring_data()` gathers
them into one JSON-able dict; `render_prometheus(data)` turns that dict into the text format that
Prometheus scrapes (version 0.0.4): a HELP and a TYPE line per family, counters named `*_total`,
gauges for sizes, ratios and latencies, and untyped samples for numbers this module does not know.
Only the standard library is imported.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "CONTENT_TYPE",
    "MetricsRegistry",
    "REGISTRY",
    "get_monitoring_data",
    "register_cache",
    "register_loader",
    "render_prometheus",
]

#: The Content-Type of the Prometheus text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Cache stats keys that only grow: rendered as counters scancache_cache_<key>_total.
_CACHE_COUNTERS = {
    "hits": "Lookups answered by a fresh entry.",
    "misses": "Lookups that found no usable entry.",
    "stale_hits": "Lookups answered by an entry past its TTL but inside its stale window.",
    "evictions": "Entries removed to stay within max_size or max_memory_mb.",
    "expirations": "Entries removed because their stale window ended.",
    "errors": "Backend failures (each counted as a miss or a failed write).",
    "corrupt": "Entries that failed to decode and were removed.",
    "sets": "Entries written.",
    "deletes": "Delete calls.",
    "write_failures": "Writes the backend refused.",
    "inflight_joined": "Callers that waited for another caller's fetch instead of fetching.",
    "retries": "Upstream requests retried after a failure.",
    "nvd_rate_waits": "Times an NVD request waited for the rate limit.",
    "stale_served": "Answers served from a stale entry because the upstream failed.",
    "mirror_answers": "Queries answered by the offline mirror.",
    "records_fetched": "Vulnerability records fetched one by one.",
    # DNS
    "upstream_queries": "DNS queries sent upstream (one per record type asked).",
    "upstream_lookups": "Names looked up upstream (cache misses and refreshes).",
    "timeouts": "Upstream DNS queries that timed out.",
    "servfails": "Upstream DNS answers with SERVFAIL.",
    "refused": "Upstream DNS answers with REFUSED.",
    "nxdomain": "Upstream DNS answers with NXDOMAIN.",
    "nodata": "Upstream DNS answers with no records of the type asked.",
    "cname_followups": "Extra queries made to follow a CNAME.",
    "tcp_fallbacks": "DNS queries repeated over TCP after a truncated answer.",
    "malformed": "Upstream answers that could not be parsed.",
    "coalesced": "Lookups that joined another caller's upstream query for the same name.",
    "prefetches": "Background refreshes started by a hit near the end of its TTL.",
    "background_refreshes": "Background refreshes of stale answers.",
    "refresh_failures": "Background refreshes that failed.",
}
# Cache stats keys that go up and down: metric name, help.
_CACHE_GAUGES = {
    "size": ("scancache_cache_entries", "Entries held now."),
    "bytes": ("scancache_cache_bytes", "Bytes held now (encoded size)."),
    "hit_rate": ("scancache_cache_hit_ratio", "Share of lookups answered from the cache since start."),
    "refreshing": ("scancache_cache_refreshing", "Background refreshes running now."),
}
# Keys that are not metrics, or are rendered by a dedicated rule below.
_CACHE_SKIP = {"latency", "backend", "requests", "requests_total", "upstream", "nameservers"}
_KNOWN_CACHE_FAMILIES = frozenset(
    [m for m, _ in _CACHE_GAUGES.values()] + [f"scancache_cache_{k}_total" for k in _CACHE_COUNTERS])
_QUANTILES = (("p50_us", "0.5"), ("p90_us", "0.9"), ("p99_us", "0.99"))
_NAME_BAD = re.compile(r"[^a-zA-Z0-9_]")


class _Family:
    """One metric family: its type, help text and samples (labels, value)."""

    __slots__ = ("help", "kind", "samples")

    def __init__(self, kind: str, help_text: str) -> None:
        self.kind = kind
        self.help = help_text
        self.samples: list[tuple[str, dict[str, str], float]] = []


class _Exposition:
    """Collects samples family by family so each family's lines come out together."""

    def __init__(self) -> None:
        self.families: dict[str, _Family] = {}

    def add(self, name: str, kind: str, help_text: str, labels: Mapping[str, Any], value: Any) -> None:
        number = _number(value)
        if number is None:
            return
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = _Family(kind, help_text)
        family.samples.append((name, {k: str(v) for k, v in labels.items()}, number))

    def render(self) -> str:
        lines: list[str] = []
        for name, family in self.families.items():
            lines.append(f"# HELP {name} {_escape_help(family.help)}")
            lines.append(f"# TYPE {name} {family.kind}")
            for sample_name, labels, value in family.samples:
                lines.append(f"{sample_name}{_labels(labels)} {_format(value)}")
        return "\n".join(lines) + "\n" if lines else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _format(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items()) + "}"


def _metric_part(text: str) -> str:
    """A string made safe for use inside a metric name."""
    cleaned = _NAME_BAD.sub("_", str(text)).strip("_").lower()
    return cleaned or "value"


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
        return weakref.ref(source)
    except TypeError:
        return lambda: source


class MetricsRegistry:
    """Named stats sources gathered into one JSON-able dict; holds each source weakly.

    A cache source is anything with get_stats() -> dict (Cache, DNSCache, VulnerabilityDBCache);
    a loader source anything with get_monitoring_data() -> dict (LazyModuleLoader). Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._caches: dict[str, Callable[[], Any]] = {}
        self._loaders: dict[str, Callable[[], Any]] = {}

    def register_cache(self, name: str, source: Any) -> None:
        """Report source.get_stats() under cache=name (replaces an earlier source of that name)."""
        if not callable(getattr(source, "get_stats", None)):
            raise TypeError(f"cache source {name!r} has no get_stats()")
        with self._lock:
            self._caches[str(name)] = _ref(source)

    def register_loader(self, name: str, loader: Any) -> None:
        """Report loader.get_monitoring_data() under loader=name."""
        if not callable(getattr(loader, "get_monitoring_data", None)):
            raise TypeError(f"loader source {name!r} has no get_monitoring_data()")
        with self._lock:
            self._loaders[str(name)] = _ref(loader)

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

    def collect(self) -> dict[str, Any]:
        """{"version", "time", "process", "caches": {name: stats}, "loaders": {name: data},
        "errors": {name: message}}. A source that raises is reported under errors, never raised.
        Cost: one get_stats() per source (a COUNT query for SQLite, a round trip for Redis)."""
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


def register_cache(name: str, source: Any) -> None:
    """Register a cache (anything with get_stats()) in the process-wide registry."""
    REGISTRY.register_cache(name, source)


def register_loader(name: str, loader: Any) -> None:
    """Register a loader (anything with get_monitoring_data()) in the process-wide registry."""
    REGISTRY.register_loader(name, loader)


def get_monitoring_data(registry: MetricsRegistry | None = None) -> dict[str, Any]:
    """Every registered source's stats as one JSON-able dict (see MetricsRegistry.collect)."""
    return (registry or REGISTRY).collect()


# ---------------------------------------------------------------------------------- Prometheus
def _render_cache(out: _Exposition, name: str, stats: Mapping[str, Any]) -> None:
    labels = {"cache": name}
    if isinstance(stats.get("backend"), str):
        out.add("scancache_cache_info", "gauge", "Backend of each cache (value is always 1).",
                {"cache": name, "backend": stats["backend"]}, 1)
    for key, value in stats.items():
        if key in _CACHE_SKIP:
            continue
        if key in _CACHE_COUNTERS:
            out.add(f"scancache_cache_{key}_total", "counter", _CACHE_COUNTERS[key], labels, value)
        elif key in _CACHE_GAUGES:
            metric, help_text = _CACHE_GAUGES[key]
            out.add(metric, "gauge", help_text, labels, value)
        elif _taken(out, f"scancache_cache_{_metric_part(key)}"):
            continue  # a known family already has this name: never mix types in one family
        elif isinstance(value, Mapping):
            metric = f"scancache_cache_{_metric_part(key)}"
            for sub, number in value.items():
                out.add(metric, "untyped", f"The {key} figures this cache reports.",
                        {**labels, "key": sub}, number)
        else:
            metric = f"scancache_cache_{_metric_part(key)}"
            out.add(metric, "untyped", f"The {key} figure this cache reports.", labels, value)
    requests = stats.get("requests")
    if isinstance(requests, Mapping):
        for endpoint, count in requests.items():
            out.add("scancache_upstream_requests_total", "counter",
                    "Requests sent to upstream APIs, by endpoint.", {**labels, "endpoint": endpoint},
                    count)
    latency = stats.get("latency")
    if isinstance(latency, Mapping):
        for operation, figures in latency.items():
            if not isinstance(figures, Mapping):
                continue
            for field, quantile in _QUANTILES:
                micros = _number(figures.get(field))
                if micros is not None:
                    out.add("scancache_cache_latency_seconds", "gauge",
                            "Sampled latency of cache operations over a recent window, by quantile.",
                            {**labels, "operation": operation, "quantile": quantile},
                            round(micros / 1e6, 9))


def _taken(out: _Exposition, metric: str) -> bool:
    family = out.families.get(metric)
    return metric in _KNOWN_CACHE_FAMILIES or (family is not None and family.kind != "untyped")


def _module_rows(modules: Any) -> list[tuple[str, Mapping[str, Any]]]:
    if isinstance(modules, Mapping):
        return [(str(k), v) for k, v in modules.items() if isinstance(v, Mapping)]
    if isinstance(modules, list):
        return [(str(m.get("name")), m) for m in modules if isinstance(m, Mapping) and m.get("name")]
    return []


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if _number(mapping.get(key)) is not None:
            return mapping[key]
    return None


def _render_loader(out: _Exposition, name: str, data: Mapping[str, Any]) -> None:
    labels = {"loader": name}
    memory_mb = _first(data, "current_memory_mb")
    if memory_mb is not None:
        out.add("scancache_loader_memory_bytes", "gauge",
                "Resident memory of the process as the loader last measured it.", labels,
                float(memory_mb) * 1024 * 1024)
    for key, value in data.items():
        if key.endswith("_count") and _number(value) is not None:
            out.add("scancache_loader_modules", "gauge", "Modules the loader knows, by status.",
                    {**labels, "status": key[: -len("_count")]}, value)
    total = _first(data, "total_load_time", "total_load_seconds")
    if total is not None:
        out.add("scancache_loader_load_seconds_total", "counter", "Seconds spent loading modules.",
                labels, total)
    for module, row in _module_rows(data.get("modules")):
        seconds = _first(row, "load_seconds", "load_time", "seconds")
        if seconds is not None:
            out.add("scancache_loader_module_load_seconds", "gauge", "Seconds one module took to load.",
                    {**labels, "module": module}, seconds)
        memory = _first(row, "memory_mb", "memory_delta_mb")
        if memory is not None:
            out.add("scancache_loader_module_memory_bytes", "gauge",
                    "Resident memory one module's load added (approximate).",
                    {**labels, "module": module}, float(memory) * 1024 * 1024)


def render_prometheus(data: Mapping[str, Any] | None = None) -> str:
    """The Prometheus text exposition of data (default: get_monitoring_data() of REGISTRY)."""
    if data is None:
        data = get_monitoring_data()
    out = _Exposition()
    out.add("scancache_info", "gauge", "scancache version (value is always 1).",
            {"version": data.get("version", "")}, 1)
    process = data.get("process") or {}
    if "resident_memory_bytes" in process:
        out.add("scancache_process_resident_memory_bytes", "gauge", "Resident memory of this process.",
                {}, process["resident_memory_bytes"])
    elif "max_resident_memory_bytes" in process:
        out.add("scancache_process_max_resident_memory_bytes", "gauge",
                "Peak resident memory of this process.", {}, process["max_resident_memory_bytes"])
    for name, stats in (data.get("caches") or {}).items():
        if isinstance(stats, Mapping):
            _render_cache(out, name, stats)
    for name, loader in (data.get("loaders") or {}).items():
        if isinstance(loader, Mapping):
            _render_loader(out, name, loader)
    out.add("scancache_metrics_source_errors", "gauge",
            "Sources whose stats could not be read at this scrape.", {}, len(data.get("errors") or {}))
    return out.render()
