"""Configuration: CacheConfig, CacheType, config files (TOML/YAML) and SCANCACHE_* overrides.

Everything here is plain dataclasses validated on construction, so a typo in a config file fails at
load time with the field's name instead of deep inside a scan.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "CacheConfig",
    "CacheType",
    "ScancacheConfig",
    "load_config",
    "load_config_from_file",
    "default_cache_dir",
]


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


_E = TypeVar("_E", bound=enum.Enum)


def parse_enum(enum_type: type[_E], value: _E | str, field_name: str) -> _E:
    """The member of enum_type that value is or names (by name or value, any case)."""
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        for member in enum_type:
            if text in (str(member.value).lower(), member.name.lower()):
                return member
    choices = ", ".join(str(m.value) for m in enum_type)
    raise ValueError(f"{field_name}: unknown value {value!r} (choose one of {choices})")


_C = TypeVar("_C")


def config_from_mapping(config_type: type[_C], data: Any, section: str) -> _C:
    """An instance of a config dataclass from a file's section; ValueError names unknown keys."""
    if not isinstance(data, dict):
        raise ValueError(f"[{section}]: must be a table of settings, got {type(data).__name__}")
    known = {f.name for f in fields(config_type)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"[{section}]: unknown setting(s) {', '.join(map(str, unknown))}")
    try:
        return config_type(**data)
    except (TypeError, ValueError) as exc:  # wrong types, or a value __post_init__ refused
        raise ValueError(f"[{section}]: {exc}") from None


def default_cache_dir() -> Path:
    """SCANCACHE_CACHE_DIR, else the platform's user cache directory for scancache."""
    env = os.environ.get("SCANCACHE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs  # lazy: only needed when a disk cache is opened

    return Path(platformdirs.user_cache_dir("scancache", appauthor=False))


def _require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{name}: {message}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
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
            _require(isinstance(value, int) and not isinstance(value, bool), name,
                     f"must be an integer, got {value!r}")
        _require(self.max_size > 0, "max_size", f"must be positive, got {self.max_size}")
        _require(self.compression_threshold_bytes >= 0, "compression_threshold_bytes",
                 "must not be negative")
        for name in ("ttl_seconds", "cleanup_interval", "max_memory_mb", "stale_ttl_seconds",
                     "redis_timeout_seconds"):
            value = getattr(self, name)
            _require(_is_number(value), name, f"must be a number, got {value!r}")
            _require(value == value and value != float("inf"), name, f"must be finite, got {value}")
            _require(value >= 0, name, f"must not be negative, got {value}")
        _require(self.ttl_seconds > 0, "ttl_seconds", "must be positive")
        _require(self.max_memory_mb > 0, "max_memory_mb", "must be positive")
        _require(self.redis_timeout_seconds > 0, "redis_timeout_seconds", "must be positive")
        if self.disk_max_size is not None:
            _require(isinstance(self.disk_max_size, int) and self.disk_max_size > 0,
                     "disk_max_size", f"must be a positive integer, got {self.disk_max_size!r}")
        for name in ("enable_compression", "enable_persistence", "enable_metrics", "thread_safe"):
            _require(isinstance(getattr(self, name), bool), name, "must be true or false")
        _require(isinstance(self.namespace, str) and bool(self.namespace)
                 and ":" not in self.namespace, "namespace", "must be a non-empty string without ':'")
        if self.redis_url is None:
            self.redis_url = os.environ.get("SCANCACHE_REDIS_URL") or None
        if self.redis_url is not None:
            _require(isinstance(self.redis_url, str) and "://" in self.redis_url, "redis_url",
                     f"must be a URL such as redis://127.0.0.1:6379/0, got {self.redis_url!r}")
        if self.cache_type is CacheType.REDIS:
            _require(self.redis_url is not None, "redis_url",
                     "is required for cache_type=redis (or set SCANCACHE_REDIS_URL)")
        if self.signing_key is not None:
            _require(isinstance(self.signing_key, str | bytes) and len(self.signing_key) >= 16,
                     "signing_key", "must be a str or bytes of at least 16 characters")

    @property
    def max_memory_bytes(self) -> int:
        """max_memory_mb in bytes."""
        return int(self.max_memory_mb * 1024 * 1024)

    def resolved_cache_dir(self) -> Path:
        """The directory a disk cache uses: cache_dir, else SCANCACHE_CACHE_DIR, else the user's."""
        if self.cache_dir is not None:
            return Path(self.cache_dir).expanduser()
        return default_cache_dir()

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, section: str = "cache") -> CacheConfig:
        """Build from a config-file section; unknown keys are a ValueError naming them."""
        return config_from_mapping(cls, data, section)


