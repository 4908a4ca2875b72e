"""The cache's files are private to the user who runs scancache, as ssh and pip keep theirs.

A disk cache holds what a scan found (host names, addresses, findings), and whoever can write it
decides what the next scan believes. So, on POSIX:
- a new cache directory is created 0700 and a new database file 0600 (SQLite gives its -wal and
  -shm files the database's mode); an existing file of ours that others may read is narrowed to 0600;
- a cache directory or file owned by another user, or writable by group or others, is refused with
  UnsafeCacheFile (a cache planted in a shared directory is never served);
- the database is never opened through a symbolic link (O_NOFOLLOW): a planted link cannot make
  scancache create or overwrite a file wherever it points.
- every directory on the way to the cache directory (symbolic links followed and checked too) must be
  owned by root or this user and writable by nobody else, unless it has the sticky bit (/tmp) or is
  group-writable for its owner's private group alone: as ssh's StrictModes, because whoever can
  rename an entry in an ancestor can swap the checked directory for theirs between the checks and
  SQLite's own open by path. With the whole path trusted, no other user can change what the path
  names; sqlite_file.py also checks, right after SQLite opened the file, that it is the checked one.
A directory or file this user cannot write raises CacheNotWritable, which the factory turns into an
uncached run with a warning (a read-only home must not stop a scan).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath

from scancache.errors import BackendError

__all__ = ["CacheNotWritable", "FileIdentity", "UnsafeCacheFile", "SIDE_FILES", "check_opened",
           "private_directory", "private_file", "trusted_path"]

#: (st_dev, st_ino): which file a path named when it was checked.
FileIdentity = tuple[int, int]
_MAX_LINKS = 40  # symbolic links followed on one path, as the kernel's ELOOP limit

#: The files SQLite keeps beside a database (write-ahead log, shared memory, rollback journal).
SIDE_FILES = ("-wal", "-shm", "-journal")
_POSIX = os.name == "posix"
_NOT_WRITABLE = frozenset((errno.EACCES, errno.EPERM, errno.EROFS))
#: SQLite's side files created (empty, 0600) by us before SQLite would: never by someone else first.
_PRECREATED = ("-wal", "-shm")


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
    trusted_path(path)
    try:
        info = os.stat(path)  # follows a link: what matters is the directory the files go in
    except OSError as exc:
        raise BackendError(f"cannot use cache directory {path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise BackendError(f"cache directory {path} is not a directory")
    _check(path, info, "cache directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise CacheNotWritable(f"cache directory {path} is not writable by this user")


def private_file(path: Path) -> FileIdentity | None:
    """Make sure path is a regular file of ours with mode 0600, creating it (empty) if absent, and
    check SQLite's side files beside it (creating -wal and -shm 0600 before SQLite would); never
    follows a symbolic link. Returns the file's identity for check_opened (None off POSIX).

    Raises UnsafeCacheFile for a link, another user's file or one group/others may write;
    CacheNotWritable when this user cannot create or write it.
    """
    if not _POSIX:
        return None
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
    for suffix in _PRECREATED:
        _create_side_file(Path(f"{path}{suffix}"))
    return info.st_dev, info.st_ino


def check_opened(path: Path, identity: FileIdentity | None) -> None:
    """Right after SQLite opened path: the file there now is still a private regular file of ours in
    a trusted directory, and the very file private_file checked (identity) when one is given.

    Raises UnsafeCacheFile otherwise: something swapped the file or a directory on its way between
    the check and SQLite's open by path.
    """
    if not _POSIX:
        return
    trusted_path(path.parent)
    _check_existing(path, "cache file")
    for suffix in SIDE_FILES:
        _check_existing(Path(f"{path}{suffix}"), "cache file")
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError as exc:
        raise UnsafeCacheFile(f"refusing cache file {path}: it went away while SQLite opened it "
                              f"({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode) or (
            identity is not None and (info.st_dev, info.st_ino) != identity):
        raise UnsafeCacheFile(f"refusing cache file {path}: it was replaced between its checks and "
                              f"SQLite's open (a directory on its path swapped?)")


def _create_side_file(path: Path) -> None:
    """Create an empty 0600 side file unless one exists (then _check_side_file already vetted it)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        if exc.errno in _NOT_WRITABLE:
            raise CacheNotWritable(f"cannot write cache file {path}: {exc.strerror}") from None
        raise BackendError(f"cannot create cache file {path}: {exc.strerror or exc}") from None


def trusted_path(directory: Path) -> None:
    """Refuse directory unless every directory on its path, from /, is one no other user can rename
    entries in (see the module docstring); symbolic links on the way are followed and must be owned
    by root or this user. Raises UnsafeCacheFile naming the first untrusted one, BackendError when
    the path does not resolve."""
    if not _POSIX:
        return
    uid = os.geteuid()
    current = PurePosixPath("/")
    _check_ancestor(current, _lstat(current), uid)
    pending = list(PurePosixPath(os.path.abspath(directory)).parts[1:])
    links = 0
    while pending:
        name = pending.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            current = current.parent  # current is a real directory: its parent is too
            continue
        candidate = current / name
        info = _lstat(candidate)
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise BackendError(f"cannot use cache directory {directory}: too many symbolic links")
            _check_owner(candidate, info, uid, directory)  # its directory is trusted: it stays put
            target = PurePosixPath(os.readlink(candidate))
            if target.is_absolute():
                current = PurePosixPath("/")
            pending[:0] = [part for part in target.parts if part != "/"]
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise BackendError(f"cannot use cache directory {directory}: {candidate} is not a directory")
        _check_ancestor(candidate, info, uid, directory)
        current = candidate


def _lstat(path: PurePosixPath) -> os.stat_result:
    try:
        return os.lstat(path)
    except OSError as exc:
        raise BackendError(f"cannot use cache directory {path}: {exc.strerror or exc}") from None


def _check_owner(path: PurePosixPath, info: os.stat_result, uid: int, wanted: Path | None) -> None:
    if info.st_uid not in (0, uid):
        what = "symbolic link" if stat.S_ISLNK(info.st_mode) else "parent"
        raise UnsafeCacheFile(
            f"refusing cache directory {wanted or path}: its {what} {path} is owned by uid "
            f"{info.st_uid}, who could swap the cache for their own (use a cache_dir whose every "
            f"parent belongs to you or root)")


def _check_ancestor(path: PurePosixPath, info: os.stat_result, uid: int,
                    wanted: Path | None = None) -> None:
    """A directory on the cache's path: owned by root or us; writable by others only when sticky
    (others cannot rename what is not theirs) or group-writable for the owner's private group."""
    _check_owner(path, info, uid, wanted)
    mode = info.st_mode
    if mode & stat.S_ISVTX or not mode & (stat.S_IWGRP | stat.S_IWOTH):
        return
    if not mode & stat.S_IWOTH and _private_group(info.st_uid, info.st_gid):
        return
    raise UnsafeCacheFile(
        f"refusing cache directory {wanted or path}: its parent {path} is writable by group or "
        f"others without the sticky bit (mode {stat.S_IMODE(mode):04o}), so another user could swap "
        f"the cache for their own; run chmod go-w on it or use another cache_dir")


def _private_group(owner: int, gid: int) -> bool:
    """True when gid is owner's own group with no other member (a user private group, umask 002)."""
    import grp
    import pwd

    try:
        user = pwd.getpwuid(owner)
        group = grp.getgrgid(gid)
    except KeyError:
        return False
    return user.pw_gid == gid and set(group.gr_mem) <= {user.pw_name}


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
