"""resolve_many and query_many: stream the answers for a large list of names with bounded concurrency.

Names are taken a batch (BATCH_SIZE) at a time, and what the cache holds for a whole batch is read
at once (DNSCache.resolve_cached / query_cached: one get_entries, one SQLite query or MGET): a warm
run costs no coroutine per name. The names a batch leaves (missing, stale, invalid) go to a fixed
pool of `concurrency` worker tasks (not one task per name), which append results to a deque the
caller drains (cheaper than asyncio.Queue's coroutines); a slow consumer pauses the workers once
results pile up, so memory stays flat however many names there are.

On a cache that is not memory-only, a bulk run stores its answers through Cache.write_behind()
(gathered_writes): one set_many per few hundred answers or few milliseconds instead of one
transaction per answer (issue 19). An answer not yet stored when the process is killed was never
acknowledged; the next run simply asks for it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
    Sized,
)
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from scancache.errors import DNSError

if TYPE_CHECKING:
    from scancache.dns.cache import DNSCache
    from scancache.dns.result import DNSResult

__all__ = ["resolve_many", "query_many", "stream", "stream_batches", "gathered_writes", "split_answers",
           "BATCH_SIZE"]

T = TypeVar("T")
ItemT = TypeVar("ItemT")  # one item of the input
_END: Any = object()  # no more items
#: Input items read (and looked up in the cache) at once: SQLite reads up to 500 keys inline.
BATCH_SIZE = 500
#: cached(batch) -> ((item, answer) for the items the cache answered, the items it left).
CachedLookup: TypeAlias = Callable[[list[ItemT]],
                                   Awaitable[tuple[Sequence[tuple[ItemT, T]], list[ItemT]]]]


def resolve_many(dns: DNSCache, names: Iterable[str], *, concurrency: int = 256,
                 rdtype: str | None = None, progress: Callable[[int, int | None], Any] | None = None
                 ) -> AsyncIterator[tuple[str, list[str] | DNSError]]:
    """(name, addresses | DNSError) for each name as it completes; see DNSCache.resolve_many."""
    resolve = dns.resolve

    async def cached(batch: list[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
        return split_answers(batch, await dns.resolve_cached(batch, rdtype))

    return _storing(dns, stream(lambda name: resolve(name, rdtype), names, concurrency=concurrency,
                                progress=progress, cached=cached))


def query_many(dns: DNSCache, names: Iterable[str], *, concurrency: int = 256,
               rdtype: str | int | None = None,
               progress: Callable[[int, int | None], Any] | None = None
               ) -> AsyncIterator[tuple[str, DNSResult | DNSError]]:
    """(name, DNSResult | DNSError) for each name as it completes; see DNSCache.query_many."""
    query = dns.query

    async def cached(batch: list[str]) -> tuple[list[tuple[str, DNSResult]], list[str]]:
        return split_answers(batch, await dns.query_cached([(name, rdtype) for name in batch]))

    return _storing(dns, stream(lambda name: query(name, rdtype), names, concurrency=concurrency,
                                progress=progress, cached=cached))


def split_answers(batch: list[ItemT], answers: list[T | None]
                  ) -> tuple[list[tuple[ItemT, T]], list[ItemT]]:
    """((item, answer) where the cache answered, items it did not), from answers in batch order:
    what a stream's cached(batch) returns."""
    answered, left = [], []
    for item, answer in zip(batch, answers, strict=True):
        if answer is None:
            left.append(item)
        else:
            answered.append((item, answer))
    return answered, left


@contextlib.asynccontextmanager
async def gathered_writes(dns: DNSCache) -> AsyncIterator[None]:
    """While the block runs, dns stores new answers with Cache.write_behind() (batched, off the
    event loop); on leaving, everything gathered is stored. A no-op on a memory-only cache (a dict
    write is already cheap) and inside another gathered_writes block on the same dns."""
    if dns._memory_only or dns._writes is not None:
        yield
        return
    dns._writes = writes = dns.cache.write_behind()
    try:
        yield
    finally:
        dns._writes = None
        dns._absent.clear()  # keys of a run left early: read again by any later lookup
        await writes.aclose()


async def _storing(dns: DNSCache, results: AsyncIterator[T]) -> AsyncIterator[T]:
    """results, with the answers they fetched stored through gathered_writes."""
    async with gathered_writes(dns):
        async for result in results:
            yield result


async def stream(lookup: Callable[[ItemT], Awaitable[T]],
                 items: Iterable[ItemT] | AsyncIterable[ItemT], *, concurrency: int = 256,
                 progress: Callable[[int, int | None], Any] | None = None,
                 on_idle: Callable[[], Any] | None = None,
                 cached: CachedLookup[ItemT, T] | None = None
                 ) -> AsyncIterator[tuple[ItemT, T | DNSError]]:
    """(item, lookup(item) | DNSError) for each item as it completes, `concurrency` at a time.

    stream_batches() one result at a time; progress(done, total) is called before each is yielded
    (total: len(items) when it has one, else None).
    """
    total = len(items) if isinstance(items, Sized) else None
    done = 0
    # aclosing: leaving this loop early closes stream_batches now, which cancels its lookups
    async with contextlib.aclosing(stream_batches(lookup, items, concurrency=concurrency,
                                                  on_idle=on_idle, cached=cached)) as batches:
        async for batch in batches:
            for pair in batch:
                done += 1
                if progress is not None:
                    progress(done, total)
                yield pair


