"""What a streamed `scancache resolve` run needs besides the lookups: progress and resume state.

ResumeState keeps, in a small JSON file rewritten atomically about once a second, how far a run
got: every input item up to `mark` is finished, plus the finished ones above it (at most what was
in flight, since items are taken in input order). A run started again with the same STATE skips
those without asking anything; items that were in flight are asked again, and the disk cache
answers the ones that completed. Rows are written before the state that covers them, so an
interruption can repeat a row but never lose one.

ProgressMeter prints "resolving DONE/TOTAL names, RATE/s, ETA" on stderr a few times a second.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from scancache.cli._common import CommandError

__all__ = ["ResumeState", "ProgressMeter"]

STATE_VERSION = 1


class ResumeState:
    """Finished input items (by sequence number) of one run, saved to path; None path: not kept."""

    def __init__(self, path: str | None, signature: dict[str, Any]) -> None:
        self.path = Path(path) if path else None
        self.signature = signature
        self.mark = 0  # every item with seq <= mark is finished
        self.done: set[int] = set()  # finished items above mark
        self.failures = 0  # failed or invalid items, this run and the runs it continues
        self.complete = False
        self._outstanding: dict[int, int] = {}  # seq -> lookups still running
        self._order: deque[int] = deque()  # seqs issued with lookups, in input order (some finished)
        self._last_issued = 0
        self._saved_at = 0.0
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"version {state.get('version')!r}")
            mark, done, failures = int(state["mark"]), state["done"], int(state["failures"])
            if not isinstance(done, list) or mark < 0 or failures < 0:
                raise ValueError("bad fields")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"cannot resume from {self.path}: not a resolve state file ({exc})"
                               ) from None
        if state.get("run") != self.signature:
            raise CommandError(f"cannot resume from {self.path}: it records another run "
                               f"({state.get('run')!r}); use a new STATE file for this one")
        self.mark, self.done = mark, {int(seq) for seq in done if int(seq) > mark}
        self.failures = failures
        self.complete = bool(state.get("complete"))

    @property
    def resumed(self) -> bool:
        """Whether an earlier run had finished anything."""
        return self.mark > 0 or bool(self.done)

    def finished_before(self, seq: int) -> bool:
        """Whether item seq was finished by the run this one continues."""
        return seq <= self.mark or seq in self.done

    def issue(self, seq: int, lookups: int) -> None:
        """Item seq starts with this many lookups (0: nothing to ask, finished at once)."""
        if self.path is None:  # nothing is saved: nothing to keep
            return
        self._last_issued = seq
        if lookups:
            self._outstanding[seq] = lookups
            self._order.append(seq)
        else:
            self._finish(seq)

    def finished(self, seq: int) -> None:
        """One lookup of item seq is done (and its row written)."""
        if self.path is None:
            return
        left = self._outstanding[seq] - 1
        if left:
            self._outstanding[seq] = left
        else:
            del self._outstanding[seq]
            self._finish(seq)

    def _finish(self, seq: int) -> None:
        self.done.add(seq)
        order, outstanding = self._order, self._outstanding
        while order and order[0] not in outstanding:  # the first item still running, amortised O(1)
            order.popleft()
        new_mark = (order[0] - 1) if order else self._last_issued
        if new_mark > self.mark:
            self.mark = new_mark
            if len(self.done) > 64:
                self.done = {s for s in self.done if s > new_mark}

    def save(self, *, complete: bool = False, force: bool = False) -> None:
        """Write the state (atomically): always when forced or complete, else at most once a second."""
        if self.path is None:
            return
        now = time.monotonic()
        if not force and not complete and now - self._saved_at < 1.0:
            return
        self._saved_at = now
        sys.stdout.flush()  # rows first: a saved state never covers a row not yet written
        state = {"version": STATE_VERSION, "run": self.signature, "mark": self.mark,
                 "done": sorted(s for s in self.done if s > self.mark), "failures": self.failures,
                 "complete": complete}
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            temporary.write_text(json.dumps(state), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as exc:
            raise CommandError(f"cannot write resume state {self.path}: {exc.strerror or exc}"
                               ) from None


class ProgressMeter:
    """"resolving DONE/TOTAL names, RATE/s, ETA" on stderr, redrawn at most every half second."""

    def __init__(self, enabled: bool, total: int | None, label: str = "resolving") -> None:
        self.enabled = enabled
        self.total = total
        self.label = label
        self.done = 0
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._check_at = 64
        self._tty = enabled and sys.stderr.isatty()

    def advance(self, steps: int = 1) -> None:
        """Count steps finished; redraw when due."""
        self.done += steps
        if self.enabled and self.done >= self._check_at:  # the clock read only every 64 steps
            self._check_at = self.done + 64
            now = time.monotonic()
            if now - self._drawn_at >= (0.5 if self._tty else 10.0):
                self._drawn_at = now
                self._draw(now, final=False)

    def _draw(self, now: float, *, final: bool) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        total = f"/{self.total:,}" if self.total is not None else ""
        text = f"{self.label} {self.done:,}{total} names, {rate:,.0f}/s"
        if final:
            text += f", {elapsed:.1f} s"
        elif self.total is not None and rate > 0:
            left = max(self.total - self.done, 0) / rate
            text += f", ETA {int(left // 60)}m{int(left % 60):02d}s"
        end = "\n" if final or not self._tty else ""
        sys.stderr.write(("\r\x1b[K" if self._tty else "") + text + end)
        sys.stderr.flush()

    def close(self) -> None:
        """Draw the final line (when enabled)."""
        if self.enabled:
            self._draw(time.monotonic(), final=True)
