"""The fleet view: every worker whose caches share a Redis publishes a stats snapshot there.

A Cache on Redis (or hybrid over Redis) with enable_metrics on is attached here when it is made. One
daemon thread per process then writes, every PUBLISH_INTERVAL seconds, one key per worker and
namespace: `scancache-fleet:{namespace}:{worker}` holding a JSON snapshot with a TTL of
SNAPSHOT_TTL seconds, so a worker that stops drops out of the view by itself. The thread is off the
hot path: a cache read or write never waits for it. Snapshots carry the cache core's counters and
latency percentiles, not the size (counting a Redis namespace is a SCAN of the whole database, too
much to do in every worker; readers count it once). With a signing_key the snapshot is HMAC-signed
and readers drop unsigned or forged ones, so a shared Redis cannot show a false fleet.

`read_workers(url, namespaces)` lists the live workers' snapshots and `aggregate(snapshots)` sums
them per cache; the dashboard and `scancache cache stats` use both.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from scancache._log import get_logger

__all__ = ["PUBLISH_INTERVAL", "SNAPSHOT_TTL", "aggregate", "attach", "describe", "publish_now",
           "read_workers", "summary", "worker_id"]

log = get_logger("scancache.fleet")



def _interval() -> float:
    """$SCANCACHE_FLEET_INTERVAL seconds (default 5; 0 turns publishing off)."""
    try:
        return max(0.0, float(os.environ.get("SCANCACHE_FLEET_INTERVAL") or 5))
    except ValueError:
        return 5.0


#: Seconds between two snapshots of one worker; a worker's key lives SNAPSHOT_TTL seconds.
PUBLISH_INTERVAL = _interval()
SNAPSHOT_TTL = max(3, math.ceil(PUBLISH_INTERVAL * 3))
KEY_PREFIX = "scancache-fleet:"
_COUNTERS = ("hits", "misses", "stale_hits", "errors", "corrupt", "sets", "deletes", "evictions",
             "expirations", "write_failures")
_STARTED = time.time()


def worker_id() -> str:
    """host:pid of this process (computed each time: a forked child is another worker)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _signature(key: bytes | str | None, body: bytes) -> str:
    if key is None:
        return ""
    secret = key.encode() if isinstance(key, str) else key
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


class _Publisher:
    """The per-process thread that writes this process's snapshots, one per (Redis URL, namespace)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.targets: dict[tuple[str, str], weakref.WeakSet[Any]] = {}
        self.clients: dict[str, Any] = {}
        self.thread: threading.Thread | None = None
        self.wake = threading.Event()
        self.failed_once = False
        self.at_exit = False

    def attach(self, cache: Any) -> None:
        with self.lock:
            self.targets.setdefault((cache.config.redis_url, cache.config.namespace),
                                    weakref.WeakSet()).add(cache)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="scancache-fleet", daemon=True)
                self.thread.start()
                if not self.at_exit:  # the last seconds' counts too, when the worker ends normally
                    atexit.register(self.publish)
                    self.at_exit = True
        self.wake.set()  # a first snapshot now: a new worker shows up at once

    def _loop(self) -> None:
        while True:
            self.wake.wait(PUBLISH_INTERVAL)
            self.wake.clear()
            self.publish()

    def publish(self) -> int:
        """Write every live target's snapshot; returns how many were written. Never raises."""
        with self.lock:
            targets = [(url_ns, list(caches)) for url_ns, caches in self.targets.items()]
        written = 0
        for (url, namespace), caches in targets:
            if not caches:
                continue
            try:
                written += self._write(url, namespace, caches)
            except Exception as exc:  # Redis down: the cache's own breaker reports it; log once here
                if not self.failed_once:
                    log.warning("fleet snapshot to %s failed: %s: %s", namespace, type(exc).__name__, exc)
                    self.failed_once = True
        return written

    def _client(self, url: str, timeout: float) -> Any:
        client = self.clients.get(url)
        if client is None:
            from scancache.cache.redis_clients import RedisClients

            client = self.clients[url] = RedisClients(url, timeout).sync()
        return client

    def _write(self, url: str, namespace: str, caches: list[Any]) -> bool:
        """Write one snapshot; False (nothing written) while no cache has been used yet, so a
        process that only looks (`cache stats`, the dashboard) is no worker."""
        counters = {_source_name(cache): cache_counters(cache) for cache in caches}
        if not any(c["hits"] + c["misses"] + c["stale_hits"] + c["sets"] + c["deletes"]
                   for c in counters.values()):
            return False
        config = caches[0].config
        snapshot = {"worker": worker_id(), "host": socket.gethostname(), "pid": os.getpid(),
                    "started": _STARTED, "time": time.time(), "namespace": namespace,
                    "caches": counters}
        body = json.dumps(snapshot, separators=(",", ":"), allow_nan=False).encode()
        value = json.dumps({"snapshot": body.decode(), "sig": _signature(config.signing_key, body)})
        client = self._client(url, config.redis_timeout_seconds)
        client.set(f"{KEY_PREFIX}{namespace}:{snapshot['worker']}", value, ex=SNAPSHOT_TTL)
        return True


def _source_name(cache: Any) -> str:
    """The name the metrics registry knows this cache by (dns, vulndb...), else its own name."""
    from scancache.metrics import REGISTRY

    for name, source in REGISTRY.cache_sources():
        if cache in (source, getattr(source, "cache", None), getattr(source, "_cache", None)):
            return name
    return str(cache.name)