async def stream_batches(lookup: Callable[[ItemT], Awaitable[T]],
                         items: Iterable[ItemT] | AsyncIterable[ItemT], *, concurrency: int = 256,
                         on_idle: Callable[[], Any] | None = None,
                         cached: CachedLookup[ItemT, T] | None = None,
                         batch_size: int = BATCH_SIZE
                         ) -> AsyncGenerator[Sequence[tuple[ItemT, T | DNSError]], None]:
    """Lists of (item, lookup(item) | DNSError), each item once, as they complete, `concurrency`
    lookups at a time.

    items is consumed lazily (a generator over a huge file is never held in memory); an async
    iterable (e.g. lines from a pipe) is pulled by one feeder task so the loop never blocks on
    input. on_idle() is called whenever the consumer is about to wait (e.g. to flush output). A
    ValueError from lookup becomes DNSError(item, "invalid name: ..."); any other exception is a
    bug and is raised here.

    With cached, items are taken batch_size at a time and cached(batch) answers what it can at
    once (one cache read for the batch, no coroutine per item: a warm run is a few hundred reads
    of a few hundred keys); only the items it leaves go through lookup, one worker each.
    """
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
    total = len(items) if isinstance(items, Sized) else None
    if total == 0:
        return
    loop = asyncio.get_running_loop()
    ready: deque[Sequence[tuple[ItemT, T | DNSError]]] = deque()
    backlog = [0]  # results in ready
    waiter: list[asyncio.Future[None] | None] = [None]  # the consumer, while it waits for a result
    paused: list[asyncio.Future[None]] = []  # workers waiting for the consumer to catch up
    crashed: list[BaseException] = []
    left: deque[ItemT] = deque()  # items a batch left for lookup, not yet taken by a worker
    exhausted = [False]
    reading: list[asyncio.Future[None]] = []  # set while a worker reads a batch
    limit = max(4 * concurrency, 2 * batch_size if cached is not None else 0)
    queue: asyncio.Queue[Any] | None = None
    feeder: asyncio.Task[None] | None = None
    if isinstance(items, AsyncIterable):
        queue = asyncio.Queue(maxsize=max(concurrency, batch_size if cached is not None else 0))
        source: Iterator[ItemT] = iter(())
    else:
        source = iter(items)
    running = [0]

    def wake() -> None:
        fut = waiter[0]
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def next_item() -> Any:
        """The next input item, or _END (for every worker, once the input has ended)."""
        if exhausted[0]:
            return _END
        item = next(source, _END) if queue is None else await queue.get()
        if item is _END:
            exhausted[0] = True
        return item

    async def next_batch() -> list[ItemT]:
        """Up to batch_size input items: as many as are there without waiting, at least one."""
        first = await next_item()
        if first is _END:
            return []
        batch = [first]
        if queue is None:
            batch.extend(islice(source, batch_size - 1))
            if len(batch) < batch_size:
                exhausted[0] = True
        else:
            while len(batch) < batch_size and not queue.empty():
                item = queue.get_nowait()
                if item is _END:
                    exhausted[0] = True
                    break
                batch.append(item)
        return batch

    def publish(results: Sequence[tuple[ItemT, T | DNSError]]) -> None:
        ready.append(results)
        backlog[0] += len(results)
        wake()

    async def read_batch() -> bool:
        """Take a batch of input, publish what the cache answers, leave the rest; False at the end.
        One batch is read at a time: a worker that finds one being read waits for it instead."""
        while reading:
            await asyncio.shield(reading[0])
            if left:
                return True
        reading.append(loop.create_future())
        try:
            batch = await next_batch()
            if not batch:
                return False
            answered, unanswered = await cached(batch)  # type: ignore[misc]  # set when called
            left.extend(unanswered)
            if answered:
                publish(answered)
            return True
        finally:
            reading.pop().set_result(None)

    async def worker() -> None:
        while True:  # a shared source: each item is taken by exactly one worker
            while backlog[0] > limit:  # the consumer is slow: take nothing more for now
                pause = loop.create_future()
                paused.append(pause)
                await pause
            if left:
                item = left.popleft()
            elif cached is not None:
                if not await read_batch():
                    return
                continue
            else:
                item = await next_item()
                if item is _END:
                    return
            try:
                result: T | DNSError = await lookup(item)
            except DNSError as exc:
                result = exc
            except ValueError as exc:
                result = DNSError(str(item), f"invalid name: {exc}")
            publish([(item, result)])

    def on_worker_done(task: asyncio.Task[None]) -> None:
        running[0] -= 1
        if not task.cancelled() and task.exception() is not None:
            crashed.append(task.exception())  # type: ignore[arg-type]  # checked: not None
        wake()

    def on_feeder_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            crashed.append(task.exception())  # type: ignore[arg-type]  # not None (e.g. unreadable input)
            wake()

    workers = [asyncio.ensure_future(worker())
               for _ in range(concurrency if total is None else min(concurrency, total))]
    running[0] = len(workers)
    if queue is not None:
        async def feed() -> None:
            async for item in items:  # type: ignore[union-attr]  # async when queue is set
                await queue.put(item)
            for _ in workers:  # one each: a worker waiting in get() must wake up to end
                await queue.put(_END)

        feeder = asyncio.ensure_future(feed())
        feeder.add_done_callback(on_feeder_done)
    for task in workers:
        task.add_done_callback(on_worker_done)
    try:
        while True:
            if not ready:
                if crashed:
                    raise crashed[0]  # a bug, not a DNS failure: do not hide it
                if not running[0]:
                    return
                if on_idle is not None:
                    on_idle()
                waiter[0] = wait = loop.create_future()
                await wait
                continue
            results = ready.popleft()
            backlog[0] -= len(results)
            if paused and backlog[0] <= limit // 2:
                for pause in paused:
                    if not pause.done():
                        pause.set_result(None)
                paused.clear()
            yield results
    finally:
        tasks = [*workers, feeder] if feeder is not None else workers
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
