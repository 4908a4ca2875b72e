"""The SCANCACHE_* environment variables: the one place that reads them.

Settings variables fill a field that a config leaves unset (a `CacheConfig()` built in code honours
SCANCACHE_REDIS_URL) and win over config files in `load_config`; both ask `setting()` or `settings()`
here, so a variable cannot mean one thing to a dataclass and another to the file loader.
Only `os` is imported: `import scancache` reads SCANCACHE_EAGER through this module.
"""

from __future__ import annotations

import os

__all__ = ["SETTINGS_VARIABLES", "config_path", "eager", "setting", "settings"]

#: Each settings variable -> (config section, field) it sets. Field names are unique across sections.
SETTINGS_VARIABLES: dict[str, tuple[str, str]] = {
    "SCANCACHE_CACHE_DIR": ("cache", "cache_dir"),
    "SCANCACHE_REDIS_URL": ("cache", "redis_url"),
    "SCANCACHE_DNS_NAMESERVERS": ("dns", "nameservers"),  # comma-separated "ip" or "ip:port"
    "SCANCACHE_OSV_URL": ("vulndb", "osv_url"),
    "SCANCACHE_NVD_URL": ("vulndb", "nvd_url"),
    "SCANCACHE_NVD_API_KEY": ("vulndb", "nvd_api_key"),
}
_VARIABLE_OF_FIELD = {field: variable for variable, (_, field) in SETTINGS_VARIABLES.items()}


def setting(field: str) -> str | None:
    """The text the environment gives `field` (e.g. "redis_url"), or None when unset or empty.

    Text as set: the config that receives it validates it (DNSConfig splits a nameserver list).
    """
    variable = _VARIABLE_OF_FIELD.get(field)
    return (os.environ.get(variable) or None) if variable else None


def settings() -> dict[str, dict[str, str]]:
    """Every settings variable that is set, as {section: {field: text}} (all sections present)."""
    out: dict[str, dict[str, str]] = {"cache": {}, "dns": {}, "vulndb": {}}
    for variable, (section, field) in SETTINGS_VARIABLES.items():
        text = os.environ.get(variable)
        if text:
            out[section][field] = text
    return out


def eager() -> bool:
    """SCANCACHE_EAGER set to anything but "" or "0": load everything at once, no laziness."""
    return os.environ.get("SCANCACHE_EAGER", "") not in ("", "0")


def config_path() -> str | None:
    """SCANCACHE_CONFIG: the config file the command reads when --config is not given."""
    return os.environ.get("SCANCACHE_CONFIG") or None
