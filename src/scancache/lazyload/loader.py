"""LazyModuleLoader: import heavy modules on demand, in the background or at startup, and measure them.

Threading rules that keep it deadlock-free:
- The loader's lock guards only its own dicts; it is never held while the import system runs.
- Concurrent requests for one module share one import (one job; later callers wait on its future).
- Code already running inside an import never waits on another thread (the other thread may need an
  import lock this thread holds): nested requests import inline, in the current thread, where the
  import system's own per-module locks join a running import or break a cycle.
- An import cannot be interrupted. When `load_timeout` passes, the caller gets TimeoutError while the
  import keeps running in its (daemon) thread; a later request for that module joins it.
"""

from __future__ import annotations

import importlib
import queue
import sys
import threading
import types
from collections.abc import Callable, Iterable
from typing import Any

from scancache.errors import ModuleLoadRefused
from scancache.lazyload.conditions import Condition, make_condition, parse_condition
from scancache.lazyload.config import LazyLoadConfig, LazyLoadStrategy
from scancache.lazyload.importstate import inside_import, is_initializing, is_missing
from scancache.lazyload.jobs import ImportJob, ImportTable
from scancache.lazyload.monitor import bytes_to_mb, current_rss_bytes, summarize
from scancache.lazyload.proxy import eager_imports_enabled

__all__ = ["LazyModuleLoader"]


def _warn(message: str, *args: object) -> None:
    """Log a warning; logging is imported here because only failures need it (startup cost)."""
    import logging

    logging.getLogger(__name__).warning(message, *args)


