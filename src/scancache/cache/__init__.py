"""The cache core: one Cache front over memory, SQLite, Redis and hybrid backends."""

from scancache.cache.backend import Backend, Record
from scancache.cache.codec import Codec, CorruptEntry
from scancache.cache.core import Cache, CacheEntry
from scancache.cache.memory import MemoryBackend

__all__ = ["Backend", "Cache", "CacheEntry", "Codec", "CorruptEntry", "MemoryBackend", "Record"]
