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
