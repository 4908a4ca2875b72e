"""LazyModuleLoader: on-demand, background, preload and conditional module loading.

The package is `scancache.lazyload`; its `lazy(name)` stand-in is exported as `scancache.lazy` (the two
used to share one name, which took a callable module class to keep both working). Names load on
first use; importing this package imports nothing heavy.
"""

from __future__ import annotations

from scancache._attach import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "config": ["LazyLoadConfig", "LazyLoadStrategy"],
    "loader": ["LazyModuleLoader"],
    "proxy": ["LazyModule", "is_lazy", "is_loaded", "lazy"],
    "profile": ["ImportProfile", "profile_imports", "render_text"],
})

TYPE_CHECKING = False  # not `from typing import ...`: typing alone costs milliseconds at startup
if TYPE_CHECKING:  # names for type checkers ("X as X": re-exported); never executed
    from scancache.lazyload.config import LazyLoadConfig as LazyLoadConfig
    from scancache.lazyload.config import LazyLoadStrategy as LazyLoadStrategy
    from scancache.lazyload.loader import LazyModuleLoader as LazyModuleLoader
    from scancache.lazyload.profile import ImportProfile as ImportProfile
    from scancache.lazyload.profile import profile_imports as profile_imports
    from scancache.lazyload.profile import render_text as render_text
    from scancache.lazyload.proxy import LazyModule as LazyModule
    from scancache.lazyload.proxy import is_lazy as is_lazy
    from scancache.lazyload.proxy import is_loaded as is_loaded
    from scancache.lazyload.proxy import lazy as lazy
