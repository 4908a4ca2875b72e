"""Build the DNS and vulnerability caches (and the OSV mirror) the way every command needs them."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from scancache.cli._common import CommandError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["check_osv_dump", "default_mirror_path", "open_dns", "open_mirror", "open_vulndb",
           "validate_names"]

MIRROR_FILENAME = "osv-mirror.sqlite3"


def open_dns(settings: Any, nameservers: list[str] | None = None) -> Any:
    """A DNSCache over settings.dns, asking nameservers when given (ValueError if one is bad)."""
    from scancache.dns.cache import DNSCache

    config = settings.dns
    if nameservers:
        config = dataclasses.replace(config, nameservers=list(nameservers))
    return DNSCache(config)


def open_vulndb(settings: Any, *, osv_url: str | None = None, mirror: str | None = None,
                concurrency: int | None = None) -> Any:
    """A VulnerabilityDBCache over settings.vulndb; mirror answers offline when given; concurrency
    overrides osv_concurrency (OSV requests in flight)."""
    from scancache.vulndb.cache import VulnerabilityDBCache

    config = settings.vulndb
    overrides: dict[str, Any] = {}
    if osv_url:
        overrides["osv_url"] = osv_url
    if mirror:
        overrides["mirror_path"] = mirror
    if concurrency:
        overrides["osv_concurrency"] = concurrency
    if overrides:
        config = dataclasses.replace(config, **overrides)
    return VulnerabilityDBCache(config)


def default_mirror_path(settings: Any) -> Path:
    """The vulndb section's mirror_path, else CACHE_DIR/osv-mirror.sqlite3."""
    from pathlib import Path  # only the mirror commands need paths: not imported by a cached audit

    configured = getattr(settings.vulndb, "mirror_path", None)
    if configured:
        return Path(configured).expanduser()
    return settings.cache.resolved_cache_dir() / MIRROR_FILENAME


def check_osv_dump(path: Path, what: str) -> Path:
    """path if it is an OSV all.zip or a directory of JSON records; CommandError (naming what) if not."""
    import zipfile

    if not path.exists():
        raise CommandError(f"{what} not found: {path}")
    if not path.is_dir() and not zipfile.is_zipfile(path):
        raise CommandError(f"not an OSV all.zip (nor a directory of JSON records): {path}")
    return path


def open_mirror(path: Path, *, must_exist: bool) -> Any:
    """An OSVMirror at path; CommandError when must_exist and there is none."""
    if must_exist and not path.is_file():
        raise CommandError(f"no mirror at {path} (create one with 'scancache mirror import FILE')")
    if path.is_dir():
        raise CommandError(f"mirror path is a directory: {path}")
    from scancache.vulndb.mirror import OSVMirror

    try:
        return OSVMirror(path, create=not must_exist)
    except ValueError as exc:  # not a mirror, or one never imported into
        raise CommandError(str(exc)) from None
    except Exception as exc:  # sqlite3.DatabaseError and friends
        raise CommandError(f"cannot open mirror {path}: {exc}") from None


def validate_names(names: list[str]) -> list[str]:
    """names, each once (first spelling kept) and checked; CommandError names a bad one."""
    from scancache.dns.names import MAX_NAME_LENGTH, NORMAL_NAME, ip_literal, normalise_name

    normal = NORMAL_NAME.match
    seen: set[str] = set()
    unique = []
    for name in names:
        if len(name) <= MAX_NAME_LENGTH and normal(name):
            key = name  # already normal and no address literal: one regex match
        else:
            try:
                key = ip_literal(name) or normalise_name(name)
            except ValueError as exc:
                raise CommandError(f"bad host name {name!r}: {exc}") from None
        if key not in seen:
            seen.add(key)
            unique.append(name)
    return unique
