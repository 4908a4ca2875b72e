"""threading's Lock and local, and weakref's WeakSet and ref, without importing threading or weakref.

`import threading` and `import weakref` cost ~5.6M instructions together (~1.5% of a warm CLI
audit), yet the cache's read path uses only four names from them, each the C (or small Python)
implementation those modules re-export themselves: threading.Lock is _thread.allocate_lock,
threading.local is _thread._local, weakref.WeakSet is _weakrefset.WeakSet, weakref.ref is
_weakref.ref. The same objects, so behaviour is the same. Anything else (Event, Condition, Thread)
is imported from threading where it is used.
"""

from __future__ import annotations

from _thread import allocate_lock as Lock
from _weakref import ref
from _weakrefset import WeakSet

try:
    from _thread import _local as local
except ImportError:  # pragma: no cover - as threading itself falls back (a build without it)
    from threading import local

__all__ = ["Lock", "WeakSet", "local", "ref"]
