"""Redis storage: encoded entries under `scancache:{namespace}:{key}`, expired by Redis itself.

Each entry is one string key holding the Codec blob (which carries its own expires_at and
stale_until) with a PX expiry at stale_until, so Redis drops it when no reader could use it any more.
A small circuit breaker makes an unreachable Redis cost almost nothing: after a connection error or a
timeout, calls fail at once for a short cool-down instead of each waiting for its own timeout, then
one call tries again, so a Redis that comes back is used again within a second.

Redis Cluster: `redis+cluster://host:port` (or `?cluster=true`) selects redis-py's RedisCluster.
Keys keep the same layout (no hash tag), so a namespace spreads over every shard; get_many uses
`mget_nonatomic`, which groups keys by slot and sends one MGET per slot in one pipeline per node.
(A `{namespace}` hash tag would make MGET a single command, but would also pin a whole namespace,
the bulk of a scanner's cache, to one shard.)

Clients (one sync, one asyncio per event loop) and URL parsing live in redis_clients.py. This module
imports redis-py at import time; the Cache factory imports it only for Redis configs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError

from scancache.cache.backend import ByteBackendBase, Record, WriteItem
from scancache.cache.redis_clients import ASYNC_MAX_CONNECTIONS, RedisClients, parse_redis_url, redact_url

__all__ = ["ASYNC_MAX_CONNECTIONS", "RedisBackend", "RedisUnavailable", "parse_redis_url", "redact_url"]

#: How long calls fail fast after a connection error before one call tries Redis again.
DEFAULT_COOLDOWN_SECONDS = 0.2
_SCAN_COUNT = 1000  # keys per SCAN step: fewer round trips, each still short for the server
_UNLINK_BATCH = 500
_TRIP_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
_GLOB_SPECIAL = "\\*?[]"


class RedisUnavailable(RedisConnectionError):
    """Raised without any I/O while the circuit breaker is open (Redis failed moments ago)."""


def _glob_escape(text: str) -> str:
    """text with SCAN MATCH's glob characters escaped, so a namespace matches only itself."""
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in text)


