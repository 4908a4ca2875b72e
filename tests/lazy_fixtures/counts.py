"""Shared state for generated fixture modules: how often each ran, gates they wait on, hooks."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

_lock = threading.Lock()
EXECUTIONS: Counter[str] = Counter()
EVENTS: list[tuple[str, str]] = []  # (module, thread name) per execution, in order
_gates: dict[str, threading.Event] = {}
#: Called by "calls_hook" fixture modules with a module name; tests set it (e.g. to loader.load).
HOOK: Callable[[str], object] | None = None


def bump(module: str) -> None:
    """Record one execution of `module`'s body (and the thread it ran on)."""
    with _lock:
        EXECUTIONS[module] += 1
        EVENTS.append((module, threading.current_thread().name))


def gate(module: str) -> threading.Event:
    """The event a gated module waits on before finishing its body."""
    with _lock:
        return _gates.setdefault(module, threading.Event())
