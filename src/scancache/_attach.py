"""Lazy public names for a package: lazy_loader's `attach()` shape, without the dependency.

    __getattr__, __dir__, __all__ = attach(__name__, {"cache": ["DNSCache"], "config": ["DNSConfig"]})

Each name is imported from its submodule on first access and then stored on the package, so later
lookups are plain attribute reads. A submodule read as an attribute (`scancache.cache.urls` after
`import scancache.cache`) is imported then too, as an eager package that imported it would have it.
Only `importlib` and `sys` are imported: `import scancache` uses this and must stay cheap.
SCANCACHE_EAGER=1 imports every name at once (debugging, tests).
"""

from __future__ import annotations

import importlib
import sys

from scancache.env import eager

TYPE_CHECKING = False  # not `from typing import ...`: typing alone costs milliseconds at startup
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = ["attach"]


def attach(package_name: str, submod_attrs: Mapping[str, Iterable[str]]
           ) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """(__getattr__, __dir__, __all__) for package_name, whose names live in submodules.

    submod_attrs maps a submodule path relative to the package ("cache.core") to the names it
    provides. An unknown name raises AttributeError as a module without it would.
    """
    module_of = {name: f"{package_name}.{sub}" for sub, names in submod_attrs.items() for name in names}
    public = sorted(module_of)

    def __getattr__(name: str) -> object:
        module = module_of.get(name)
        if module is None:
            if not name.startswith("_"):  # dunder probes (copy, pickle, IDEs) are not submodules
                try:
                    return importlib.import_module(f"{package_name}.{name}")
                except ModuleNotFoundError as exc:
                    if exc.name != f"{package_name}.{name}":
                        raise  # the submodule exists; something it imports does not
            raise AttributeError(f"module {package_name!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package_name], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return list(public)

    if eager():
        for name in public:
            __getattr__(name)
    return __getattr__, __dir__, list(public)
