"""What every command shares: settings from config file + SCANCACHE_* + options, input files, progress.

Only stdlib and scancache._settings are imported here (the latter, pathlib and logging on use); rich
is imported when a progress bar is shown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from scancache.errors import ScancacheError

if TYPE_CHECKING:
    import logging

__all__ = ["WARNINGS", "CommandError", "Progress", "format_table", "load_settings", "progress_wanted",
           "read_lines", "read_text"]


class _WarningCollector:
    """Keeps scancache's log messages (a bounded number) instead of printing them.

    Not a logging.Handler itself: importing logging costs milliseconds that a run which logs nothing
    should not pay; handler() makes the one that feeds it, once logging is in use.
    """

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self.messages: list[str] = []
        self._handler: Any = None

    def handler(self) -> logging.Handler:
        """The logging.Handler (level WARNING) that adds each record's message here (imports logging)."""
        if self._handler is None:
            import logging

            collector = self

            class _Handler(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    collector.add(record)

            self._handler = _Handler(logging.WARNING)
        return self._handler

    def add(self, record: logging.LogRecord) -> None:
        """Remember the record's message (the first `limit` of them)."""
        if len(self.messages) < self.limit:
            from scancache.cache.urls import redact_text  # stdlib only: cheap

            try:
                message = record.getMessage()
            except Exception:  # a bad format string in someone's log call: keep going
                message = str(record.msg)
            self.messages.append(redact_text(message))  # printed at the end: no credentials


#: What scancache logged during this command (when -v is not given).
WARNINGS = _WarningCollector()


class CommandError(ScancacheError):
    """A failure the command reports as one line; exit_code is the process's exit status."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_settings(args: argparse.Namespace) -> Any:
    """The settings for this run: --config file, SCANCACHE_* variables, then global options.

    A component whose cache_type neither the file (its own section or [cache]) nor --cache-type sets
    uses a disk cache (a memory cache would forget everything when the command exits); one section's
    choice never changes another's. Raises ValueError naming the bad setting, for any section, as
    load_config does; the result has ScancacheConfig's section attributes (cache, dns, vulndb, lazy),
    but a section that nothing set apart from [cache] is built when first used (scancache._settings):
    an audit never builds, nor imports, the DNS and lazy-loading settings.
    """
    from scancache._settings import load_sections

    options = {"cache_type": args.cache_type, "cache_dir": args.cache_dir, "redis_url": args.redis_url}
    return load_sections(args.config, defaults={"cache_type": "disk"},
                         overrides={name: value for name, value in options.items() if value})


def read_text(path: str, what: str) -> str:
    """The text of path ('-' is stdin); CommandError names `what` and the path when it cannot be read."""
    try:
        if path == "-":
            return sys.stdin.read()
        from pathlib import Path  # imported here: the commands that read no such file skip it

        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise CommandError(f"{what} is a directory: {path}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{what} is not UTF-8 text: {path}") from None
    except OSError as exc:
        raise CommandError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def read_lines(path: str, what: str) -> list[str]:
    """The meaningful lines of path ('-' is stdin): stripped, without blanks and '#' comments."""
    lines = []
    for line in read_text(path, what).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def format_table(rows: Sequence[Sequence[str]], *, rule: bool = False) -> list[str]:
    """rows as text lines with aligned columns two spaces apart; rule=True puts dashes under the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(row)).rstrip() for row in rows]
    if rule:
        lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def progress_wanted(args: argparse.Namespace) -> bool:
    """A bar is drawn when asked (--progress) or when stderr is a terminal."""
    return bool(getattr(args, "progress", False)) or sys.stderr.isatty()


class Progress:
    """A progress bar on stderr (rich), or nothing at all when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def start(self, description: str, total: int | None) -> None:
        """Begin (or switch to) a task of total steps."""
        if not self.enabled:
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     console=Console(file=sys.stderr), transient=False)
            self._bar.start()
        if self._task is not None:
            self._bar.update(self._task, completed=self._bar.tasks[-1].total or 0)
        self._task = self._bar.add_task(description, total=total)

    def describe(self, description: str) -> None:
        """Change what the current task says it is doing."""
        if self._task is not None:
            self._bar.update(self._task, description=description)

    def advance(self, steps: int = 1) -> None:
        """Move the current task forward."""
        if self._task is not None:
            self._bar.advance(self._task, steps)

    def update(self, done: int, total: int | None) -> None:
        """Set the current task to done of total steps."""
        if self._task is not None:
            self._bar.update(self._task, completed=done, total=total)

    def stop(self) -> None:
        """Finish the bar (idempotent)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._task = None


@contextmanager
def progress(enabled: bool, description: str = "", total: int | None = None) -> Iterator[Progress]:
    """A Progress, started with one task when description is given, stopped on exit."""
    bar = Progress(enabled)
    if description:
        bar.start(description, total)
    try:
        yield bar
    finally:
        bar.stop()



@contextmanager
def few_gc_passes(gen0: int = 100_000) -> Iterator[None]:
    """The cyclic GC's generation-0 threshold raised to gen0 while the block runs (restored after).

    A bulk command builds many short-lived acyclic containers (per name: a cache entry, a result, its
    records), which reference counting frees at once; with the default threshold (700 allocations)
    the collector still walks them hundreds of times per 100,000 names: a fifth of a warm
    `resolve -i` (1.53 -> 1.21 s of CPU). Cycles are still collected, every gen0 allocations.
    """
    import gc

    threshold = gc.get_threshold()
    gc.set_threshold(gen0, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)  # main() may run in a longer-lived process (tests, embedding)
