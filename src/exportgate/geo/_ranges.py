"""A sorted, non-overlapping table of integer ranges with bisect lookup."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Generic, TypeVar

__all__ = ["RangeTable"]

T = TypeVar("T")


class RangeTable(Generic[T]):
    """Maps integer ranges to labels. Earlier ranges win over later overlapping ones.

    Starts and ends are plain ``list[int]``: bisect over a list is several
    times faster than over an ``array`` (whose items are boxed per access).
    """

    __slots__ = ("_ends", "_labels", "_starts")

    def __init__(self, ranges: Iterable[tuple[int, int, T]]) -> None:
        starts: list[int] = []
        ends: list[int] = []
        labels: list[T] = []
        for start, end, label in _without_overlaps(ranges):
            starts.append(start)
            ends.append(end)
            labels.append(label)
        self._starts, self._ends, self._labels = starts, ends, labels

    def find(self, value: int) -> T | None:
        index = bisect.bisect_right(self._starts, value) - 1
        if index >= 0 and value <= self._ends[index]:
            return self._labels[index]
        return None

    def columns(self) -> tuple[list[int], list[int], list[T]]:
        """(starts, ends, labels) for callers that inline the bisect."""
        return self._starts, self._ends, self._labels

    def blocks16(self) -> list[T | tuple[int, int] | None]:
        """An index of the IPv4 space by /16: per block, the label when one
        range (or none) covers all of it, else the (lo, hi) slice of the
        table to bisect. Most blocks are uniform, so most lookups skip the
        bisect entirely. Built in one pass over the ranges."""
        size = 1 << 16
        first: list[int] = [-1] * size
        last: list[int] = [-1] * size
        covered: list[bool] = [False] * size
        for index, (start, end) in enumerate(zip(self._starts, self._ends, strict=True)):
            for block in range(start >> 16, min(end >> 16, size - 1) + 1):
                if first[block] < 0:
                    first[block] = index
                last[block] = index
                covered[block] = start <= block << 16 and end >= (block << 16 | 0xFFFF)
        blocks: list[T | tuple[int, int] | None] = []
        for block in range(size):
            if first[block] < 0:
                blocks.append(None)
            elif first[block] == last[block] and covered[block]:
                blocks.append(self._labels[first[block]])
            else:
                blocks.append((first[block], last[block] + 1))
        return blocks

    def __len__(self) -> int:
        return len(self._starts)


def _without_overlaps(ranges: Iterable[tuple[int, int, T]]) -> list[tuple[int, int, T]]:
    """Keep ranges in the order given, dropping any that overlaps one already kept."""
    starts: list[int] = []
    kept: list[tuple[int, int, T]] = []
    for start, end, label in ranges:
        if end < start:
            continue
        index = bisect.bisect_right(starts, start)
        if index > 0 and kept[index - 1][1] >= start:
            continue
        if index < len(kept) and kept[index][0] <= end:
            continue
        starts.insert(index, start)
        kept.insert(index, (start, end, label))
    return kept
