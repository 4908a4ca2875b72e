"""resolve_many and query_many: stream the answers for a large list of names with bounded concurrency.

A fixed pool of `concurrency` worker tasks (not one task per name) pulls names and appends results
to a deque the caller drains (cheaper than asyncio.Queue's coroutines); a slow consumer pauses the
workers once results pile up, so memory stays flat however many names there are.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from scancache.errors import DNSError

if TYPE_CHECKING:
    from scancache.dns.cache import DNSCache
    from scancache.dns.result import DNSResult

__all__ = ["resolve_many", "query_many", "stream"]

T = TypeVar("T")


def resolve_many(dns: DNSCache, names: Iterable[str], *, concurrency: int = 256,
                 rdtype: str | None = None, progress: Callable[[int, int], Any] | None = None
                 ) -> AsyncIterator[tuple[str, list[str] | DNSError]]:
    """(name, addresses | DNSError) for each name as it completes; see DNSCache.resolve_many."""
    return stream(dns.resolve, names, concurrency=concurrency, rdtype=rdtype, progress=progress)


def query_many(dns: DNSCache, names: Iterable[str], *, concurrency: int = 256,
               rdtype: str | None = None, progress: Callable[[int, int], Any] | None = None
               ) -> AsyncIterator[tuple[str, DNSResult | DNSError]]:
    """(name, DNSResult | DNSError) for each name as it completes; see DNSCache.query_many."""
    return stream(dns.query, names, concurrency=concurrency, rdtype=rdtype, progress=progress)


async def stream(lookup: Callable[[str, str | None], Awaitable[T]], names: Iterable[str], *,
                 concurrency: int = 256, rdtype: str | None = None,
                 progress: Callable[[int, int], Any] | None = None
                 ) -> AsyncIterator[tuple[str, T | DNSError]]:
    """(name, lookup(name, rdtype) | DNSError) for each name as it completes, bounded concurrency."""
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
    todo = list(names)
    total = len(todo)
    if not total:
        return
    resolve = lookup
    loop = asyncio.get_running_loop()
    ready: deque[tuple[str, T | DNSError]] = deque()
    waiter: list[asyncio.Future[None] | None] = [None]  # the consumer, while it waits for a result
    paused: list[asyncio.Future[None]] = []  # workers waiting for the consumer to catch up
    crashed: list[BaseException] = []
    limit = 4 * concurrency
    source = iter(todo)

    def wake() -> None:
        fut = waiter[0]
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def worker() -> None:
        for name in source:  # shared iterator: each name is taken by exactly one worker
            try:
                result: T | DNSError = await resolve(name, rdtype)
            except DNSError as exc:
                result = exc
            except ValueError as exc:
                result = DNSError(str(name), f"invalid name: {exc}")
            ready.append((name, result))
            wake()
            if len(ready) > limit:  # the consumer is slow: stop fetching ahead
                pause = loop.create_future()
                paused.append(pause)
                await pause

    def on_worker_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            crashed.append(task.exception())  # type: ignore[arg-type]
        wake()

    workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, total))]
    for task in workers:
        task.add_done_callback(on_worker_done)
    done = 0
    try:
        while done < total:
            if not ready:
                if crashed:
                    raise crashed[0]  # a bug, not a DNS failure: do not hide it
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
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
