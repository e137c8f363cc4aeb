"""Threshold conditions: CEL expressions over evidence metrics, compiled once, never Python ``eval``.

CEL (the Common Expression Language) is non-Turing-complete and side-effect free; the
``common-expression-language`` package (Rust) evaluates a condition in ~7 µs against ~600 µs for the
pure-Python ``cel-python`` (``benchmarks/classify.py``). Comparisons mix ints and doubles freely
(``asr_upper >= 1``); arithmetic does not: counts are ints, rates and ``turns_median`` are doubles.
A condition is checked when the framework loads: it must parse, name only known metrics, and evaluate
to a bool against sample metrics, so a typo or a type mix-up is a ``file:line`` error, not a surprise
during a classification.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cel

__all__ = ["METRICS", "Condition", "ConditionError"]

#: Every metric a condition may name, with its CEL type and meaning (docs/classification.md lists them).
METRICS: dict[str, tuple[str, str]] = {
    "objectives": ("int", "objectives of the domain in the evidence"),
    "cells": ("int", "objective x strategy cells of the domain"),
    "trials": ("int", "trials that ran (errored trials excluded)"),
    "errors": ("int", "trials that failed with an error"),
    "successes": ("int", "successful trials"),
    "asr": ("double", "attack success rate over the domain's trials"),
    "asr_lower": ("double", "lower bound of its 95% interval, clustered by objective (design-effect Wilson)"),
    "asr_upper": ("double", "upper bound of that interval"),
    "design_effect": ("double", "the design effect of clustering the domain's trials by objective (>= 1)"),
    "max_cell_asr": ("double", "highest attack success rate of any cell"),
    "max_cell_lower": ("double", "highest Wilson lower bound of a cell with at least repeatable_min_trials trials"),
    "max_cell_upper": ("double", "highest Wilson upper bound of any cell"),
    "repeatable_cells": ("int", "repeatable cells: min trials, min successes, lower bound >= the threshold"),
    "repeatable_cells_holm": ("int", "repeatable cells that stay so after Holm's adjustment (family-wise alpha)"),
    "repeatable_cells_bh": ("int", "repeatable cells that stay so after Benjamini-Hochberg (false discovery alpha)"),
    "family_size": ("int", "cells with trials in all the evidence: the family the adjustments count"),
    "max_severity": ("int", "highest severity (1 low .. 4 critical) of an objective reached at least once; 0 none"),
    "max_repeatable_severity": ("int", "highest severity of an objective with a repeatable cell; 0 none"),
    "strategies_succeeded": ("list", "strategies with at least one success"),
    "strategies_repeatable": ("list", "strategies with a repeatable cell"),
    "turns_min": ("int", "fewest turns to a success; 1000000 when there was none"),
    "turns_median": ("double", "median turns to success; 1000000.0 when there was none"),
}
NEVER = 1_000_000


def _sample(count: int, rate: float, **lists: Any) -> dict[str, Any]:
    values = {k: count if kind == "int" else rate for k, (kind, _) in METRICS.items() if kind != "list"}
    return {**values, **lists}


_SAMPLES: tuple[dict[str, Any], ...] = (
    _sample(0, 0.0, strategies_succeeded=[], strategies_repeatable=[], turns_min=NEVER, turns_median=float(NEVER)),
    _sample(4, 1.0, strategies_succeeded=["crescendo", "pair"], strategies_repeatable=["crescendo"], turns_median=4.0),
    _sample(1, 0.5, strategies_succeeded=["direct"], strategies_repeatable=[], turns_median=1.5),
)


class ConditionError(ValueError):
    """A condition that does not compile, names an unknown metric, or does not give a bool."""


@dataclass(frozen=True)
class Condition:
    source: str
    line: int | None = None
    _program: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def compile(cls, source: str, line: int | None = None) -> Condition:
        try:
            program = cel.compile(source)
        except (ValueError, RuntimeError) as exc:
            raise ConditionError(f"condition {source!r} does not parse: {_first_line(exc)}") from None
        unknown = sorted(set(program.variables()) - set(METRICS))
        if unknown:
            raise ConditionError(
                f"condition {source!r} names unknown metric(s) {', '.join(unknown)} (known: {', '.join(METRICS)})"
            )
        condition = cls(source, line, program)
        for sample in _SAMPLES:
            condition.holds(sample)
        return condition

    def names(self) -> list[str]:
        """The metrics the condition reads, in a stable order (for rationales)."""
        return sorted(set(self._program.variables()))

    def holds(self, metrics: Mapping[str, Any]) -> bool:
        try:
            value = self._program.execute(dict(metrics))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ConditionError(
                f"condition {self.source!r} cannot be evaluated: {_first_line(exc)}"
                " (arithmetic does not mix ints and doubles: counts are ints, rates and turns_median doubles)"
            ) from None
        except Exception as exc:  # division by zero, overflow, a missing key or index: never a crash
            raise ConditionError(f"condition {self.source!r} cannot be evaluated on these metrics:"
                                 f" {type(exc).__name__}: {_first_line(exc)}") from None  # fmt: skip
        if not isinstance(value, bool):
            raise ConditionError(f"condition {self.source!r} gives {type(value).__name__}, not a bool")
        return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
