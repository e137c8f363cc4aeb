"""``ByIdentity``: a value is reused only for the very object it was made from, and nothing is kept for
an object whose value could not be made."""

from __future__ import annotations

import pytest

from exportgate._memo import ByIdentity


def test_only_the_same_object_gets_the_kept_value_and_a_failure_is_not_kept():
    made: list[object] = []

    def make(key: list[int]) -> int:
        made.append(key)
        if not key:
            raise ValueError("empty")
        return sum(key)

    memo: ByIdentity[list[int], int] = ByIdentity(make, size=2)
    first = [1, 2]
    assert memo(first) == 3 and memo(first) == 3 and len(made) == 1
    assert memo([1, 2]) == 3 and len(made) == 2  # equal, not the same: made again
    empty: list[int] = []
    for _ in range(2):
        with pytest.raises(ValueError, match="empty"):
            memo(empty)
    assert len(made) == 4  # the failure was tried each time
    memo([3]), memo([4])  # past the size: emptied, then kept again
    assert memo(first) == 3 and len(made) == 7
