"""Statistics over trials: Wilson score intervals (exact at 0 and N) and per-cell summaries."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from ._records import TrialResult

__all__ = ["Z95", "summarize", "wilson"]

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion; exactly 0 at 0 successes and 1 at N."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError("successes must be between 0 and n")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def _cell(all_results: Sequence[TrialResult], threshold: float) -> dict[str, Any]:
    """A trial that failed with an error is no observation: it is counted apart, not as a failure."""
    results = [r for r in all_results if r.error is None]
    n = len(results)
    k = sum(r.success for r in results)
    low, high = wilson(k, n)
    turns = sorted(r.turns_to_success for r in results if r.turns_to_success is not None)
    return {
        "trials": n,
        "successes": k,
        "asr": round(k / n, 4) if n else 0.0,
        "ci95": [round(low, 4), round(high, 4)],
        "repeatable": low >= threshold,
        "turns_to_success": {
            "median": statistics.median(turns) if turns else None,
            "min": turns[0] if turns else None,
            "max": turns[-1] if turns else None,
            "iqr": _iqr(turns),
            "values": turns,
        },
        "errors": len(all_results) - n,
    }


def _iqr(values: Sequence[int]) -> float | None:
    if len(values) < 2:
        return None
    q = statistics.quantiles(values, n=4, method="inclusive")
    return round(q[2] - q[0], 3)


def summarize(results: Iterable[TrialResult], threshold: float = 0.2) -> dict[str, Any]:
    """Per (objective, strategy) cell, and roll-ups per strategy and per domain (``domains`` maps ids)."""
    cells: dict[tuple[str, str], list[TrialResult]] = defaultdict(list)
    for result in results:
        cells[(result.objective_id, result.strategy)].append(result)
    by_strategy: dict[str, list[TrialResult]] = defaultdict(list)
    for (_, strategy), rows in cells.items():
        by_strategy[strategy] += rows
    return {
        "threshold": threshold,
        "cells": [{"objective": o, "strategy": s, **_cell(rows, threshold)} for (o, s), rows in sorted(cells.items())],
        "strategies": {s: _cell(rows, threshold) for s, rows in sorted(by_strategy.items())},
    }


def by_domain(results: Iterable[TrialResult], domains: dict[str, str], threshold: float = 0.2) -> dict[str, Any]:
    groups: dict[str, list[TrialResult]] = defaultdict(list)
    for result in results:
        groups[domains.get(result.objective_id, "unknown")].append(result)
    return {d: _cell(rows, threshold) for d, rows in sorted(groups.items())}
