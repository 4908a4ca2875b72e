"""Memory in front of a shared or persistent store (Redis or SQLite): read-through, write-through.

Hot keys are answered from process memory without a round trip; the back store is the authority that
other processes (and the next run) see. The front holds decoded Records, the back holds Codec blobs,
so a value crosses the codec once per process, on the first read.

Fill barrier: a read that missed memory and fetched from the back must not put what it fetched in
memory after a write or delete of that key has returned (it would serve the old value until its TTL).
A delete goes to the back first; then, under `_fill_lock`, the key's epoch (one of _STRIPES counters,
chosen by the key's hash) is bumped and memory updated. A reader notes the epochs before its back
read and fills memory only under the same lock, only if its key's epoch has not moved. So a fill
either lands before the change's memory step (which then removes it) or sees the bumped epoch and is
skipped; a reader that noted the epoch after the bump read the back after the change. A write takes
such a memory step before its back write (memory serves the new value at once) and one after it
(_settle_front). clear and invalidate(prefix=...) bump every epoch. Memory hits take no lock.

The sync and async reads share one body each past memory (_get_step, _get_many_step): generators that
yield the back call to make, ("get_many", keys), and receive its answer or have its exception thrown
in, for their own try/except; _run calls the back's method of that name, _arun awaits its "a" twin.
Only the drivers differ, as in refresh.py. A memory hit returns before any generator is made (the hot
path pays nothing for the sharing).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

from scancache.cache.backend import Backend, Record, WriteItem
from scancache.cache.codec import Codec, CorruptEntry
from scancache.cache.memory import MemoryBackend
from scancache.cache.steps import advance

__all__ = ["HybridBackend"]

#: Epoch counters of the fill barrier: keys share one when their hashes agree modulo this (a shared
#: counter only skips a fill that was safe, never admits one that was not).
_STRIPES = 256

_T = TypeVar("_T")
#: A read's shared body: yields (back method name, its argument), receives the result; returns the read's.
_Step = Generator[tuple[str, Any], Any, _T]


class HybridBackend:
    """An LRU MemoryBackend in front of a byte backend (Redis, SQLite) that holds every entry.

    get: front, else back -> decode -> fill front. set: front then back (write-through); if the back
    fails the front still holds the value and the exception propagates, so Cache.set reports False.
    A corrupt or badly signed blob in the back is deleted there and read as a miss (counted in
    `corrupt`). A failing back store never hides what the front holds: get_many returns the front's
    entries and counts the failure in `back_errors`; get on a key the front lacks raises.
    size() is the back's count (the authoritative store); size_bytes() and evictions are the front's.
    The front does not see writes made by other processes until its own copy expires or is evicted.
    Writes, deletes and clears reach the back first, then memory behind the fill barrier (module doc):
    once one returns, no read in flight puts an older value of that key back in memory.
    """

    holds_records = True
    wants_blob = True

    def __init__(self, front: MemoryBackend, back: Backend, codec: Codec,
                 clock: Callable[[], float] = time.time) -> None:
        self.front = front
        self.back = back
        self.codec = codec
        self.clock = clock  # the Cache's: decides when the front's copy is too old to trust
        self.corrupt = 0
        self.back_errors = 0
        self.fills = 0
        self.skipped_fills = 0  # fills a concurrent write or delete made outdated
        self._fill_lock = threading.Lock()
        self._epochs = [0] * _STRIPES

    @property
    def evictions(self) -> int:
        """LRU evictions from the memory front (the back store keeps evicted entries)."""
        return self.front.evictions

    def lookup_functions(self) -> tuple[Any, Any]:
        """(get, touch) of the memory front, for the Cache front's lock-free hit path."""
        return self.front.lookup_functions()

    # ------------------------------------------------------------------ helpers
    def _decode(self, key: str, raw: Any) -> Record | None:
        """A Record from what the back returned; None for a corrupt blob (counted; caller deletes it)."""
        if self.back.holds_records:
            return raw
        try:
            value, expires_at, stale_until = self.codec.decode(key, raw)
        except CorruptEntry:
            self.corrupt += 1
            return None
        # The front holds the decoded value: its size, not the (maybe compressed) blob's.
        return Record(value, expires_at, stale_until, self.codec.size_of(value))

    def _front_copy(self, key: str) -> tuple[Record | None, bool]:
        """(memory's record for key or None, whether it is still fresh): the first step of get."""
        front = self.front.get(key)
        return front, front is not None and self.clock() < front.expires_at

    def _front_split(self, keys: Sequence[str]) -> tuple[dict[str, Record], dict[str, Record], list[str]]:
        """The first step of get_many: (memory's fresh records, its expired ones, which are kept
        unless the back has newer, the keys to ask the back for)."""
        found = self.front.get_many(keys)
        now = self.clock()
        stale = {k: r for k, r in found.items() if r.expires_at <= now}
        for key in stale:
            del found[key]
        return found, stale, [key for key in keys if key not in found]

    def _take(self, found: dict[str, Record], raws: dict[str, Any], seen: dict[str, int]) -> list[str]:
        """Decode what the back returned into found and memory (seen: each key's epoch before the
        back read); returns the keys whose blob was corrupt."""
        corrupt = []
        for key, raw in raws.items():
            record = self._decode(key, raw)
            if record is None:
                corrupt.append(key)
            else:
                self._fill(key, record, seen[key])
                found[key] = record
        return corrupt

    def _newer(self, key: str, front: Record | None, back: Record | None, seen: int) -> Record | None:
        """The fresher of the front's (expired) copy and the back's record; the back's fills memory."""
        if back is None or (front is not None and back.expires_at <= front.expires_at):
            return front
        self._fill(key, back, seen)
        return back

    def _keep_newer(self, found: dict[str, Record], stale: dict[str, Record]) -> dict[str, Record]:
        """found plus each expired front copy the back had nothing newer for."""
        for key, record in stale.items():
            if key not in found or found[key].expires_at <= record.expires_at:
                found[key] = record
        return found

    def _epoch_of(self, key: str) -> int:
        """key's epoch in the fill barrier, noted by a reader before it asks the back."""
        return self._epochs[hash(key) % _STRIPES]

    def _epochs_of(self, keys: Sequence[str]) -> dict[str, int]:
        """_epoch_of each key (get_many's readers)."""
        epochs = self._epochs
        return {key: epochs[hash(key) % _STRIPES] for key in keys}

    def _fill(self, key: str, record: Record, seen: int) -> None:
        """Keep a record read from the back in memory, unless a write or delete of key moved its
        epoch since seen was noted (the record may be outdated) or it is larger than the memory
        budget."""
        stripe = hash(key) % _STRIPES
        with self._fill_lock:
            if self._epochs[stripe] != seen:
                self.skipped_fills += 1
                return
            try:
                self.front.set(key, record)
            except ValueError:  # larger than the whole memory budget: only the back keeps it
                return
        self.fills += 1

    def _store_front(self, items: Sequence[tuple[str, Record]]) -> None:
        """The memory step before a write's back step: bump each key's epoch and write the record
        (one too large for memory must not leave an older copy there)."""
        with self._fill_lock:
            for key, record in items:
                self._epochs[hash(key) % _STRIPES] += 1
                try:
                    self.front.set(key, record)
                except ValueError:  # too large for memory; drop any older copy so it cannot be served
                    self.front.delete(key)

    def _settle_front(self, items: Sequence[tuple[str, Record]]) -> None:
        """The memory step after a write's back step (which ran between the two): bump each key's
        epoch again, so a read that noted it meanwhile (and may have read the older value) cannot
        fill, and drop whatever memory holds for the key if it is not this write's record: an older
        value a read filled meanwhile, another write's, or nothing because another worker's write
        was reported (CLIENT TRACKING) while ours was on its way. Memory then holds this write's
        value or nothing."""
        with self._fill_lock:
            for key, record in items:
                self._epochs[hash(key) % _STRIPES] += 1
                if self.front.peek(key) is not record:
                    self.front.delete(key)

    def _forget(self, key: str) -> bool:
        """The memory step of a delete, after the back's: bump key's epoch, drop it from memory;
        True if memory held it."""
        with self._fill_lock:
            self._epochs[hash(key) % _STRIPES] += 1
            return self.front.delete(key)

    def forget_where(self, drop: Callable[[MemoryBackend], int]) -> int:
        """The memory step of a clear or invalidate(prefix=...), after the back's: bump every epoch,
        then drop(front) removes the entries; returns what drop returns."""
        with self._fill_lock:
            self._epochs = [epoch + 1 for epoch in self._epochs]
            return drop(self.front)

    # ------------------------------------------------------------------ the shared read bodies
    def _get_step(self, key: str, front: Record | None) -> _Step[Record | None]:
        """get's body past memory (run by get and aget): memory's copy of key was missing or expired
        (front: the expired one), and another worker may have written a fresh value to the back."""
        seen = self._epoch_of(key)
        try:
            raw = yield ("get", key)
        except Exception:
            if front is None:
                raise
            self.back_errors += 1
            return front
        record = None if raw is None else self._decode(key, raw)
        if raw is not None and record is None:  # corrupt (counted by _decode): delete it there
            with contextlib.suppress(Exception):  # best effort: the next read would retry it
                yield ("delete", key)
        return self._newer(key, front, record, seen)

    def _get_many_step(self, found: dict[str, Record], stale: dict[str, Record], missing: list[str]
                       ) -> _Step[None]:
        """get_many's body past memory (run by get_many and aget_many; _front_split's three): one back
        call for missing, what it returns decoded into found and memory."""
        seen = self._epochs_of(missing)
        try:
            raws = yield ("get_many", missing)
        except Exception:
            if not found and not stale:
                raise
            self.back_errors += 1
        else:
            for key in self._take(found, raws, seen):
                with contextlib.suppress(Exception):  # best effort: the next read would retry it
                    yield ("delete", key)

    def _run(self, step: _Step[_T]) -> _T:
        """Carry out step's back calls, blocking; the step's return value. An Exception from the back
        is thrown into the step (its own try/except decides); a BaseException (Ctrl-C) propagates."""
        back = self.back
        answer: Any = None
        error: Exception | None = None
        while True:
            finished, request = advance(step, answer, error)
            if finished:
                return request  # the step's return value
            (name, arg), answer, error = request, None, None
            try:
                answer = getattr(back, name)(arg)
            except Exception as exc:
                error = exc

    async def _arun(self, step: _Step[_T]) -> _T:
        """_run awaiting the back's async twin of each call ("get_many" -> aget_many); a
        CancelledError, a BaseException, propagates as in the awaited call."""
        back = self.back
        answer: Any = None
        error: Exception | None = None
        while True:
            finished, request = advance(step, answer, error)
            if finished:
                return request  # the step's return value
            (name, arg), answer, error = request, None, None
            try:
                answer = await getattr(back, "a" + name)(arg)
            except Exception as exc:
                error = exc

    # ------------------------------------------------------------------ sync API
    def get(self, key: str) -> Record | None:
        """The Record from memory, else from the back (then kept in memory). Raises if the back fails
        and memory has no copy at all (an expired copy is returned instead: the front serves it as
        stale)."""
        front, fresh = self._front_copy(key)
        if fresh:
            return front
        return self._run(self._get_step(key, front))

    def get_many(self, keys: Sequence[str]) -> dict[str, Record]:
        """Memory first, then one back call (MGET on Redis) for the rest; fills memory. If the back
        fails: memory's entries (the failure counted in back_errors), or the exception when memory
        has none."""
        found, stale, missing = self._front_split(keys)
        if missing:
            self._run(self._get_many_step(found, stale, missing))
        return self._keep_newer(found, stale)

    def set(self, key: str, record: Record, blob: bytes | None) -> None:
        """Write-through: memory, the back, then memory settled behind the fill barrier (see
        _settle_front); a back failure propagates (memory keeps the value)."""
        written = [(key, record)]
        self._store_front(written)
        try:
            self.back.set(key, record, blob)
        finally:
            self._settle_front(written)

    def set_many(self, items: Sequence[WriteItem]) -> None:
        """Memory, one back call (a pipeline on Redis, a transaction on SQLite), memory settled (as set)."""
        written = [(item.key, item.record) for item in items]
        self._store_front(written)
        try:
            self.back.set_many(items)
        finally:
            self._settle_front(written)

    def add(self, key: str, record: Record, blob: bytes | None, now: float) -> bool:
        """The back's add (the authority: atomic across processes); when it stored, memory's older
        copy of key is dropped behind the fill barrier (the next read fetches the new entry)."""
        stored = bool(self.back.add(key, record, blob, now))
        if stored:
            self._forget(key)
        return stored

    def delete_if(self, key: str, record: Record, blob: bytes | None) -> bool:
        """The back's delete_if; when it removed the entry, memory's copy of key goes too (behind the
        fill barrier; memory holds a decoded copy, not the record given)."""
        removed = bool(self.back.delete_if(key, record, blob))
        if removed:
            self._forget(key)
        return removed

    def delete(self, key: str) -> bool:
        """Delete from the back, then from memory behind the fill barrier; True if either held the
        key. A back failure propagates (memory's copy is dropped all the same)."""
        try:
            in_back = bool(self.back.delete(key))
        finally:
            in_front = self._forget(key)
        return in_back or in_front

    def discard(self, key: str, raw: Any) -> None:
        """Drop a dead Record from memory only. The back expires it by itself (Redis PX, SQLite's
        purge), and asking it here would put a network round trip on reads, event loop included."""
        self.front.discard(key, raw)

    def clear(self) -> int:
        """Clear the back, then memory behind the fill barrier; returns how many entries the back
        held (memory holds a subset)."""
        try:
            back_count = int(self.back.clear() or 0)
        finally:
            front_count = self.forget_where(MemoryBackend.clear)
        return max(back_count, front_count)

    def purge_expired(self, now: float) -> int:
        """Purge both tiers; returns the back's count (plus the front's when the back self-expires)."""
        front_count = self.front.purge_expired(now)
        back_count = self.back.purge_expired(now)
        return back_count or front_count

    def keys(self, prefix: str, limit: int) -> list[str]:
        """The back store's keys (memory holds a subset of them)."""
        # keys() is not in the Backend protocol (only the dashboard's listing uses it); ours all have it.
        return list(self.back.keys(prefix, limit))  # type: ignore[attr-defined]

    def size(self) -> int:
        """Entries in the back store (cost: the back's size(), a SCAN on Redis)."""
        return self.back.size()

    def size_bytes(self) -> int:
        """Bytes held in memory by the front."""
        return self.front.size_bytes()

    def close(self) -> None:
        """Close the back store; memory needs nothing."""
        self.front.close()
        self.back.close()

    # ------------------------------------------------------------------ async API
    async def aget(self, key: str) -> Record | None:
        """Async get: memory inline, the back through its async API (get's body, awaited)."""
        front, fresh = self._front_copy(key)
        if fresh:
            return front
        return await self._arun(self._get_step(key, front))

    async def aget_many(self, keys: Sequence[str]) -> dict[str, Record]:
        """Async get_many: memory inline, the rest in one async back call (get_many's body)."""
        found, stale, missing = self._front_split(keys)
        if missing:
            await self._arun(self._get_many_step(found, stale, missing))
        return self._keep_newer(found, stale)

    async def aset(self, key: str, record: Record, blob: bytes | None) -> None:
        """Async write-through (set's steps, the back awaited)."""
        written = [(key, record)]
        self._store_front(written)
        try:
            await self.back.aset(key, record, blob)
        finally:
            self._settle_front(written)

    async def aset_many(self, items: Sequence[WriteItem]) -> None:
        """Async set_many (set_many's steps, the back awaited)."""
        written = [(item.key, item.record) for item in items]
        self._store_front(written)
        try:
            await self.back.aset_many(items)
        finally:
            self._settle_front(written)

    async def aadd(self, key: str, record: Record, blob: bytes | None, now: float) -> bool:
        """Async add (add's steps, the back awaited)."""
        stored = bool(await self.back.aadd(key, record, blob, now))
        if stored:
            self._forget(key)
        return stored

    async def adelete_if(self, key: str, record: Record, blob: bytes | None) -> bool:
        """Async delete_if (delete_if's steps, the back awaited)."""
        removed = bool(await self.back.adelete_if(key, record, blob))
        if removed:
            self._forget(key)
        return removed

    async def adelete(self, key: str) -> bool:
        """Async delete (delete's steps, the back awaited)."""
        try:
            in_back = bool(await self.back.adelete(key))
        finally:
            in_front = self._forget(key)
        return in_back or in_front

    async def aclear(self) -> int:
        """Async clear (clear's steps, the back awaited)."""
        try:
            back_count = int(await self.back.aclear() or 0)
        finally:
            front_count = self.forget_where(MemoryBackend.clear)
        return max(back_count, front_count)

    async def aclose(self) -> None:
        """Async close of the back store."""
        self.front.close()
        await self.back.aclose()

    def __repr__(self) -> str:
        return f"<HybridBackend front={self.front!r} back={self.back!r}>"