class LazyModuleLoader:
    """Loads modules on demand, in background threads, at startup or when a condition holds.

    Use `async with LazyModuleLoader(config) as loader:` (or `with loader:`, or start()/close()).
    Entering starts the background workers (BACKGROUND) and imports `preload_modules` (PRELOAD, and
    CONDITIONAL for modules whose condition holds); `__aenter__` returns after those preloads finish.
    On-demand loads also work on a loader that was never entered; a closed loader refuses loads.
    With SCANCACHE_EAGER=1, ON_DEMAND and BACKGROUND loaders import `preload_modules` at enter too.
    """

    def __init__(self, config: LazyLoadConfig | None = None) -> None:
        self.config = config if config is not None else LazyLoadConfig()
        self._lock = threading.Lock()  # guards lifecycle state; never held during an import
        self._table = ImportTable(hold_modules=self.config.cache_loaded_modules,
                                  measure=self.config.enable_monitoring)
        self._conditions: dict[str, Condition] = {
            name: parse_condition(rule) for name, rule in self.config.conditions.items()}
        self._main_thread_modules = frozenset(self.config.main_thread_modules)
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._started = False
        self._closed = False
        self._started_tracemalloc = False
        self._preload_trigger = self.config.strategy.value  # what monitoring calls a preload
        if self.config.enable_monitoring:  # one place (scancache.metrics) sees every live loader
            from scancache.metrics import register_automatically

            self.metrics_name = register_automatically("lazy", self, loader=True)

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> LazyModuleLoader:
        """Start workers and run the strategy's preloads in this thread (sync twin of __aenter__)."""
        for name in self._begin():
            try:
                self._load_sync(name, True, self._preload_trigger)
            except Exception as exc:  # recorded; the app may still run without it
                _warn("preload of %s failed: %s", name, exc)
        return self

    async def astart(self) -> LazyModuleLoader:
        """Start workers and await the strategy's preloads (at most background_workers at once)."""
        import asyncio  # here, not at module level: sync users should not pay for it

        names = self._begin()
        limit = asyncio.Semaphore(self.config.background_workers)

        async def preload(name: str) -> None:
            async with limit:
                try:
                    await self._load_async(name, True, self._preload_trigger)
                except Exception as exc:  # recorded; the app may still run without it
                    _warn("preload of %s failed: %s", name, exc)

        await asyncio.gather(*(preload(n) for n in names))
        return self

    def _begin(self) -> list[str]:
        """Mark started, start tracing/workers; return the modules to preload now."""
        with self._lock:
            if self._closed:
                raise ModuleLoadRefused("LazyModuleLoader is closed; create a new one")
            if self._started:
                return []
            self._started = True
        if self.config.trace_memory and self.config.enable_monitoring:
            import tracemalloc

            if not tracemalloc.is_tracing():
                tracemalloc.start()
                self._started_tracemalloc = True
        strategy = self.config.strategy
        if eager_imports_enabled() and strategy in (LazyLoadStrategy.ON_DEMAND, LazyLoadStrategy.BACKGROUND):
            strategy = LazyLoadStrategy.PRELOAD  # SCANCACHE_EAGER=1: everything at enter, in order
        self._preload_trigger = strategy.value
        if strategy is LazyLoadStrategy.BACKGROUND:
            self.schedule_background(self.config.preload_modules)
            return []
        if strategy is LazyLoadStrategy.PRELOAD:
            return list(self.config.preload_modules)
        if strategy is LazyLoadStrategy.CONDITIONAL:
            selected = []
            for name in self.config.preload_modules:
                condition = self._conditions.get(name)
                if condition is None or condition.holds():
                    selected.append(name)
                else:
                    self._table.set_status(name, "skipped", "conditional",
                                     error=f"condition {condition.description!r} does not hold")
            return selected
        return []

    def close(self) -> None:
        """Stop background workers (an import already running finishes; queued ones are dropped).

        Waits up to load_timeout per worker. Imports cannot be cancelled, so a hung import leaves
        its daemon thread behind. Idempotent. Later loads raise ModuleLoadRefused.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers, self._workers = self._workers, []
        self._table.wake_all()
        for _ in workers:
            self._queue.put(None)
        for worker in workers:
            worker.join(self.config.load_timeout)
        self._table.skip_queued("loader closed before it started")
        if self._started_tracemalloc:
            import tracemalloc

            tracemalloc.stop()
            self._started_tracemalloc = False

    async def aclose(self) -> None:
        """close() without blocking the event loop (joins workers in a thread)."""
        import asyncio

        await asyncio.to_thread(self.close)

    def __enter__(self) -> LazyModuleLoader:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> LazyModuleLoader:
        return await self.astart()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ---- configuration at run time -----------------------------------------------------------

    def add_condition(self, name: str, predicate: Callable[[], bool] | str | None = None, *,
                      env: str | None = None, platform: str | None = None,
                      module: str | None = None) -> None:
        """Guard module `name`: loads are refused while the condition does not hold.

        `predicate` is a callable or a rule string ("env:VAR", "platform:linux", "module:x"); the
        keyword forms add rules (all must hold). Checked on every request that is not yet loaded.
        """
        condition = make_condition(predicate, env=env, platform=platform, module=module)
        with self._lock:
            self._conditions[name] = condition

    def schedule_background(self, names: Iterable[str]) -> None:
        """Queue modules for the background workers (started on first use); returns at once."""
        names = list(names)
        for name in names:
            if name in self._main_thread_modules:  # never imported by a worker thread
                self._table.set_status(name, "skipped", "background",
                                 error="in main_thread_modules: loads on demand, on the main thread")
        names = [n for n in names if n not in self._main_thread_modules]
        if not names:
            return
        with self._lock:
            if self._closed:
                raise ModuleLoadRefused("LazyModuleLoader is closed; create a new one")
            self._table.mark_queued(names)
            missing = self.config.background_workers - len(self._workers)
            for _ in range(missing):
                worker = threading.Thread(target=self._background_worker, daemon=True,
                                          name=f"scancache-lazy-bg-{len(self._workers)}")
                self._workers.append(worker)
                worker.start()
        for name in names:
            self._queue.put(name)

    # ---- loading ------------------------------------------------------------------------------

    async def load_module(self, name: str, *, required: bool = True) -> types.ModuleType | None:
        """Import `name` in a worker thread without blocking the event loop; return the module.

        Concurrent calls share one import. Raises the import's own exception (original traceback),
        TimeoutError after load_timeout (the import keeps running and a later call joins it),
        ModuleLoadRefused (closed, condition false, memory budget exceeded). With required=False a
        module that does not exist returns None instead. Modules in main_thread_modules import on
        the event loop's thread (which must be the main thread), blocking it for the import.
        """
        return await self._load_async(name, required, "on_demand")

    async def _load_async(self, name: str, required: bool, trigger: str) -> types.ModuleType | None:
        import asyncio  # already loaded: we are running in its event loop

        module = self._ready(name)
        if module is not None:
            return module
        if inside_import() or name in self._main_thread_modules:
            return self._load_sync(name, required, trigger)
        job, created = self._claim(name, trigger, foreground=True)
        if created:
            threading.Thread(target=self._table.execute, args=(job,), daemon=True,
                             name=f"scancache-lazy:{name}").start()
        waiter = asyncio.wrap_future(job.future)
        # If we stop waiting (timeout, cancel), still consume the outcome so asyncio does not log
        # "exception was never retrieved" for an import that fails later.
        waiter.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), self.config.load_timeout)
        except (TimeoutError, ModuleNotFoundError) as exc:
            self._failed_load(name, job, required, exc)
            return None

    def load(self, name: str, *, required: bool = True) -> types.ModuleType | None:
        """Import `name` in the calling thread (sync twin of load_module) and return it.

        No timeout bounds the import itself (a thread cannot abandon its own import); if another
        thread is already importing the module this waits for it up to load_timeout (TimeoutError),
        except inside an import, where it joins through the import system's locks instead. Modules in
        main_thread_modules must be loaded from the main thread (else ModuleLoadRefused). Other
        failures as load_module.
        """
        return self._load_sync(name, required, "on_demand")

    def _load_sync(self, name: str, required: bool, trigger: str) -> types.ModuleType | None:
        module = self._ready(name)
        if module is not None:
            return module
        if name in self._main_thread_modules and threading.current_thread() is not threading.main_thread():
            raise self._refuse(name, trigger, f"{name!r} is in main_thread_modules and must be "
                               f"loaded from the main thread, not {threading.current_thread().name!r}")
        job, created = self._claim(name, trigger, foreground=True)
        try:
            if created:
                self._table.execute(job)
                return job.future.result()
            if inside_import():
                return importlib.import_module(name)
            return job.future.result(timeout=self.config.load_timeout)
        except (TimeoutError, ModuleNotFoundError) as exc:
            self._failed_load(name, job, required, exc)
            return None

    def is_loaded(self, name: str) -> bool:
        """True when `name` is imported and complete (by this loader or anyone else)."""
        module = sys.modules.get(name)
        return module is not None and not is_initializing(module)

    def _failed_load(self, name: str, job: ImportJob, required: bool,
                     exc: TimeoutError | ModuleNotFoundError) -> None:
        """How load_module and load end when waiting on `job` raised `exc` (one body for both).

        Returns (the load then returns None) for a module that does not exist when not `required`;
        otherwise raises: the module's own exception as it was, or, when the wait ran out while the
        import still runs, a TimeoutError that says the import goes on and a later load joins it.
        """
        if isinstance(exc, TimeoutError) and not job.future.done():
            raise TimeoutError(
                f"import of {name!r} did not finish within load_timeout={self.config.load_timeout}s; "
                "imports cannot be interrupted, so it keeps running in its thread and a later load "
                "of this module waits for that same import") from None
        if isinstance(exc, ModuleNotFoundError) and not required and is_missing(name, exc):
            return None
        raise exc

    def _ready(self, name: str) -> types.ModuleType | None:
        """The module if no import is needed; raises ModuleLoadRefused if the loader refuses."""
        if self._closed:
            raise ModuleLoadRefused(f"cannot load {name!r}: LazyModuleLoader is closed", name=name)
        condition = self._conditions.get(name)
        if condition is not None and not condition.holds():
            raise self._refuse(name, "conditional",
                               f"condition {condition.description!r} for {name!r} does not hold")
        module = self._table.held(name)
        if module is not None:
            return module
        module = sys.modules.get(name)
        if module is not None and not is_initializing(module):
            self._table.note_imported_elsewhere(name)
            return module
        return None

    def _refuse(self, name: str, trigger: str, reason: str) -> ModuleLoadRefused:
        self._table.set_status(name, "refused", trigger, error=reason)
        return ModuleLoadRefused(f"refused to load {name!r}: {reason}", name=name)

    def _claim(self, name: str, trigger: str, *, foreground: bool) -> tuple[ImportJob, bool]:
        """The job importing `name`; a new one only if the memory budget allows it."""
        return self._table.claim(name, trigger, foreground=foreground,
                                 before_start=lambda: self._check_memory(name, trigger))

    def _check_memory(self, name: str, trigger: str) -> None:
        rss = current_rss_bytes()
        limit_mb = self.config.memory_limit_mb
        if rss is not None and rss > limit_mb * 1024 * 1024:
            raise self._refuse(name, trigger, f"process RSS is {bytes_to_mb(rss):.1f} MB, above "
                               f"memory_limit_mb={limit_mb}; modules cannot be unloaded, so raise the "
                               "limit or load fewer modules")

    def _background_worker(self) -> None:
        """Import queued modules one by one, pausing while foreground imports run."""
        while True:
            name = self._queue.get()
            if name is None:
                return
            # Yield to demand: a foreground import competes for the GIL and the import locks.
            self._table.wait_foreground_idle(self.config.load_timeout, lambda: self._closed)
            if self._closed:
                continue
            try:
                if self._ready(name) is not None:
                    continue
                job, created = self._claim(name, "background", foreground=False)
            except ModuleLoadRefused:
                continue  # recorded by _refuse
            if created:
                self._table.execute(job)
                if job.future.exception() is not None:
                    _warn("background import of %s failed: %s", name, job.future.exception())

    # ---- monitoring ---------------------------------------------------------------------------

    def get_monitoring_data(self) -> dict[str, Any]:
        """Per-module status and cost plus process memory; a snapshot, cheap (no imports).

        Keys: strategy, current_memory_mb, memory_limit_mb, loaded_count, failed_count,
        missing_count, refused_count, loading_count, queued_count, total_load_seconds, modules
        (name -> status, strategy, load_seconds, memory_delta_mb, tracemalloc_delta_mb, thread,
        error, attempts, started_at).
        """
        return summarize(self._table.snapshot(), strategy=self.config.strategy.value,
                         memory_limit_mb=self.config.memory_limit_mb)
