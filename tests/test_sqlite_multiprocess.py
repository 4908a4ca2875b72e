"""Several processes writing and reading one SQLite cache file: no acknowledged write is lost."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scancache.cache.core import Cache
from scancache.cache.factory import SQLITE_FILENAME
from scancache.cache.sqlite import SQLiteBackend
from scancache.config import CacheConfig, CacheType

PROCESSES = 4
WRITES = 600

# Each worker writes its own keys (set and set_many), overwrites a few shared keys, reads the other
# workers' keys as it goes, and prints the keys whose write was acknowledged (set returned True).
WORKER = r"""
import json, os, sys, time
from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType

cache_dir, worker, writes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cache = Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=cache_dir, namespace=f"ns{worker % 2}"))
# Start line: every worker has opened the file before any writes, so the writes really overlap.
open(os.path.join(cache_dir, f"ready-{worker}"), "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(os.path.join(cache_dir, "go")) and time.monotonic() < deadline:
    time.sleep(0.001)
acked, seen = [], 0
for i in range(writes):
    key = f"w{worker}-k{i}"
    if cache.set(key, {"worker": worker, "i": i}):
        acked.append(key)
    if i % 25 == 0:
        batch = {f"w{worker}-b{i}-{j}": {"worker": worker, "i": j} for j in range(20)}
        if cache.set_many(batch):
            acked.extend(batch)
    cache.set(f"shared-{i % 5}", worker)
    other = (worker + 2) % 4  # same namespace, another process
    seen += cache.get(f"w{other}-k{i}") is not None
stats = cache.get_stats()
cache.close()
print(json.dumps({"acked": acked, "seen": seen, "errors": stats["errors"]}))
"""


def _run_workers(cache_dir: Path) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(cache_dir), str(w), str(WRITES)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for w in range(PROCESSES)
    ]
    deadline = time.monotonic() + 30
    while not all((cache_dir / f"ready-{w}").exists() for w in range(PROCESSES)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "workers did not start"
        time.sleep(0.005)
    (cache_dir / "go").touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_processes_share_one_file_without_losing_acknowledged_writes(tmp_path):
    results = _run_workers(tmp_path)
    assert sum(result["seen"] for result in results) > 0  # the processes did overlap
    for result in results:
        assert result["errors"] == 0
        assert len(result["acked"]) == WRITES + 20 * len(range(0, WRITES, 25))
    caches = {ns: Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path), namespace=ns))
              for ns in ("ns0", "ns1")}
    try:
        for worker, result in enumerate(results):
            cache = caches[f"ns{worker % 2}"]
            found = cache.get_many(result["acked"])
            assert set(found) == set(result["acked"])
            assert all(value["worker"] == worker for value in found.values())
            assert cache.get("shared-0") in (worker % 2, worker % 2 + 2)  # the last writer in that ns
        per_namespace = 2 * len(results[0]["acked"]) + 5
        assert len(caches["ns0"]) == len(caches["ns1"]) == per_namespace
    finally:
        for cache in caches.values():
            cache.close()
    with sqlite3.connect(tmp_path / SQLITE_FILENAME) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _write_in_forked_child(backend: SQLiteBackend) -> None:
    from scancache.cache.backend import Record

    blob = b"from-child"
    backend.set("child", Record(None, 4e9, 4e9, len(blob)), blob)
    assert backend.get("parent") == b"from-parent"
    backend.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_opens_its_own_connection(tmp_path):
    from scancache.cache.backend import Record

    backend = SQLiteBackend(tmp_path / "c.sqlite3", namespace="n", max_entries=None, delete_on_close=False)
    try:
        backend.set("parent", Record(None, 4e9, 4e9, 11), b"from-parent")
        child = multiprocessing.get_context("fork").Process(target=_write_in_forked_child, args=(backend,))
        child.start()
        child.join(30)
        assert child.exitcode == 0
        assert backend.get("child") == b"from-child"  # the parent's connection still works
        backend.set("after", Record(None, 4e9, 4e9, 1), b"x")
        assert backend.size() == 3
    finally:
        backend.close()
    with sqlite3.connect(tmp_path / "c.sqlite3") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