def cache_counters(cache: Any) -> dict[str, Any]:
    """cache's counters and latency percentiles without asking the backend anything (no size)."""
    evictions = int(getattr(cache.backend, "evictions", 0) or 0)
    stats = cache.stats.as_dict(size=0, size_bytes=0, evictions=evictions)
    del stats["size"], stats["bytes"]
    return dict(stats)


_PUBLISHER = _Publisher()


def attach(cache: Any) -> None:
    """Publish cache's counters to its Redis from now on (a Cache whose backend is not Redis is
    ignored, and so is every cache when SCANCACHE_FLEET_INTERVAL is 0). Called by Cache itself;
    cheap and idempotent."""
    backend = getattr(cache.backend, "back", cache.backend)
    if PUBLISH_INTERVAL <= 0 or type(backend).__name__ != "RedisBackend":
        return
    _PUBLISHER.attach(cache)


def publish_now() -> int:
    """Write this process's snapshots at once (as at exit, or in tests); returns how many."""
    return _PUBLISHER.publish()


def read_workers(url: str, namespaces: Iterable[str] | None = None, *,
                 signing_key: str | bytes | None = None, timeout: float = 2.0) -> list[dict[str, Any]]:
    """The snapshots of the live workers on url (of namespaces, or all), oldest worker first.

    With signing_key, snapshots without a valid signature are dropped. Raises on Redis errors.
    Cost: a SCAN of the database for the fleet keys and one MGET.
    """
    from scancache.cache.redis_clients import RedisClients

    clients = RedisClients(url, timeout)
    try:
        client = clients.sync()
        patterns = ([f"{KEY_PREFIX}{ns}:*" for ns in namespaces] if namespaces is not None
                    else [f"{KEY_PREFIX}*"])
        names: list[bytes] = []
        for pattern in patterns:
            names.extend(client.scan_iter(match=pattern, count=1000))
        values = [client.get(name) for name in names] if names else []
    finally:
        clients.close()
    snapshots = []
    for raw in values:
        snapshot = _verify(raw, signing_key)
        if snapshot is not None:
            snapshots.append(snapshot)
    snapshots.sort(key=lambda s: (s.get("started", 0), s.get("worker", ""), s.get("namespace", "")))
    return snapshots


def _verify(raw: bytes | None, signing_key: str | bytes | None) -> dict[str, Any] | None:
    """The snapshot in raw if it parses (and, with a key, is signed by it), else None."""
    if raw is None:
        return None
    try:
        outer = json.loads(raw)
        body = outer["snapshot"].encode()
        if signing_key is not None and not hmac.compare_digest(
                str(outer.get("sig", "")), _signature(signing_key, body)):
            return None
        snapshot = json.loads(body)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(snapshot, dict) or not isinstance(snapshot.get("caches"), dict):
        return None
    return snapshot


def aggregate(snapshots: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """{cache name: summed counters, hit_rate over the sum, worst p50/p90/p99 per operation, workers}."""
    totals: dict[str, dict[str, Any]] = {}
    for snapshot in snapshots:
        for name, stats in snapshot.get("caches", {}).items():
            if not isinstance(stats, Mapping):
                continue
            total = totals.setdefault(name, {**dict.fromkeys(_COUNTERS, 0), "latency": {}, "workers": 0})
            total["workers"] += 1
            for counter in _COUNTERS:
                value = stats.get(counter)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    total[counter] += value
            for operation, figures in (stats.get("latency") or {}).items():
                if not isinstance(figures, Mapping):
                    continue
                worst = total["latency"].setdefault(operation, {})
                for field in ("p50_us", "p90_us", "p99_us"):
                    value = figures.get(field)
                    if isinstance(value, int | float):
                        worst[field] = max(worst.get(field, 0), value)
    for total in totals.values():
        lookups = total["hits"] + total["stale_hits"] + total["misses"]
        total["hit_rate"] = (total["hits"] + total["stale_hits"]) / lookups if lookups else 0.0
    return totals


def summary(url: str, namespaces: Iterable[str] | None, *, signing_key: str | bytes | None = None
            ) -> dict[str, Any]:
    """{"workers": [...], "caches": aggregate(...)} of the live workers, or {"error": ...} when Redis
    cannot be read (for `scancache cache stats`, which reports it and goes on)."""
    try:
        workers = read_workers(url, namespaces, signing_key=signing_key)
    except Exception as exc:
        return {"workers": [], "caches": {}, "error": f"{type(exc).__name__}: {exc}"}
    return {"workers": workers, "caches": aggregate(workers)}


def describe(fleet: Mapping[str, Any]) -> list[str]:
    """Text lines for a summary(): a headline, then one line per worker with each cache's counters."""
    if fleet.get("error"):
        return [f"fleet: cannot read the worker snapshots: {fleet['error']}"]
    workers = fleet.get("workers") or []
    lines = [f"fleet: {len(workers)} live worker{'s' if len(workers) != 1 else ''}"]
    now = time.time()
    for worker in workers:
        caches = ", ".join(
            f"{name} {stats.get('hits', 0)} hits {stats.get('misses', 0)} misses "
            f"{stats.get('errors', 0)} errors"
            for name, stats in (worker.get("caches") or {}).items() if isinstance(stats, Mapping))
        age = max(0.0, now - float(worker.get("time", now)))
        lines.append(f"  {worker.get('worker')} [{worker.get('namespace')}] {age:.0f} s ago: {caches}")
    for name, total in (fleet.get("caches") or {}).items():
        lines.append(f"  total {name}: {total['hits']} hits, {total['misses']} misses, "
                     f"{total['hit_rate']:.1%} hit rate, {total['errors']} errors "
                     f"over {total['workers']} workers")
    return lines
