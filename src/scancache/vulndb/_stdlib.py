"""json.dumps for a warm audit, without the json package.

`json_dumps` is json.dumps from the C encoder json.dumps itself uses, built once (dumps builds one
per call, ~3 us, and a 300-pin report has 1,250 items) and without importing the json package
(its decoder and scanner, ~1.5 ms at start-up, which writing JSON never uses). It falls back to
json's own encoder where the C part is missing, so the text is the same either way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["json_dumps"]

_DUMPS: dict[bool, Callable[[Any], str]] = {}


def json_dumps(compact: bool = False) -> Callable[[Any], str]:
    """json.dumps with its default settings (compact: with separators (",", ":")), as a function
    of the object alone; the same text json.dumps gives."""
    encode = _DUMPS.get(compact)
    if encode is None:
        encode = _DUMPS[compact] = _make_dumps(compact)
    return encode


def _make_dumps(compact: bool) -> Callable[[Any], str]:
    separators = (":", ",") if compact else (": ", ", ")
    try:  # by name: typeshed has no stubs for json's C accelerator
        accelerator = importlib.import_module("_json")
        make_encoder, quote = accelerator.make_encoder, accelerator.encode_basestring_ascii
        # json.dumps' arguments (json.encoder calls make_encoder c_make_encoder) but the
        # circular-reference markers (what is encoded here is a tree its caller built): no indent,
        # the separators, keys unsorted, none skipped, NaN allowed; an object of no JSON type is
        # the TypeError JSONEncoder.default raises.
        encoder = make_encoder(None, _not_serializable, quote, None, *separators, False, False, True)
    except (ImportError, AttributeError, TypeError):  # no accelerator, or a signature it no longer takes
        import json

        return json.JSONEncoder(separators=separators[::-1]).encode

    def dumps(obj: Any) -> str:
        return "".join(encoder(obj, 0))

    return dumps


def _not_serializable(obj: Any) -> Any:
    raise TypeError(f"Object of type {obj.__class__.__name__} is not JSON serializable")
