"""Join concurrent computations of one key into one: async (tasks) and sync (threads).

The async version creates no Task: the first caller (the leader) runs the factory itself, and a
Future is made only when a second caller arrives. If the leader is cancelled, waiting callers
retry and one of them becomes the new leader, so one cancellation does not fail everyone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from scancache.cache._threads import Lock

__all__ = ["AsyncSingleFlight", "SingleFlight", "call_factory"]

_NO_WAITERS = object()


async def call_factory(factory: Callable[[], Any]) -> Any:
    """Call factory; await the result when it is awaitable (sync and async factories both work)."""
    import inspect  # here: a process that never computes through the cache never imports it

    result = factory()
    if inspect.isawaitable(result):
        result = await result
    return result


class AsyncSingleFlight:
    """At most one running factory per key among the tasks of one event loop."""

    def __init__(self) -> None:
        self._flights: dict[Any, Any] = {}
        self.joined = 0  # callers that waited for another caller's result

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: Any, factory: Callable[[], Any]) -> Any:
        """Result of factory() (sync or async) for key, shared with every caller asking meanwhile."""
        return await self.call(key, call_factory, factory)

    async def call(self, key: Any, function: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Result of `await function(*args)` for key, shared with every caller asking meanwhile.

        The lean form of run() for hot paths: no closure to build and no awaitable check. Flights
        are per event loop: a cache shared by threads running their own loops never hands one
        loop's future to another (futures are not thread-safe).
        """
        import asyncio  # here, not at the top: a sync-only process never imports it

        flights = self._flights
        loop = asyncio.get_running_loop()
        key = (loop, key)
        while True:
            slot = flights.get(key)
            if slot is None:
                break
            if slot is _NO_WAITERS:
                slot = flights[key] = loop.create_future()
            self.joined += 1
            try:
                return await asyncio.shield(slot)
            except _LeaderCancelled:
                continue  # the leader went away: try to lead
        flights[key] = _NO_WAITERS
        try:
            result = await function(*args)
        except asyncio.CancelledError:
            self._finish(key, exception=_LeaderCancelled())
            raise
        except BaseException as exc:
            self._finish(key, exception=exc)
            raise
        self._finish(key, result=result)
        return result

    def _finish(self, key: Any, *, result: Any = None, exception: BaseException | None = None
                ) -> None:
        slot = self._flights.pop(key, None)
        if slot is None or slot is _NO_WAITERS or slot.done():
            return
        if exception is not None:
            slot.set_exception(exception)
            slot.exception()  # mark retrieved: waiters may all be gone
        else:
            slot.set_result(result)


class _LeaderCancelled(Exception):
    """Internal: the task computing a shared result was cancelled."""


class _Call:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        import threading  # here: a process that never computes through the cache never imports it

        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class SingleFlight:
    """At most one running factory per key among threads."""

    def __init__(self) -> None:
        self._calls: dict[Any, _Call] = {}
        self._lock = Lock()
        self.joined = 0

    def run(self, key: Any, factory: Callable[[], Any]) -> Any:
        """Result of factory() for key, shared with every thread that asks while it runs."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if leader:
                call = self._calls[key] = _Call()
            else:
                self.joined += 1
        assert call is not None
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.result
        try:
            call.result = factory()
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                self._calls.pop(key, None)
            call.done.set()
        return call.result
