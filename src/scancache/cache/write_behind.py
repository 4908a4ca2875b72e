"""Gathered writes for bulk async work: many put()s, one backend set_many per batch (issue 19).

A bulk run (resolve 100,000 names, audit a lock file) writes one entry per answer. Stored one by one
on SQLite that is one transaction each; gathered here they are stored with one set_many (one
transaction, off the event loop for large batches) every `max_items` entries or `max_delay` seconds,
whichever comes first.

    async with cache.write_behind() as writes:
        for name, answer, ttl in answers:
            writes.put(name, answer, ttl)       # validated now, stored with its batch

put() acknowledges nothing: an entry is stored (and readable) once its batch is flushed, and a batch
not flushed when the process dies is simply lost (a later run asks again). Cache.set keeps its
meaning: True means stored. Lifetimes count from put(), each entry with its own ttl and stale_ttl.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from scancache.cache.backend import Record, WriteItem
from scancache.cache.entry import TTL

if TYPE_CHECKING:
    from scancache.cache.cache_base import CacheBase

__all__ = ["WriteBehind"]


class WriteBehind:
    """Batches a Cache's writes from one event loop; see the module doc. Not thread-safe.

    `batches` counts flushes that stored something, `stored` the entries they stored, `failed` the
    entries a failing backend dropped (also counted in the cache's stats as write failures).
    """

    def __init__(self, cache: CacheBase, *, max_items: int = 256, max_delay: float = 0.005) -> None:
        if max_items < 1 or not max_delay >= 0:
            raise ValueError("max_items must be >= 1 and max_delay >= 0")
        self.cache = cache
        self.max_items = max_items
        self.max_delay = max_delay
        self.batches = self.stored = self.failed = 0
        self._items: dict[str, WriteItem] = {}  # a key put twice keeps its last value
        self._dead: set[str] = set()  # keys whose zero lifetime means "remove the old value"
        self._in_flight: dict[str, WriteItem] = {}  # handed to the backend, not yet stored
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[bool]] = set()

    @property
    def pending(self) -> int:
        """Entries put but not yet handed to the backend."""
        return len(self._items) + len(self._dead)

    def put(self, key: str, value: Any, ttl: TTL = None, *, stale_ttl: float | None = None) -> None:
        """Queue value for key; raises TypeError/ValueError at once for what could never be stored.
        Must be called from the event loop that flushes."""
        made = self.cache._make(key, value, ttl, stale_ttl)
        if made is None:
            self._items.pop(key, None)
            self._in_flight.pop(key, None)
            self._dead.add(key)
        else:
            self._dead.discard(key)
            self._items[key] = WriteItem(key, made[0], made[1])
        if self.pending >= self.max_items:
            self._start_flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.max_delay, self._start_flush)

    def pending_record(self, key: str) -> Record | None:
        """The record put for key and not yet stored (None if none): a bulk run that meets a name
        again before its batch is stored uses it instead of asking upstream twice."""
        item = self._items.get(key) or self._in_flight.get(key)
        return item.record if item is not None else None

    def _take(self) -> tuple[list[WriteItem], list[str]]:
        """The pending batch, handed over (put() starts a new one at once)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = list(self._items.values()), list(self._dead)
        self._in_flight.update(self._items)
        self._items, self._dead = {}, set()
        return batch

    def _start_flush(self) -> None:
        """Store the pending batch in a task: a caller putting in a tight loop never waits on it."""
        task = asyncio.get_running_loop().create_task(self._store(*self._take()))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def flush(self) -> bool:
        """Store what is pending now, in one set_many; False (logged, counted) if the backend failed."""
        return await self._store(*self._take())

    async def _store(self, items: list[WriteItem], dead: list[str]) -> bool:
        if not items and not dead:
            return True
        try:
            return await self._store_batch(items, dead)
        finally:
            in_flight = self._in_flight
            for item in items:  # stored (or dropped): readable from the backend from now on
                if in_flight.get(item.key) is item:
                    del in_flight[item.key]

    async def _store_batch(self, items: list[WriteItem], dead: list[str]) -> bool:
        backend = self.cache.backend
        try:
            if items:
                await backend.aset_many(items)
            for key in dead:
                await backend.adelete(key)
        except Exception as exc:
            self.failed += len(items)
            self.cache._failed("write_behind", exc, write=True)
            return False
        self.batches += 1
        self.stored += len(items)
        self.cache.stats.sets += len(items)
        return True

    async def aclose(self) -> bool:
        """Flush what is left and wait for every flush in flight; True if all of them stored."""
        results = [await self.flush()]
        while self._flushing:
            results.extend(await asyncio.gather(*list(self._flushing)))
        return all(results)

    async def __aenter__(self) -> WriteBehind:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
