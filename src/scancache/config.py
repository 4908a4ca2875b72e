"""Configuration files: one section per component, from defaults, a TOML/YAML file and SCANCACHE_*.

The top of the settings modules: `load_config` builds a CacheConfig (scancache.cache_config), a
DNSConfig, a VulnDBConfig and a LazyLoadConfig; none of those imports this module. Field checks live in
scancache.config_fields, the SCANCACHE_* variables in scancache.env, the layering (shared with the
CLI, which builds each section only when used) in scancache._settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scancache._settings import SECTIONS, build_section, layer, read_file
from scancache.cache_config import CacheConfig, CacheType, default_cache_dir
from scancache.dns.config import DNSConfig
from scancache.lazyload.config import LazyLoadConfig
from scancache.vulndb.config import VulnDBConfig

__all__ = [
    "CacheConfig",
    "CacheType",
    "ScancacheConfig",
    "load_config",
    "load_config_from_file",
    "default_cache_dir",
]


@dataclass
class ScancacheConfig:
    """One config file's worth of settings: a section per component.

    The attribute names the seed's example uses (`lazy_loading`, `dns_caching`,
    `vulnerability_caching`) are properties over the short ones.
    """

    cache: CacheConfig = field(default_factory=CacheConfig)
    dns: DNSConfig = field(default_factory=DNSConfig)
    vulndb: VulnDBConfig = field(default_factory=VulnDBConfig)
    lazy: LazyLoadConfig = field(default_factory=LazyLoadConfig)

    @property
    def dns_caching(self) -> DNSConfig:
        """The DNS section."""
        return self.dns

    @property
    def vulnerability_caching(self) -> VulnDBConfig:
        """The vulnerability section."""
        return self.vulndb

    @property
    def lazy_loading(self) -> LazyLoadConfig:
        """The lazy loading section."""
        return self.lazy


def load_config(path: str | os.PathLike[str] | None = None, *,
                defaults: Mapping[str, Any] | None = None,
                overrides: Mapping[str, Any] | None = None) -> ScancacheConfig:
    """Read a TOML or YAML config file (or none), apply SCANCACHE_* overrides, validate.

    Sections: [cache] holds defaults shared by every component; [dns], [vulndb] and [lazy]
    (or the seed's dns_caching, vulnerability_caching, lazy_loading) refine them.
    Each cache section (cache, dns, vulndb) is layered, later winning: the dataclass's defaults,
    `defaults`, the file's [cache], the file's own section, SCANCACHE_* variables, `overrides`
    (the command line passes its options as `overrides` and its disk default as `defaults`).
    Raises ValueError naming the file, section and field for anything unreadable or invalid.
    """
    layered = layer(path, defaults, overrides)
    built = {name: build_section(name, layered[name], path) for name in SECTIONS}
    return ScancacheConfig(**built)


#: The file reader, under the name alerts.py imports it by (one parser for every section).
_read_file = read_file

#: The seed's name for load_config.
load_config_from_file = load_config
