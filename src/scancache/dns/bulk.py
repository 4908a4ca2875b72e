"""resolve_many and query_many: stream the answers for a large list of names with bounded concurrency.

A fixed pool of `concurrency` worker tasks (not one task per name) pulls names and appends results
to a deque the caller drains (cheaper than asyncio.Queue's coroutines); a slow consumer pauses the
workers once results pile up, so memory stays flat however many names there are.

On a cache that is not memory-only, a bulk run stores its answers through Cache.write_behind()
(gathered_writes): one set_many per few hundred answers or few milliseconds instead of one
transaction per answer (issue 19). An answer not yet stored when the process is killed was never
acknowledged; the next run simply asks for it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any, TypeVar

from scancache.errors import DNSError

if TYPE_CHECKING:
    from scancache.dns.cache import DNSCache
    from scancache.dns.result import DNSResult

__all__ = ["resolve_many", "query_many", "stream", "gathered_writes"]

T = TypeVar("T")
ItemT = TypeVar("ItemT")  # one item of the input
_END: Any = object()  # no more items


def resolve_many(dns: DNSCache, names: Iterable[str], *, concurrency: int = 256,
                 rdtype: str | None = None, progress: Callable[[int, int | None], Any] | None = None
                 ) -> AsyncIterator[tuple[str, list[str] | DNSError]]:
    """(name, addresses | DNSError) for each name as it completes; see DNSCache.resolve_many."""
    resolve = dns.resolve
    return _storing(dns, stream(lambda name: resolve(name, rdtype), names,
                                concurrency=concurrency, progress=progress))


def query_many(dns: DNSCache, names: Iterable[str], *, concurrency: int = 256,
               rdtype: str | int | None = None,
               progress: Callable[[int, int | None], Any] | None = None
               ) -> AsyncIterator[tuple[str, DNSResult | DNSError]]:
    """(name, DNSResult | DNSError) for each name as it completes; see DNSCache.query_many."""
    query = dns.query
    return _storing(dns, stream(lambda name: query(name, rdtype), names,
                                concurrency=concurrency, progress=progress))


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
        await writes.aclose()


async def _storing(dns: DNSCache, results: AsyncIterator[T]) -> AsyncIterator[T]:
    """results, with the answers they fetched stored through gathered_writes."""
    async with gathered_writes(dns):
        async for result in results:
            yield result


async def stream(lookup: Callable[[ItemT], Awaitable[T]],
                 items: Iterable[ItemT] | AsyncIterable[ItemT], *, concurrency: int = 256,
                 progress: Callable[[int, int | None], Any] | None = None,
                 on_idle: Callable[[], Any] | None = None
                 ) -> AsyncIterator[tuple[ItemT, T | DNSError]]:
    """(item, lookup(item) | DNSError) for each item as it completes, `concurrency` at a time.

    items is consumed lazily (a generator over a huge file is never held in memory); an async
    iterable (e.g. lines from a pipe) is pulled by one feeder task so the loop never blocks on
    input. total for progress is len(items) when it has one, else None. on_idle() is called
    whenever the consumer is about to wait (e.g. to flush output). A ValueError from lookup
    becomes DNSError(item, "invalid name: ..."); any other exception is a bug and is raised here.
    """
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
    total = len(items) if isinstance(items, Sized) else None
    if total == 0:
        return
    loop = asyncio.get_running_loop()
    ready: deque[tuple[ItemT, T | DNSError]] = deque()
    waiter: list[asyncio.Future[None] | None] = [None]  # the consumer, while it waits for a result
    paused: list[asyncio.Future[None]] = []  # workers waiting for the consumer to catch up
    crashed: list[BaseException] = []
    limit = 4 * concurrency
    queue: asyncio.Queue[Any] | None = None
    feeder: asyncio.Task[None] | None = None
    if isinstance(items, AsyncIterable):
        queue = asyncio.Queue(maxsize=concurrency)
        source: Iterator[ItemT] = iter(())
    else:
        source = iter(items)
    running = [0]

    def wake() -> None:
        fut = waiter[0]
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def worker() -> None:
        while True:  # a shared source: each item is taken by exactly one worker
            item = next(source, _END) if queue is None else await queue.get()
            if item is _END:
                return
            try:
                result: T | DNSError = await lookup(item)
            except DNSError as exc:
                result = exc
            except ValueError as exc:
                result = DNSError(str(item), f"invalid name: {exc}")
            ready.append((item, result))
            wake()
            if len(ready) > limit:  # the consumer is slow: stop fetching ahead
                pause = loop.create_future()
                paused.append(pause)
                await pause

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
            for _ in workers:
                await queue.put(_END)

        feeder = asyncio.ensure_future(feed())
        feeder.add_done_callback(on_feeder_done)
    for task in workers:
        task.add_done_callback(on_worker_done)
    done = 0
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
            item = ready.popleft()
            if paused and len(ready) <= limit // 2:
                for pause in paused:
                    if not pause.done():
                        pause.set_result(None)
                paused.clear()
            done += 1
            if progress is not None:
                progress(done, total)
            yield item
    finally:
        tasks = [*workers, feeder] if feeder is not None else workers
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
