"""Request rate limiters for NVD: in-process (sliding log) or shared through Redis (fixed window).

NVD allows a few requests per window per client address (5 per 30 s without a key). Every task of
a process shares one limiter; when the cache lives on Redis, every worker shares one counter there.
Clock and sleep are injectable so tests never wait for a real window.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["SlidingWindowLimiter", "RedisWindowLimiter"]


class SlidingWindowLimiter:
    """At most `limit` acquisitions in any `window_seconds`; acquire() waits for a free slot."""

    def __init__(self, limit: int, window_seconds: float, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.clock = clock
        self.sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()
        self.waits = 0
        self.waited_seconds = 0.0

    async def acquire(self) -> None:
        """Take one slot, waiting (in order of arrival) until the window has room."""
        async with self._lock:  # FIFO: the first task in line gets the next slot
            while True:
                now = self.clock()
                while self._sent and now - self._sent[0] >= self.window_seconds:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                delay = self._sent[0] + self.window_seconds - now
                self.waits += 1
                self.waited_seconds += delay
                await self.sleep(delay)


class RedisWindowLimiter:
    """The same promise across processes: INCR on a per-window key in Redis, PEXPIRE on first use.

    A fixed window lets up to 2x the limit through around a window boundary; NVD's own counting is
    coarse too, and the retry policy absorbs an occasional 403/429. If Redis fails, it falls back to
    the in-process limiter rather than stop scanning.
    """

    def __init__(self, redis_url: str, key: str, limit: int, window_seconds: float, *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 timeout_seconds: float = 1.0) -> None:
        from scancache.cache.redis_clients import connect_async  # the cache's factory: cluster-aware

        # A Redis that does not answer within timeout_seconds counts as an error: the request then
        # waits on the in-process limiter instead of stalling the scan.
        self.client = connect_async(redis_url, timeout_seconds=timeout_seconds)
        self.key = key
        self.limit = limit
        self.window_seconds = window_seconds
        self.clock = clock
        self.sleep = sleep
        self.fallback = SlidingWindowLimiter(limit, window_seconds, clock=clock, sleep=sleep)
        self.waits = 0
        self.waited_seconds = 0.0
        self.errors = 0

    async def acquire(self) -> None:
        """Take one slot of the shared window, waiting for the next window when it is full."""
        while True:
            now = self.clock()
            window = int(now // self.window_seconds) if self.window_seconds else 0
            key = f"{self.key}:{window}"
            try:
                count = await self.client.incr(key)
                if count == 1:
                    await self.client.pexpire(key, max(1, int(self.window_seconds * 2000)))
            except Exception:
                self.errors += 1
                await self.fallback.acquire()
                return
            if count <= self.limit:
                return
            delay = (window + 1) * self.window_seconds - now
            self.waits += 1
            self.waited_seconds += delay
            await self.sleep(max(delay, 0.0))

    async def aclose(self) -> None:
        """Close the Redis connection."""
        try:
            await self.client.aclose()
        except Exception:
            pass
