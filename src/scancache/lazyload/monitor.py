"""What each module load cost: per-module records and the process's resident memory.

Numbers are honest but approximate: RSS and tracemalloc deltas are process-wide, so when two imports
overlap in time each one's delta includes part of the other's.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ModuleRecord", "current_rss_bytes", "traced_bytes", "summarize", "STATUSES"]

#: Every status a ModuleRecord can have.
STATUSES = ("queued", "loading", "loaded", "failed", "missing", "refused", "skipped")

_process: Any = None  # psutil.Process, created on first use
_process_lock = threading.Lock()
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _psutil_rss() -> int | None:
    global _process
    if _process is None:
        with _process_lock:
            if _process is None:
                try:
                    import psutil  # optional; imported on the first memory reading only
                except ImportError:
                    _process = False
                else:
                    _process = psutil.Process()
    if _process is False:
        return None
    try:
        return int(_process.memory_info().rss)
    except Exception:  # psutil.Error subclasses: a vanished /proc, a sandbox; fall back
        return None


def current_rss_bytes() -> int | None:
    """Resident set size of this process in bytes: /proc/self/statm, else psutil, else peak RSS.

    /proc comes first because it is exact and costs one small read, while importing psutil costs
    tens of milliseconds on first use (which would land on the event loop). The last fallback
    (resource.getrusage) reports the peak, not the current size; None when no source works.
    """
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        pass
    rss = _psutil_rss()
    if rss is not None:
        return rss
    try:
        import resource
    except ImportError:  # Windows without psutil
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB elsewhere


def traced_bytes() -> int | None:
    """Bytes currently traced by tracemalloc, or None when it is not tracing."""
    import tracemalloc

    if not tracemalloc.is_tracing():
        return None
    return tracemalloc.get_traced_memory()[0]


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / (1024 * 1024), 3)


@dataclass
class ModuleRecord:
    """What the loader knows about one module: its status and what its last load cost."""

    name: str
    status: str
    strategy: str  # what started the load: on_demand, background, preload, conditional, already_imported
    thread: str | None = None
    load_seconds: float | None = None
    memory_delta_mb: float | None = None
    tracemalloc_delta_mb: float | None = None
    error: str | None = None
    attempts: int = 0
    started_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON-ready) of the record."""
        return asdict(self)


class LoadMeasurement:
    """Start/stop readings around one import: seconds, RSS delta and tracemalloc delta."""

    __slots__ = ("_enabled", "_rss_before", "_t0", "_traced_before")

    def __init__(self, enabled: bool) -> None:
        import time

        self._enabled = enabled
        self._rss_before = current_rss_bytes() if enabled else None
        self._traced_before = traced_bytes() if enabled else None
        self._t0 = time.perf_counter()

    def finish(self, record: ModuleRecord) -> None:
        """Write the elapsed time and memory deltas into `record`."""
        import time

        record.load_seconds = round(time.perf_counter() - self._t0, 6)
        if not self._enabled:
            return
        rss_after = current_rss_bytes()
        if rss_after is not None and self._rss_before is not None:
            record.memory_delta_mb = _mb(rss_after - self._rss_before)
        traced_after = traced_bytes()
        if traced_after is not None and self._traced_before is not None:
            record.tracemalloc_delta_mb = _mb(traced_after - self._traced_before)


def bytes_to_mb(value: int | None) -> float | None:
    """Bytes as megabytes (MiB) rounded to 3 places, None stays None."""
    return _mb(value)


def summarize(records: list[dict[str, Any]], *, strategy: str, memory_limit_mb: float) -> dict[str, Any]:
    """The loader's monitoring snapshot: counts per status, process memory, per-module records.

    Keys: strategy, current_memory_mb, memory_limit_mb, <status>_count for every status,
    total_load_seconds, modules (name -> the record's dict).
    """
    counts = dict.fromkeys(STATUSES, 0)
    for record in records:
        counts[record["status"]] += 1
    return {
        "strategy": strategy,
        "current_memory_mb": bytes_to_mb(current_rss_bytes()) or 0.0,
        "memory_limit_mb": memory_limit_mb,
        **{f"{status}_count": count for status, count in counts.items()},
        "total_load_seconds": round(sum(r["load_seconds"] or 0.0 for r in records), 6),
        "modules": {record["name"]: record for record in records},
    }
