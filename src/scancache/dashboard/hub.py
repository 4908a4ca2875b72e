"""One sampling task per dashboard, however many pages watch: it samples every `interval` seconds
(in a worker thread, since asking SQLite or Redis for stats blocks) and hands each frame to every
event stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from scancache.dashboard.sampler import Sampler

__all__ = ["Hub"]


class Hub:
    """Runs the sampler on the event loop it is started on; frames() yields each new frame."""

    def __init__(self, sampler: Sampler, interval: float = 1.0) -> None:
        self.sampler = sampler
        self.interval = interval
        self._latest: dict[str, Any] | None = None
        self._changed: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        """Start sampling on the running loop (idempotent)."""
        if self._task is None:
            self._changed = asyncio.Condition()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="scancache-dashboard")

    async def sample_now(self) -> dict[str, Any]:
        """Take a sample at once (for a request that comes before the first tick); returns the data."""
        await asyncio.to_thread(self.sampler.sample)
        return self.sampler.latest_data

    async def _run(self) -> None:
        assert self._changed is not None
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self._closed:
            frame = await asyncio.to_thread(self.sampler.sample)
            async with self._changed:
                self._latest = frame
                self._changed.notify_all()
            next_at = max(next_at + self.interval, loop.time())  # no burst to catch up after a stall
            await asyncio.sleep(next_at - loop.time())

    async def frames(self) -> AsyncIterator[dict[str, Any]]:
        """The latest frame at once, then each new one, until close()."""
        assert self._changed is not None, "Hub.start() was not called"
        seen: dict[str, Any] | None = None
        while not self._closed:
            async with self._changed:
                if self._latest is seen or self._latest is None:
                    await self._changed.wait()
                frame = self._latest
            if self._closed or frame is None:
                return
            seen = frame
            yield frame

    async def close(self) -> None:
        """Stop sampling and end every event stream."""
        self._closed = True
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
