"""What is computed from an object, kept for as long as that very object is the one asked about.

The gateway hands the same objects to every request that shares them (the subject of a cached key, the
decision of an allowed model), so the parts of a record or a log line that come from one are encoded
once. Kept by identity with the object itself (an id is never reused while it is kept); emptied when
full.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["ByIdentity"]

K = TypeVar("K")
V = TypeVar("V")


class ByIdentity(Generic[K, V]):
    def __init__(self, make: Callable[[K], V], size: int = 4096) -> None:
        self._make, self._size = make, size
        self._kept: dict[int, tuple[K, V]] = {}

    def __call__(self, key: K) -> V:
        kept = self._kept.get(id(key))
        if kept is not None and kept[0] is key:
            return kept[1]
        value = self._make(key)  # raises for what cannot be made: nothing is kept then
        if len(self._kept) >= self._size:
            self._kept.clear()
        self._kept[id(key)] = (key, value)
        return value
