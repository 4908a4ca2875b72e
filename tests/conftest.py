"""Shared fixtures. Server fixtures live in fixtures_*.py plugins, one per kind of server."""

from __future__ import annotations

pytest_plugins = ["fixtures_redis", "fixtures_dns", "fixtures_osv", "fixtures_audit"]
