"""Redis storage: encoded entries under `scancache:{namespace}:{key}`, expired by Redis itself.

Each entry is one string key holding the Codec blob (which carries its own expires_at and
stale_until) with a PX expiry at stale_until, so Redis drops it when no reader could use it any more.
Circuit breakers (redis_breaker.py) make an unreachable Redis cost almost nothing: after a connection
error or a timeout, calls fail at once for a short cool-down instead of each waiting for its own
timeout, then one call tries again, so a Redis that comes back is used again within a second. In a
cluster each slot owner has its own breaker: one dead master costs only the keys it owned, and its
slots come back as soon as the client sees the promoted replica.

Redis Cluster: `redis+cluster://host:port` (or `?cluster=true`) selects redis-py's RedisCluster.
Keys keep the same layout (no hash tag), so a namespace spreads over every shard; get_many uses
`mget_nonatomic`, which groups keys by slot and sends one MGET per slot in one pipeline per node.
(A `{namespace}` hash tag would make MGET a single command, but would also pin a whole namespace,
the bulk of a scanner's cache, to one shard.)

Clients (one sync, one asyncio per event loop) and URL parsing live in redis_clients.py. This module
imports redis-py at import time; the Cache factory imports it only for Redis configs.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError

from scancache.cache.backend import ByteBackendBase, Record, WriteItem
from scancache.cache.redis_breaker import Breakers
from scancache.cache.redis_clients import ASYNC_MAX_CONNECTIONS, RedisClients, parse_redis_url, redact_url

__all__ = ["ASYNC_MAX_CONNECTIONS", "RedisBackend", "RedisUnavailable", "parse_redis_url", "redact_url"]

#: How long calls fail fast after a connection error before one call tries Redis again.
DEFAULT_COOLDOWN_SECONDS = 0.2
_SCAN_COUNT = 1000  # keys per SCAN step: fewer round trips, each still short for the server
_UNLINK_BATCH = 500
_TRIP_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
_GLOB_SPECIAL = "\\*?[]"
#: delete_if: DEL the key only while it holds ARGV[1] (one atomic step on the server).
_DELETE_IF = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class RedisUnavailable(RedisConnectionError):
    """Raised without any I/O while a node's circuit breaker is open (it failed moments ago)."""


def _is_outage(exc: BaseException) -> bool:
    """True for errors that say the server is unreachable or sick (a busy client pool is not)."""
    return isinstance(exc, _TRIP_ERRORS) and not isinstance(exc, MaxConnectionsError)


def _glob_escape(text: str) -> str:
    """text with SCAN MATCH's glob characters escaped, so a namespace matches only itself."""
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in text)


