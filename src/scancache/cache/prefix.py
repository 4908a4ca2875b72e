"""Invalidate every entry whose key starts with a prefix, on any backend: `cache.invalidate(prefix=...)`.

Each backend removes the matching keys its own way: memory under its write lock, SQLite in one
DELETE, Redis by SCAN MATCH (the prefix glob-escaped) and UNLINK in batches, hybrid in its back store
and then its memory. What it guarantees: an entry that was stored before the call returns is not
read from this cache after it (by any thread or task), nor, on Redis, by any other worker (a hybrid
worker's memory follows through CLIENT TRACKING within the invalidation delay). On a hybrid, reads
from the back store that were in flight during the call do not put what they read into memory after
it (the fill barrier of cache/hybrid.py, and over Redis also that of cache/invalidation.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["ainvalidate_prefix", "invalidate_prefix"]

_UNLINK_BATCH = 500


def _memory(backend: Any, prefix: str) -> int:
    with backend._lock:
        dead = [key for key in list(backend._data) if key.startswith(prefix)]
    return sum(1 for key in dead if backend.delete(key))


def _sqlite(backend: Any, prefix: str) -> int:
    from scancache.cache.sqlite_file import retry

    cursor = backend._cursor()
    sql = "DELETE FROM entries WHERE namespace = ? AND substr(key, 1, ?) = ?"  # no LIKE: no escaping
    return int(retry(lambda: cursor.execute(sql, (backend.namespace, len(prefix), prefix)).rowcount))


def _redis_match(backend: Any, prefix: str) -> str:
    from scancache.cache.redis import _glob_escape

    return _glob_escape(backend.prefix + prefix) + "*"


def _redis(backend: Any, prefix: str) -> int:
    match = _redis_match(backend, prefix)

    def run(client: Any) -> int:
        target = {"target_nodes": "primaries"} if backend.cluster else {}
        removed, batch = 0, []
        for name in client.scan_iter(match=match, count=1000, **target):
            batch.append(name)
            if len(batch) >= _UNLINK_BATCH:
                removed += _unlink(client, batch, backend.cluster)
                batch = []
        return removed + (_unlink(client, batch, backend.cluster) if batch else 0)

    return int(backend._run(run))


def _unlink(client: Any, names: list[Any], cluster: bool) -> int:
    if cluster:  # keys of a batch live in different slots: one UNLINK each, pipelined
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.unlink(name)
        return sum(pipe.execute())
    return int(client.unlink(*names))


def invalidate_prefix(backend: Any, prefix: str) -> int:
    """Remove the keys of backend that start with prefix; returns how many the authoritative store
    held (the back store's count on a hybrid). Raises what the backend raises."""
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    kind = type(backend).__name__
    front = getattr(backend, "front", None)
    if front is not None:  # hybrid: back first, then memory, behind fill barriers
        listener = getattr(backend, "listener", None)
        if listener is not None:
            listener.barrier()
        removed = invalidate_prefix(backend.back, prefix)
        if listener is not None:
            listener.barrier()
        backend.forget_where(lambda memory: _memory(memory, prefix))
        return removed
    if kind == "MemoryBackend":
        return _memory(backend, prefix)
    if kind == "SQLiteBackend":
        return _sqlite(backend, prefix)
    if kind == "RedisBackend":
        return _redis(backend, prefix)
    raise TypeError(f"{kind} does not support invalidate(prefix=...)")


async def ainvalidate_prefix(backend: Any, prefix: str) -> int:
    """invalidate_prefix without blocking the event loop (memory runs inline, the rest in a thread)."""
    if type(backend).__name__ == "MemoryBackend":
        return invalidate_prefix(backend, prefix)
    return await asyncio.to_thread(invalidate_prefix, backend, prefix)
