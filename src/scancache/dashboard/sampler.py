"""Samples the stats once a second and turns counters into rates: the frames the page draws.

A frame is the monitoring data (scancache.metrics.get_monitoring_data()) reduced to what the page
shows, with per-second rates from the difference to the previous sample: per cache hit rate (since
start and over the last sample), hits/misses/stale hits/errors per second, latency percentiles,
size, evictions; DNS queries and OSV/NVD requests, retries and rate-limit waits where the cache
reports them; the loaders' modules; with a fleet source, the same per cache summed over every live
worker, and the workers themselves. The last `history_seconds` of frames are kept for the charts.
Only the standard library is imported here.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from scancache.alerts import AlertRules, AlertState

__all__ = ["Sampler", "cache_frames"]

#: Counters turned into per-second rates (each only when the cache reports it).
RATE_KEYS = ("hits", "misses", "stale_hits", "errors", "evictions", "upstream_queries",
             "requests_total", "retries", "nvd_rate_waits", "timeouts", "servfails")
#: Figures copied as they are.
PLAIN_KEYS = ("backend", "hit_rate", "size", "bytes", "evictions", "hits", "misses", "stale_hits",
              "errors", "requests", "requests_total", "retries", "nvd_rate_waits", "upstream_queries",
              "timeouts", "servfails", "nameservers", "resolvers", "workers")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _latency(stats: Mapping[str, Any]) -> dict[str, float]:
    """p50/p90/p99 in microseconds of the cache's reads (get, else get_many; nothing when no read
    was timed, so a write's latency is never shown under the read labels)."""
    latency = stats.get("latency") or {}
    figures = latency.get("get") or latency.get("get_many")
    if not isinstance(figures, Mapping):
        return {}
    return {q: figures[f"{q}_us"] for q in ("p50", "p90", "p99")
            if _number(figures.get(f"{q}_us")) is not None}


def cache_frames(caches: Mapping[str, Mapping[str, Any]], previous: Mapping[str, Mapping[str, Any]],
                 dt: float) -> dict[str, dict[str, Any]]:
    """Per cache: the plain figures, "rate" (per second since previous), "window_hit_rate" (over
    this sample's lookups, None without lookups), "latency" (p50/p90/p99 us) and "dt"."""
    out: dict[str, dict[str, Any]] = {}
    for name, stats in caches.items():
        if not isinstance(stats, Mapping):
            continue
        before = previous.get(name) or {}
        frame: dict[str, Any] = {k: stats[k] for k in PLAIN_KEYS if k in stats}
        rate: dict[str, float] = {}
        for key in RATE_KEYS:
            now_value = _number(stats.get(key))
            if now_value is None:
                continue
            old = _number(before.get(key))
            # A restarted source (or a worker leaving the fleet) makes a counter go back: count 0.
            rate[key] = max(0.0, (now_value - old) / dt) if old is not None and dt > 0 else 0.0
        frame["rate"] = rate
        lookups = sum(rate.get(k, 0.0) for k in ("hits", "stale_hits", "misses"))
        frame["window_hit_rate"] = ((rate.get("hits", 0.0) + rate.get("stale_hits", 0.0)) / lookups
                                    if lookups else None)
        frame["latency"] = _latency(stats)
        frame["dt"] = dt
        out[name] = frame
    return out


def _loaders(loaders: Mapping[str, Any]) -> dict[str, Any]:
    """Each loader's totals and its modules as rows (name, status, load seconds, memory MB)."""
    out: dict[str, Any] = {}
    for name, data in loaders.items():
        if not isinstance(data, Mapping):
            continue
        modules = data.get("modules") or {}
        rows = modules.values() if isinstance(modules, Mapping) else modules
        out[name] = {
            "current_memory_mb": data.get("current_memory_mb"),
            "loaded_count": data.get("loaded_count"), "failed_count": data.get("failed_count"),
            "total_load_seconds": data.get("total_load_seconds"),
            "modules": [{"name": m.get("name"), "status": m.get("status"),
                         "load_seconds": m.get("load_seconds"), "memory_mb": m.get("memory_delta_mb")}
                        for m in rows if isinstance(m, Mapping)],
        }
    return out


class Sampler:
    """Calls collect() (and fleet(), if given) on sample(), keeps the frames of the last minutes.

    collect returns get_monitoring_data()-shaped dicts; fleet returns (workers, aggregated caches)
    as scancache.fleet gives them. sample() may block (it asks every backend); run it in a thread.
    """

    def __init__(self, collect: Callable[[], dict[str, Any]], *,
                 fleet: Callable[[], tuple[list[dict[str, Any]], dict[str, Any]]] | None = None,
                 rules: AlertRules | None = None, history_seconds: float = 600.0,
                 interval: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        self.collect = collect
        self.fleet = fleet
        self.alerts = AlertState(rules or AlertRules())
        self.clock = clock
        self.history: deque[dict[str, Any]] = deque(maxlen=max(2, int(history_seconds / interval)))
        self.latest_data: dict[str, Any] = {}
        self._previous: tuple[float, dict[str, Any], dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def sample(self) -> dict[str, Any]:
        """Take one sample; returns its frame (also appended to history)."""
        now = self.clock()
        data = self.collect()
        workers: list[dict[str, Any]] = []
        fleet_caches: dict[str, Any] = {}
        fleet_error = None
        if self.fleet is not None:
            try:
                workers, fleet_caches = self.fleet()
            except Exception as exc:  # Redis down: show it, keep the local view
                fleet_error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            before_t, before_caches, before_fleet = self._previous or (now, {}, {})
            dt = now - before_t
            caches = cache_frames(data.get("caches") or {}, before_caches, dt)
            fleet = cache_frames(fleet_caches, before_fleet, dt)
            self._previous = (now, data.get("caches") or {}, fleet_caches)
            alerts = self.alerts.evaluate(now, {**caches, **{f"fleet:{k}": v for k, v in fleet.items()}})
            frame = {"time": now, "caches": caches, "fleet": fleet,
                     "workers": [_worker_row(w, now) for w in workers], "fleet_error": fleet_error,
                     "loaders": _loaders(data.get("loaders") or {}), "process": data.get("process"),
                     "errors": data.get("errors") or {}, "alerts": alerts}
            self.latest_data = {**data, "fleet": {"workers": workers, "caches": fleet_caches,
                                                  "error": fleet_error}, "alerts": alerts}
            self.history.append(frame)
        return frame

    def frames(self) -> list[dict[str, Any]]:
        """The frames kept, oldest first."""
        with self._lock:
            return list(self.history)


def _worker_row(snapshot: Mapping[str, Any], now: float) -> dict[str, Any]:
    """One line of the workers table: who, since when, how fresh, and each cache's hits/misses."""
    caches = snapshot.get("caches") or {}
    return {"worker": snapshot.get("worker"), "namespace": snapshot.get("namespace"),
            "age_seconds": round(max(0.0, now - float(snapshot.get("time", now))), 1),
            "caches": {name: {k: stats.get(k) for k in ("hits", "misses", "hit_rate", "errors")}
                       for name, stats in caches.items() if isinstance(stats, Mapping)}}
