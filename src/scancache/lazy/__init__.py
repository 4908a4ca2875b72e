"""LazyModuleLoader: on-demand, background, preload and conditional module loading.

`scancache.lazy` is both this package and the `lazy(name)` function that scancache exports: the
package object is callable, so `scancache.lazy("numpy")` works whichever of the two Python bound
first. Names load on first use; importing this package imports nothing heavy.
"""

from __future__ import annotations

import importlib
import sys

__all__ = [
    "ImportProfile",
    "LazyLoadConfig",
    "LazyLoadStrategy",
    "LazyModule",
    "LazyModuleLoader",
    "is_lazy",
    "is_loaded",
    "lazy",
    "profile_imports",
    "render_text",
]

_EXPORTS = {
    "LazyLoadConfig": "scancache.lazy.config",
    "LazyLoadStrategy": "scancache.lazy.config",
    "LazyModuleLoader": "scancache.lazy.loader",
    "LazyModule": "scancache.lazy.proxy",
    "is_lazy": "scancache.lazy.proxy",
    "is_loaded": "scancache.lazy.proxy",
    "lazy": "scancache.lazy.proxy",
    "ImportProfile": "scancache.lazy.profile",
    "profile_imports": "scancache.lazy.profile",
    "render_text": "scancache.lazy.profile",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scancache.lazy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *globals()})


class _CallablePackage(type(sys)):  # types.ModuleType, without importing types
    """This package's class: calling the package is calling lazy()."""

    def __call__(self, name: str) -> object:
        """lazy(name): a stand-in that imports module `name` on first attribute access."""
        from scancache.lazy.proxy import lazy

        return lazy(name)


sys.modules[__name__].__class__ = _CallablePackage
