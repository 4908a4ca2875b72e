"""`scancache metrics [--serve PORT]`: the caches' and loader's stats as Prometheus text (or JSON).

Served on 127.0.0.1 only: metrics name hosts and packages a scan looked at, which is nobody else's
business; put a reverse proxy in front to expose them further.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from scancache.cli._common import load_settings
from scancache.cli._components import open_dns, open_vulndb

__all__ = ["run", "serve"]


def _open_sources(args: argparse.Namespace) -> list[Any]:
    """The configured DNS and vulnerability caches, registered in scancache.metrics.REGISTRY."""
    from scancache import metrics

    settings = load_settings(args)
    dns = open_dns(settings)
    vulndb = open_vulndb(settings)
    metrics.register_cache("dns", dns)
    metrics.register_cache("vulndb", vulndb)
    return [dns, vulndb]


def serve(port: int, render: Any, *, host: str = "127.0.0.1", ready: Any = None) -> None:
    """Serve render() at /metrics on host:port until KeyboardInterrupt (port 0: a free one)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from scancache.metrics import CONTENT_TYPE

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/metrics":
                try:
                    body, status, kind = render().encode(), 200, CONTENT_TYPE
                except Exception as exc:  # a broken source: say so, keep serving
                    body, status, kind = f"error: {exc}\n".encode(), 500, "text/plain"
            elif self.path == "/":
                body, status, kind = b"scancache metrics: see /metrics\n", 200, "text/plain"
            else:
                body, status, kind = b"not found\n", 404, "text/plain"
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the scraper hung up (urllib does on a 404 after the headers): nothing to tell

        def log_message(self, format: str, *args: Any) -> None:  # quiet: scrapes every few seconds
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    address = f"http://{host}:{server.server_address[1]}/metrics"
    sys.stderr.write(f"scancache: serving metrics on {address} (Ctrl-C stops)\n")
    sys.stderr.flush()
    if ready is not None:
        ready(server)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def run(args: argparse.Namespace) -> int:
    """Print the metrics once, or serve them until Ctrl-C (exit 0)."""
    from scancache import metrics

    sources = _open_sources(args)
    try:
        if args.serve is not None:
            serve(args.serve, metrics.render_prometheus)
        elif args.format == "json":
            print(json.dumps(metrics.get_monitoring_data(), indent=2))
        else:
            sys.stdout.write(metrics.render_prometheus())
    finally:
        for source in sources:
            asyncio.run(source.aclose())
    return 0
