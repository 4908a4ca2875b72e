"""Stand-ins for modules that are imported but seldom used: the real code runs on first use of a name.

The stdlib's dataclasses imports inspect at its top (and with it ast, dis, tokenize, linecache: ~25M
instructions, ~6 % of a warm `scancache audit`), yet reads it only to write a docstring for a
class that has none. `defer("inspect")` puts a module object in sys.modules whose code has not
run: an `import inspect` statement reads only its __spec__ (which it has), so the importer gets this
very object; the first read of any other name (`inspect.signature`, `from inspect import x`) runs
the module's code in it, as an import would, and it is a plain module from then on. Nothing is
copied, so every holder sees the same module object before and after.

Like any module, it may be seen half-run: a thread that reads a name while another thread runs the
code gets the names defined so far (an ordinary import makes a second importer wait instead).
The CLI defers a module only before it imports anything else that would use it.
"""

from __future__ import annotations

import sys
from _thread import RLock
from types import ModuleType

TYPE_CHECKING = False  # not `from typing import ...`: typing alone costs milliseconds at startup
if TYPE_CHECKING:
    from typing import Any

__all__ = ["defer"]

_lock = RLock()  # one module's code runs once, even when two threads read a name at once
_running: set[str] = set()


class _Deferred(ModuleType):
    """A module whose code runs when a name it does not have yet is read."""

    def __getattr__(self, name: str) -> Any:
        module_name = self.__name__
        with _lock:
            if self.__class__ is _Deferred:  # not run yet (by another thread while this one waited)
                if module_name in _running:  # read by its own code, or by what that imports
                    raise AttributeError(f"partially initialized module {module_name!r} has no "
                                         f"attribute {name!r}")
                _running.add(module_name)
                try:
                    self.__spec__.loader.exec_module(self)  # type: ignore[union-attr]
                except BaseException:
                    if sys.modules.get(module_name) is self:  # as a failed import: forgotten
                        del sys.modules[module_name]
                    raise
                finally:
                    _running.discard(module_name)
                self.__class__ = ModuleType  # type: ignore[assignment]  # a plain module now
        return ModuleType.__getattribute__(self, name)


def defer(name: str) -> bool:
    """Put a stand-in for the top-level module name in sys.modules (True), unless it is imported
    already or is not a plain Python module (a package, a built-in or extension module: False,
    nothing changed)."""
    if name in sys.modules or "." in name:
        return False
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        spec = find(name, None) if find is not None else None
        if spec is not None:
            break
    else:
        return False
    from importlib.machinery import SourceFileLoader, SourcelessFileLoader

    # Python code only: an extension module's object is made by its own initialisation, not ours.
    if (not isinstance(spec.loader, SourceFileLoader | SourcelessFileLoader)
            or spec.submodule_search_locations is not None):
        return False
    module = _Deferred(name)
    module.__spec__ = spec
    module.__loader__ = spec.loader
    module.__package__ = spec.parent
    module.__file__ = spec.origin
    module.__cached__ = spec.cached  # type: ignore[attr-defined]
    sys.modules[name] = module
    return True
