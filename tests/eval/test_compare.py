"""Newcombe's interval for a difference of two rates (method 10) against the published values, and its
properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exportgate.eval import newcombe_difference


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2", "lower", "upper"),
    [  # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0),
        (10, 10, 0, 10, 0.6075, 1.0),
    ],
)
def test_newcombe_published_values(k1: int, n1: int, k2: int, n2: int, lower: float, upper: float):
    difference = newcombe_difference(k1, n1, k2, n2)
    assert difference.estimate == pytest.approx(k1 / n1 - k2 / n2)
    assert difference.lower == pytest.approx(lower, abs=1e-4)
    assert difference.upper == pytest.approx(upper, abs=1e-4)


counts = st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@given(counts, counts)
def test_the_interval_holds_the_estimate_and_mirrors(first: tuple[int, int], second: tuple[int, int]):
    (k1, n1), (k2, n2) = first, second
    d, low, high = newcombe_difference(k1, n1, k2, n2)
    assert -1.0 <= low <= d <= high <= 1.0
    mirrored = newcombe_difference(k2, n2, k1, n1)
    assert mirrored.lower == pytest.approx(-high) and mirrored.upper == pytest.approx(-low)
    assert newcombe_difference(k1, n1, k2, n2).excludes_zero() == (low > 0 or high < 0)


@pytest.mark.parametrize("bad", [(1, 0, 1, 1), (2, 1, 0, 1), (-1, 3, 0, 1)])
def test_bad_counts_are_refused(bad: tuple[int, int, int, int]):
    with pytest.raises(ValueError):
        newcombe_difference(*bad)
