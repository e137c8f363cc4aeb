"""Comparisons: two campaigns' attack success rates (Newcombe's interval for a difference of proportions),
and raters with one another (Cohen's kappa for two, Fleiss' kappa for more).

References:

- R. G. Newcombe, "Interval estimation for the difference between independent proportions: comparison of
  eleven methods", Statistics in Medicine 17 (1998) 873-890; method 10, the hybrid score interval built
  from each proportion's Wilson interval.
- J. Cohen, "A coefficient of agreement for nominal scales", Educational and Psychological Measurement 20
  (1960) 37-46.
- J. L. Fleiss, "Measuring nominal scale agreement among many raters", Psychological Bulletin 76 (1971)
  378-382.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from ._stats import Z95, wilson

__all__ = ["Difference", "cohen_kappa", "fleiss_kappa", "newcombe_difference"]


class Difference(NamedTuple):
    """A difference of two rates with its 95% interval (unpacks as ``estimate, lower, upper``)."""

    estimate: float
    lower: float
    upper: float

    def excludes_zero(self) -> bool:
        return self.lower > 0 or self.upper < 0


def newcombe_difference(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> Difference:
    """The difference ``k1/n1 - k2/n2`` and its 95% interval by Newcombe's method 10 (1998).

    Each proportion gets its Wilson score interval ``(l, u)``; then, with ``d = p1 - p2``::

        lower = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)
        upper = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)

    The interval stays within [-1, 1] and behaves at 0 and N. An interval that excludes 0 means the two
    rates differ at the 5% level. The ``Difference`` returned unpacks as ``(estimate, lower, upper)``.
    """
    for k, n in ((k1, n1), (k2, n2)):
        if n <= 0 or not 0 <= k <= n:
            raise ValueError("each rate needs n >= 1 and 0 <= successes <= n")
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Difference(d, max(-1.0, lower), min(1.0, upper))


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> tuple[float | None, float]:
    """Cohen's kappa of two raters' yes/no ratings of the same items, and their observed agreement.

    Kappa is None when it is undefined: both raters gave one and the same rating to every item, so chance
    agreement is 1.
    """
    n = len(a)
    if n == 0 or len(b) != n:
        raise ValueError("need two ratings of each item, at least one item")
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    a_yes, b_yes = sum(a) / n, sum(b) / n
    chance = a_yes * b_yes + (1 - a_yes) * (1 - b_yes)
    if chance >= 1.0:
        return None, observed
    return (observed - chance) / (1 - chance), observed


def fleiss_kappa(table: Sequence[Sequence[int]]) -> tuple[float | None, float]:
    """Fleiss' kappa from a table of counts (one row per item, one column per category, each row summing to
    the same number of raters m >= 2), and the mean observed agreement P-bar.

    Kappa is None when it is undefined (every rating in a single category, so expected agreement is 1).
    """
    if not table:
        raise ValueError("need at least one item")
    raters = sum(table[0])
    if raters < 2 or any(sum(row) != raters or min(row) < 0 for row in table):
        raise ValueError("every item needs the same number of ratings, at least two")
    items = len(table)
    pairs = raters * (raters - 1)
    observed = sum(sum(c * (c - 1) for c in row) / pairs for row in table) / items
    shares = [sum(row[j] for row in table) / (items * raters) for j in range(len(table[0]))]
    expected = sum(p * p for p in shares)
    if expected >= 1.0:
        return None, observed
    return (observed - expected) / (1 - expected), observed
