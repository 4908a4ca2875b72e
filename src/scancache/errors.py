"""The exceptions scancache raises: one base class, one subclass per failure a caller can act on."""

from __future__ import annotations

__all__ = ["ScancacheError", "BackendError", "DNSError", "VulnDBError", "ModuleLoadRefused"]


class ScancacheError(Exception):
    """Base of every error scancache raises on purpose."""


class BackendError(ScancacheError):
    """A cache backend (SQLite file, Redis server) failed; raised by writes, never by reads."""


class DNSError(ScancacheError):
    """A name could not be resolved and no cached answer could stand in (SERVFAIL, timeout...)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class VulnDBError(ScancacheError):
    """A vulnerability API gave up (after retries) or answered something malformed."""

    def __init__(self, endpoint: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason
        self.status = status


class ModuleLoadRefused(ScancacheError, ImportError):
    """A module load was refused before it started (memory budget exceeded, loader closed)."""
