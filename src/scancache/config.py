"""Configuration files: one section per component, from defaults, a TOML/YAML file and SCANCACHE_*.

The top of the settings modules: `load_config` builds a CacheConfig (scancache.cache_config), a
DNSConfig, a VulnDBConfig and a LazyLoadConfig; none of those imports this module. Field checks live in
scancache.config_fields, the SCANCACHE_* variables in scancache.env.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scancache import env
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


# Component sections in a config file, with the seed's attribute names as aliases.
_SECTION_ALIASES = {
    "cache": "cache",
    "dns": "dns",
    "dns_caching": "dns",
    "vulndb": "vulndb",
    "vulnerability_caching": "vulndb",
    "lazy": "lazy",
    "lazy_loading": "lazy",
    "audit": "audit",  # the audit policy: read by scancache.vulndb.policy, not a component
    "alerts": "alerts",  # the dashboard's alert rules: read by scancache.alerts.load_rules
}


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


#: Sections that are caches: [cache] settings, the environment and a caller's defaults and overrides
#: apply to each of them.
_CACHE_SECTIONS = ("cache", "dns", "vulndb")


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
    raw: dict[str, Any] = _read_file(Path(path)) if path is not None else {}
    sections: dict[str, dict[str, Any]] = {"cache": {}, "dns": {}, "vulndb": {}, "lazy": {}, "audit": {},
                                           "alerts": {}}
    for name, body in raw.items():
        canonical = _SECTION_ALIASES.get(str(name))
        if canonical is None:
            raise ValueError(f"config: unknown section [{name}] "
                             f"(expected one of {', '.join(sorted(_SECTION_ALIASES))})")
        if not isinstance(body, dict):
            raise ValueError(f"config: section [{name}] must be a table of settings")
        sections[canonical].update(body)

    # Every [cache] setting is a default for the components, except the namespace: DNS and vulndb
    # keep their own ("dns", "vulndb") so sharing one store never mixes (or clears) each other's keys.
    shared = {k: v for k, v in sections["cache"].items() if k != "namespace"}
    from_env = env.settings()
    layered: dict[str, dict[str, Any]] = {}
    for name in _CACHE_SECTIONS:
        layered[name] = {**(defaults or {}), **(shared if name != "cache" else {}), **sections[name],
                         **from_env["cache"], **from_env.get(name, {}), **(overrides or {})}
    try:
        cache = CacheConfig.from_mapping(layered["cache"], section="cache")
        dns = DNSConfig.from_mapping(layered["dns"], section="dns")
        vulndb = VulnDBConfig.from_mapping(layered["vulndb"], section="vulndb")
        lazy = LazyLoadConfig.from_mapping(sections["lazy"], section="lazy")
    except ValueError as exc:
        if path is None:
            raise
        raise ValueError(f"config file {path}: {exc}") from None
    return ScancacheConfig(cache=cache, dns=dns, vulndb=vulndb, lazy=lazy)


#: The seed's name for load_config.
load_config_from_file = load_config
