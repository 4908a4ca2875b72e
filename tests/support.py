"""Small helpers many test files share: a settable clock, running the CLI as a user would, and readers
racing an invalidation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class FakeClock:
    """Epoch seconds that move only when a test says so (expiry without sleeping).

    Tests that reach Redis start it at the real time (`FakeClock(time.time())`): Redis turns an
    absolute expiry into a relative PX against its own clock.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def cli_env(cache_dir: Path, **extra: str) -> dict[str, str]:
    """This environment without SCANCACHE_* (isolation), with a private cache directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_CACHE_DIR"] = str(cache_dir)
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], stdin: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m scancache ARGS` and return what it did (bounded: a hang fails the test)."""
    return subprocess.run([sys.executable, "-m", "scancache", *args], capture_output=True, text=True,
                          env=env, input=stdin, timeout=timeout, check=False)


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The run failed with `code` and exactly one `scancache: error:` line, no traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    # Notes (e.g. "running uncached") may come before it; they are not errors.
    lines = [ln for ln in done.stderr.strip().splitlines() if not ln.startswith("scancache: note:")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("scancache: error: ")
    return lines[0]


def start_cli(*args: str, env: dict[str, str], **popen: Any) -> subprocess.Popen[str]:
    """Start `python -m scancache ARGS` in the background, able to be stopped with SIGINT (Ctrl-C).

    A shell without job control starts background jobs with SIGINT ignored, and Python then installs
    no KeyboardInterrupt handler: the child would ignore the test's Ctrl-C. The child gets the default.
    """
    return subprocess.Popen([sys.executable, "-m", "scancache", *args], text=True, env=env,
                            preexec_fn=_default_sigint, **popen)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def reads_after(read: Callable[[str], object], keys: list[str], act: Callable[[], T]
                ) -> tuple[T, list[object]]:
    """(act()'s result, what read(key) returned for keys in reads that began after act() returned).

    Three reader threads read keys over and over before, during and after act() (an invalidation, say):
    only the reads that began after it returned are kept, at least 30 of them (bounded: 10 s).
    """
    returned, stop = threading.Event(), threading.Event()
    late: list[object] = []

    def reader() -> None:
        while not stop.is_set():
            after = returned.is_set()
            for key in keys:
                value = read(key)
                if after:
                    late.append(value)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        result = act()
        returned.set()
        deadline = time.monotonic() + 10
        while len(late) < 30 and time.monotonic() < deadline:
            time.sleep(0.001)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    return result, late
