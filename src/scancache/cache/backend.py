"""The one small interface every storage backend implements, and the record it stores.

The Cache front (core.py) owns TTL policy, serialization, stats and single-flight; a backend only
stores and returns what it is given, so each backend module stays short.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

__all__ = ["Record", "Backend", "ByteBackendBase", "WriteItem"]


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
    """Storage behind a Cache.

    holds_records: get() returns Record objects (memory, hybrid); otherwise it returns the bytes
    that Codec.encode produced (SQLite, Redis) and the front decodes and verifies them.
    wants_blob: set() needs the encoded bytes (anything that leaves the process).
    Reads may raise on backend failure; the front turns that into a counted miss.
    """

    holds_records: bool
    wants_blob: bool

    @property
    def evictions(self) -> int:
        """Entries evicted to stay within the size bounds (a plain attribute does as well)."""

    def get(self, key: str) -> Any | None: ...
    def get_many(self, keys: Sequence[str]) -> dict[str, Any]: ...
    def set(self, key: str, record: Record, blob: bytes | None) -> None: ...
    def set_many(self, items: Sequence[WriteItem]) -> None: ...
    def delete(self, key: str) -> bool: ...
    def discard(self, key: str, raw: Any) -> None:
        """Delete key only if it still holds raw (what get returned): expiry without races."""
    def clear(self) -> int: ...
    def purge_expired(self, now: float) -> int: ...
    def size(self) -> int: ...
    def size_bytes(self) -> int: ...
    def close(self) -> None: ...

    async def aget(self, key: str) -> Any | None: ...
    async def aget_many(self, keys: Sequence[str]) -> dict[str, Any]: ...
    async def aset(self, key: str, record: Record, blob: bytes | None) -> None: ...
    async def aset_many(self, items: Sequence[WriteItem]) -> None: ...
    async def adelete(self, key: str) -> bool: ...
    async def aclear(self) -> int: ...
    async def aclose(self) -> None: ...


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
        return await asyncio.to_thread(self.get, key)

    async def aget_many(self, keys: Sequence[str]) -> dict[str, Any]:
        return await asyncio.to_thread(self.get_many, keys)

    async def aset(self, key: str, record: Record, blob: bytes | None) -> None:
        await asyncio.to_thread(self.set, key, record, blob)

    async def aset_many(self, items: Sequence[WriteItem]) -> None:
        await asyncio.to_thread(self.set_many, items)

    async def adelete(self, key: str) -> bool:
        return await asyncio.to_thread(self.delete, key)

    async def aclear(self) -> int:
        return await asyncio.to_thread(self.clear)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # Subclasses implement these.
    def clear(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def get(self, key: str) -> Any | None:  # pragma: no cover - interface
        raise NotImplementedError

    def set(self, key: str, record: Record, blob: bytes | None) -> None:  # pragma: no cover
        raise NotImplementedError

    def delete(self, key: str) -> bool:  # pragma: no cover - interface
        raise NotImplementedError
