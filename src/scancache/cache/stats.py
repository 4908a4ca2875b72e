"""Counters and sampled latencies of one cache.

Counters are plain attributes bumped without a lock: under many threads a few increments may be
lost (documented), which keeps the hit path free of locks. Latencies are sampled (one operation in
SAMPLE_EVERY) into a bounded window, so measuring costs almost nothing and memory stays flat.
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["CacheStats", "SAMPLE_EVERY"]

SAMPLE_EVERY = 16
_WINDOW = 2048
OPERATIONS = ("get", "set", "delete", "get_many", "set_many")


class CacheStats:
    """Hits, misses, stale hits, errors, evictions, expirations and latency percentiles."""

    __slots__ = (
        "_latency_ns",
        "corrupt",
        "deletes",
        "errors",
        "expirations",
        "hits",
        "misses",
        "sets",
        "stale_hits",
        "write_failures",
    )

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.stale_hits = 0
        self.errors = 0
        self.corrupt = 0
        self.expirations = 0
        self.sets = 0
        self.deletes = 0
        self.write_failures = 0
        self._latency_ns: dict[str, deque[int]] = {op: deque(maxlen=_WINDOW) for op in OPERATIONS}

    def record_latency(self, operation: str, nanoseconds: int) -> None:
        """Add one sampled latency for operation."""
        self._latency_ns[operation].append(nanoseconds)

    def reset(self) -> None:
        """Zero every counter and forget the latency samples."""
        self.__init__()  # type: ignore[misc]  # re-initialising is the reset

    def latency_percentiles(self) -> dict[str, dict[str, float]]:
        """{operation: {p50_us, p90_us, p99_us, samples}} for operations that have samples."""
        out: dict[str, dict[str, float]] = {}
        for op, samples in self._latency_ns.items():
            if not samples:
                continue
            ordered = sorted(samples)
            n = len(ordered)

            def pct(p: float, ordered: list[int] = ordered, n: int = n) -> float:
                return round(ordered[min(n - 1, int(p * n))] / 1000, 3)

            out[op] = {"p50_us": pct(0.50), "p90_us": pct(0.90), "p99_us": pct(0.99),
                       "samples": n}
        return out

    def as_dict(self, *, size: int, size_bytes: int, evictions: int) -> dict[str, Any]:
        """The public stats dict (the seed's keys: hits, misses, hit_rate, size, evictions)."""
        lookups = self.hits + self.stale_hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "stale_hits": self.stale_hits,
            "hit_rate": (self.hits + self.stale_hits) / lookups if lookups else 0.0,
            "size": size,
            "bytes": size_bytes,
            "evictions": evictions,
            "expirations": self.expirations,
            "errors": self.errors,
            "corrupt": self.corrupt,
            "sets": self.sets,
            "deletes": self.deletes,
            "write_failures": self.write_failures,
            "latency": self.latency_percentiles(),
        }
