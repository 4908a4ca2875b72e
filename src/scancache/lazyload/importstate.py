"""Facts about the import system that the loader and lazy() decide by (cheap: no heavy imports).

- Is this thread inside an import? Code running in a module body must never wait on another
  thread's import: that thread may need an import lock this one holds, and the import system can
  only detect deadlocks between its own locks.
- Is a module in sys.modules complete, or still running its body?
- Did an import fail because the module does not exist (as opposed to something it imports)?
"""

from __future__ import annotations

import sys
from _thread import _local

TYPE_CHECKING = False  # not `from typing import ...`: this module is imported at apps' startup
if TYPE_CHECKING:
    from types import FrameType

__all__ = ["LoaderImport", "inside_import", "is_initializing", "is_missing", "drop_half_module"]

_state = _local()  # .depth: > 0 while this thread runs an import on behalf of a loader
_BOOTSTRAP_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


class LoaderImport:
    """Context manager marking "this thread is running an import for a loader" (re-entrant)."""

    __slots__ = ()

    def __enter__(self) -> None:
        _state.depth = getattr(_state, "depth", 0) + 1

    def __exit__(self, *exc_info: object) -> None:
        _state.depth -= 1


def inside_import() -> bool:
    """True when the current thread is executing a module body (a loader's import or any other).

    Cost: a walk up the current stack (microseconds); only the slow path of a load calls it.
    """
    if getattr(_state, "depth", 0) > 0:
        return True
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_load_unlocked" and code.co_filename in _BOOTSTRAP_FILES:
            return True
        frame = frame.f_back
    return False


def is_initializing(module: object) -> bool:
    """True while `module`'s body is still running (it is in sys.modules but incomplete)."""
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def is_missing(name: str, exc: BaseException) -> bool:
    """True when the import of `name` failed because it (or a parent package) does not exist."""
    missing = getattr(exc, "name", None)
    return (isinstance(exc, ModuleNotFoundError) and missing is not None
            and (missing == name or name.startswith(missing + ".")))


def drop_half_module(name: str) -> None:
    """Remove `name` from sys.modules if its body is still marked as running after a failure.

    CPython already removes a module whose body raised; this guards loaders that do not.
    """
    module = sys.modules.get(name)
    if module is not None and is_initializing(module):
        sys.modules.pop(name, None)
