"""`scancache dashboard`: the live page and REST API over the configured DNS and vulnerability caches.

With the caches on Redis (`--redis-url URL`, or the config's redis_url), it also shows the fleet:
every worker that publishes snapshots there. Needs the `dashboard` extra; only argparse is imported
until the command runs (its options are declared in cli/main.py), so `scancache --help` does not
pay for Starlette or uvicorn.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["run"]

def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (exit 0); a missing extra or a bad option is one error line."""
    import asyncio
    import dataclasses
    import sys

    from scancache.cli._common import CommandError, load_settings
    from scancache.cli._components import open_dns, open_vulndb

    try:
        from scancache.dashboard import load_rules, serve_dashboard
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    if not 0.1 <= args.interval <= 60:
        raise CommandError(f"--interval must be between 0.1 and 60 seconds, got {args.interval}")
    if args.redis_url and not args.cache_type:
        args.cache_type = "redis"  # --redis-url alone means: the caches that live on that Redis
    token = args.token or os.environ.get("SCANCACHE_DASHBOARD_TOKEN") or None
    settings = load_settings(args)
    # This process only looks: it must not show up as a worker of the fleet it displays.
    settings.dns = dataclasses.replace(settings.dns, enable_metrics=False)
    settings.vulndb = dataclasses.replace(settings.vulndb, enable_metrics=False)
    dns, vulndb = open_dns(settings), open_vulndb(settings)
    config = settings.cache
    redis_url = config.redis_url if config.cache_type.value in ("redis", "hybrid") else None
    rules = load_rules(args.config)
    try:
        server = serve_dashboard(
            host=args.host, port=args.port, token=token, caches={"dns": dns, "vulndb": vulndb},
            redis_url=redis_url, fleet_namespaces=[dns.cache.config.namespace, vulndb.cache.config.namespace],
            signing_key=config.signing_key, alerts=rules, interval=args.interval,
            collect=_collector({"dns": dns, "vulndb": vulndb}))
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    try:
        shown = server.url + (" (send the token: Authorization: Bearer ..., or ?token=...)" if token else "")
        sys.stderr.write(f"scancache: dashboard on {shown} (Ctrl-C stops)\n")
        sys.stderr.flush()
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for component in (dns, vulndb):
            asyncio.run(component.aclose())
    return 0


def _collector(sources: dict[str, Any]) -> Any:
    """get_monitoring_data() over a private registry holding only this command's caches."""
    from scancache.metrics import MetricsRegistry, get_monitoring_data

    registry = MetricsRegistry()
    for name, source in sources.items():
        registry.register_cache(name, source)

    def collect() -> dict[str, Any]:
        return get_monitoring_data(registry)

    collect.registry = registry  # type: ignore[attr-defined]  # keeps the sources' names alive
    return collect
