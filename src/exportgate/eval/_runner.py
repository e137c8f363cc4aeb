"""The campaign runner: objectives x strategies x N independent trials, concurrently, checkpointed."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from exportgate.errors import ExportgateError

from ._objectives import Objective
from ._records import TrialAborted, TrialResult
from ._scoring import Scorer
from ._store import CampaignStore
from ._strategies import Strategy
from ._targets import Target, comparable

__all__ = ["Campaign", "trial_seed"]

Progress = Callable[[TrialResult], None]


def trial_seed(seed: int, objective: str, strategy: str, trial: int) -> int:
    """Each trial's own seed: distinct per cell and index, the same on every run with the same seed."""
    digest = hashlib.sha256(f"{seed}\0{objective}\0{strategy}\0{trial}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass
class Campaign:
    target: Target
    objectives: Sequence[Objective]
    strategies: Sequence[Strategy]
    trials: int = 20
    seed: int = 0
    concurrency: int = 16
    scorer: Scorer = field(default_factory=Scorer)

    def __post_init__(self) -> None:
        for objective in self.objectives:
            self.scorer.check(objective)

    def config(self) -> dict[str, Any]:
        """What makes two runs comparable (and a checkpoint resumable): everything but the date."""
        return {
            "target": comparable(self.target),
            "objectives": [{"id": o.id, "sha256": o.sha256()} for o in self.objectives],
            "strategies": [{"name": s.name, "settings": s.settings()} for s in self.strategies],
            "trials": self.trials,
            "seed": self.seed,
            "scorer": self.scorer.config(),
        }

    def plan(self) -> list[tuple[Objective, Strategy, int]]:
        return [(o, s, i) for o in self.objectives for s in self.strategies for i in range(self.trials)]

    async def run(self, store: CampaignStore | None = None, progress: Progress | None = None) -> list[TrialResult]:
        """Every planned trial's result, in plan order; finished trials in ``store`` are not run again."""
        done = store.done() if store is not None else {}
        gate = asyncio.Semaphore(self.concurrency)

        async def one(objective: Objective, strategy: Strategy, index: int) -> TrialResult:
            key = (objective.id, strategy.name, index)
            if key in done:
                return done[key]
            seed = trial_seed(self.seed, objective.id, strategy.name, index)
            async with gate:
                try:
                    result = await strategy.run(objective, self.target, self.scorer, index, seed)
                except TrialAborted as exc:  # failed midway: keep the conversation so far
                    result = exc.partial
                except ExportgateError as exc:
                    result = TrialResult(objective.id, strategy.name, index, seed, False, 0, None, 0, 0, 0, 0,
                                         error=exc.message)  # fmt: skip
            if store is not None:
                store.save(result)
            if progress is not None:
                progress(result)
            return result

        return list(await asyncio.gather(*(one(o, s, i) for o, s, i in self.plan())))
