"""The one small interface every storage backend implements, and the record it stores.

The Cache front (core.py) owns TTL policy, serialization, stats and single-flight; a backend only
stores and returns what it is given, so each backend module stays short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

__all__ = ["Record", "Backend", "ByteBackendBase", "InlineAsyncBase", "WriteItem", "to_thread"]

T = TypeVar("T")


async def to_thread(function: Callable[..., T], /, *args: Any) -> T:
    """asyncio.to_thread(function, *args), with asyncio imported at the first call: a process that
    only uses the sync API (a warm CLI run answered from the cache) never pays for importing it."""
    import asyncio

    return await asyncio.to_thread(function, *args)


class Record(NamedTuple):
    """A cached value with its times (epoch seconds) and its serialized size in bytes."""

    value: Any
    expires_at: float  # fresh until then
    stale_until: float  # kept (servable as stale) until then; == expires_at when no stale window
    nbytes: int


class WriteItem(NamedTuple):
    """One entry to store: the record for object backends, the encoded blob for byte backends."""

    key: str
    record: Record
    blob: bytes | None


@runtime_checkable
class Backend(Protocol):
    """Storage behind a Cache: the contract a new backend is written from.

    The Cache front owns everything else (TTL policy, clocks, codec, stats, single-flight, the rule
    that reads never raise), so a backend only stores and returns what it is given, under `key`
    (a str chosen by the front). Two flags say what it stores:

    - holds_records: get() returns the Record objects set() was given (memory, hybrid); otherwise it
      returns the bytes Codec.encode produced (SQLite, Redis) and the front decodes and verifies them.
    - wants_blob: set() needs the encoded bytes (anything that leaves the process).

    Failure, for every method: raise. An outage or a locked file raises whatever the store's client
    raises (sqlite3.Error, redis.RedisError, BackendError once closed); the front turns read errors
    into counted misses and write errors into False, so a backend never hides its own failures.
    Expiry: a backend never compares times itself except in purge_expired; it may drop an entry once
    its stale_until has passed (Redis's PX does), never before.

    Costs are per call; n = keys asked, N = entries of the namespace, K = keys of the whole store.
    Each async method is the twin of the sync one of the same name (same returns, raises, atomicity)
    and must never block the event loop for more than a local, uncontended operation.
    """

    holds_records: bool
    wants_blob: bool

    @property
    def evictions(self) -> int:
        """Entries evicted to stay within the size bounds (a plain attribute does as well)."""

    def get(self, key: str) -> Any | None:
        """What set() stored for key (a Record, or its blob), or None when absent. Expired entries
        may be returned: the front decides. Cost: O(1) memory, one indexed lookup SQLite, one GET
        Redis. Atomic: one whole value, never a half-written one."""

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """{key: what get() would return} for the keys present (absent keys left out; duplicates
        allowed). Cost: one round trip (SQLite: a query per 500 keys; Redis: one MGET, per slot on
        a cluster). Not a snapshot across keys."""

    def set(self, key: str, record: Record, blob: bytes | None) -> None:
        """Store record (memory) or blob (byte backends; blob is None only when wants_blob is False)
        under key, replacing any older value; the entry may be dropped after record.stale_until.
        Cost: O(1) plus evictions. Atomic per key: a reader sees the old value or the new one."""

    def set_many(self, items: Sequence[WriteItem]) -> None:
        """set() for every item. Cost: one round trip (SQLite: one transaction, all or nothing;
        Redis: one pipeline, not a transaction; a cluster: one per node, and a failed node raises
        after the others stored their part)."""

    def add(self, key: str, record: Record, blob: bytes | None, now: float) -> bool:
        """set() only if key is absent or dead (its stale_until <= now, the front's clock): True if
        this call stored it, False if a live entry was there (left as it was). Atomic across every
        thread, task and process sharing the store: of concurrent adds of one absent key, exactly
        one returns True (get-or-compute's recompute lease, cache/refresh.py). The one method
        besides purge_expired that compares times (Redis: the key's own PX does it). Cost: as set()
        (memory: under the write lock; SQLite: one INSERT ... ON CONFLICT DO UPDATE ... WHERE dead;
        Redis: one SET NX PX)."""

    def delete(self, key: str) -> bool:
        """Remove key; True if it was there. Cost: O(1) / one statement / one DEL."""

    def delete_if(self, key: str, record: Record, blob: bytes | None) -> bool:
        """Remove key only while it still holds what set() or add() stored with record and blob
        (memory: that Record object; byte backends: that blob); True if removed. Atomic: a value
        written meanwhile survives (the recompute lease's release: a holder that outlived its lease
        must not delete the next holder's). Cost: as delete() (SQLite: one DELETE ... AND blob = ?;
        Redis: one EVAL of a compare-and-delete script)."""

    def discard(self, key: str, raw: Any) -> None:
        """Delete key only if it still holds raw (what get() returned), so a newer value written
        meanwhile survives: expiry without races. Best effort: it may leave the entry (a locked file)
        for purge_expired or the store's own expiry; it must not wait (reads call it, also on the
        event loop)."""

    def clear(self) -> int:
        """Remove every entry of this backend's namespace (other namespaces in a shared store stay);
        returns how many. Cost: O(N) (Redis: a SCAN of the whole database, O(K)). Not atomic with
        concurrent writers: an entry written meanwhile may survive."""

    def purge_expired(self, now: float) -> int:
        """Remove entries whose stale_until <= now; returns how many (0 for a store that expires by
        itself, as Redis). Cost: O(N), a scan; the front calls it once per cleanup_interval."""

    def size(self) -> int:
        """Entries of this namespace, expired ones not yet purged included. Cost: O(1) memory; O(N)
        SQLite (a narrow index); O(K) Redis (a SCAN of the whole database): never on a hot path."""

    def size_bytes(self) -> int:
        """Bytes held (memory: the values' sizes; SQLite: the blobs'; 0 where the store cannot tell
        per namespace, as Redis). Cost as size()."""

    def close(self) -> None:
        """Release files and connections; later calls may raise. Idempotent."""

    async def aget(self, key: str) -> Any | None:
        """Async twin of get()."""

    async def aget_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """Async twin of get_many()."""

    async def aset(self, key: str, record: Record, blob: bytes | None) -> None:
        """Async twin of set()."""

    async def aset_many(self, items: Sequence[WriteItem]) -> None:
        """Async twin of set_many()."""

    async def aadd(self, key: str, record: Record, blob: bytes | None, now: float) -> bool:
        """Async twin of add()."""

    async def adelete(self, key: str) -> bool:
        """Async twin of delete()."""

    async def adelete_if(self, key: str, record: Record, blob: bytes | None) -> bool:
        """Async twin of delete_if()."""

    async def aclear(self) -> int:
        """Async twin of clear()."""

    async def aclose(self) -> None:
        """Async twin of close()."""


class InlineAsyncBase:
    """Async twins that call the sync methods inline: for backends whose every operation is a
    bounded in-process step (memory), where a thread hop would cost more than the work."""

    async def aget(self, key: str) -> Any | None:
        return self.get(key)

    async def aget_many(self, keys: Sequence[str]) -> dict[str, Any]:
        return self.get_many(keys)

    async def aset(self, key: str, record: Record, blob: bytes | None = None) -> None:
        self.set(key, record, blob)

    async def aset_many(self, items: Sequence[WriteItem]) -> None:
        self.set_many(items)

    async def aadd(self, key: str, record: Record, blob: bytes | None, now: float) -> bool:
        return self.add(key, record, blob, now)

    async def adelete(self, key: str) -> bool:
        return self.delete(key)

    async def adelete_if(self, key: str, record: Record, blob: bytes | None) -> bool:
        return self.delete_if(key, record, blob)

    async def aclear(self) -> int:
        return self.clear()

    async def aclose(self) -> None:
        self.close()

    # Subclasses implement these.
    def get(self, key: str) -> Any | None:  # pragma: no cover - interface
        raise NotImplementedError

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def set(self, key: str, record: Record, blob: bytes | None = None) -> None:  # pragma: no cover
        raise NotImplementedError

    def set_many(self, items: Sequence[WriteItem]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def add(self, key: str, record: Record, blob: bytes | None, now: float) -> bool:  # pragma: no cover
        raise NotImplementedError

    def delete(self, key: str) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def delete_if(self, key: str, record: Record, blob: bytes | None) -> bool:  # pragma: no cover
        raise NotImplementedError

    def clear(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class ByteBackendBase:
    """Defaults for backends that store encoded bytes: async methods run the sync ones in a thread.

    A backend with a native async client (Redis) overrides them.
    """

    holds_records = False
    wants_blob = True
    evictions = 0

    def discard(self, key: str, raw: Any) -> None:
        """Byte backends expire by themselves (index or server TTL); a plain delete is enough."""
        self.delete(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        out = {}
        for key in keys:
            raw = self.get(key)
            if raw is not None:
                out[key] = raw
        return out

    def set_many(self, items: Iterable[WriteItem]) -> None:
        for item in items:
            self.set(item.key, item.record, item.blob)

    async def aget(self, key: str) -> Any | None:
        return await to_thread(self.get, key)

    async def aget_many(self, keys: Sequence[str]) -> dict[str, Any]:
        return await to_thread(self.get_many, keys)

    async def aset(self, key: str, record: Record, blob: bytes | None) -> None:
        await to_thread(self.set, key, record, blob)

    async def aset_many(self, items: Sequence[WriteItem]) -> None:
        await to_thread(self.set_many, items)

    async def aadd(self, key: str, record: Record, blob: bytes | None, now: float) -> bool:
        return await to_thread(self.add, key, record, blob, now)

    async def adelete(self, key: str) -> bool:
        return await to_thread(self.delete, key)

    async def adelete_if(self, key: str, record: Record, blob: bytes | None) -> bool:
        return await to_thread(self.delete_if, key, record, blob)

    async def aclear(self) -> int:
        return await to_thread(self.clear)

    async def aclose(self) -> None:
        await to_thread(self.close)

    # Subclasses implement these.
    def clear(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def get(self, key: str) -> Any | None:  # pragma: no cover - interface
        raise NotImplementedError

    def set(self, key: str, record: Record, blob: bytes | None) -> None:  # pragma: no cover
        raise NotImplementedError

    def add(self, key: str, record: Record, blob: bytes | None, now: float) -> bool:  # pragma: no cover
        raise NotImplementedError

    def delete(self, key: str) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def delete_if(self, key: str, record: Record, blob: bytes | None) -> bool:  # pragma: no cover
        raise NotImplementedError
