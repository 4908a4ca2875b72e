"""A hostile local user against the disk cache (issue 12.5): private modes, no planted cache, no
followed symlink, and a read-only cache directory that degrades instead of failing.

The second user is real: a child forked from the test process that drops to another uid with
os.setuid (so these tests need root, as CI runs them; elsewhere they skip and say why).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scancache.cache.core import Cache
from scancache.cache.private_files import UnsafeCacheFile
from scancache.config import CacheConfig, CacheType

OTHER_UID = 65534  # "nobody" on Linux; any uid other than ours will do
needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="needs root to act as a second user (os.setuid in a forked child)")
posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes and owners are POSIX")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def disk_cache(directory: Path) -> Cache:
    return Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=directory))


def as_other_user(work: Callable[[], Any]) -> Any:
    """Run work() in a forked child as OTHER_UID; its JSON-able result, or its error re-raised here."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        status = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(OTHER_UID)
            os.setuid(OTHER_UID)
            reply = {"result": work()}
        except BaseException as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
            status = 1
        try:
            os.write(write_end, json.dumps(reply).encode())
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as pipe:
        while chunk := pipe.read(65536):
            chunks.append(chunk)
    os.waitpid(pid, 0)
    reply = json.loads(b"".join(chunks) or b'{"error": "child died without a word"}')
    if "error" in reply:
        raise AssertionError(f"as uid {OTHER_UID}: {reply['error']}")
    return reply["result"]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A world-writable sticky directory like /tmp, that both users can reach."""
    path = Path(tempfile.mkdtemp(prefix="scancache-shared-"))
    os.chmod(path, 0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------- private by default
@posix_only
def test_new_cache_directory_is_0700_and_every_file_0600(tmp_path):
    old_umask = os.umask(0o022)  # the usual umask, which would give 0755 and 0644
    try:
        directory = tmp_path / "cache"
        cache = disk_cache(directory)
        assert cache.set("host.example", ["192.0.2.1"])
        assert cache.get("host.example") == ["192.0.2.1"]
        files = sorted(directory.iterdir())
        assert mode(directory) == 0o700
        assert {f.name for f in files} >= {"scancache.sqlite3", "scancache.sqlite3-wal",
                                           "scancache.sqlite3-shm"}
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        cache.close()
    finally:
        os.umask(old_umask)


@posix_only
def test_an_existing_world_readable_cache_file_of_ours_is_narrowed_to_0600(tmp_path):
    directory = tmp_path / "cache"
    disk_cache(directory).close()
    os.chmod(directory / "scancache.sqlite3", 0o644)  # as scancache 0.1 left it
    cache = disk_cache(directory)
    assert cache.set("k", "v")
    assert mode(directory / "scancache.sqlite3") == 0o600
    cache.close()


@posix_only
def test_a_non_persistent_cache_lives_in_a_private_directory_removed_on_close():
    cache = Cache(CacheConfig(cache_type=CacheType.DISK, enable_persistence=False))
    path = cache.backend.path
    assert cache.set("k", "v")
    assert mode(path.parent) == 0o700 and mode(path) == 0o600
    cache.close()
    assert not path.parent.exists()


# ---------------------------------------------------------------------- nothing planted is used
@posix_only
def test_a_cache_directory_writable_by_others_is_refused(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir()
    os.chmod(directory, 0o777)
    with pytest.raises(UnsafeCacheFile, match="writable by group or others"):
        disk_cache(directory)
    assert not (directory / "scancache.sqlite3").exists()


@posix_only
def test_a_cache_file_writable_by_others_is_refused(tmp_path):
    directory = tmp_path / "cache"
    disk_cache(directory).close()
    os.chmod(directory / "scancache.sqlite3", 0o666)
    with pytest.raises(UnsafeCacheFile, match="writable by group or others"):
        disk_cache(directory)


@posix_only
def test_a_symlink_at_the_database_path_is_never_followed(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    target = tmp_path / "victim" / "authorized_keys"
    target.parent.mkdir()
    (directory / "scancache.sqlite3").symlink_to(target)
    with pytest.raises(UnsafeCacheFile, match="symbolic link"):
        disk_cache(directory)
    assert not target.exists()  # nothing was created where the link points
    target.write_text("precious\n")
    with pytest.raises(UnsafeCacheFile, match="symbolic link"):
        disk_cache(directory)
    assert target.read_text() == "precious\n"  # nor overwritten


@posix_only
def test_a_symlink_planted_as_the_write_ahead_log_is_refused(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    (directory / "scancache.sqlite3-wal").symlink_to(target)
    with pytest.raises(UnsafeCacheFile, match="symbolic link"):
        disk_cache(directory)
    assert not target.exists()


@needs_root
def test_a_cache_planted_by_another_user_in_a_shared_directory_is_refused(shared_dir):
    planted = shared_dir / "cache"

    def plant() -> list[str]:
        cache = disk_cache(planted)  # the other user's own, private cache...
        cache.set("bank.example", ["203.0.113.66"])  # ...holding a poisoned answer
        cache.close()
        return sorted(p.name for p in planted.iterdir())

    assert "scancache.sqlite3" in as_other_user(plant)
    with pytest.raises(UnsafeCacheFile, match=f"owned by uid {OTHER_UID}"):
        disk_cache(planted)


@needs_root
def test_a_database_file_planted_in_our_directory_is_refused(shared_dir):
    directory = shared_dir / "ours"
    directory.mkdir(mode=0o700)
    os.chmod(directory, 0o700)
    db = directory / "scancache.sqlite3"
    disk_cache(directory).close()
    os.chown(db, OTHER_UID, OTHER_UID)  # as if another user had put it there
    with pytest.raises(UnsafeCacheFile, match=f"cache file {db}: it is owned by uid {OTHER_UID}"):
        disk_cache(directory)


@needs_root
def test_the_cli_refuses_a_planted_cache_with_one_line(shared_dir):
    planted = shared_dir / "cache"
    as_other_user(lambda: disk_cache(planted).close())
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_CACHE_DIR"] = str(planted)
    done = subprocess.run([sys.executable, "-m", "scancache", "cache", "stats"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scancache: error: refusing cache"), done.stderr
    assert f"owned by uid {OTHER_UID}" in lines[0]


# ---------------------------------------------------------------------- read-only: degrade, warn
@needs_root
def test_a_read_only_cache_directory_runs_uncached_with_a_warning(shared_dir):
    directory = shared_dir / "readonly"

    def run() -> dict[str, Any]:
        import logging

        directory.mkdir(mode=0o500)  # the other user's own directory, read-only for them
        seen: list[str] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.append(record.getMessage())

        logging.getLogger("scancache").addHandler(Keep())
        cache = disk_cache(directory)
        stored = cache.set("k", "v")
        value = cache.get("k")
        cache.close()
        return {"stored": stored, "value": value, "warnings": seen,
                "files": sorted(p.name for p in directory.iterdir())}

    outcome = as_other_user(run)
    assert outcome["stored"] and outcome["value"] == "v"  # works, for this run
    assert outcome["files"] == []  # and wrote nothing
    assert any("running without a persistent cache" in w and str(directory) in w
               for w in outcome["warnings"]), outcome["warnings"]


# ---------------------------------------------------------------------- cache stats looks, never creates
def test_cache_stats_and_clear_do_not_create_a_database(tmp_path):
    directory = tmp_path / "never"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_CACHE_DIR"] = str(directory)
    for args in (("cache", "stats"), ("cache", "stats", "--format", "json"), ("cache", "clear")):
        done = subprocess.run([sys.executable, "-m", "scancache", *args], capture_output=True,
                              text=True, env=env, timeout=60, check=False)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert not (directory / "scancache.sqlite3").exists(), args
    data = json.loads(subprocess.run([sys.executable, "-m", "scancache", "cache", "stats", "--format",
                                      "json"], capture_output=True, text=True, env=env, timeout=60,
                                     check=True).stdout)
    assert data["caches"]["dns"]["size"] == 0 and data["caches"]["vulndb"]["hits"] == 0


# ---------------------------------------------------------------------- a parent another user controls
@needs_root
def test_a_cache_directory_under_another_users_directory_is_refused(shared_dir):
    """The swap race (attack note 3): whoever owns a parent can rename our checked directory away and
    put theirs in its place between the checks and SQLite's open. So such a parent is refused."""
    theirs = shared_dir / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, OTHER_UID, OTHER_UID)
    ours = theirs / "cache"
    ours.mkdir(mode=0o700)  # our own, private directory: still not safe where it stands
    with pytest.raises(UnsafeCacheFile, match=f"parent {theirs} is owned by uid {OTHER_UID}"):
        disk_cache(ours)
    assert not (ours / "scancache.sqlite3").exists()


