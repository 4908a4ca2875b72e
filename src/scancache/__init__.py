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

if TYPE_CHECKING:  # names for type checkers and IDEs ("X as X": re-exported); never executed
    from scancache.cache.core import Cache as Cache
    from scancache.cache.core import CacheEntry as CacheEntry
    from scancache.cache_config import CacheConfig as CacheConfig
    from scancache.cache_config import CacheType as CacheType
    from scancache.config import ScancacheConfig as ScancacheConfig
    from scancache.config import load_config as load_config
    from scancache.config import load_config_from_file as load_config_from_file
    from scancache.dns.cache import DNSCache as DNSCache
    from scancache.dns.config import DNSConfig as DNSConfig
    from scancache.errors import BackendError as BackendError
    from scancache.errors import DNSError as DNSError
    from scancache.errors import ModuleLoadRefused as ModuleLoadRefused
    from scancache.errors import ScancacheError as ScancacheError
    from scancache.errors import VulnDBError as VulnDBError
    from scancache.lazyload.config import LazyLoadConfig as LazyLoadConfig
    from scancache.lazyload.config import LazyLoadStrategy as LazyLoadStrategy
    from scancache.lazyload.loader import LazyModuleLoader as LazyModuleLoader
    from scancache.lazyload.proxy import lazy as lazy
    from scancache.vulndb.cache import VulnerabilityDBCache as VulnerabilityDBCache
    from scancache.vulndb.config import VulnDBConfig as VulnDBConfig
