"""Token and cost accounting: what a campaign spent at its target, in tokens and in a currency."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from exportgate.errors import ConfigError

from ._records import TrialResult

__all__ = ["Pricing", "usage"]

_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class Pricing:
    """A target's list prices per million tokens (prompt and completion), in an ISO 4217 currency."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not (self.input_per_mtok >= 0 and self.output_per_mtok >= 0):  # also refuses NaN
            raise ConfigError("token prices must be zero or more")
        if not _CURRENCY.fullmatch(self.currency):
            raise ConfigError(f"currency {self.currency!r} is not an ISO 4217 code such as USD or EUR")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1_000_000

    def config(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "input_per_mtok": self.input_per_mtok,
            "output_per_mtok": self.output_per_mtok,
        }


Trial = TrialResult | Mapping[str, Any]


def _field(trial: Trial, name: str) -> Any:
    return trial[name] if isinstance(trial, Mapping) else getattr(trial, name)


def _totals(rows: list[Trial], pricing: Pricing | None) -> dict[str, Any]:
    prompt = sum(int(_field(r, "prompt_tokens")) for r in rows)
    completion = sum(int(_field(r, "completion_tokens")) for r in rows)
    successes = sum(bool(_field(r, "success")) and not _field(r, "error") for r in rows)
    totals: dict[str, Any] = {
        "target_calls": sum(int(_field(r, "turns")) for r in rows),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens_per_success": round((prompt + completion) / successes, 1) if successes else None,
    }
    if pricing is not None:
        cost = pricing.cost(prompt, completion)
        totals["cost"] = round(cost, 6)
        totals["cost_per_success"] = round(cost / successes, 6) if successes else None
    return totals


def usage(results: Iterable[Trial], pricing: Pricing | None = None) -> dict[str, Any]:
    """Target calls, tokens and (given prices) cost: in total and per strategy, with the spend per success.

    Only the target's tokens are counted; a judge's or attacker's are billed at their own endpoints.
    """
    rows = list(results)
    by_strategy: dict[str, list[Trial]] = defaultdict(list)
    for result in rows:
        by_strategy[str(_field(result, "strategy"))].append(result)
    return {
        "scope": "target",
        "pricing": pricing.config() if pricing is not None else None,
        "total": _totals(rows, pricing),
        "strategies": {name: _totals(group, pricing) for name, group in sorted(by_strategy.items())},
    }
