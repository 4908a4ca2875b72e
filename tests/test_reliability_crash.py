"""Crash safety of the SQLite cache: kill -9 a writer mid-write, again and again.

A survivor process keeps reading and writing the same file the whole time. Afterwards the file passes
PRAGMA integrity_check, every write that a killed writer acknowledged is readable, and the survivor
never saw an exception. CI runs 8 kills; SCANCACHE_LONG=1 runs 60.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3

import pytest

from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType
from scancache.testing.crash_worker import kill_mid_write, spawn

KILLS = 60 if os.environ.get("SCANCACHE_LONG") else 8


@pytest.mark.slow
def test_kill_9_mid_write_loses_no_acknowledged_write(tmp_path):
    rng = random.Random(1234)
    survivor = spawn(tmp_path, "survivor", 300, capture_stderr=True)
    acknowledged: list[str] = []
    try:
        for kill in range(KILLS):
            acknowledged += kill_mid_write(tmp_path, f"victim{kill}", rng)
    finally:
        (tmp_path / "stop").touch()
        out, err = survivor.communicate(timeout=60)
    assert acknowledged, "the writers acknowledged nothing"
    assert survivor.returncode == 0, err[-2000:]
    last = out.strip().splitlines()[-1]
    assert last.startswith("DONE ") and json.loads(last[len("DONE "):])["errors"] == [], last[:2000]
    survivor_writes = [line for line in out.splitlines() if line.startswith("survivor")]
    assert len(survivor_writes) > 50, "the survivor barely ran"

    files = list(tmp_path.glob("*.sqlite3"))
    assert files, "no SQLite file was written"
    with sqlite3.connect(files[0]) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    cache = Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path), ttl_seconds=3600))
    try:
        every_write = acknowledged + survivor_writes
        found = cache.get_many(every_write)
        missing = [k for k in every_write if k not in found]
        assert missing == [], f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    finally:
        cache.close()
