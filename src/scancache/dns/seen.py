"""SeenNames: "have I had this name already?" for millions of names in 16 bytes each.

A streamed run must answer each distinct name once without keeping the names: a Python set of
1,000,000 strings costs ~100 MB, which would make memory grow with the input. This keeps only a
64-bit hash per name in an open-addressing table (an array of signed 64-bit slots, at most half
full), so 1,000,000 names cost 16 MB. Two different names share a hash with probability about
n^2 / 2^65 (3e-8 for a million names); the cost of that is one name not asked, so the hash is
process-salted (Python's str hash), and a collision cannot be planted from the input.
"""

from __future__ import annotations

from array import array

__all__ = ["SeenNames"]

_EMPTY = 0


class SeenNames:
    """A set of names that stores only their hashes; add() says whether a name is new."""

    def __init__(self, capacity: int = 1024) -> None:
        size = 1024
        while size < 2 * capacity:
            size *= 2
        self._slots = array("q", bytes(8 * size))
        self._mask = size - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, name: str) -> bool:
        """Remember name; True if it was not there before."""
        value = hash(name) or 1  # 0 marks an empty slot
        slots, mask = self._slots, self._mask
        index = value & mask
        while True:
            current = slots[index]
            if current == _EMPTY:
                break
            if current == value:
                return False
            index = (index + 1) & mask
        slots[index] = value
        self._count += 1
        if 2 * self._count > mask:
            self._grow()
        return True

    def __contains__(self, name: str) -> bool:
        value = hash(name) or 1
        slots, mask = self._slots, self._mask
        index = value & mask
        while True:
            current = slots[index]
            if current == _EMPTY:
                return False
            if current == value:
                return True
            index = (index + 1) & mask

    def _grow(self) -> None:
        old = self._slots
        size = 2 * len(old)
        slots = array("q", bytes(8 * size))
        mask = size - 1
        for value in old:
            if value != _EMPTY:
                index = value & mask
                while slots[index] != _EMPTY:
                    index = (index + 1) & mask
                slots[index] = value
        self._slots, self._mask = slots, mask
