"""lazy(name): a module stand-in that imports the real module on first attribute access.

Why not importlib.util.LazyLoader: on Python 3.11 its module object races when several threads touch
it first at once (cpython issue 114763), and it executes the module *into* the stand-in, which C
extension modules cannot do. Here the stand-in stays a separate object and delegates:

- The first attribute access calls importlib.import_module. No lock of ours is held while the import
  system runs: the import system's own per-module lock makes concurrent first touches share one
  execution, and its deadlock detection still works for imports that cross threads.
- After the import, the names bound to the stand-in in the globals of the module that called lazy()
  are rebound to the real module, so later `np.array` there costs what a plain import costs. Other
  references keep working through the stand-in (one extra Python call per attribute).
- A failed import raises the original exception every time the stand-in is touched, as `import`
  would; nothing is cached, so a later touch retries.

This module stays import-cheap (sys, os, _thread, importlib) because apps import it at startup.
"""

from __future__ import annotations

import _thread  # not `threading`: that would add milliseconds to every app's startup
import importlib
import sys

from scancache.env import eager
from scancache.lazyload.importstate import is_initializing

TYPE_CHECKING = False  # not `from typing import ...`: typing alone costs milliseconds at startup
if TYPE_CHECKING:
    from types import ModuleType
else:
    ModuleType = type(sys)  # types.ModuleType, without importing `types`

__all__ = ["LazyModule", "eager_imports_enabled", "is_lazy", "is_loaded", "lazy"]

_registry_lock = _thread.allocate_lock()
_proxies: dict[str, LazyModule] = {}

# ModuleType.__init__ puts these in the instance dict; removing them makes `proxy.__doc__` and friends
# load and report the real module's values instead of None.
_FORWARDED_DUNDERS = ("__doc__", "__package__", "__loader__", "__spec__")
# The stand-in's own attribute dict (its `__dict__` attribute is forwarded to the real module's).
_own_dict = vars(ModuleType)["__dict__"].__get__


def eager_imports_enabled() -> bool:
    """True when SCANCACHE_EAGER is set to anything but "" or "0": laziness is off (debugging, tests)."""
    return eager()


class LazyModule(ModuleType):
    """Stand-in for a module that is imported on first attribute access; safe under threads."""

    __slots__ = ("_scancache_globals", "_scancache_lock", "_scancache_module", "_scancache_target")
    _scancache_globals: dict[str, object] | None
    _scancache_lock: _thread.LockType
    _scancache_module: ModuleType | None
    _scancache_target: str

    def __init__(self, name: str, caller_globals: dict[str, object] | None = None) -> None:
        super().__init__(name)
        own = _own_dict(self)
        for dunder in _FORWARDED_DUNDERS:
            own.pop(dunder, None)
        object.__setattr__(self, "_scancache_target", name)
        object.__setattr__(self, "_scancache_module", None)
        object.__setattr__(self, "_scancache_globals", caller_globals)
        object.__setattr__(self, "_scancache_lock", _thread.allocate_lock())

    def _scancache_load(self) -> ModuleType:
        """Import (once) and return the real module; raises what the import raises."""
        module = self._scancache_module
        if module is not None:
            return module
        # Deliberately outside any lock of ours: see the module docstring.
        module = importlib.import_module(self._scancache_target)
        if is_initializing(module):
            # A circular import reached us while the module body still runs (in this thread, or in
            # another one after the import system broke a cross-thread cycle): hand out the partial
            # module for this access, but do not remember it.
            return module
        with self._scancache_lock:
            if self._scancache_module is None:
                object.__setattr__(self, "_scancache_module", module)
                self._scancache_swap_globals(module)
        return module

    def _scancache_swap_globals(self, module: ModuleType) -> None:
        caller_globals = self._scancache_globals
        if caller_globals is None:
            return
        object.__setattr__(self, "_scancache_globals", None)
        for key, value in list(caller_globals.items()):
            if value is self:
                caller_globals[key] = module

    def __getattr__(self, attr: str) -> object:
        # Only reached when normal lookup fails, i.e. for every attribute of the real module.
        if attr.startswith("_scancache_"):
            raise AttributeError(attr)
        return getattr(self._scancache_load(), attr)

    def __setattr__(self, attr: str, value: object) -> None:
        setattr(self._scancache_load(), attr, value)  # monkeypatching reaches the real module

    def __delattr__(self, attr: str) -> None:
        delattr(self._scancache_load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._scancache_load())

    def __repr__(self) -> str:
        module = self._scancache_module
        if module is None:
            return f"<lazy module {self._scancache_target!r} (not loaded)>"
        return f"<lazy module {self._scancache_target!r} (loaded: {module!r})>"

    @property
    def __dict__(self) -> dict[str, object]:  # type: ignore[override]  # deliberately a property
        """The real module's namespace, so vars(stand_in) is what vars(module) would be."""
        return self._scancache_load().__dict__


def is_lazy(module: object) -> bool:
    """True for a stand-in returned by lazy() (loaded or not); False for a real module."""
    return isinstance(module, LazyModule)


def is_loaded(module: object) -> bool:
    """True for a real module or a stand-in whose module has been imported; never triggers the import."""
    if isinstance(module, LazyModule):
        return module._scancache_module is not None
    return isinstance(module, ModuleType)


def lazy(name: str) -> ModuleType:
    """Return a stand-in for module `name` that imports it on first attribute access.

    Cheap (no import, no file system access). If the module is already fully imported, or
    SCANCACHE_EAGER=1, the real module is returned instead. Import errors surface on first use,
    not here. Calling lazy() twice for one name from one place returns the same stand-in.
    """
    existing = sys.modules.get(name)
    if existing is not None and not is_initializing(existing):
        return existing
    if eager_imports_enabled():
        return importlib.import_module(name)
    caller_globals = sys._getframe(1).f_globals
    with _registry_lock:
        proxy = _proxies.get(name)
        if proxy is None or proxy._scancache_globals is not caller_globals:
            proxy = LazyModule(name, caller_globals)
            _proxies[name] = proxy
    return proxy
