"""Hostile and bad input: only documented errors come out, and nothing planted is ever executed."""

from __future__ import annotations

import pickle
import sqlite3
import string
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType, load_config

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary()
    | st.sampled_from([object(), {1, 2}, frozenset(), 1j, Path("x"), ...]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4) | st.integers(), inner,
                                                                max_size=4) | st.tuples(inner, inner),
    max_leaves=12,
)
keys = st.one_of(st.text(), st.integers(), st.binary(), st.none(), st.floats())


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hostile")
    made = [Cache(CacheConfig()), Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=str(directory)))]
    yield made
    for cache in made:
        cache.close()


@FAST
@given(key=keys, value=anything, ttl=st.one_of(st.none(), st.floats(), st.integers(-5, 10**9)))
def test_set_accepts_or_raises_type_or_value_error_only(caches, key, value, ttl):
    for cache in caches:
        try:
            stored = cache.set(key, value, ttl=ttl)
        except (TypeError, ValueError):
            continue
        assert stored is True
        got = cache.get(key, "<missing>")
        if ttl is not None and ttl < 1:  # zero stores nothing; a tiny ttl may be gone already
            assert got == "<missing>" or _same(got, value)
        else:
            assert _same(got, value), (got, value)


def _same(got, value) -> bool:
    """Equal after the documented round trip: tuples read back as lists, NaN equals NaN."""
    if isinstance(value, tuple | list):
        return isinstance(got, list | tuple) and len(got) == len(value) and all(
            _same(g, v) for g, v in zip(got, value, strict=True))
    if isinstance(value, dict):
        return isinstance(got, dict) and got.keys() == value.keys() and all(
            _same(got[k], value[k]) for k in value)
    if isinstance(value, float) and value != value:
        return isinstance(got, float) and got != got
    return type(got) is type(value) and got == value


@FAST
@given(key=keys)
def test_get_of_any_key_never_raises_beyond_type_error(caches, key):
    for cache in caches:
        try:
            cache.get(key)
        except TypeError:
            assert not isinstance(key, str)


toml_text = st.text(alphabet=string.printable, max_size=200)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=toml_text, suffix=st.sampled_from([".toml", ".yaml"]))
def test_any_config_file_loads_or_is_a_value_error(tmp_path, text, suffix):
    path = tmp_path / f"config{suffix}"
    path.write_text(text)
    try:
        load_config(path)
    except ValueError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(section=st.sampled_from(["cache", "dns", "vulndb", "lazy"]),
       field=st.sampled_from(["ttl_seconds", "max_size", "cache_type", "nameservers", "osv_url",
                              "strategy", "preload_modules", "max_memory_mb", "timeout_seconds"]),
       value=st.one_of(st.integers(), st.floats(), st.text(max_size=10), st.booleans(),
                       st.lists(st.integers(), max_size=2)))
def test_any_setting_value_loads_or_is_a_value_error_naming_where(tmp_path, section, field, value):
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({section: {field: value}}))
    try:
        load_config(path)
    except ValueError as exc:
        assert field in str(exc) or section in str(exc) or "nameserver" in str(exc), str(exc)


class _Marker:
    """Unpickling this writes a file: the proof that pickle data was executed."""

    path = ""

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "executed"))


def test_pickle_and_forged_rows_planted_in_sqlite_are_misses(tmp_path):
    marker = tmp_path / "executed.txt"
    _Marker.path = str(marker)
    payload = pickle.dumps(_Marker())
    config = CacheConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path), signing_key="k" * 32)
    cache = Cache(config)
    cache.set("genuine", "value")
    forged = Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path)))  # no key: unsigned
    forged.set("forged", "evil")
    forged.close()
    db_path = next(tmp_path.glob("*.sqlite3"))
    with sqlite3.connect(db_path) as db:
        for key, blob in (("pickled", payload), ("random", b"\x93\x00garbage"),
                          ("header-then-pickle", b"SC\x01\x00" + payload)):
            db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                       ("default", key, blob, time.time() + 3600, len(blob), time.time()))
    for key in ("pickled", "random", "header-then-pickle", "forged"):
        assert cache.get(key, "<miss>") == "<miss>"
    assert cache.get("genuine") == "value"
    assert not marker.exists(), "a planted pickle was executed"
    stats = cache.get_stats()
    assert stats["corrupt"] == 4 and stats["errors"] >= 4
    # Corrupt rows are removed, so the next read does not pay for them again.
    with sqlite3.connect(db_path) as db:
        left = {k for (k,) in db.execute("SELECT key FROM entries")}
    assert left == {"genuine"}
    cache.close()
    # The control: the payload really would have run if anything had unpickled it.
    pickle.loads(payload)
    assert marker.read_text() == "executed"
