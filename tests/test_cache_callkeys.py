"""Keys of decorated calls: stable across processes, equal for equal arguments, distinct otherwise."""

from __future__ import annotations

import copy
import datetime
import enum
import json
import os
import struct
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scancache.cache.callkeys import KeyBuilder, canonical_bytes

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
           | st.binary())
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=4).map(tuple)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (1, 1.0 and True are not the same)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)  # 0.0 and -0.0 differ
    return bool(a == b)


def probe(query: Any, version: int = 1) -> None:
    """A module-level function: its keys are what the tests compare."""


KEYS = KeyBuilder(probe, None, None)


def key_of(*args: Any, **kwargs: Any) -> str:
    return KEYS.build(args, kwargs)


@settings(max_examples=300, deadline=None)
@given(values)
def test_equal_arguments_give_equal_keys(value):
    assert key_of(value) == key_of(copy.deepcopy(value))
    assert key_of(value) == key_of(query=value) == key_of(value, 1) == key_of(value, version=1)


@settings(max_examples=300, deadline=None)
@given(values, values)
def test_distinct_arguments_give_distinct_keys(a, b):
    assert (key_of(a) == key_of(b)) == same(a, b)


@given(st.dictionaries(st.text(max_size=5), scalars, max_size=6))
def test_dict_order_does_not_change_the_key(mapping):
    reordered = dict(reversed(list(mapping.items())))
    assert key_of(mapping) == key_of(reordered)


def test_types_and_nesting_are_part_of_the_key():
    distinct = [1, 1.0, True, "1", b"1", [1], (1,), {1}, [[1]], ["a", "b"], ["ab"], {"a": 1}, [("a", 1)],
                0.0, -0.0, None, "", b"", [], ()]
    keys = {key_of(v) for v in distinct}
    assert len(keys) == len(distinct)


class Colour(enum.Enum):
    RED = 1


class Target:
    def __init__(self, host: str) -> None:
        self.host = host

    def __cache_key__(self) -> Any:
        return self.host


def test_richer_types_have_stable_encodings():
    for value in (Colour.RED, datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4),
                  Decimal("1.10"), uuid.UUID(int=5), PurePosixPath("/a/b"), Target("x"), frozenset({1, 2}),
                  datetime.timedelta(seconds=3), Target):
        assert canonical_bytes(value) == canonical_bytes(copy.deepcopy(value))
    assert key_of(Target("a")) != key_of(Target("b"))
    assert key_of(Decimal("1.10")) != key_of(Decimal("1.1"))  # str(Decimal) keeps the exponent


def test_an_object_without_a_stable_encoding_is_a_type_error_naming_it():
    class Opaque:
        pass

    with pytest.raises(TypeError, match=r"Opaque.*no stable cache-key encoding"):
        key_of(Opaque())
    with pytest.raises(TypeError, match="no stable"):
        key_of({"nested": [object()]})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(TypeError, match="deeper"):
        key_of(loop)


_CHILD = """
import json, sys
from scancache.cache.callkeys import KeyBuilder
sys.path.insert(0, sys.argv[1])
from test_cache_callkeys import SAMPLES, probe
keys = KeyBuilder(probe, None, None)
print(json.dumps([keys.build((v,), {}) for v in SAMPLES]))
"""
SAMPLES = [None, 3, 2.5, "example.com", b"\x00", ["a", {"b": (1, 2.0)}], {"z": 1, "a": [True, None]},
           {frozenset({"x", "y", "z"})}, Colour.RED]


def test_keys_are_the_same_in_other_processes_with_other_hash_seeds():
    here = [KEYS.build((v,), {}) for v in SAMPLES]
    tests_dir = os.path.dirname(__file__)
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", _CHILD, tests_dir], env=env, capture_output=True,
                             text=True, timeout=60, check=True)
        assert json.loads(out.stdout) == here


def test_key_names_the_function_and_can_be_renamed():
    assert key_of("x").startswith("tests.test_cache_callkeys.probe:") or key_of("x").startswith(
        "test_cache_callkeys.probe:")
    assert KeyBuilder(probe, None, "whois").build(("x",), {}).startswith("whois:")


def test_closures_and_lambdas_need_a_name():
    def inner(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="name= or key="):
        KeyBuilder(inner, None, None)
    with pytest.raises(ValueError, match="name= or key="):
        KeyBuilder(lambda x: x, None, None)
    assert KeyBuilder(inner, None, "inner").build((1,), {}).startswith("inner:")


def lookup(domain: str, rdtype: str = "A", timeout: float = 1.0) -> None:
    """Template keys: a readable key from chosen arguments."""


def test_template_keys_escape_values_so_they_cannot_collide():
    keys = KeyBuilder(lookup, "dns:{domain}:{rdtype}", None)
    assert keys.build(("example.com",), {}) == "dns:example.com:A"
    assert keys.build(("example.com", "AAAA", 5.0), {}) == "dns:example.com:AAAA"  # timeout not in key
    assert keys.build(("a:b", "c"), {}) != keys.build(("a", "b:c"), {})
    with pytest.raises(TypeError, match="cannot appear in a key template"):
        keys.build((["a"],), {})


@pytest.mark.parametrize("template", ["dns:{domain}{rdtype}", "dns:{domain}.{rdtype}", "x:{nope}",
                                      "x:{domain.upper}", "x:{domain!r}", "x:{domain:>5}"])
def test_ambiguous_or_unsafe_templates_are_refused_at_decoration(template):
    with pytest.raises(ValueError, match="key template"):
        KeyBuilder(lookup, template, None)
