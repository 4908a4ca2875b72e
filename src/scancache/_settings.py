"""How settings are layered (defaults, a TOML/YAML file, SCANCACHE_*, options), and the CLI's settings:
each section built when first used, yet every value a user gave validated at load time.

`scancache.config.load_config` builds all four sections from `layer()`. A command needs one or two
(a warm `audit` only vulndb), and building a section imports its module, dataclass and checks
(the DNS and lazy-loading ones are never used by an audit); `load_sections()` therefore returns a
`Settings` whose sections are built on first access, except those that could fail: a section is
built (and validated) at load time, in load_config's order so the same first error is reported,
unless its every input is a [cache] value that the [cache] section has just accepted. Such a
section holds class defaults (valid by construction) plus values [cache] checked with the same
code (CacheConfig's, which DNSConfig and VulnDBConfig inherit), so building it later cannot fail:
a typo in any section of a config file, or a bad SCANCACHE_* value, is still an error for every
command, as before. Only `os` and scancache.env are imported here.
"""

from __future__ import annotations

import os

from scancache import env

TYPE_CHECKING = False  # not `from typing import ...`: typing alone costs milliseconds at startup
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

__all__ = ["SECTIONS", "Settings", "build_section", "layer", "load_sections", "read_file"]

#: Component sections in a config file, with the seed's attribute names as aliases.
SECTION_ALIASES = {
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

#: Sections that are caches: [cache] settings, the environment and a caller's defaults and overrides
#: apply to each of them.
CACHE_SECTIONS = ("cache", "dns", "vulndb")

#: The sections a ScancacheConfig holds, in the order load_config validates them.
SECTIONS = ("cache", "dns", "vulndb", "lazy")

#: The settings a cache section can get from nothing but what [cache] also gets (the caller's
#: defaults and overrides, SCANCACHE_CACHE_DIR / SCANCACHE_REDIS_URL): checked by CacheConfig alone.
_CHECKED_BY_CACHE = frozenset({"cache_type", "cache_dir", "redis_url"})


def read_file(path: Path) -> dict[str, Any]:
    """The top-level table of a .toml, .yaml or .yml file; ValueError naming the file if unusable."""
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


def layer(path: str | os.PathLike[str] | None, defaults: Mapping[str, Any] | None,
          overrides: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Each section's settings (SECTIONS), layered as load_config documents; nothing validated yet
    but the file itself and its section names (ValueError)."""
    raw: dict[str, Any] = {}
    if path is not None:
        from pathlib import Path  # only with a file: its messages show the path as pathlib spells it

        raw = read_file(Path(path))
    sections: dict[str, dict[str, Any]] = {"cache": {}, "dns": {}, "vulndb": {}, "lazy": {}, "audit": {},
                                           "alerts": {}}
    for name, body in raw.items():
        canonical = SECTION_ALIASES.get(str(name))
        if canonical is None:
            raise ValueError(f"config: unknown section [{name}] "
                             f"(expected one of {', '.join(sorted(SECTION_ALIASES))})")
        if not isinstance(body, dict):
            raise ValueError(f"config: section [{name}] must be a table of settings")
        sections[canonical].update(body)

    # Every [cache] setting is a default for the components, except the namespace: DNS and vulndb
    # keep their own ("dns", "vulndb") so sharing one store never mixes (or clears) each other's keys.
    shared = {k: v for k, v in sections["cache"].items() if k != "namespace"}
    from_env = env.settings()
    layered: dict[str, dict[str, Any]] = {}
    for name in CACHE_SECTIONS:
        layered[name] = {**(defaults or {}), **(shared if name != "cache" else {}), **sections[name],
                         **from_env["cache"], **from_env.get(name, {}), **(overrides or {})}
    layered["lazy"] = sections["lazy"]
    return layered


def _section_class(name: str) -> Any:
    """The config class of a section, imported now (each is a module of its own)."""
    if name == "cache":
        from scancache.cache_config import CacheConfig

        return CacheConfig
    if name == "dns":
        from scancache.dns.config import DNSConfig

        return DNSConfig
    if name == "vulndb":
        from scancache.vulndb.config import VulnDBConfig

        return VulnDBConfig
    from scancache.lazyload.config import LazyLoadConfig

    return LazyLoadConfig


def build_section(name: str, data: dict[str, Any], path: str | os.PathLike[str] | None) -> Any:
    """Section name's config object from its layered settings; ValueError names the section and
    field (and the file, when there is one)."""
    try:
        return _section_class(name).from_mapping(data, section=name)
    except ValueError as exc:
        if path is None:
            raise
        raise ValueError(f"config file {path}: {exc}") from None


def _cannot_fail(name: str, layered: dict[str, dict[str, Any]]) -> bool:
    """True when building section name cannot raise once [cache] was built from layered["cache"]:
    all its settings are [cache]'s own, with the same values (see the module's docstring)."""
    if name == "lazy":
        return not layered["lazy"]  # LazyLoadConfig's defaults
    cache = layered["cache"]
    return all(key in _CHECKED_BY_CACHE and key in cache and cache[key] == value
               for key, value in layered[name].items())


class Settings:
    """A run's settings: attributes cache, dns, vulndb and lazy as ScancacheConfig has them, each
    built on first access (and then an ordinary attribute: a command may replace one)."""

    def __init__(self, layered: dict[str, dict[str, Any]], path: str | os.PathLike[str] | None) -> None:
        self._layered = layered
        self._path = path

    def __getattr__(self, name: str) -> Any:
        if name not in SECTIONS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = build_section(name, self._layered[name], self._path)
        setattr(self, name, value)
        return value

    def __repr__(self) -> str:
        built = ", ".join(f"{name}={self.__dict__[name]!r}" for name in SECTIONS if name in self.__dict__)
        return f"Settings({built})"


def load_sections(path: str | os.PathLike[str] | None = None, *,
                  defaults: Mapping[str, Any] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """load_config's settings as a Settings: the same layering and the same errors (the first bad
    section in load_config's order), but a section that cannot fail is built only when used."""
    layered = layer(path, defaults, overrides)
    settings = Settings(layered, path)
    for name in SECTIONS:
        if name == "cache" or not _cannot_fail(name, layered):
            getattr(settings, name)  # validated now
    return settings
