"""scancache: fast caches for security scanners (DNS, OSV/NVD, lazy module loading).

This module is a table of public names and where they live; each loads on first use, so
`import scancache` imports none of redis, httpx, dnspython or zstandard. Set SCANCACHE_EAGER=1 to
load everything at import (debugging, tests). The lazy loading package is `scancache.lazyload`;
`scancache.lazy` is its `lazy(name)` function.
"""

from __future__ import annotations

from scancache._attach import attach

# Not `from typing import TYPE_CHECKING`: importing typing alone costs milliseconds at startup.
TYPE_CHECKING = False

__version__ = "0.1.0"

__getattr__, __dir__, _public = attach(__name__, {
    "cache.core": ["Cache", "CacheEntry"],
    "cache_config": ["CacheConfig", "CacheType"],
    "config": ["ScancacheConfig", "load_config", "load_config_from_file"],
    "errors": ["ScancacheError", "BackendError", "DNSError", "VulnDBError", "ModuleLoadRefused"],
    "dns.cache": ["DNSCache"],
    "dns.config": ["DNSConfig"],
    "vulndb.cache": ["VulnerabilityDBCache"],
    "vulndb.config": ["VulnDBConfig"],
    "lazyload.config": ["LazyLoadConfig", "LazyLoadStrategy"],
    "lazyload.loader": ["LazyModuleLoader"],
    "lazyload.proxy": ["lazy"],
})
__all__ = sorted([*_public, "__version__"])

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
    from scancache.lazyload.config import LazyLoadConfig, LazyLoadStrategy
    from scancache.lazyload.loader import LazyModuleLoader
    from scancache.lazyload.proxy import lazy
    from scancache.vulndb.cache import VulnerabilityDBCache
    from scancache.vulndb.config import VulnDBConfig
