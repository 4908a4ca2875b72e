"""The cache core imports only what a use of it needs (issue 14: a warm CLI run is mostly imports).

Each check runs in a fresh interpreter and lists sys.modules afterwards: a module imported at the
top of a cache module shows here, however it got there. Speed itself is shown by warm-bench and
benchmarks/bench_audit.py, never timed here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: What a sync read and write of an unsigned disk cache never needs: get-or-compute (refresh.py and
#: random under it), the memory backend, HMAC and OpenSSL's hashes (only a signing cache), asyncio,
#: zstandard while no value is compressed (small ones, and large ones set with compress=False), the
#: URL redaction (only a backend error's log line needs it), and threading (cache/_threads.py; weakref
#: too, but dataclasses imports it through copy, and CacheConfig is a dataclass).
NOT_FOR_SYNC_DISK_USE = ("scancache.cache.refresh", "scancache.cache.memory", "random", "hmac", "hashlib",
                         "_hashlib", "asyncio", "zstandard", "platform", "scancache.cache.urls", "threading")


def _modules_after(code: str, tmp_path: Path) -> set[str]:
    """sys.modules of a fresh interpreter after it ran code (with CACHE_DIR set to a private dir)."""
    script = f"import json, sys\nCACHE_DIR = {str(tmp_path / 'cache')!r}\n{code}\n" \
             "print(json.dumps(sorted(sys.modules)))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_a_submodule_import_does_not_run_the_whole_core(tmp_path: Path) -> None:
    modules = _modules_after("import scancache.cache.urls", tmp_path)
    assert "scancache.cache.urls" in modules
    assert "scancache.cache.core" not in modules
    assert "scancache.cache.codec" not in modules


def test_the_package_names_load_on_first_use(tmp_path: Path) -> None:
    modules = _modules_after(
        "import scancache.cache as c\n"
        "assert 'scancache.cache.memory' not in sys.modules\n"
        "from scancache.cache import Backend, Cache, CacheEntry, Codec, CorruptEntry, MemoryBackend, Record\n"
        "assert c.__all__ == sorted(c.__all__) and set(c.__all__) <= set(dir(c))\n"
        "assert Cache.__module__ == 'scancache.cache.core' and MemoryBackend.__name__ == 'MemoryBackend'\n"
        "from scancache.cache import refresh\n"
        "assert refresh.DEFAULT_BETA == 1.0",
        tmp_path)
    assert {"scancache.cache.memory", "scancache.cache.refresh"} <= modules


def test_sync_reads_and_writes_of_a_disk_cache_import_no_compute_hmac_or_event_loop(
        tmp_path: Path) -> None:
    modules = _modules_after(
        "from scancache.cache.core import Cache\n"
        "from scancache.cache_config import CacheConfig, CacheType\n"
        "cache = Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=CACHE_DIR))\n"
        "assert cache.set('a', {'x': 1}, 60)\n"
        "assert cache.set_many({'b': [1, 2], 'c': 'three'}, 60)\n"
        "assert cache.get('a') == {'x': 1}\n"
        "assert cache.get_many(['a', 'b', 'c', 'd']) == {'a': {'x': 1}, 'b': [1, 2], 'c': 'three'}\n"
        "assert cache.get_entries(['a'])['a'].value == {'x': 1}\n"
        "big = ['GHSA-xxxx-yyyy-zzzz'] * 1000\n"
        "assert cache.set_many({'big': big}, 60, compress=False) and cache.get('big') == big\n"
        "from scancache.metrics import register_automatically\n"
        "assert register_automatically('disk', cache) == 'disk'\n"
        "cache.close()",
        tmp_path)
    assert "scancache.cache.sqlite" in modules  # the listing is real: the backend is in it
    assert sorted(m for m in NOT_FOR_SYNC_DISK_USE if m in modules) == []


def test_get_or_set_and_signing_still_load_what_they_need(tmp_path: Path) -> None:
    modules = _modules_after(
        "import asyncio\n"
        "from scancache.cache.core import Cache\n"
        "from scancache.cache_config import CacheConfig\n"
        "cache = Cache(CacheConfig(signing_key='a signing key of 16+ chars'))\n"
        "assert cache.get_or_set('k', lambda: 41, 60) == 41\n"
        "assert cache.get_or_set('k', lambda: 42, 60) == 41\n"
        "async def main():\n"
        "    assert await cache.aget_or_set('j', lambda: 43, 60) == 43\n"
        "    assert await cache.aget_or_set('j', lambda: 44, 60) == 43\n"
        "asyncio.run(main())\n"
        "blob = cache.codec.encode('k', 1, 10.0, 20.0)\n"
        "assert blob[3] & 2 and cache.codec.decode('k', blob) == (1, 10.0, 20.0)",
        tmp_path)
    assert {"scancache.cache.refresh", "hmac"} <= modules


def test_key_digests_are_hashlib_sha256_without_importing_hashlib(tmp_path: Path) -> None:
    modules = _modules_after(
        "from scancache.cache.digest import sha256_hex\n"
        "texts = (b'', b'PyPI\\x00requests\\x002.32.3', b'x' * 1000)\n"
        "digests = [sha256_hex(text) for text in texts]\n"
        "assert 'hashlib' not in sys.modules\n"
        "import hashlib\n"
        "assert digests == [hashlib.sha256(text).hexdigest() for text in texts]",
        tmp_path)
    assert "scancache.cache.digest" in modules


def test_the_cache_modules_a_warm_read_loads_do_not_import_dataclasses_or_inspect(
        tmp_path: Path) -> None:
    # dataclasses imports inspect (and ast, dis, tokenize under it): ~10% of a warm audit's
    # instructions while anything on its path still needs it. CacheConfig (cache_config.py) is one.
    modules = _modules_after(
        "import scancache.cache.entry, scancache.cache.backend, scancache.cache.codec\n"
        "import scancache.cache.stats, scancache.cache.singleflight, scancache.cache.urls\n"
        "import scancache.cache.digest, scancache.cache.sqlite",
        tmp_path)
    assert "scancache.cache.sqlite" in modules
    assert "dataclasses" not in modules and "inspect" not in modules


def test_the_low_level_lock_local_and_weak_references_are_threadings_and_weakrefs_own() -> None:
    import threading
    import weakref

    from scancache.cache import _threads

    assert isinstance(_threads.Lock(), type(threading.Lock()))
    assert _threads.local is threading.local
    assert _threads.WeakSet is weakref.WeakSet and _threads.ref is weakref.ref
