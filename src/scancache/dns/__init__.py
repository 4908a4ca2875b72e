"""DNSCache: record-TTL-aware caching resolver over the cache core.

Public names: DNSCache (scancache.dns.cache) and DNSConfig (scancache.dns.config). Submodules load
on first use so `import scancache.dns` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scancache._attach import attach

__getattr__, __dir__, __all__ = attach(__name__, {"cache": ["DNSCache"], "config": ["DNSConfig"]})

if TYPE_CHECKING:
    from scancache.dns.cache import DNSCache as DNSCache
    from scancache.dns.config import DNSConfig as DNSConfig
