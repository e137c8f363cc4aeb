"""Relaxing a tier needs stronger evidence than raising it: evidence gathered after the previous
classification, signed, covering at least the same objectives (same text), strategies (settings at
least as demanding) and trials per cell. :func:`shortfalls` says what is missing, in words."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ._evidence import Evidence, parse_time

__all__ = ["shortfalls"]


def shortfalls(previous: dict[str, Any], evidence: Sequence[Evidence]) -> list[str]:
    """Everything the new evidence lacks compared with ``previous`` (a classification record)."""
    missing: list[str] = []
    since = parse_time(previous["created"])
    missing += [f"{e.path} was gathered before the previous classification ({previous['created']})"
                for e in evidence if e.created <= since]  # fmt: skip
    missing += [f"{e.path} is not signed" for e in evidence if not e.signed]
    old, new = _pooled([e["coverage"] for e in previous["evidence"]]), _pooled([e.coverage() for e in evidence])
    for objective, digest in sorted(old["objectives"].items()):
        if objective not in new["objectives"]:
            missing.append(f"objective {objective} is not covered")
        elif new["objectives"][objective] != digest:
            missing.append(f"objective {objective} differs from the one evaluated before")
    for strategy in old["strategies"]:
        if not any(_at_least(candidate, strategy) for candidate in new["strategies"]):
            missing.append(f"strategy {strategy['name']} ({_settings(strategy['settings'])}) is not covered")
    short = [f"{cell} {new['cells'].get(cell, 0)} < {trials}"
             for cell, trials in sorted(old["cells"].items()) if new["cells"].get(cell, 0) < trials]  # fmt: skip
    if short:
        more = f" and {len(short) - 3} more" if len(short) > 3 else ""
        listed = ", ".join(short[:3])
        missing.append(f"{len(short)} objective/strategy cell(s) ran fewer trials than before ({listed}{more})")
    return missing


def _pooled(coverages: Sequence[dict[str, Any]]) -> dict[str, Any]:
    objectives: dict[str, str] = {}
    strategies: list[dict[str, Any]] = []
    cells: Counter[str] = Counter()
    for coverage in coverages:
        objectives.update(coverage["objectives"])
        strategies += coverage["strategies"]
        cells.update(coverage["cells"])
    return {"objectives": objectives, "strategies": strategies, "cells": cells}


def _at_least(candidate: dict[str, Any], required: dict[str, Any]) -> bool:
    """Same strategy, every setting equal, or for numbers (turn and backtrack limits) at least as large."""
    if candidate["name"] != required["name"]:
        return False
    have = candidate["settings"]
    for key, value in required["settings"].items():
        if key not in have:
            return False
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and isinstance(have[key], int | float) and not isinstance(have[key], bool):
            if have[key] < value:
                return False
        elif have[key] != value:
            return False
    return True


def _settings(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(settings.items())) or "none"
