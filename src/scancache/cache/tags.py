"""Tags: `cache.set(key, value, tags=[...])` and `cache.invalidate_tag(tag)` on every backend.

Each tag has a generation, and each generation a set of keys, kept where the entries are (memory: in
the process; SQLite: two tables in the same file; Redis: `INCR` counters and `SADD` sets under the
namespace, so every worker shares them). A tagged set registers its key in the current generation of
each tag, stores the entry, then reads the generations again: if one moved meanwhile (an invalidation
ran in between), the key is registered in the new generation too. invalidate_tag bumps the generation
first (later sets register in the new one), then deletes every key of the generations before it.

So an entry whose set completed before invalidate_tag started is deleted by the time it returns, from
the backend and from this cache's memory: on a hybrid, a read in flight that fetched the entry from
the back store before its delete cannot put it back in memory (the hybrid's fill barrier, see
cache/hybrid.py; over Redis also the listener's), and other workers' memory over Redis follows
through CLIENT TRACKING within the invalidation delay. A set that overlaps the invalidation either
lands before it (and is deleted) or after it (and stays, registered in the new generation, for the
next invalidation).
A key stays attached to its tags until they are invalidated or the key is deleted and re-set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["check_tags", "invalidate_tag", "invalidate_tag_counted", "register_tags", "set_tagged",
           "tag_index"]

_MAX_RETAGS = 8  # generations a single set follows before giving up (only under an invalidation storm)


def check_tags(tags: Iterable[str]) -> list[str]:
    """tags as a list; TypeError unless each is a non-empty str (a lone str is refused too)."""
    if isinstance(tags, str | bytes):
        raise TypeError("tags is a list of str, not a str")
    out = list(tags)
    for tag in out:
        if not isinstance(tag, str) or not tag:
            raise TypeError(f"tags are non-empty str, got {tag!r}")
    return out


class MemoryTags:
    """The tag index of an in-process backend: {tag: generation}, {(tag, generation): keys}."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generations: dict[str, int] = {}
        self.members: dict[tuple[str, int], set[str]] = {}

    def generation(self, tags: Sequence[str]) -> list[int]:
        with self.lock:
            return [self.generations.get(tag, 0) for tag in tags]

    def add(self, key: str, tags: Sequence[str], generations: Sequence[int]) -> None:
        with self.lock:
            for tag, gen in zip(tags, generations, strict=True):
                self.members.setdefault((tag, gen), set()).add(key)

    def bump(self, tag: str) -> list[str]:
        """Move tag to a new generation; the keys of all older ones (their sets removed)."""
        with self.lock:
            gen = self.generations.get(tag, 0)
            self.generations[tag] = gen + 1
            keys: set[str] = set()
            for old in [k for k in self.members if k[0] == tag and k[1] <= gen]:
                keys |= self.members.pop(old)
        return sorted(keys)


class SQLiteTags:
    """The tag index of an SQLite backend: two tables beside `entries`, shared by every process."""

    _SCHEMA = (
        "CREATE TABLE IF NOT EXISTS scancache_tag_generations (namespace TEXT NOT NULL, tag TEXT NOT NULL,"
        " generation INTEGER NOT NULL, PRIMARY KEY (namespace, tag)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS scancache_tag_keys (namespace TEXT NOT NULL, tag TEXT NOT NULL,"
        " generation INTEGER NOT NULL, key TEXT NOT NULL, PRIMARY KEY (namespace, tag, generation, key))"
        " WITHOUT ROWID",
    )

    def __init__(self, backend: Any) -> None:
        from scancache.cache.sqlite_file import retry

        self.backend, self.retry, self.namespace = backend, retry, backend.namespace
        cursor = backend._cursor()
        for statement in self._SCHEMA:
            retry(lambda statement=statement: cursor.execute(statement))  # type: ignore[misc]

    def generation(self, tags: Sequence[str]) -> list[int]:
        cursor = self.backend._cursor()
        sql = "SELECT generation FROM scancache_tag_generations WHERE namespace = ? AND tag = ?"
        out = []
        for tag in tags:
            row = cursor.execute(sql, (self.namespace, tag)).fetchone()
            out.append(int(row[0]) if row else 0)
        return out

    def add(self, key: str, tags: Sequence[str], generations: Sequence[int]) -> None:
        cursor = self.backend._cursor()
        rows = [(self.namespace, tag, gen, key) for tag, gen in zip(tags, generations, strict=True)]
        self.retry(lambda: cursor.executemany(
            "INSERT OR IGNORE INTO scancache_tag_keys VALUES (?, ?, ?, ?)", rows))

    def bump(self, tag: str) -> list[str]:
        cursor = self.backend._cursor()
        new = self.retry(lambda: cursor.execute(
            "INSERT INTO scancache_tag_generations VALUES (?, ?, 1) ON CONFLICT (namespace, tag)"
            " DO UPDATE SET generation = generation + 1 RETURNING generation",
            (self.namespace, tag)).fetchone()[0])
        where = "WHERE namespace = ? AND tag = ? AND generation < ?"
        keys = [row[0] for row in cursor.execute(
            f"SELECT DISTINCT key FROM scancache_tag_keys {where}", (self.namespace, tag, new))]
        self.retry(lambda: cursor.execute(f"DELETE FROM scancache_tag_keys {where}",
                                          (self.namespace, tag, new)))
        return keys


