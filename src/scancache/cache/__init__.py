"""The cache core: one Cache front over memory, SQLite, Redis and hybrid backends.

Each public name loads its submodule on first use (scancache._attach), so importing any submodule
(`scancache.cache.urls` for redaction, the SQLite backend) does not run the whole core: a warm CLI
run imports only the modules it uses.
"""

from __future__ import annotations

from scancache._attach import attach

TYPE_CHECKING = False  # not `from typing import ...`: see scancache/__init__.py
if TYPE_CHECKING:  # names for type checkers and IDEs ("X as X": re-exported); never executed
    from scancache.cache.backend import Backend as Backend
    from scancache.cache.backend import Record as Record
    from scancache.cache.codec import Codec as Codec
    from scancache.cache.codec import CorruptEntry as CorruptEntry
    from scancache.cache.core import Cache as Cache
    from scancache.cache.entry import CacheEntry as CacheEntry
    from scancache.cache.memory import MemoryBackend as MemoryBackend

__getattr__, __dir__, __all__ = attach(__name__, {
    "backend": ["Backend", "Record"],
    "codec": ["Codec", "CorruptEntry"],
    "core": ["Cache", "CacheEntry"],
    "memory": ["MemoryBackend"],
})
