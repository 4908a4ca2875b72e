"""Build the backend a CacheConfig names; each backend module is imported only when chosen."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from scancache._log import get_logger
from scancache.cache.backend import Backend
from scancache.cache_config import CacheConfig, CacheType

if TYPE_CHECKING:
    from scancache.cache.codec import Codec
    from scancache.cache.memory import MemoryBackend

__all__ = ["make_backend", "sqlite_path"]

SQLITE_FILENAME = "scancache.sqlite3"
log = get_logger("scancache.cache")


def sqlite_path(config: CacheConfig) -> Path:
    """Where a disk cache lives: cache_dir/scancache.sqlite3, or a file in a new private temp
    directory when enable_persistence is False (both deleted on close)."""
    if not config.enable_persistence:
        import tempfile  # only here: a persistent cache (the CLI's) does not pay for its import

        # A directory of our own (0700), not a file in the shared temp dir: SQLite's -wal and -shm
        # files then appear where no other user can plant them first.
        return Path(tempfile.mkdtemp(prefix="scancache-")) / SQLITE_FILENAME
    return config.resolved_cache_dir() / SQLITE_FILENAME


def _memory(config: CacheConfig) -> MemoryBackend:
    from scancache.cache.memory import MemoryBackend  # not at the top: a disk cache never needs it

    return MemoryBackend(config.max_size, config.max_memory_bytes, thread_safe=config.thread_safe)


def _disk(config: CacheConfig) -> Backend:
    """The SQLite backend; memory with a warning when the cache directory is read-only for this
    user (a scan still runs, uncached across runs). A directory or file another user owns or may
    write is an error (UnsafeCacheFile), never a fallback: the user must see it."""
    from scancache.cache.private_files import CacheNotWritable
    from scancache.cache.sqlite import SQLiteBackend

    path = sqlite_path(config)
    try:
        return SQLiteBackend(
            path,
            namespace=config.namespace,
            max_entries=config.disk_max_size,
            delete_on_close=not config.enable_persistence,
        )
    except CacheNotWritable as exc:
        log.warning("%s; running without a persistent cache (results are kept in memory for this "
                    "run only)", exc)
        return _memory(config)


def _redis(config: CacheConfig, clock: Callable[[], float]) -> Backend:
    from scancache.cache.redis import RedisBackend

    assert config.redis_url is not None
    return RedisBackend(config.redis_url, namespace=config.namespace,
                        timeout_seconds=config.redis_timeout_seconds, clock=clock)


def make_backend(config: CacheConfig, codec: Codec, *, clock: Callable[[], float] = time.time
                 ) -> Backend:
    """The backend for config.cache_type; HYBRID puts memory in front of Redis (when redis_url
    is set) or of SQLite."""
    kind = config.cache_type
    if kind is CacheType.MEMORY:
        return _memory(config)
    if kind is CacheType.DISK:
        return _disk(config)
    if kind is CacheType.REDIS:
        return _redis(config, clock)
    from scancache.cache.hybrid import HybridBackend

    if config.redis_url:  # memory that follows other workers' writes (CLIENT TRACKING)
        from scancache.cache.invalidation import tracked_hybrid

        return tracked_hybrid(_memory(config), _redis(config, clock), codec, clock, config)
    return HybridBackend(_memory(config), _disk(config), codec, clock)
