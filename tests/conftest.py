"""Shared fixtures. Server fixtures live in fixtures_*.py plugins, one per kind of server."""

from __future__ import annotations

import os

# scancache.fleet writes a snapshot key every few seconds to any Redis a cache uses: tests that count
# keys or commands must not see it. tests/test_dashboard_fleet.py turns it on in its worker processes.
os.environ.setdefault("SCANCACHE_FLEET_INTERVAL", "0")

pytest_plugins = ["fixtures_redis", "fixtures_dns", "fixtures_osv", "fixtures_audit", "fixtures_sqlite"]