class RedisTags:
    """The tag index on Redis: `{prefix}\\0tag-gen:{tag}` counters and `{prefix}\\0tag:{tag}:{gen}` sets,
    which expire with the longest entry they can name (ttl_seconds plus the stale window)."""

    def __init__(self, backend: Any, lifetime_seconds: float) -> None:
        self.backend = backend
        self.lifetime_ms = max(1000, int(lifetime_seconds * 1000))

    def _gen_name(self, tag: str) -> str:
        return f"{self.backend.prefix}\x00tag-gen:{tag}"

    def _set_name(self, tag: str, gen: int) -> str:
        return f"{self.backend.prefix}\x00tag:{tag}:{gen}"

    def generation(self, tags: Sequence[str]) -> list[int]:
        names = [self._gen_name(tag) for tag in tags]
        values = self.backend._run(lambda client: [client.get(name) for name in names])
        return [int(v) if v is not None else 0 for v in values]

    def add(self, key: str, tags: Sequence[str], generations: Sequence[int]) -> None:
        def run(client: Any) -> None:
            pipe = client.pipeline(transaction=False)
            for tag, gen in zip(tags, generations, strict=True):
                name = self._set_name(tag, gen)
                pipe.sadd(name, key)
                pipe.pexpire(name, self.lifetime_ms)
            pipe.execute()

        self.backend._run(run)

    def bump(self, tag: str) -> list[str]:
        def run(client: Any) -> list[str]:
            new = int(client.incr(self._gen_name(tag)))
            keys: set[str] = set()
            for gen in range(max(0, new - 2), new):  # the previous generation (and one more, for sets
                name = self._set_name(tag, gen)       # that followed a generation while it moved)
                keys |= {m.decode("utf-8", "surrogateescape") if isinstance(m, bytes) else m
                         for m in client.smembers(name)}
                client.unlink(name)
            return sorted(keys)

        return list(self.backend._run(run))


def tag_index(cache: Any) -> Any:
    """The cache's tag index, made on first use (for a hybrid: its back store's)."""
    index = getattr(cache, "_tag_index", None)
    if index is None:
        backend = getattr(cache.backend, "back", cache.backend)
        kind = type(backend).__name__
        if kind == "MemoryBackend":
            index = MemoryTags()
        elif kind == "SQLiteBackend":
            index = SQLiteTags(backend)
        elif kind == "RedisBackend":
            index = RedisTags(backend, cache.config.ttl_seconds + max(cache.config.stale_ttl_seconds, 0) + 60)
        else:
            raise TypeError(f"{kind} does not support tags")
        cache._tag_index = index
    return index


def register_tags(cache: Any, key: str, tags: Iterable[str], store: Any) -> Any:
    """Register key under tags, run store() (the set itself), then follow any generation that moved."""
    names = check_tags(tags)
    index = tag_index(cache)
    generations = index.generation(names)
    index.add(key, names, generations)
    result = store()
    for _ in range(_MAX_RETAGS):
        now = index.generation(names)
        if now == generations:
            return result
        index.add(key, names, now)  # an invalidation ran meanwhile: the entry belongs to the new one
        generations = now
    cache.delete(key)  # still moving: rather no entry than one a later invalidation might miss
    return False


def invalidate_tag(cache: Any, tag: str) -> int:
    """Delete every entry tagged tag before this call; returns how many keys were named."""
    backend = cache.backend
    listener = getattr(backend, "listener", None)
    if listener is not None:
        listener.barrier()
    keys = tag_index(cache).bump(tag)
    for key in keys:
        backend.delete(key)
    if listener is not None:
        listener.barrier()
        front = backend.front
        for key in keys:  # a fill that raced the deletes above
            front.delete(key)
    return len(keys)




def set_tagged(cache: Any, key: str, value: Any, ttl: Any, stale_ttl: float | None, tags: Iterable[str],
               compress: bool = True) -> bool:
    """Cache.set with tags: False (logged, counted) when the backend failed, TypeError for bad tags."""
    names = check_tags(tags)
    try:
        return bool(register_tags(cache, key, names,
                                  lambda: cache._set(key, value, ttl, stale_ttl, compress)))
    except (TypeError, ValueError):
        raise
    except Exception as exc:
        cache._failed("set", exc, write=True)
        return False


def invalidate_tag_counted(cache: Any, tag: str) -> int | None:
    """Cache.invalidate_tag: how many keys the tag named, None (logged, counted) on backend failure."""
    check_tags([tag])
    try:
        return invalidate_tag(cache, tag)
    except Exception as exc:
        cache._failed("invalidate_tag", exc)
        return None
