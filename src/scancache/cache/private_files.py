"""The cache's files are private to the user who runs scancache, as ssh and pip keep theirs.

A disk cache holds what a scan found (host names, addresses, findings), and whoever can write it
decides what the next scan believes. So, on POSIX:
- a new cache directory is created 0700 and a new database file 0600 (SQLite gives its -wal and
  -shm files the database's mode); an existing file of ours that others may read is narrowed to 0600;
- a cache directory or file owned by another user, or writable by group or others, is refused with
  UnsafeCacheFile (a cache planted in a shared directory is never served);
- the database is never opened through a symbolic link (O_NOFOLLOW): a planted link cannot make
  scancache create or overwrite a file wherever it points.
Once the directory is checked (ours, writable by nobody else), no other user can swap a file in it
between these checks and SQLite's own open: that is what closes the check-then-open race.
A directory or file this user cannot write raises CacheNotWritable, which the factory turns into an
uncached run with a warning (a read-only home must not stop a scan).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from scancache.errors import BackendError

__all__ = ["CacheNotWritable", "UnsafeCacheFile", "SIDE_FILES", "private_directory", "private_file"]

#: The files SQLite keeps beside a database (write-ahead log, shared memory, rollback journal).
SIDE_FILES = ("-wal", "-shm", "-journal")
_POSIX = os.name == "posix"
_NOT_WRITABLE = frozenset((errno.EACCES, errno.EPERM, errno.EROFS))


class UnsafeCacheFile(BackendError):
    """A cache directory or file that another user owns or may write, or a symbolic link at the
    database path: using it could serve (or write) what someone else planted."""


class CacheNotWritable(BackendError):
    """This user cannot create or write the cache directory or database (read-only location)."""


def _check(path: Path, info: os.stat_result, what: str) -> None:
    """Refuse path unless this user owns it and neither group nor others may write it."""
    uid = os.geteuid()
    if info.st_uid != uid:
        raise UnsafeCacheFile(
            f"refusing {what} {path}: it is owned by uid {info.st_uid}, not by this user (uid {uid}); "
            f"another user could have planted it (use a cache_dir of your own)")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeCacheFile(
            f"refusing {what} {path}: it is writable by group or others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); run chmod go-w on it or use another cache_dir")


def private_directory(path: Path) -> None:
    """Create path as a 0700 directory, or check the existing one (ours, not group/other-writable).

    Raises UnsafeCacheFile for a directory another user owns or may write, CacheNotWritable when it
    cannot be created or written, BackendError when it is not a directory.
    """
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    except OSError as exc:
        if exc.errno in _NOT_WRITABLE:
            raise CacheNotWritable(f"cannot create cache directory {path}: {exc.strerror}") from None
        raise BackendError(f"cannot create cache directory {path}: {exc.strerror or exc}") from None
    if not _POSIX:
        return
    try:
        info = os.stat(path)  # follows a link: what matters is the directory the files go in
    except OSError as exc:
        raise BackendError(f"cannot use cache directory {path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise BackendError(f"cache directory {path} is not a directory")
    _check(path, info, "cache directory")
    _check_ancestors(path)
    if not os.access(path, os.W_OK | os.X_OK):
        raise CacheNotWritable(f"cache directory {path} is not writable by this user")


def _check_ancestors(path: Path) -> None:
    """Refuse a cache directory below one that another user could rename it out of (ssh's
    StrictModes): every ancestor must belong to root or this user, and one that group or others may
    write must be sticky (/tmp), where nobody renames what is not theirs. Otherwise a checked
    directory could be swapped for another user's between the checks and SQLite's open."""
    uid = os.geteuid()
    for ancestor in Path(os.path.realpath(path)).parents:
        try:
            info = os.stat(ancestor)
        except OSError:
            continue
        if info.st_uid not in (0, uid):
            raise UnsafeCacheFile(
                f"refusing cache directory {path}: its parent {ancestor} is owned by uid "
                f"{info.st_uid}, who could swap the cache for their own (use a cache_dir of your own)")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
            raise UnsafeCacheFile(
                f"refusing cache directory {path}: its parent {ancestor} is writable by group or others "
                f"without the sticky bit (mode {stat.S_IMODE(info.st_mode):04o}), so another user could "
                f"swap the cache for their own")


def private_file(path: Path) -> None:
    """Make sure path is a regular file of ours with mode 0600, creating it (empty) if absent, and
    check SQLite's side files beside it; never follows a symbolic link.

    Raises UnsafeCacheFile for a link, another user's file or one group/others may write;
    CacheNotWritable when this user cannot create or write it.
    """
    if not _POSIX:
        return
    for suffix in SIDE_FILES:
        _check_side_file(Path(f"{path}{suffix}"))
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        # Checked before opening too: O_RDWR on another user's file would fail as "not writable".
        _check_existing(path, "cache file")
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeCacheFile(f"refusing cache file {path}: it is a symbolic link "
                                  f"(scancache never follows one for its database)") from None
        if exc.errno in _NOT_WRITABLE:
            raise CacheNotWritable(f"cannot write cache file {path}: {exc.strerror}") from None
        raise BackendError(f"cannot open cache file {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)  # the file actually opened, whatever happened since the check
        if not stat.S_ISREG(info.st_mode):
            raise BackendError(f"cache file {path} is not a regular file")
        _check(path, info, "cache file")
        if info.st_mode & 0o077:
            os.fchmod(fd, 0o600)  # ours, but others could read what a scan found: narrow it
    finally:
        os.close(fd)


def _check_existing(path: Path, what: str) -> None:
    """lstat checks of an existing path (absent is fine): no link, ours, not group/other-writable."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeCacheFile(f"refusing {what} {path}: it is a symbolic link "
                              f"(scancache never follows one for its database)")
    _check(path, info, what)


def _check_side_file(path: Path) -> None:
    """A -wal/-shm/-journal file beside the database: a planted one would feed SQLite its pages."""
    _check_existing(path, "cache file")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if info.st_mode & 0o077:
        try:
            os.chmod(path, 0o600)  # not a link (checked above), and the directory is ours
        except OSError as exc:
            raise CacheNotWritable(f"cannot make {path} private: {exc.strerror}") from None
