"""A live dashboard and REST API for scancache's caches, for one process and for a fleet of workers.

Optional: `pip install 'scancache[dashboard]'` (Starlette and uvicorn). Nothing imports this package
unless asked: `import scancache` and the CLI's start-up never pay for it.

    from scancache.dashboard import serve_dashboard
    server = serve_dashboard(port=8050)          # a background thread; 127.0.0.1 only
    print(server.url)                            # the page: live charts, REST API under /api
    ...
    server.stop()

`await aserve_dashboard(...)` runs it on the caller's event loop instead. See the README's
"Dashboard" section for the API and the security rules (token, Host and Origin checks).
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError("the dashboard needs its extra: pip install 'scancache[dashboard]' "
                      f"({exc.name} is missing)") from exc

from scancache.alerts import AlertRules, load_rules
from scancache.dashboard.server import DashboardServer, aserve_dashboard, managed_caches, serve_dashboard

__all__ = ["AlertRules", "DashboardServer", "aserve_dashboard", "load_rules", "managed_caches",
           "serve_dashboard"]
