"""Cache keys for function calls: the same arguments give the same key in every process.

A key is `{module}.{qualname}:{digest}`, where digest is a BLAKE2b hash of a canonical, type-tagged
byte encoding of the bound arguments (defaults applied, so f(1) and f(x=1) share a key). Nothing here
uses hash() (salted per process) or repr() of arbitrary objects (memory addresses): an argument whose
type has no stable encoding is a TypeError naming the parameter, at call time, rather than a key
that silently differs between workers or collides between distinct calls.

Encodable: None, bool, int, float, str, bytes, list, tuple, dict, set, frozenset, Enum members,
classes, datetime/date/time, Decimal, UUID, pure paths, and any object with a `__cache_key__()`
method returning an encodable value. Types are part of the encoding: 1, 1.0 and True differ.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import inspect
import string
import struct
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

__all__ = ["InstanceKey", "KeyBuilder", "canonical_bytes", "function_name"]

_FORMAT_VERSION = b"k1"
_DIGEST_BYTES = 16  # 128 bits: collisions need ~2**64 distinct calls of one function
_MAX_DEPTH = 64
_MEMO_TYPES = frozenset({str, int, bytes, type(None)})
_MEMO_SIZE = 4096
_NO_MEMO = object()  # deeper nesting (or a self-referencing list) is refused, not a RecursionError
#: Characters a templated key leaves unescaped in an argument's text (urllib.parse.quote's safe set).
_TEMPLATE_VALUE_CHARS = frozenset(string.ascii_letters + string.digits + "_.-~%")


def _tagged(tag: bytes, payload: bytes) -> bytes:
    """tag, payload length, payload: no two different values share an encoding."""
    return tag + len(payload).to_bytes(8, "big") + payload


def _encode(value: Any, depth: int) -> bytes:
    """The canonical bytes of value; TypeError for what has no stable encoding."""
    if depth > _MAX_DEPTH:
        raise TypeError(f"argument nested deeper than {_MAX_DEPTH} levels (or self-referencing)")
    kind = type(value)
    if value is None:
        return b"N"
    if kind is bool:
        return b"T" if value else b"F"
    if kind is str:
        return _tagged(b"s", value.encode("utf-8", "surrogatepass"))
    if kind is int:
        return _tagged(b"i", str(value).encode())
    if kind is float:
        return b"f" + struct.pack(">d", value)  # exact; every NaN payload is its own value
    if kind is bytes:
        return _tagged(b"b", value)
    if kind is list or kind is tuple:
        tag = b"l" if kind is list else b"t"
        return _tagged(tag, b"".join(_encode(item, depth + 1) for item in value))
    if kind is dict:
        pairs = sorted((_encode(k, depth + 1), _encode(v, depth + 1)) for k, v in value.items())
        return _tagged(b"d", b"".join(k + v for k, v in pairs))
    if kind is set or kind is frozenset:
        return _tagged(b"S", b"".join(sorted(_encode(item, depth + 1) for item in value)))
    return _encode_other(value, depth)


#: Types whose subclasses are keyed as the base type's value (bool before int: it is one).
_BUILTIN_BASES: tuple[type[Any], ...] = (bool, int, float, str, bytes, list, tuple, dict, set, frozenset)


def _encode_other(value: Any, depth: int) -> bytes:
    """Encodings of the less common types (and subclasses of the common ones)."""
    if isinstance(value, enum.Enum):
        return _tagged(b"e", (function_name(type(value)) + "." + value.name).encode())
    if isinstance(value, type):
        return _tagged(b"c", function_name(value).encode())
    method = getattr(type(value), "__cache_key__", None)
    if method is not None:
        return _tagged(b"o", function_name(type(value)).encode() + b"\0" + _encode(method(value), depth + 1))
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return _tagged(b"D", (type(value).__name__ + value.isoformat()).encode())
    if isinstance(value, datetime.timedelta):
        return _tagged(b"R", f"{value.days},{value.seconds},{value.microseconds}".encode())
    if isinstance(value, Decimal):
        return _tagged(b"m", str(value).encode())
    if isinstance(value, uuid.UUID):
        return _tagged(b"u", value.bytes)
    if isinstance(value, PurePath):
        return _tagged(b"p", (type(value).__name__ + "\0" + str(value)).encode("utf-8", "surrogatepass"))
    for base in _BUILTIN_BASES:
        if isinstance(value, base):  # a subclass (str enum mixins are handled above): its base's value
            return _encode(base(value), depth)
    raise TypeError(
        f"{type(value).__module__}.{type(value).__qualname__} has no stable cache-key encoding: pass "
        "JSON-like values, or give the type a __cache_key__() method returning one"
    )


def canonical_bytes(value: Any) -> bytes:
    """The canonical byte encoding of value (the same in every process); TypeError if it has none."""
    return _FORMAT_VERSION + _encode(value, 0)


def function_name(obj: Any) -> str:
    """`module.qualname` of a function or class: stable across processes running the same code."""
    return f"{getattr(obj, '__module__', None) or '?'}.{obj.__qualname__}"


def _template_fields(template: str, parameters: list[str]) -> list[str]:
    """The argument names a key template uses; ValueError when it could produce ambiguous keys."""
    fields: list[str] = []
    previous_was_field = False
    for literal, field, spec, conversion in string.Formatter().parse(template):
        if literal and set(literal) <= _TEMPLATE_VALUE_CHARS and previous_was_field and field is not None:
            raise ValueError(f"key template {template!r}: the text between two fields must contain a "
                             "separator such as ':' or '/' (values could run into each other)")
        if field is None:
            continue
        if not literal and previous_was_field:
            raise ValueError(f"key template {template!r}: two fields without a separator between them")
        if spec or conversion or field not in parameters:
            raise ValueError(f"key template {template!r}: {{{field}}} must name a parameter, "
                             "without attributes, indexes, conversions or format specs")
        fields.append(field)
        previous_was_field = True
    return fields


def _template_text(name: str, value: Any) -> str:
    """An argument's text in a templated key, escaped so it cannot contain the template's separators."""
    if type(value) is str:
        return quote(value, safe="")
    if value is None or type(value) in (bool, int, float) or isinstance(value, enum.Enum):
        return quote(str(value.value if isinstance(value, enum.Enum) else value), safe="")
    raise TypeError(f"argument {name!r} of type {type(value).__name__} cannot appear in a key template "
                    "(use str, int, float, bool, None or an Enum)")


class InstanceKey:
    """Stands for a method's self (or cls) in its key: the class's name, plus the instance's own
    `__cache_key__()` when its class defines one. So by default every instance of a class shares
    entries (as cachetools' methodkey does); define __cache_key__ when instances compute different
    things (another upstream, other credentials)."""

    __slots__ = ("instance",)

    def __init__(self, instance: Any) -> None:
        self.instance = instance

    def __cache_key__(self) -> Any:
        instance = self.instance
        if isinstance(instance, type):
            return ["class", function_name(instance)]
        own = getattr(type(instance), "__cache_key__", None)
        return [function_name(type(instance)), None if own is None else own(instance)]


class KeyBuilder:
    """Builds the cache key of one function's calls.

    key: None (the canonical digest of every argument), a template such as "whois:{domain}" (the
    named arguments' text, escaped; other arguments do not count), or a callable taking the call's
    arguments and returning the key (a str). A method's self arrives as an InstanceKey.
    """

    def __init__(self, fn: Callable[..., Any], key: str | Callable[..., str] | None, name: str | None
                 ) -> None:
        qualname = getattr(fn, "__qualname__", "")
        if name is None and key is None and ("<locals>" in qualname or "<lambda>" in qualname):
            # Two closures from one factory share a qualname but may compute different things.
            raise ValueError(f"{qualname}: a function defined inside another (or a lambda) needs "
                             "name= or key= so its cache keys cannot collide with a sibling closure's")
        self.prefix = (name or function_name(fn)) + ":"
        self.signature = inspect.signature(fn)
        params = list(self.signature.parameters.values())
        self.names = [p.name for p in params]
        # The fast path: positional calls that fill every parameter (no defaults, no *args/**kwargs).
        simple = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        self.positional_count = len(params) if simple else -1
        self.key = key
        self.fields = _template_fields(key, self.names) if isinstance(key, str) else None
        # Keys of recent all-str/int/bytes/None positional calls: within that set of types, == implies
        # the same types, so a dict lookup is exact (1 == True == 1.0 is why bool and float stay out).
        self._recent: dict[tuple[Any, ...], str] = {}

    def bound(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """{parameter: value} with defaults applied; TypeError when the call does not fit."""
        if not kwargs and len(args) == self.positional_count:
            return dict(zip(self.names, args, strict=True))
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments

    def build(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The key for a call with these arguments (all of them, self included when bound)."""
        if not kwargs and self.key is None:
            recent = self._recent.get(args) if _MEMO_TYPES.issuperset(map(type, args)) else _NO_MEMO
            if recent is not None and recent is not _NO_MEMO:
                return recent  # type: ignore[return-value]  # the memo holds keys (str)
        else:
            recent = _NO_MEMO
        made = self._build(args, kwargs)
        if recent is None:  # memoizable but not memoized yet
            if len(self._recent) >= _MEMO_SIZE:
                self._recent.clear()
            self._recent[args] = made
        return made

    def _build(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        key = self.key
        if callable(key):
            if args and type(args[0]) is InstanceKey:
                args = (args[0].instance, *args[1:])
            made = key(*args, **kwargs)
            if type(made) is not str:
                raise TypeError(f"key function returned {type(made).__name__}, expected str")
            return made
        arguments = self.bound(args, kwargs)
        if self.fields is not None:
            assert isinstance(key, str)
            return key.format_map({f: _template_text(f, arguments[f]) for f in self.fields})
        try:
            encoded = [_tagged(b"a", name.encode()) + _encode(value, 0) for name, value in arguments.items()]
        except TypeError as exc:
            raise TypeError(f"{self.prefix[:-1]}: argument cannot be part of a cache key: {exc}") from None
        digest = hashlib.blake2b(_FORMAT_VERSION + b"".join(encoded), digest_size=_DIGEST_BYTES)
        return self.prefix + digest.hexdigest()
