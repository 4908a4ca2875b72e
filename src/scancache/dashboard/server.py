"""Run the dashboard: inside a scanner's own event loop (`await aserve_dashboard(...)`), in a
background thread (`serve_dashboard(...)`), or as `scancache dashboard`.

Both return a DashboardServer once the socket listens (so `.url` is usable at once) and stop with
`stop()` / `await astop()`. The server is uvicorn's, without its signal handlers: Ctrl-C stays the
scanner's. Binding anything but a loopback address needs a token (ValueError otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import uvicorn

from scancache.alerts import AlertRules
from scancache.dashboard.app import create_app
from scancache.dashboard.hub import Hub
from scancache.dashboard.sampler import Sampler
from scancache.dashboard.security import Guard, is_loopback_host

__all__ = ["DashboardServer", "aserve_dashboard", "managed_caches", "serve_dashboard"]


class _QuietServer(uvicorn.Server):
    """uvicorn's server minus its SIGINT/SIGTERM handlers: the host program keeps its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def managed_caches(sources: Iterable[Any] | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """{namespace: Cache} for sources (Caches, DNSCaches, VulnerabilityDBCaches), by default every
    cache registered in scancache.metrics. A wrapper counts as the Cache it stores entries in."""
    if sources is None:
        from scancache.metrics import REGISTRY

        sources = [source for _, source in REGISTRY.cache_sources()]
    elif isinstance(sources, Mapping):
        sources = list(sources.values())
    out: dict[str, Any] = {}
    for source in sources:
        cache = source
        for attribute in ("cache", "_cache"):
            inner = getattr(source, attribute, None)
            if inner is not None and hasattr(inner, "backend"):
                cache = inner
                break
        if hasattr(cache, "backend") and hasattr(cache, "config"):
            out.setdefault(cache.config.namespace, cache)
    return out


FleetView = tuple[list[dict[str, Any]], dict[str, Any]]


def _fleet_reader(redis_url: str, namespaces: Iterable[str] | None,
                  signing_key: str | bytes | None) -> Callable[[], FleetView]:
    from scancache import fleet

    wanted = list(namespaces) if namespaces is not None else None

    def read() -> FleetView:
        workers = fleet.read_workers(redis_url, wanted, signing_key=signing_key)
        return workers, fleet.aggregate(workers)

    return read


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class DashboardServer:
    """A listening dashboard: url, token, and stop()/astop()."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 caches: Iterable[Any] | Mapping[str, Any] | None = None, redis_url: str | None = None,
                 fleet_namespaces: Iterable[str] | None = None, signing_key: str | bytes | None = None,
                 alerts: AlertRules | None = None, interval: float = 1.0,
                 collect: Callable[[], dict[str, Any]] | None = None) -> None:
        if not is_loopback_host(host) and not token:
            raise ValueError(f"binding the dashboard to {host} needs a token (--token): it can clear caches")
        self.guard = Guard(token)
        self.token = token
        self._sources = caches
        if collect is None:
            from scancache.metrics import get_monitoring_data

            collect = get_monitoring_data
        fleet = _fleet_reader(redis_url, fleet_namespaces, signing_key) if redis_url else None
        self.hub = Hub(Sampler(collect, fleet=fleet, rules=alerts, interval=interval), interval)
        self.app = create_app(self.hub, self.guard, lambda: managed_caches(self._sources))
        self._socket = _listen(host, port)
        bound = self._socket.getsockname()
        self.host, self.port = host, int(bound[1])
        shown = f"[{host.strip('[]')}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                ws="none", http="h11", timeout_graceful_shutdown=2, server_header=False)
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _serve(self) -> None:
        self.hub.start()
        try:
            await self._server.serve(sockets=[self._socket])
        finally:
            await self.hub.close()
            self._socket.close()

    async def astart(self) -> DashboardServer:
        """Serve on the running loop (as a task); returns once uvicorn has started."""
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._serve(), name="scancache-dashboard-server")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("the dashboard server stopped before it started")
            await asyncio.sleep(0.01)
        return self

    def start(self) -> DashboardServer:
        """Serve in a daemon thread with its own loop; returns once uvicorn has started."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            async def main() -> None:
                try:
                    await self.astart()
                except BaseException as exc:
                    failure.append(exc)
                    ready.set()
                    raise
                ready.set()
                assert self._task is not None
                await self._task

            with contextlib.suppress(Exception):
                asyncio.run(main())

        self._thread = threading.Thread(target=run, name="scancache-dashboard", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def _request_exit(self) -> None:
        self._server.should_exit = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already stopped
                loop.call_soon_threadsafe(lambda: loop.create_task(self.hub.close()))

    async def astop(self) -> None:
        """Stop serving (open event streams end) and wait for it."""
        self._request_exit()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving; from another thread than the server's (the thread flavour's join)."""
        self._request_exit()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self) -> None:
        """Block until the server thread ends (Ctrl-C raises KeyboardInterrupt here)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)


def serve_dashboard(**options: Any) -> DashboardServer:
    """Start a dashboard in a background thread; options as DashboardServer takes them."""
    return DashboardServer(**options).start()


async def aserve_dashboard(**options: Any) -> DashboardServer:
    """Start a dashboard on the running event loop; options as DashboardServer takes them."""
    return await DashboardServer(**options).astart()