# Component sections in a config file, with the seed's attribute names as aliases.
_SECTION_ALIASES = {
    "cache": "cache",
    "dns": "dns",
    "dns_caching": "dns",
    "vulndb": "vulndb",
    "vulnerability_caching": "vulndb",
    "lazy": "lazy",
    "lazy_loading": "lazy",
}


@dataclass
class ScancacheConfig:
    """One config file's worth of settings: a section per component.

    The attribute names the seed's example uses (`lazy_loading`, `dns_caching`,
    `vulnerability_caching`) are properties over the short ones.
    """

    cache: CacheConfig = field(default_factory=CacheConfig)
    dns: Any = None
    vulndb: Any = None
    lazy: Any = None

    @property
    def dns_caching(self) -> Any:
        """The DNS section (a DNSConfig)."""
        return self.dns

    @property
    def vulnerability_caching(self) -> Any:
        """The vulnerability section (a VulnDBConfig)."""
        return self.vulndb

    @property
    def lazy_loading(self) -> Any:
        """The lazy loading section (a LazyLoadConfig)."""
        return self.lazy


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror}") from None
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ValueError(f"config file {path}: use a .toml, .yaml or .yml file")
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except Exception as exc:  # TOMLDecodeError, yaml.YAMLError: report, never a traceback
        kind = "TOML" if suffix == ".toml" else "YAML"
        raise ValueError(f"config file {path} is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path}: top level must be a table of sections")
    return data


def _env_overrides() -> dict[str, dict[str, Any]]:
    """SCANCACHE_* variables as per-section settings; they win over files and defaults."""
    env = os.environ
    out: dict[str, dict[str, Any]] = {"cache": {}, "dns": {}, "vulndb": {}}
    if env.get("SCANCACHE_CACHE_DIR"):
        out["cache"]["cache_dir"] = env["SCANCACHE_CACHE_DIR"]
    if env.get("SCANCACHE_REDIS_URL"):
        out["cache"]["redis_url"] = env["SCANCACHE_REDIS_URL"]
    if env.get("SCANCACHE_DNS_NAMESERVERS"):
        out["dns"]["nameservers"] = [
            s.strip() for s in env["SCANCACHE_DNS_NAMESERVERS"].split(",") if s.strip()
        ]
    for var, key in (("SCANCACHE_OSV_URL", "osv_url"), ("SCANCACHE_NVD_URL", "nvd_url"),
                     ("SCANCACHE_NVD_API_KEY", "nvd_api_key")):
        if env.get(var):
            out["vulndb"][key] = env[var]
    return out


def load_config(path: str | os.PathLike[str] | None = None) -> ScancacheConfig:
    """Read a TOML or YAML config file (or none), apply SCANCACHE_* overrides, validate.

    Sections: [cache] holds defaults shared by every component; [dns], [vulndb] and [lazy]
    (or the seed's dns_caching, vulnerability_caching, lazy_loading) refine them.
    Raises ValueError naming the file, section and field for anything unreadable or invalid.
    """
    from scancache.dns.config import DNSConfig
    from scancache.lazy.config import LazyLoadConfig
    from scancache.vulndb.config import VulnDBConfig

    raw: dict[str, Any] = _read_file(Path(path)) if path is not None else {}
    sections: dict[str, dict[str, Any]] = {"cache": {}, "dns": {}, "vulndb": {}, "lazy": {}}
    for name, body in raw.items():
        canonical = _SECTION_ALIASES.get(str(name))
        if canonical is None:
            raise ValueError(f"config: unknown section [{name}] "
                             f"(expected one of {', '.join(sorted(_SECTION_ALIASES))})")
        if not isinstance(body, dict):
            raise ValueError(f"config: section [{name}] must be a table of settings")
        sections[canonical].update(body)
    for name, body in _env_overrides().items():
        sections[name].update(body)

    shared = sections["cache"]
    # Every [cache] setting is a default for the components, except the namespace: DNS and vulndb
    # keep their own ("dns", "vulndb") so sharing one store never mixes (or clears) each other's keys.
    cache_fields = {f.name for f in fields(CacheConfig)} - {"namespace"}
    try:
        cache = CacheConfig.from_mapping(dict(shared), section="cache")
        dns = DNSConfig.from_mapping({**{k: v for k, v in shared.items() if k in cache_fields},
                                      **sections["dns"]}, section="dns")
        vulndb = VulnDBConfig.from_mapping({**{k: v for k, v in shared.items() if k in cache_fields},
                                            **sections["vulndb"]}, section="vulndb")
        lazy = LazyLoadConfig.from_mapping(sections["lazy"], section="lazy")
    except ValueError as exc:
        if path is None:
            raise
        raise ValueError(f"config file {path}: {exc}") from None
    return ScancacheConfig(cache=cache, dns=dns, vulndb=vulndb, lazy=lazy)


#: The seed's name for load_config.
load_config_from_file = load_config