@posix_only
def test_a_cache_directory_under_a_world_writable_non_sticky_directory_is_refused(tmp_path):
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)  # anyone may rename entries here
    with pytest.raises(UnsafeCacheFile, match="without the sticky bit"):
        disk_cache(open_dir / "cache")
    os.chmod(open_dir, 0o1777)  # sticky, as /tmp: nobody renames what is not theirs
    disk_cache(open_dir / "cache").close()


# ---------------------------------------------------------------------- no swap on the way in
@needs_root
def test_a_symlink_another_user_owns_on_the_path_is_refused(shared_dir, tmp_path):
    ours = tmp_path / "cache"
    ours.mkdir(mode=0o700)
    link = shared_dir / "link"
    as_other_user(lambda: os.symlink(str(ours), str(link)))  # theirs to point anywhere, any time
    with pytest.raises(UnsafeCacheFile, match=f"symbolic link {link} is owned by uid {OTHER_UID}"):
        disk_cache(link)
    os.unlink(link)
    os.symlink(ours, link)  # the same link, ours: it stays put
    cache = disk_cache(link)
    assert cache.set("k", "v")
    cache.close()
    assert (ours / "scancache.sqlite3").exists()


@posix_only
def test_a_database_swapped_after_its_checks_is_refused_before_sqlite_touches_it(tmp_path, monkeypatch):
    # The race itself, made deterministic: the directory is swapped exactly between private_file's
    # checks and SQLite's open by path. (A swap like this needs write access to an ancestor, which
    # the checks above refuse to other users; this is the second line.)
    from scancache.cache import sqlite_file

    root = tmp_path / "root"
    root.mkdir(mode=0o700)
    cache_dir, planted_dir = root / "cache", root / "planted"
    planted_dir.mkdir(mode=0o700)
    planted = planted_dir / "scancache.sqlite3"
    conn = sqlite3.connect(planted)
    conn.execute("CREATE TABLE planted (x)")
    conn.commit()
    conn.close()
    os.chmod(planted, 0o600)
    checked = sqlite_file.private_file

    def check_then_swap(path: Path) -> Any:
        identity = checked(path)
        os.rename(cache_dir, root / "real")
        os.rename(planted_dir, cache_dir)
        return identity

    monkeypatch.setattr(sqlite_file, "private_file", check_then_swap)
    with pytest.raises(UnsafeCacheFile, match="replaced between its checks and SQLite's open"):
        disk_cache(cache_dir)
    conn = sqlite3.connect(cache_dir / "scancache.sqlite3")
    tables = sorted(row[0] for row in conn.execute("SELECT name FROM sqlite_master"))
    conn.close()
    assert tables == ["planted"]  # nothing of ours was written into it
