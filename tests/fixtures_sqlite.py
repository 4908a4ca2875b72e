"""A fixture that records the SQL statements SQLite runs for the caches opened during a test."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest


class StatementLog(list[str]):
    """Every statement run (as SQLite expands it) on the connections opened while it is active."""

    def reads(self, table: str = "entries") -> list[str]:
        """The SELECTs of table among them (what a get or get_many costs)."""
        return [s for s in self if s.lstrip().upper().startswith("SELECT") and f"FROM {table}" in s]


@pytest.fixture
def sqlite_statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[StatementLog]:
    """A StatementLog of every connection sqlite3.connect opens from now on (the cache opens all of
    its connections through it), to assert how many statements an operation costs."""
    log = StatementLog()
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(log.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    yield log
