"""`scancache cache stats|clear|warm`: look inside, empty or pre-fill the DNS and vulnerability caches."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from scancache.cli._common import (
    CommandError,
    few_gc_passes,
    format_table,
    load_settings,
    progress_wanted,
    read_lines,
)
from scancache.cli._components import (
    default_mirror_path,
    open_dns,
    open_mirror,
    open_vulndb,
    validate_names,
)

__all__ = ["run"]

_TABLE_FIELDS = ("backend", "size", "bytes", "hits", "misses", "hit_rate", "evictions", "errors")


def _location(settings: Any) -> str:
    """Where the caches live, for people: a Redis URL has its credentials redacted."""
    from scancache.cache.urls import redact_url

    config = settings.cache
    if config.cache_type.value in ("redis",) or (config.cache_type.value == "hybrid" and config.redis_url):
        return redact_url(str(config.redis_url))
    if config.cache_type.value == "memory":
        return "memory (this process only)"
    return str(config.resolved_cache_dir())


def _not_created_yet(config: Any) -> bool:
    """True for a disk-backed cache whose database file does not exist: looking at it (stats) or
    emptying it (clear) must not create it."""
    from scancache.cache.factory import sqlite_path

    on_disk = config.cache_type.value == "disk" or (config.cache_type.value == "hybrid"
                                                    and not config.redis_url)
    return on_disk and config.enable_persistence and not sqlite_path(config).exists()


def _empty_stats(config: Any) -> dict[str, Any]:
    """The statistics of a cache that has no database yet: all zero, in get_stats()'s shape."""
    from scancache.cache.stats import CacheStats

    stats = CacheStats().as_dict(size=0, size_bytes=0, evictions=0)
    stats.update(backend=config.cache_type.value, inflight_joined=0)
    return stats


def _first_problem() -> str:
    from scancache.cli._common import WARNINGS

    return WARNINGS.messages[0] if WARNINGS.messages else "the backend failed (-v tells more)"


def _wanted(only: str | None) -> list[str]:
    return [name for name in ("dns", "vulndb") if only in (None, name)]


async def _open_all(settings: Any, names: list[str]) -> dict[str, Any]:
    components: dict[str, Any] = {}
    if "dns" in names:
        components["dns"] = open_dns(settings)
    if "vulndb" in names:
        components["vulndb"] = open_vulndb(settings)
    return components


async def _stats(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(args)
    names = _wanted(args.only)
    out: dict[str, Any] = {"location": _location(settings), "caches": {}}
    absent = [name for name in names if _not_created_yet(getattr(settings, name))]
    components = await _open_all(settings, [name for name in names if name not in absent])
    for name in absent:
        out["caches"][name] = _empty_stats(getattr(settings, name))
    try:
        for name, component in components.items():
            stats = component.cache.get_stats()
            if stats.get("errors"):
                raise CommandError(f"cannot read the {name} cache at {out['location']}: "
                                   f"{_first_problem()}")
            out["caches"][name] = stats
        out["caches"] = {name: out["caches"][name] for name in names}  # dns first, as asked
    finally:
        for component in components.values():
            await component.aclose()
    mirror_path = default_mirror_path(settings)
    if args.only in (None, "vulndb") and mirror_path.is_file():
        mirror = open_mirror(mirror_path, must_exist=True)
        try:
            out["mirror"] = mirror.stats()
        finally:
            mirror.close()
    if settings.cache.redis_url and settings.cache.cache_type.value in ("redis", "hybrid"):
        from scancache import fleet  # the workers sharing this Redis, summed (see scancache.fleet)

        # DNSCache and VulnerabilityDBCache store under their own name when the namespace is "default"
        namespaces = [{"default": n}.get(getattr(settings, n).namespace, getattr(settings, n).namespace)
                      for n in names]
        out["fleet"] = fleet.summary(settings.cache.redis_url, namespaces,
                                     signing_key=settings.cache.signing_key)
    return out


def _print_stats(data: dict[str, Any], form: str) -> None:
    if form == "json":
        print(json.dumps(data, indent=2, default=str))
        return
    print(f"location: {data['location']}")
    rows = [("CACHE", *(f.upper() for f in _TABLE_FIELDS))]
    for name, stats in data["caches"].items():
        cells = []
        for field in _TABLE_FIELDS:
            value = stats.get(field, "")
            cells.append(f"{value:.1%}" if field == "hit_rate" else str(value))
        rows.append((name, *cells))
    for line in format_table(rows):
        print(line)
    mirror = data.get("mirror")
    if mirror:
        print(f"mirror: {mirror.get('records')} records, newest {mirror.get('high_water_mark')}, "
              f"{mirror.get('path')}")
    if "fleet" in data:
        from scancache.fleet import describe

        print("\n".join(describe(data["fleet"])))


async def _clear(args: argparse.Namespace) -> dict[str, int]:
    settings = load_settings(args)
    names = _wanted(args.only)
    removed: dict[str, int] = {name: 0 for name in names
                               if _not_created_yet(getattr(settings, name))}  # nothing to clear
    components = await _open_all(settings, [name for name in names if name not in removed])
    try:
        for name, component in components.items():
            cache = component.cache
            count = await cache.aclear()
            if count is None or cache.get_stats().get("errors"):
                raise CommandError(f"cannot clear the {name} cache at {_location(settings)}: "
                                   f"{_first_problem()}")
            removed[name] = count
    finally:
        for component in components.values():
            await component.aclose()
    return removed


async def _warm(args: argparse.Namespace, hosts: list[str], requirements: list[str] | None
                ) -> dict[str, Any]:
    from scancache.cli.resolve import resolve_names

    settings = load_settings(args)
    summary: dict[str, Any] = {}
    if hosts:
        dns = open_dns(settings, args.nameserver)
        try:
            results = await resolve_names(dns, hosts, concurrency=args.concurrency, rdtype=None,
                                          show_progress=progress_wanted(args) and len(hosts) >= 50)
        finally:
            await dns.aclose()
        failed = sorted(n for n, r in results.items() if not isinstance(r, list))
        summary["dns"] = {"names": len(hosts), "resolved": len(hosts) - len(failed), "failed": failed}
    if requirements is not None:
        vulndb = open_vulndb(settings, osv_url=args.osv_url)
        try:
            report = await vulndb.audit(requirements)
        finally:
            await vulndb.aclose()
        summary["vulndb"] = {"packages": len(report.dependencies),
                             "vulnerable_packages": len(report.vulnerable_packages),
                             "skipped_lines": len(report.skipped)}
    return summary


def run(args: argparse.Namespace) -> int:
    """stats and clear print what they saw or did; warm exits 1 when some host did not resolve."""
    if args.action == "stats":
        _print_stats(asyncio.run(_stats(args)), args.format)
        return 0
    if args.action == "clear":
        removed = asyncio.run(_clear(args))
        print(json.dumps({"removed": removed}))
        return 0
    if not args.hosts and not args.requirement:
        raise CommandError("nothing to warm (give --hosts FILE and/or -r FILE)")
    hosts = validate_names(read_lines(args.hosts, "hosts file")) if args.hosts else []
    requirements = read_lines(args.requirement, "requirements file") if args.requirement else None
    with few_gc_passes():
        summary = asyncio.run(_warm(args, hosts, requirements))
    print(json.dumps(summary))
    return 1 if summary.get("dns", {}).get("failed") else 0
