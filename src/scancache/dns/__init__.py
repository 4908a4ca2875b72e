"""DNSCache: record-TTL-aware caching resolver over the cache core.

Public names: DNSCache (scancache.dns.cache) and DNSConfig (scancache.dns.config). Submodules load
on first use so `import scancache.dns` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["DNSCache", "DNSConfig"]

_EXPORTS = {"DNSCache": "scancache.dns.cache", "DNSConfig": "scancache.dns.config"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scancache.dns' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from scancache.dns.cache import DNSCache
    from scancache.dns.config import DNSConfig
