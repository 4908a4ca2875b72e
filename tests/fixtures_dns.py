"""Fixtures for loopback dns servers."""