class RedisBackend(ByteBackendBase):
    """Byte backend over one Redis (or Redis Cluster) URL, sync and native asyncio.

    Clients are created on first use: one sync client (thread-safe connection pool) and one asyncio
    client per event loop (see RedisClients); redis-py's own retries are off (the breaker handles
    outages). Calls raise on failure (redis-py errors, or RedisUnavailable during a cool-down); the
    Cache front turns read errors into misses and write errors into False. `clock` must be the
    Cache's clock (epoch seconds): PX is stale_until - clock(), and an entry already past its stale
    window is not stored.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        timeout_seconds: float,
        cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.display_url = redact_url(url)
        self.namespace = namespace
        self.timeout_seconds = timeout_seconds
        self.cooldown_seconds = cooldown_seconds
        self.clock = clock
        self.prefix = f"scancache:{namespace}:"
        self._match = _glob_escape(self.prefix) + "*"
        self._clients = RedisClients(url, timeout_seconds)
        self.cluster = self._clients.cluster
        self._open_until = 0.0  # monotonic time until which the breaker is open; 0.0 = closed
        self.breaker_trips = 0

    # ------------------------------------------------------------------ helpers
    def _expiry_ms(self, record: Record) -> int:
        """Milliseconds until stale_until (rounded up), or 0 if it has already passed."""
        remaining = record.stale_until - self.clock()
        return math.ceil(remaining * 1000) if remaining > 0 else 0

    # ------------------------------------------------------------------ circuit breaker
    def _check_breaker(self) -> None:
        """Raise RedisUnavailable during a cool-down. After it, this one call probes Redis (half
        open): the others keep failing fast until the probe answers or times out."""
        now = time.monotonic()
        if now < self._open_until:
            raise RedisUnavailable(
                f"redis at {self.display_url} failed less than {self.cooldown_seconds} s ago")
        self._open_until = now + self.cooldown_seconds + self.timeout_seconds

    def _trip(self, exc: BaseException) -> None:
        """Open the breaker for cooldown_seconds after a failure that says the server is sick."""
        if isinstance(exc, MaxConnectionsError):
            return  # a busy client pool, not a sick server
        self._open_until = time.monotonic() + self.cooldown_seconds
        self.breaker_trips += 1

    @property
    def available(self) -> bool:
        """False during a cool-down after a failure (calls would raise RedisUnavailable)."""
        return time.monotonic() >= self._open_until

    def _run(self, operation: Callable[[Any], Any]) -> Any:
        """operation(sync client) behind the breaker: fail fast while open, trip on connection errors."""
        probe = bool(self._open_until)
        if probe:
            self._check_breaker()
        try:
            result = operation(self._clients.sync())
        except _TRIP_ERRORS as exc:
            self._trip(exc)
            raise
        if probe:
            self._open_until = 0.0  # the probe got through: Redis is back for everyone
        return result

    async def _arun(self, operation: Callable[[Any], Awaitable[Any]]) -> Any:
        """await operation(this loop's client) behind the breaker and the loop's concurrency gate."""
        state = self._clients.for_running_loop()
        async with state.gate:
            probe = bool(self._open_until)
            if probe:
                self._check_breaker()
            try:
                result = await operation(state.client)
            except _TRIP_ERRORS as exc:
                self._trip(exc)
                raise
            if probe:
                self._open_until = 0.0  # the probe got through: Redis is back for everyone
            return result

    # ------------------------------------------------------------------ operations (sync or async)
    def _mget(self, client: Any, keys: Sequence[str]) -> Any:
        names = [self.prefix + key for key in keys]
        return client.mget_nonatomic(names) if self.cluster else client.mget(names)

    def _write(self, client: Any, key: str, record: Record, blob: bytes | None) -> Any:
        assert blob is not None, "RedisBackend stores encoded blobs (wants_blob=True)"
        milliseconds = self._expiry_ms(record)
        if milliseconds:
            return client.set(self.prefix + key, blob, px=milliseconds)
        return client.delete(self.prefix + key)  # already past: store nothing, drop the old value

    def _pipeline(self, client: Any, items: Sequence[WriteItem]) -> Any:
        pipe = client.pipeline(transaction=False)
        for item in items:
            self._write(pipe, item.key, item.record, item.blob)
        return pipe.execute()

    def _scan(self, client: Any) -> Any:
        # In a cluster, scan primaries only: replicas hold copies and would double the counts.
        target = {"target_nodes": "primaries"} if self.cluster else {}
        return client.scan_iter(match=self._match, count=_SCAN_COUNT, **target)

    def _clear(self, client: Any) -> int:
        removed = 0
        batch: list[bytes] = []
        for name in self._scan(client):
            batch.append(name)
            if len(batch) >= _UNLINK_BATCH:
                removed += client.unlink(*batch)
                batch = []
        return removed + (client.unlink(*batch) if batch else 0)

    async def _aclear(self, client: Any) -> int:
        removed = 0
        batch: list[bytes] = []
        async for name in self._scan(client):
            batch.append(name)
            if len(batch) >= _UNLINK_BATCH:
                removed += await client.unlink(*batch)
                batch = []
        return removed + (await client.unlink(*batch) if batch else 0)

    # ------------------------------------------------------------------ sync API
    def get(self, key: str) -> bytes | None:
        """The blob for key or None: one GET. Raises on connection errors and timeouts."""
        return self._run(lambda client: client.get(self.prefix + key))  # type: ignore[no-any-return]

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """{key: blob} for the keys present: one MGET (cluster: one MGET per slot, pipelined)."""
        if not keys:
            return {}
        blobs = self._run(lambda client: self._mget(client, keys))
        return {key: blob for key, blob in zip(keys, blobs, strict=True) if blob is not None}

    def set(self, key: str, record: Record, blob: bytes | None) -> None:
        """SET key blob PX (stale_until - now); an entry already past its stale window is deleted."""
        self._run(lambda client: self._write(client, key, record, blob))

    def set_many(self, items: Sequence[WriteItem]) -> None:  # type: ignore[override]
        """All items in one pipeline (transaction=False: one round trip, no MULTI)."""
        if items:
            self._run(lambda client: self._pipeline(client, items))

    def delete(self, key: str) -> bool:
        """DEL key; True if it existed."""
        return bool(self._run(lambda client: client.delete(self.prefix + key)))

    def clear(self) -> int:
        """Delete this namespace's keys: SCAN MATCH prefix* and UNLINK in batches; returns how many.

        Cost: SCAN walks the whole keyspace of the database (O(all keys), in short steps that never
        block Redis); never KEYS or FLUSHDB, so other namespaces and other data are untouched.
        """
        return int(self._run(self._clear))

    def purge_expired(self, now: float) -> int:
        """0: Redis expires entries itself (PX at stale_until)."""
        return 0

    def size(self) -> int:
        """Number of keys in this namespace. Cost: a full SCAN of the database (O(all keys))."""
        return int(self._run(lambda client: sum(1 for _ in self._scan(client))))

    def size_bytes(self) -> int:
        """0: Redis reports memory per server, not per prefix (MEMORY USAGE per key costs too much)."""
        return 0

    def close(self) -> None:
        """Close the sync client and the asyncio clients of loops that are not running (see
        RedisClients.close). Never raises."""
        self._clients.close()

    # ------------------------------------------------------------------ async API (redis.asyncio)
    async def aget(self, key: str) -> bytes | None:
        """Async get: one GET on this loop's client."""
        return await self._arun(lambda client: client.get(self.prefix + key))  # type: ignore[no-any-return]

    async def aget_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Async get_many: one MGET (cluster: one per slot)."""
        if not keys:
            return {}
        blobs = await self._arun(lambda client: self._mget(client, keys))
        return {key: blob for key, blob in zip(keys, blobs, strict=True) if blob is not None}

    async def aset(self, key: str, record: Record, blob: bytes | None) -> None:
        """Async set: SET PX, or DEL for an entry already past its stale window."""
        await self._arun(lambda client: self._write(client, key, record, blob))

    async def aset_many(self, items: Sequence[WriteItem]) -> None:
        """Async set_many: one pipeline, transaction=False."""
        if items:
            await self._arun(lambda client: self._pipeline(client, items))

    async def adelete(self, key: str) -> bool:
        """Async DEL."""
        return bool(await self._arun(lambda client: client.delete(self.prefix + key)))

    async def aclear(self) -> int:
        """Async clear: SCAN MATCH + UNLINK in batches (see clear for the cost)."""
        return int(await self._arun(self._aclear))

    async def aclose(self) -> None:
        """Close this loop's asyncio client, then everything close() handles. Never raises."""
        await self._clients.aclose()

    def __repr__(self) -> str:
        kind = "cluster" if self.cluster else "single"
        return f"<RedisBackend {self.display_url} namespace={self.namespace!r} {kind}>"
