"""Fixtures for loopback redis servers."""
