"""SHA-256 of cache keys without loading OpenSSL: the interpreter's own SHA-256 when it has one.

`import hashlib` loads OpenSSL's libcrypto (~2.5 ms at start-up), which a warm CLI run that only
hashes its cache keys does not otherwise need. CPython ships its own SHA-256 (the `_sha2` module
since 3.12, `_sha256` in 3.11): same algorithm, same digests, so no key changes, and a short key
costs ~0.1 us more to hash. A build without it (some FIPS builds leave the built-in hashes out)
falls back to hashlib. For key naming only: HMAC and anything else that must follow the system's
crypto policy keep using hashlib/hmac (codec.py).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["sha256_hex"]


def _sha256_constructor() -> Callable[[bytes], Any]:
    """The built-in SHA-256 constructor when this interpreter has one, else hashlib's."""
    try:  # by name: typeshed has no stubs for these modules
        return importlib.import_module("_sha2" if sys.version_info >= (3, 12) else "_sha256").sha256
    except (ImportError, AttributeError):
        import hashlib

        return hashlib.sha256


_sha256 = _sha256_constructor()


def sha256_hex(data: bytes) -> str:
    """hashlib.sha256(data).hexdigest(), without importing hashlib where the built-in serves."""
    return _sha256(data).hexdigest()
