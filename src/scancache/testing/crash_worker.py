"""A disk-cache writer to kill -9 in crash tests: `python -m scancache.testing.crash_worker DIR ROLE`.

Four threads write distinct keys ("ROLE-thread-n") to the SQLite cache in DIR and read each one back;
every write the cache acknowledged is printed on its own line the moment it returns, so whoever kills
the process knows exactly what must survive. It stops when DIR/stop exists (or after SECONDS, the
optional third argument) and prints `DONE {"ops": N, "errors": [...]}` last.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from scancache.cache.core import Cache
from scancache.cache_config import CacheConfig, CacheType

__all__ = ["kill_mid_write", "main", "spawn"]


def spawn(cache_dir: str | Path, role: str, seconds: float = 3600.0, *, capture_stderr: bool = False
          ) -> subprocess.Popen[str]:
    """Start a worker writing to the cache in cache_dir; its stdout lists what it acknowledged."""
    return subprocess.Popen([sys.executable, "-m", "scancache.testing.crash_worker", str(cache_dir), role,
                             str(seconds)], stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.PIPE if capture_stderr else subprocess.DEVNULL)


def kill_mid_write(cache_dir: str | Path, role: str, rng: random.Random) -> list[str]:
    """Start a worker, SIGKILL it at a random point of its write stream, return every key it had
    acknowledged (those read before the kill and those already in the pipe)."""
    writer = spawn(cache_dir, role)
    assert writer.stdout is not None
    acknowledged = []
    for _ in range(rng.randrange(20, 400)):
        line = writer.stdout.readline()
        if not line:
            break
        acknowledged.append(line.strip())
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(10)
    acknowledged.extend(k for k in writer.stdout.read().split() if k.startswith(role + "-"))
    writer.stdout.close()
    if writer.returncode != -signal.SIGKILL:
        raise RuntimeError(f"worker {role} ended by itself (exit {writer.returncode}) before the kill")
    return acknowledged


def main(argv: list[str] | None = None) -> int:
    """Write, read back and acknowledge keys until told to stop; exit 0."""
    args = sys.argv[1:] if argv is None else argv
    cache_dir, role = args[0], args[1]
    deadline = time.monotonic() + (float(args[2]) if len(args) > 2 else 3600.0)
    stop_file = os.path.join(cache_dir, "stop")
    cache = Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=cache_dir, ttl_seconds=3600))
    lock = threading.Lock()
    errors: list[str] = []
    ops = [0]

    def work(thread: int) -> None:
        i = 0
        while time.monotonic() < deadline and not os.path.exists(stop_file):
            key = f"{role}-{thread}-{i}"
            try:
                ok = cache.set(key, {"i": i, "pad": "x" * (i % 700)})
                got = cache.get(key)
                if ok and got is not None and got["i"] != i:
                    errors.append(f"read back {got!r} for {key}")
            except BaseException as exc:  # the point of the exercise: report, never hide
                errors.append(repr(exc))
                return
            with lock:
                ops[0] += 2
                if ok:
                    sys.stdout.write(key + "\n")
                    sys.stdout.flush()
            i += 1

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache.close()
    sys.stdout.write("DONE " + json.dumps({"ops": ops[0], "errors": errors}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
