"""One body for a sync and an async twin: a generator "step" that yields each call it needs made.

The body yields a request (what to call, with what), receives the answer, or has the call's
exception thrown in at the yield for its own try/except; a sync driver makes each call blocking, an
async driver awaits it. Only the drivers differ. cache/refresh.py (get_or_compute) and
cache/hybrid.py (get, get_many) are written this way; `advance` is the step they share.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `from typing import ...`: the cache's read path imports this module
if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import Any

__all__ = ["advance"]


def advance(step: Generator[Any, Any, Any], answer: Any, error: BaseException | None
            ) -> tuple[bool, Any]:
    """Resume step with the last request's answer (or throw its exception in, for the step's own
    try/except): (False, the next request) or (True, the step's return value)."""
    try:
        return False, (step.throw(error) if error is not None else step.send(answer))
    except StopIteration as done:
        return True, done.value
