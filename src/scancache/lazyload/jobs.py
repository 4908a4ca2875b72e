"""The loader's bookkeeping: imports in flight, what each module's loads cost, modules it holds.

One lock guards these tables and is never held while the import system runs (an import can take
seconds and can re-enter the loader from a module body). Concurrent requests for one module find
the same job and wait on its future, so a module is imported once however many ask.
"""

from __future__ import annotations

import importlib
import threading
import time
import types
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from scancache.lazyload.importstate import LoaderImport, drop_half_module, is_missing
from scancache.lazyload.monitor import LoadMeasurement, ModuleRecord

__all__ = ["ImportJob", "ImportTable"]


class ImportJob:
    """One import in flight; everyone asking for the module meanwhile waits on `future`."""

    __slots__ = ("foreground", "future", "name", "trigger")

    def __init__(self, name: str, trigger: str, foreground: bool) -> None:
        self.name = name
        self.trigger = trigger
        self.foreground = foreground
        self.future: Future[types.ModuleType] = Future()


class ImportTable:
    """Jobs, records and held modules of one loader, behind one short-held lock."""

    def __init__(self, *, hold_modules: bool, measure: bool) -> None:
        self.hold_modules = hold_modules
        self.measure = measure
        self._lock = threading.Lock()
        self._foreground_idle = threading.Condition(self._lock)
        self._foreground_active = 0
        self._jobs: dict[str, ImportJob] = {}
        self._records: dict[str, ModuleRecord] = {}
        self._modules: dict[str, types.ModuleType] = {}

    def held(self, name: str) -> types.ModuleType | None:
        """The module this table holds for `name` (when hold_modules), else None. Lock-free."""
        return self._modules.get(name)

    def note_imported_elsewhere(self, name: str) -> None:
        """Record a module found complete in sys.modules (imported by someone else, or earlier)."""
        record = self._records.get(name)
        if record is None or record.status not in ("loaded", "loading"):
            with self._lock:
                self._records[name] = ModuleRecord(name, "loaded", "already_imported", load_seconds=0.0)

    def set_status(self, name: str, status: str, trigger: str, *, error: str | None = None) -> None:
        """Record a status that is not an import (refused, skipped, queued).

        A module that is loading or loaded keeps that status: it is the more important fact.
        """
        with self._lock:
            previous = self._records.get(name)
            if previous is not None and previous.status in ("loading", "loaded"):
                return
            attempts = previous.attempts if previous is not None else 0
            self._records[name] = ModuleRecord(name, status, trigger, error=error, attempts=attempts)

    def skip_queued(self, reason: str) -> None:
        """Mark every still-queued module as skipped (the workers stopped)."""
        with self._lock:
            for record in self._records.values():
                if record.status == "queued":
                    record.status, record.error = "skipped", reason

    def claim(self, name: str, trigger: str, *, foreground: bool,
              before_start: Callable[[], None]) -> tuple[ImportJob, bool]:
        """The job importing `name` and whether the caller created it (and must execute it).

        `before_start` runs (outside the lock) only when no job exists, and may raise to refuse.
        """
        if name not in self._jobs:
            before_start()
        with self._lock:
            job = self._jobs.get(name)
            if job is not None:
                return job, False
            job = self._jobs[name] = ImportJob(name, trigger, foreground)
            previous = self._records.get(name)
            attempts = previous.attempts if previous is not None else 0
            self._records[name] = ModuleRecord(name, "loading", trigger, attempts=attempts + 1,
                                               started_at=time.time())
            if foreground:
                self._foreground_active += 1
            return job, True

    def execute(self, job: ImportJob) -> None:
        """Run the import for `job` in the current thread; settle its future and record."""
        measurement = LoadMeasurement(self.measure)
        try:
            with LoaderImport():
                module = importlib.import_module(job.name)
        except BaseException as exc:  # delivered to every waiter, with its original traceback
            drop_half_module(job.name)
            self._settle(job, measurement, None, exc)
            job.future.set_exception(exc)
        else:
            self._settle(job, measurement, module, None)
            job.future.set_result(module)

    def _settle(self, job: ImportJob, measurement: LoadMeasurement, module: types.ModuleType | None,
                exc: BaseException | None) -> None:
        with self._lock:
            record = self._records[job.name]
            measurement.finish(record)
            record.thread = threading.current_thread().name
            if exc is None:
                record.status, record.error = "loaded", None
                if self.hold_modules and module is not None:
                    self._modules[job.name] = module
            else:
                record.status = "missing" if is_missing(job.name, exc) else "failed"
                record.error = f"{type(exc).__name__}: {exc}"
            if self._jobs.get(job.name) is job:
                del self._jobs[job.name]
            if job.foreground:
                self._foreground_active -= 1
                self._foreground_idle.notify_all()

    def wait_foreground_idle(self, timeout: float, stop: Callable[[], bool]) -> None:
        """Block until no foreground import runs (or `stop()` is true, or `timeout` passes)."""
        with self._lock:
            self._foreground_idle.wait_for(lambda: self._foreground_active == 0 or stop(), timeout=timeout)

    def wake_all(self) -> None:
        """Wake threads in wait_foreground_idle so they re-check `stop()`."""
        with self._lock:
            self._foreground_idle.notify_all()

    def mark_queued(self, names: Iterable[str]) -> None:
        """Record modules as queued for background loading (unless loading or loaded)."""
        with self._lock:
            for name in names:
                record = self._records.get(name)
                if record is None or record.status not in ("loaded", "loading"):
                    self._records[name] = ModuleRecord(name, "queued", "background")

    def snapshot(self) -> list[dict[str, Any]]:
        """Every record as a plain dict."""
        with self._lock:
            return [record.to_dict() for record in self._records.values()]
