"""Comparisons: two campaigns' attack success rates (Newcombe's interval for a difference of proportions,
per cell and pooled, :func:`compare_trials`), and raters with one another (Cohen's kappa for two, Fleiss'
kappa for more).

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
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from exportgate.errors import ConfigError

from ._records import TrialResult
from ._stats import Z95, Observation, design_effect, observations, wilson

__all__ = ["Comparison", "ComparedRates", "Difference", "cohen_kappa", "compare_trials", "fleiss_kappa",
           "newcombe_difference", "strategy_pairs"]  # fmt: skip


class Difference(NamedTuple):
    """A difference of two rates with its 95% interval (unpacks as ``estimate, lower, upper``)."""

    estimate: float
    lower: float
    upper: float

    def excludes_zero(self) -> bool:
        return self.lower > 0 or self.upper < 0


def newcombe_difference(k1: float, n1: float, k2: float, n2: float, z: float = Z95) -> Difference:
    """The difference ``k1/n1 - k2/n2`` and its 95% interval by Newcombe's method 10 (1998).

    Each proportion gets its Wilson score interval ``(l, u)``; then, with ``d = p1 - p2``::

        lower = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)
        upper = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)

    The interval stays within [-1, 1] and behaves at 0 and N. An interval that excludes 0 means the two
    rates differ at the 5% level. The ``Difference`` returned unpacks as ``(estimate, lower, upper)``.
    Counts may be effective (non-integer) sizes, successes scaled alike, as for clustered trials.
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


Trials = Iterable[TrialResult | Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class ComparedRates:
    """One row of a comparison: A's and B's completed trials and successes, and B's rate minus A's with its
    Newcombe interval (None when either side has no completed trial). ``design_effects`` are (A, B): 1 for
    a cell, the clustering by objective for a pooled row, whose counts were divided by them."""

    label: str
    a: tuple[int, int]
    b: tuple[int, int]
    difference: Difference | None
    design_effects: tuple[float, float] = (1.0, 1.0)

    def as_dict(self) -> dict[str, Any]:
        d = self.difference
        return {
            "label": self.label, "a": {"successes": self.a[0], "trials": self.a[1]},
            "b": {"successes": self.b[0], "trials": self.b[1]},
            "difference": None if d is None else round(d.estimate, 6),
            "ci95": None if d is None else [round(d.lower, 6), round(d.upper, 6)],
            "differs": d is not None and d.excludes_zero(), "design_effects": list(self.design_effects),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Comparison:
    """B against A: per objective (cells of ``strategy_a`` in A against ``strategy_b`` in B) and pooled."""

    strategy_a: str
    strategy_b: str
    cells: tuple[ComparedRates, ...]
    pooled: ComparedRates
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"strategy_a": self.strategy_a, "strategy_b": self.strategy_b, "method": "Newcombe (1998) method 10;"
                " pooled counts divided by each side's design effect (clustering by objective)",
                "cells": [c.as_dict() for c in self.cells], "pooled": self.pooled.as_dict(),
                "only_a": list(self.only_a), "only_b": list(self.only_b)}  # fmt: skip


def compare_trials(a: Trials, b: Trials, strategy_a: str, strategy_b: str | None = None) -> Comparison:
    """B's attack success rate minus A's, for each objective both evaluated (``strategy_a``'s trials in A,
    ``strategy_b``'s, by default the same strategy, in B) and pooled over those objectives. Errored trials
    are left out on both sides, as in the statistics. The pooled interval respects clustering: each side's
    counts are divided by its design effect (trials of one objective are not independent)."""
    strategy_b = strategy_b or strategy_a
    left, right = _by_objective(a, strategy_a), _by_objective(b, strategy_b)
    both = sorted(set(left) & set(right))
    cells = tuple(_compared(o, left[o], right[o]) for o in both)
    pooled_a = [r for o in both for r in left[o]]
    pooled_b = [r for o in both for r in right[o]]
    pooled = _compared(f"pooled, {len(both)} objectives", pooled_a, pooled_b, clustered=True)
    return Comparison(strategy_a, strategy_b, cells, pooled, tuple(sorted(set(left) - set(right))),
                      tuple(sorted(set(right) - set(left))))  # fmt: skip


def _by_objective(trials: Trials, strategy: str) -> dict[str, list[Observation]]:
    groups: dict[str, list[Observation]] = defaultdict(list)
    for row in observations(trials):
        if row.strategy == strategy:
            groups[row.objective].append(row)
    return groups


def _completed(rows: Sequence[Observation]) -> tuple[int, int]:
    done = [r for r in rows if not r.errored]
    return sum(1 for r in done if r.success), len(done)


def _deff(rows: Sequence[Observation]) -> float:
    groups: dict[str, list[Observation]] = defaultdict(list)
    for row in rows:
        groups[row.objective].append(row)
    return design_effect([_completed(g) for g in groups.values()])


def _compared(label: str, a: Sequence[Observation], b: Sequence[Observation], clustered: bool = False) -> ComparedRates:
    (ka, na), (kb, nb) = _completed(a), _completed(b)
    da, db = (_deff(a), _deff(b)) if clustered else (1.0, 1.0)
    difference = newcombe_difference(kb / db, nb / db, ka / da, na / da) if na and nb else None
    return ComparedRates(label, (ka, na), (kb, nb), difference, (round(da, 6), round(db, 6)))


def strategy_pairs(
    a: Trials, b: Trials, strategy_a: str | None = None, strategy_b: str | None = None
) -> list[tuple[str, str]]:
    """Which strategy of A to compare with which of B: the two named (either alone names both), else each
    strategy both ran, else the only one each ran."""
    names_a = sorted({row.strategy for row in observations(a)})
    names_b = sorted({row.strategy for row in observations(b)})
    if strategy_a is not None or strategy_b is not None:
        x = strategy_a if strategy_a is not None else strategy_b
        y = strategy_b if strategy_b is not None else strategy_a
        for name, names, side in ((x or "", names_a, "A"), (y or "", names_b, "B")):
            if name not in names:
                raise ConfigError(f"bundle {side} has no {name!r} trials (it ran {', '.join(names) or 'none'})")
        return [(x or "", y or "")]
    shared = [n for n in names_a if n in names_b]
    if shared:
        return [(n, n) for n in shared]
    if len(names_a) == 1 and len(names_b) == 1:
        return [(names_a[0], names_b[0])]
    raise ConfigError(f"the bundles ran no strategy in common (A: {', '.join(names_a)}; B: {', '.join(names_b)});"
                      " name the strategy of each to compare", remedy=("strategy_a", "NAME"))  # fmt: skip
