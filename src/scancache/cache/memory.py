"""In-process LRU storage with entry and byte limits.

Reads take no lock: dict lookups and OrderedDict.move_to_end are atomic under the GIL, and a
KeyError from a concurrent delete is harmless. Writes and evictions take one lock, so the entry and
byte counts stay exact under threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from scancache.cache.backend import InlineAsyncBase, Record, WriteItem

__all__ = ["MemoryBackend"]


class MemoryBackend(InlineAsyncBase):
    """LRU dict of Records bounded by max_entries and max_bytes (whichever is hit first).

    Cost: get O(1), set O(1) amortised plus evictions, purge_expired O(n).
    Never raises on reads; set raises ValueError only for an entry larger than max_bytes.
    Its async methods call these inline (InlineAsyncBase): a dict operation never blocks.
    """

    holds_records = True
    wants_blob = False

    def __init__(self, max_entries: int, max_bytes: int, *, thread_safe: bool = True) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, Record] = OrderedDict()
        self._bytes = 0
        self._lock: Any = threading.Lock() if thread_safe else nullcontext()
        self.evictions = 0

    def get(self, key: str) -> Record | None:
        record = self._data.get(key)
        if record is not None:
            try:
                self._data.move_to_end(key)
            except KeyError:  # deleted by another thread between the two calls
                pass
        return record

    def lookup_functions(self) -> tuple[Any, Any]:
        """(get, touch) of the LRU index, for the Cache front's lock-free hit path."""
        return self._data.get, self._data.move_to_end

    def peek(self, key: str) -> Record | None:
        """The record without touching LRU order."""
        return self._data.get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, Record]:
        get, touch = self._data.get, self._data.move_to_end  # inlined get(): no call per key
        out = {}
        for key in keys:
            record = get(key)
            if record is not None:
                try:
                    touch(key)
                except KeyError:  # deleted by another thread meanwhile: still a valid read
                    pass
                out[key] = record
        return out

    def set(self, key: str, record: Record, blob: bytes | None = None) -> None:
        nbytes = record.nbytes
        if nbytes > self.max_bytes:
            self.delete(key)  # the old value must not outlive a write that replaced it
            raise ValueError(f"entry of {nbytes} bytes exceeds max_memory_mb")
        with self._lock:  # _store and _evict inlined: this is the DNS miss path
            data = self._data
            old = data.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            data[key] = record
            self._bytes += nbytes
            if len(data) > self.max_entries or self._bytes > self.max_bytes:
                self._evict()

    def set_many(self, items: Sequence[WriteItem]) -> None:
        with self._lock:
            too_big = []
            for item in items:
                if item.record.nbytes <= self.max_bytes:
                    self._store(item.key, item.record)
                else:
                    too_big.append(item.key)
                    old = self._data.pop(item.key, None)  # no stale survivor of a refused write
                    if old is not None:
                        self._bytes -= old.nbytes
            self._evict()
        if too_big:
            raise ValueError(f"{len(too_big)} entries exceed max_memory_mb (first: {too_big[0]!r})")

    def add(self, key: str, record: Record, blob: bytes | None = None, now: float = 0.0) -> bool:
        """Store record only if key is absent or dead (stale_until <= now); True if stored. Under the
        write lock, so one thread of many wins. ValueError for an entry larger than max_bytes."""
        if record.nbytes > self.max_bytes:
            raise ValueError(f"entry of {record.nbytes} bytes exceeds max_memory_mb")
        with self._lock:
            held = self._data.get(key)
            if held is not None and held.stale_until > now:
                return False
            self._store(key, record)
            self._evict()
            return True

    def _store(self, key: str, record: Record) -> None:
        old = self._data.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        self._data[key] = record
        self._bytes += record.nbytes

    def _evict(self) -> None:
        data = self._data
        while len(data) > self.max_entries or self._bytes > self.max_bytes:
            _, old = data.popitem(last=False)
            self._bytes -= old.nbytes
            self.evictions += 1

    def delete(self, key: str) -> bool:
        with self._lock:
            old = self._data.pop(key, None)
            if old is None:
                return False
            self._bytes -= old.nbytes
            return True

    def discard(self, key: str, raw: Any) -> None:
        self.delete_if(key, raw, None)

    def delete_if(self, key: str, record: Record, blob: bytes | None = None) -> bool:
        """Remove key only while it holds this very Record object; True if removed."""
        with self._lock:
            held = self._data.get(key)
            if held is None or held is not record:
                return False
            del self._data[key]
            self._bytes -= held.nbytes
            return True

    def clear(self) -> int:
        with self._lock:
            count = len(self._data)
            self._data.clear()
            self._bytes = 0
            return count

    def purge_expired(self, now: float) -> int:
        with self._lock:
            dead = [k for k, r in self._snapshot() if r.stale_until <= now]
            for key in dead:
                self._bytes -= self._data.pop(key).nbytes
            return len(dead)

    def _snapshot(self) -> list[tuple[str, Record]]:
        """The entries as a list. Lock-free readers reorder the dict (move_to_end) meanwhile, and
        a copy can still meet one (the GIL may switch mid-copy): try again, it is rare."""
        while True:
            try:
                return list(self._data.items())
            except RuntimeError:  # "mutated during iteration"
                continue

    def size(self) -> int:
        return len(self._data)

    def keys(self, prefix: str, limit: int) -> list[str]:
        """Up to limit stored keys starting with prefix, sorted (for listings). O(n)."""
        return sorted(k for k, _ in self._snapshot() if k.startswith(prefix))[:limit]

    def size_bytes(self) -> int:
        return self._bytes

    def close(self) -> None:
        """Nothing to release; entries stay readable (closing a memory cache is a no-op)."""
