"""CacheConfig and CacheType: the settings of one cache, validated on construction.

DNSConfig and VulnDBConfig add to CacheConfig; `scancache.config.load_config` builds all of them from
a file. This module sits below both: it imports only the field checks and the environment.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from scancache.config_fields import config_from_mapping, is_number, parse_enum, require
from scancache.env import setting

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["CacheConfig", "CacheType", "default_cache_dir"]


class CacheType(enum.Enum):
    """Where a cache keeps its entries."""

    MEMORY = "memory"
    DISK = "disk"
    REDIS = "redis"
    HYBRID = "hybrid"

    @classmethod
    def parse(cls, value: CacheType | str) -> CacheType:
        """Accept an enum member or its name/value in any case ("disk", "DISK")."""
        return parse_enum(cls, value, "cache_type")


def default_cache_dir() -> Path:
    """SCANCACHE_CACHE_DIR, else the platform's user cache directory for scancache."""
    from pathlib import Path  # only a disk cache needs a directory: not imported for every config

    from_env = setting("cache_dir")
    if from_env:
        return Path(from_env).expanduser()
    import platformdirs  # lazy: only needed when a disk cache is opened

    return Path(platformdirs.user_cache_dir("scancache", appauthor=False))


def _compared_fields(config_class: type) -> tuple[str, ...]:
    """The names of config_class's fields that equality compares (memoised per class)."""
    names = _COMPARED.get(config_class)
    if names is None:
        from dataclasses import fields

        names = _COMPARED[config_class] = tuple(f.name for f in fields(config_class) if f.compare)
    return names


_COMPARED: dict[type, tuple[str, ...]] = {}


# Its own __repr__ and __eq__ below, inherited by DNSConfig and VulnDBConfig (declared the same way):
# generating them would cost every start-up a compile of a 17- to 37-field method per class.
@dataclass(repr=False, eq=False)
class CacheConfig:
    """Settings of one cache; the fields the seed promises plus a few with safe defaults.

    ttl_seconds is both the default lifetime of an entry and the ceiling for lifetimes that
    callers (or DNS records) ask for. max_size counts entries, max_memory_mb bounds the bytes held
    in memory; whichever is reached first evicts the least recently used entries.
    """

    cache_type: CacheType = CacheType.MEMORY
    max_size: int = 1000
    ttl_seconds: float = 3600
    cleanup_interval: float = 300
    enable_compression: bool = True
    enable_persistence: bool = True
    cache_dir: str | Path | None = None
    redis_url: str | None = None
    enable_metrics: bool = True
    thread_safe: bool = True
    max_memory_mb: float = 512
    # Beyond the seed: all optional, all with defaults a scanner can live with.
    namespace: str = "default"
    stale_ttl_seconds: float = 0
    compression_threshold_bytes: int = 1024
    signing_key: str | bytes | None = None
    redis_timeout_seconds: float = 0.5
    disk_max_size: int | None = None

    def __post_init__(self) -> None:
        self.cache_type = CacheType.parse(self.cache_type)
        for name in ("max_size", "compression_threshold_bytes"):
            value = getattr(self, name)
            require(isinstance(value, int) and not isinstance(value, bool), name,
                    f"must be an integer, got {value!r}")
        require(self.max_size > 0, "max_size", f"must be positive, got {self.max_size}")
        require(self.compression_threshold_bytes >= 0, "compression_threshold_bytes",
                "must not be negative")
        for name in ("ttl_seconds", "cleanup_interval", "max_memory_mb", "stale_ttl_seconds",
                     "redis_timeout_seconds"):
            value = getattr(self, name)
            require(is_number(value), name, f"must be a number, got {value!r}")
            require(value == value and value != float("inf"), name, f"must be finite, got {value}")
            require(value >= 0, name, f"must not be negative, got {value}")
        require(self.ttl_seconds > 0, "ttl_seconds", "must be positive")
        require(self.max_memory_mb > 0, "max_memory_mb", "must be positive")
        require(self.redis_timeout_seconds > 0, "redis_timeout_seconds", "must be positive")
        if self.disk_max_size is not None:
            require(isinstance(self.disk_max_size, int) and self.disk_max_size > 0,
                    "disk_max_size", f"must be a positive integer, got {self.disk_max_size!r}")
        for name in ("enable_compression", "enable_persistence", "enable_metrics", "thread_safe"):
            require(isinstance(getattr(self, name), bool), name, "must be true or false")
        require(isinstance(self.namespace, str) and bool(self.namespace)
                and ":" not in self.namespace, "namespace", "must be a non-empty string without ':'")
        if self.redis_url is None:
            self.redis_url = setting("redis_url")
        if self.redis_url is not None:
            require(isinstance(self.redis_url, str) and "://" in self.redis_url, "redis_url",
                    f"must be a URL such as redis://127.0.0.1:6379/0, got {self.redis_url!r}")
        if self.cache_type is CacheType.REDIS:
            require(self.redis_url is not None, "redis_url",
                    "is required for cache_type=redis (or set SCANCACHE_REDIS_URL)")
        if self.signing_key is not None:
            require(isinstance(self.signing_key, str | bytes) and len(self.signing_key) >= 16,
                    "signing_key", "must be a str or bytes of at least 16 characters")

    def __repr__(self) -> str:
        # Secrets never reach a log or a traceback: URL credentials and keys show as ***.
        # (DNSConfig and VulnDBConfig are declared repr=False, eq=False so they inherit it and __eq__.)
        from scancache.cache.urls import redacted_repr

        return redacted_repr(self)

    def __eq__(self, other: object) -> bool:
        # What dataclass(eq=True) generates: equal when of the same class and every field (those
        # with compare=True, in order) is equal, compared as tuples. Defining __eq__ leaves the
        # class unhashable (__hash__ None), as eq=True does for a mutable dataclass.
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = _compared_fields(self.__class__)
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    @property
    def max_memory_bytes(self) -> int:
        """max_memory_mb in bytes."""
        return int(self.max_memory_mb * 1024 * 1024)

    def resolved_cache_dir(self) -> Path:
        """The directory a disk cache uses: cache_dir, else SCANCACHE_CACHE_DIR, else the user's."""
        if self.cache_dir is not None:
            from pathlib import Path

            return Path(self.cache_dir).expanduser()
        return default_cache_dir()

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, section: str = "cache") -> Self:
        """Build from a config-file section; unknown keys are a ValueError naming them."""
        return config_from_mapping(cls, data, section)