class RedisBackend(ByteBackendBase):
    """Byte backend over one Redis (or Redis Cluster) URL, sync and native asyncio.

    Clients are created on first use: one sync client (thread-safe connection pool) and one asyncio
    client per event loop (see RedisClients); redis-py's own retries are off (the breakers handle
    outages). Calls raise on failure (redis-py errors, or RedisUnavailable during a cool-down); the
    Cache front turns read errors into misses and write errors into False. In a cluster, a batch
    (get_many, set_many) whose keys live on several nodes is split per node: keys on a node that is
    down are left out of a read (counted in `back_errors`), and a write raises after the healthy
    nodes stored their part. `clock` must be the Cache's clock (epoch seconds): PX is
    stale_until - clock(), and an entry already past its stale window is not stored.
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
        self._breakers = Breakers(cooldown_seconds, timeout_seconds, self._unavailable, _is_outage)
        self.back_errors = 0  # cluster batches that lost some node's part (read as misses)

    # ------------------------------------------------------------------ helpers
    def _expiry_ms(self, record: Record) -> int:
        """Milliseconds until stale_until (rounded up), or 0 if it has already passed."""
        remaining = record.stale_until - self.clock()
        return math.ceil(remaining * 1000) if remaining > 0 else 0

    # ------------------------------------------------------------------ circuit breakers
    def _unavailable(self, node: str) -> RedisUnavailable:
        where = f"redis node {node} of {self.display_url}" if node else f"redis at {self.display_url}"
        return RedisUnavailable(f"{where} failed less than {self.cooldown_seconds} s ago")

    @property
    def breaker_trips(self) -> int:
        """How many times a breaker opened (any node)."""
        return self._breakers.trips

    @property
    def available(self) -> bool:
        """False during a cool-down after a failure of some node (its calls would fail fast)."""
        return not self._breakers.any_open()

    def _node(self, client: Any, name: str | None) -> str:
        """The breaker a call on key `name` goes through: its slot owner in a cluster, else ""."""
        if not self.cluster:
            return ""
        if name is None:
            return "*"  # a whole-cluster call (SCAN): its own breaker, never a node's
        return self._clients.owner(client, name)

    def _groups(self, client: Any, names: Sequence[str]) -> dict[str, list[int]]:
        """Indexes of names grouped by breaker node (one group unless in a cluster)."""
        if not self.cluster:
            return {"": list(range(len(names)))}
        groups: dict[str, list[int]] = {}
        for index, name in enumerate(names):
            groups.setdefault(self._clients.owner(client, name), []).append(index)
        return groups

    def _run(self, operation: Callable[[Any], Any], node: str = "") -> Any:
        """operation(sync client) behind node's breaker: fail fast while open, trip on outages."""
        probe = self._breakers.admit(node)
        try:
            result = operation(self._clients.sync())
        except BaseException as exc:
            self._breakers.after(node, probe, exc)
            raise
        self._breakers.after(node, probe, None)
        return result

    async def _arun(self, operation: Callable[[Any], Awaitable[Any]], node: str = "") -> Any:
        """await operation(this loop's client) behind node's breaker and the loop's concurrency gate."""
        state = self._clients.for_running_loop()
        async with state.gate:
            probe = self._breakers.admit(node)
            try:
                result = await operation(state.client)
            except BaseException as exc:
                self._breakers.after(node, probe, exc)
                raise
            self._breakers.after(node, probe, None)
            return result

    def _merge_reads(self, keys: Sequence[str], groups: dict[str, list[int]], results: list[Any]
                     ) -> dict[str, bytes]:
        """{key: blob} from each group's MGET result; a failed group's keys are left out (counted),
        and when every group failed its error is raised (a read that found nothing is a failure)."""
        out: dict[str, bytes] = {}
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures and (len(failures) == len(results) or not isinstance(failures[0], Exception)):
            raise failures[0]
        if failures:
            self.back_errors += len(failures)
        for indexes, blobs in zip(groups.values(), results, strict=True):
            if isinstance(blobs, BaseException):
                continue
            for index, blob in zip(indexes, blobs, strict=True):
                if blob is not None:
                    out[keys[index]] = blob
        return out

    @staticmethod
    def _raise_first(results: list[Any]) -> None:
        """After every group of a batch write ran: raise the first group's error, if any."""
        for result in results:
            if isinstance(result, BaseException):
                raise result

    # ------------------------------------------------------------------ operations (sync or async)
    # Each takes a client (sync or asyncio) and returns what the client returns: a value from the
    # sync client, an awaitable from the asyncio one, so every command is written once.
    def _mget(self, client: Any, names: Sequence[str]) -> Any:
        return client.mget_nonatomic(names) if self.cluster else client.mget(names)

    def _write(self, client: Any, key: str, record: Record, blob: bytes | None) -> Any:
        assert blob is not None, "RedisBackend stores encoded blobs (wants_blob=True)"
        milliseconds = self._expiry_ms(record)
        if milliseconds:
            return client.set(self.prefix + key, blob, px=milliseconds)
        return client.delete(self.prefix + key)  # already past: store nothing, drop the old value

    def _add(self, client: Any, name: str, blob: bytes | None, milliseconds: int) -> Any:
        assert blob is not None, "RedisBackend stores encoded blobs (wants_blob=True)"
        return client.set(name, blob, px=milliseconds, nx=True)

    @staticmethod
    def _delete_if(client: Any, name: str, blob: bytes | None) -> Any:
        assert blob is not None, "RedisBackend stores encoded blobs (wants_blob=True)"
        return client.eval(_DELETE_IF, 1, name, blob)

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
        # The async twin of _clear: an async iterator cannot share the sync loop's body.
        removed = 0
        batch: list[bytes] = []
        async for name in self._scan(client):
            batch.append(name)
            if len(batch) >= _UNLINK_BATCH:
                removed += await client.unlink(*batch)
                batch = []
        return removed + (await client.unlink(*batch) if batch else 0)

    def _batch_groups(self, client: Any, items: Sequence[WriteItem]) -> list[tuple[str, list[WriteItem]]]:
        """items grouped by the node that owns them (one group unless in a cluster)."""
        groups = self._groups(client, [self.prefix + item.key for item in items])
        return [(node, [items[i] for i in indexes]) for node, indexes in groups.items()]

    # ------------------------------------------------------------------ sync API
    def get(self, key: str) -> bytes | None:
        """The blob for key or None: one GET. Raises on connection errors and timeouts."""
        name = self.prefix + key
        node = self._node(self._clients.existing_sync(), name)
        return self._run(lambda client: client.get(name), node)

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """{key: blob} for the keys present: one MGET (cluster: one MGET per slot, pipelined per node)."""
        if not keys:
            return {}
        names = [self.prefix + key for key in keys]
        groups = self._groups(self._clients.existing_sync(), names)
        results: list[Any] = []
        for node, indexes in groups.items():
            part = [names[i] for i in indexes]
            try:
                results.append(self._run(partial(self._mget, names=part), node))
            except Exception as exc:
                results.append(exc)
        return self._merge_reads(keys, groups, results)

    def set(self, key: str, record: Record, blob: bytes | None) -> None:
        """SET key blob PX (stale_until - now); an entry already past its stale window is deleted."""
        node = self._node(self._clients.existing_sync(), self.prefix + key)
        self._run(lambda client: self._write(client, key, record, blob), node)

    def set_many(self, items: Sequence[WriteItem]) -> None:  # type: ignore[override]  # needs len()
        """All items in one pipeline (transaction=False: one round trip, no MULTI); in a cluster one
        pipeline per node, and a node that fails raises after the others stored their part."""
        if not items:
            return
        results: list[Any] = []
        for node, part in self._batch_groups(self._clients.existing_sync(), items):
            try:
                results.append(self._run(partial(self._pipeline, items=part), node))
            except Exception as exc:
                results.append(exc)
        self._raise_first(results)

    def add(self, key: str, record: Record, blob: bytes | None, now: float) -> bool:
        """SET key blob NX PX (stale_until - now): stored only if the key does not exist (Redis drops
        it at its PX, so a dead entry is absent); True if stored. One command, atomic on the server
        (a cluster: on the key's slot owner). An entry already past its stale window stores nothing
        (False)."""
        milliseconds = self._expiry_ms(record)
        if not milliseconds:
            return False
        name = self.prefix + key
        node = self._node(self._clients.existing_sync(), name)
        return bool(self._run(lambda client: self._add(client, name, blob, milliseconds), node))

    def delete(self, key: str) -> bool:
        """DEL key; True if it existed."""
        name = self.prefix + key
        node = self._node(self._clients.existing_sync(), name)
        return bool(self._run(lambda client: client.delete(name), node))

    def delete_if(self, key: str, record: Record, blob: bytes | None) -> bool:
        """DEL key only while it holds blob (an EVAL of a compare-and-delete script: one round trip,
        atomic on the server; a cluster: on the key's slot owner); True if removed."""
        name = self.prefix + key
        node = self._node(self._clients.existing_sync(), name)
        return bool(self._run(lambda client: self._delete_if(client, name, blob), node))

    def clear(self) -> int:
        """Delete this namespace's keys: SCAN MATCH prefix* and UNLINK in batches; returns how many.

        Cost: SCAN walks the whole keyspace of the database (O(all keys), in short steps that never
        block Redis); never KEYS or FLUSHDB, so other namespaces and other data are untouched.
        """
        return int(self._run(self._clear, self._node(None, None)))

    def purge_expired(self, now: float) -> int:
        """0: Redis expires entries itself (PX at stale_until)."""
        return 0

    def size(self) -> int:
        """Number of keys in this namespace. Cost: a full SCAN of the database (O(all keys))."""
        return int(self._run(lambda client: sum(1 for _ in self._scan(client)), self._node(None, None)))

    def keys(self, prefix: str, limit: int) -> list[str]:
        """Up to limit keys starting with prefix, sorted (SCAN MATCH: O(all keys) at worst)."""
        def scan(client: Any) -> list[str]:
            found: list[str] = []
            target = {"target_nodes": "primaries"} if self.cluster else {}
            for name in client.scan_iter(match=_glob_escape(self.prefix + prefix) + "*",
                                         count=_SCAN_COUNT, **target):
                found.append(name.decode("utf-8", "replace")[len(self.prefix):])
                if len(found) >= limit:
                    break
            return sorted(found)

        return list(self._run(scan))

    def size_bytes(self) -> int:
        """0: Redis reports memory per server, not per prefix (MEMORY USAGE per key costs too much)."""
        return 0

    def close(self) -> None:
        """Close the sync client and the asyncio clients of loops that are not running (see
        RedisClients.close). Never raises."""
        self._clients.close()

    # ------------------------------------------------------------------ async API (redis.asyncio)
    def _loop_node(self, name: str) -> str:
        return self._node(self._clients.for_running_loop().client, name) if self.cluster else ""

    async def aget(self, key: str) -> bytes | None:
        """Async get: one GET on this loop's client."""
        name = self.prefix + key
        return await self._arun(lambda client: client.get(name), self._loop_node(name))

    async def aget_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Async get_many: one MGET (cluster: the nodes' MGETs run concurrently)."""
        if not keys:
            return {}
        names = [self.prefix + key for key in keys]
        if not self.cluster:
            blobs = await self._arun(partial(self._mget, names=names))
            return self._merge_reads(keys, {"": list(range(len(keys)))}, [blobs])
        groups = self._groups(self._clients.for_running_loop().client, names)
        results = await asyncio.gather(*(
            self._arun(partial(self._mget, names=[names[i] for i in indexes]), node)
            for node, indexes in groups.items()), return_exceptions=True)
        return self._merge_reads(keys, groups, list(results))

    async def aset(self, key: str, record: Record, blob: bytes | None) -> None:
        """Async set: SET PX, or DEL for an entry already past its stale window."""
        node = self._loop_node(self.prefix + key)
        await self._arun(lambda client: self._write(client, key, record, blob), node)

    async def aset_many(self, items: Sequence[WriteItem]) -> None:
        """Async set_many: one pipeline, transaction=False (cluster: one per node, concurrently)."""
        if not items:
            return
        client = self._clients.for_running_loop().client if self.cluster else None
        results = await asyncio.gather(*(
            self._arun(partial(self._pipeline, items=part), node)
            for node, part in self._batch_groups(client, items)), return_exceptions=True)
        self._raise_first(list(results))

    async def aadd(self, key: str, record: Record, blob: bytes | None, now: float) -> bool:
        """Async add: SET NX PX on this loop's client."""
        milliseconds = self._expiry_ms(record)
        if not milliseconds:
            return False
        name = self.prefix + key
        return bool(await self._arun(lambda client: self._add(client, name, blob, milliseconds),
                                     self._loop_node(name)))

    async def adelete(self, key: str) -> bool:
        """Async DEL."""
        name = self.prefix + key
        return bool(await self._arun(lambda client: client.delete(name), self._loop_node(name)))

    async def adelete_if(self, key: str, record: Record, blob: bytes | None) -> bool:
        """Async delete_if (EVAL on this loop's client)."""
        name = self.prefix + key
        return bool(await self._arun(lambda client: self._delete_if(client, name, blob),
                                     self._loop_node(name)))

    async def aclear(self) -> int:
        """Async clear: SCAN MATCH + UNLINK in batches (see clear for the cost)."""
        return int(await self._arun(self._aclear, self._node(None, None)))

    async def aclose(self) -> None:
        """Close this loop's asyncio client, then everything close() handles. Never raises."""
        await self._clients.aclose()

    def __repr__(self) -> str:
        kind = "cluster" if self.cluster else "single"
        return f"<RedisBackend {self.display_url} namespace={self.namespace!r} {kind}>"
