"""scancache: fast caches for security scanners (DNS, OSV/NVD, lazy module loading).

This module is a table of public names and where they live; each loads on first use, so
`import scancache` imports none of redis, httpx, dnspython or zstandard. Set SCANCACHE_EAGER=1 to
load everything at import (debugging, tests).
"""

from __future__ import annotations

import importlib

from scancache.env import eager

# Not `from typing import TYPE_CHECKING`: importing typing alone costs milliseconds at startup.
TYPE_CHECKING = False

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Cache": "scancache.cache.core",
    "CacheEntry": "scancache.cache.core",
    "CacheConfig": "scancache.cache_config",
    "CacheType": "scancache.cache_config",
    "ScancacheConfig": "scancache.config",
    "load_config": "scancache.config",
    "load_config_from_file": "scancache.config",
    "ScancacheError": "scancache.errors",
    "BackendError": "scancache.errors",
    "DNSError": "scancache.errors",
    "VulnDBError": "scancache.errors",
    "ModuleLoadRefused": "scancache.errors",
    "DNSCache": "scancache.dns.cache",
    "DNSConfig": "scancache.dns.config",
    "VulnerabilityDBCache": "scancache.vulndb.cache",
    "VulnDBConfig": "scancache.vulndb.config",
    "LazyLoadConfig": "scancache.lazy.config",
    "LazyLoadStrategy": "scancache.lazy.config",
    "LazyModuleLoader": "scancache.lazy.loader",
    "lazy": "scancache.lazy.proxy",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scancache' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__


if eager():
    for _name in _EXPORTS:
        __getattr__(_name)

if TYPE_CHECKING:  # names for type checkers and IDEs; never executed
    from scancache.cache.core import Cache, CacheEntry
    from scancache.cache_config import CacheConfig, CacheType
    from scancache.config import (
        ScancacheConfig,
        load_config,
        load_config_from_file,
    )
    from scancache.dns.cache import DNSCache
    from scancache.dns.config import DNSConfig
    from scancache.errors import (
        BackendError,
        DNSError,
        ModuleLoadRefused,
        ScancacheError,
        VulnDBError,
    )
    from scancache.lazy.config import LazyLoadConfig, LazyLoadStrategy
    from scancache.lazy.loader import LazyModuleLoader
    from scancache.lazy.proxy import lazy
    from scancache.vulndb.cache import VulnerabilityDBCache
    from scancache.vulndb.config import VulnDBConfig
