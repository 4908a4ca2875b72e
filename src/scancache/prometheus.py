"""The Prometheus text exposition (version 0.0.4) of what scancache.metrics gathers.

A HELP and a TYPE line per family, counters named `*_total`, gauges for sizes, ratios and latencies,
and untyped samples for numbers this module does not know; a known family never mixes types. Only
the standard library is imported, and only when metrics are rendered.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["render"]

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
_CACHE_SKIP = {"latency", "backend", "requests", "requests_total", "upstream", "nameservers",
               "resolvers"}
# Per-resolver figures of a DNS resolver pool (DNSCache stats "resolvers"): key, metric, kind, help.
_RESOLVER_METRICS = (
    ("sent", "scancache_dns_resolver_queries_total", "counter", "Lookups sent to each resolver."),
    ("answered", "scancache_dns_resolver_answers_total", "counter", "Lookups each resolver answered."),
    ("timeouts", "scancache_dns_resolver_timeouts_total", "counter", "Lookups each resolver let time out."),
    ("errors", "scancache_dns_resolver_errors_total", "counter",
     "SERVFAIL, REFUSED and other error answers from each resolver."),
    ("wrong", "scancache_dns_resolver_wrong_answers_total", "counter",
     "Answers a trusted resolver contradicted, by resolver."),
    ("weight", "scancache_dns_resolver_weight", "gauge",
     "Health score of each resolver (share of lookups it gets, 0-1)."),
)
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
        """Add one sample to family name (made with kind and help on first use); skip non-numbers."""
        number = _number(value)
        if number is None:
            return
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = _Family(kind, help_text)
        family.samples.append((name, {k: str(v) for k, v in labels.items()}, number))

    def render(self) -> str:
        """The text exposition: each family's HELP, TYPE and samples together."""
        lines: list[str] = []
        for name, family in self.families.items():
            lines.append(f"# HELP {name} {_escape_help(family.help)}")
            lines.append(f"# TYPE {name} {family.kind}")
            for sample_name, labels, value in family.samples:
                lines.append(f"{sample_name}{_labels(labels)} {_format(value)}")
        return "\n".join(lines) + "\n" if lines else ""


def _number(value: Any) -> float | None:
    """value as a float when it is a number (bools count as 0/1), else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _format(value: float) -> str:
    """A sample value as Prometheus writes it (integers without a decimal point, NaN, +Inf)."""
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
    """The {name="value",...} part of a sample line ("" without labels)."""
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items()) + "}"


def _metric_part(text: str) -> str:
    """A string made safe for use inside a metric name."""
    cleaned = _NAME_BAD.sub("_", str(text)).strip("_").lower()
    return cleaned or "value"


def _render_cache(out: _Exposition, name: str, stats: Mapping[str, Any]) -> None:
    """The samples of one cache's get_stats() dict, labelled cache=name."""
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
    resolvers = stats.get("resolvers")
    if isinstance(resolvers, Mapping):
        for address, figures in resolvers.items():
            if not isinstance(figures, Mapping):
                continue
            for key, metric, kind, help_text in _RESOLVER_METRICS:
                out.add(metric, kind, help_text, {**labels, "resolver": address}, figures.get(key))
            latency_ms = _number(figures.get("mean_latency_ms"))
            if latency_ms is not None:
                out.add("scancache_dns_resolver_latency_seconds", "gauge",
                        "Mean time each resolver took to answer.", {**labels, "resolver": address},
                        round(latency_ms / 1000, 6))
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
    """True when metric is a known family or already typed: an unknown key must not join it."""
    family = out.families.get(metric)
    return metric in _KNOWN_CACHE_FAMILIES or (family is not None and family.kind != "untyped")


def _module_rows(modules: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """(module, figures) pairs from a loader's modules, given as a mapping or as a list of rows."""
    if isinstance(modules, Mapping):
        return [(str(k), v) for k, v in modules.items() if isinstance(v, Mapping)]
    if isinstance(modules, list):
        return [(str(m.get("name")), m) for m in modules if isinstance(m, Mapping) and m.get("name")]
    return []


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first key that holds a number (loaders name the same figure differently)."""
    for key in keys:
        if _number(mapping.get(key)) is not None:
            return mapping[key]
    return None


def _render_loader(out: _Exposition, name: str, data: Mapping[str, Any]) -> None:
    """The samples of one loader's get_monitoring_data() dict, labelled loader=name."""
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


def _render_dashboard(out: _Exposition, data: Mapping[str, Any]) -> None:
    """The dashboard's additions: one sample per alert rule and cache (1 firing, 0 not), so
    Alertmanager can page on `scancache_alert_firing == 1`, and the fleet's live workers."""
    for row in data.get("alerts") or ():
        if isinstance(row, Mapping) and row.get("alert"):
            out.add("scancache_alert_firing", "gauge",
                    "Dashboard alert rules: 1 while the rule fires for the cache, else 0.",
                    {"alert": row["alert"], "cache": row.get("cache", "")}, bool(row.get("firing")))
    fleet = data.get("fleet")
    if isinstance(fleet, Mapping) and isinstance(fleet.get("workers"), list):
        out.add("scancache_fleet_workers", "gauge", "Workers publishing snapshots to the shared Redis.",
                {}, len(fleet["workers"]))


def render(data: Mapping[str, Any]) -> str:
    """The Prometheus text exposition of data, a dict shaped as MetricsRegistry.collect() returns."""
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
    _render_dashboard(out, data)
    out.add("scancache_metrics_source_errors", "gauge",
            "Sources whose stats could not be read at this scrape.", {}, len(data.get("errors") or {}))
    return out.render()
