"""Fixtures for loopback osv servers."""
