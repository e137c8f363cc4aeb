"""Records shared by every evaluation part (below targets, strategies, scorers and the runner)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exportgate.errors import ExportgateError

__all__ = ["Message", "TargetReply", "TrialAborted", "TrialResult", "TurnScore", "Verdict"]

#: One message of a conversation: (role, text), role in system | user | assistant.
Message = tuple[str, str]


@dataclass(frozen=True, slots=True)
class TargetReply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """One judge's graded verdict on one reply: a score in [0, 1] and the judge's reason."""

    score: float
    rationale: str

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "rationale": self.rationale}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(float(data["score"]), str(data["rationale"]))


@dataclass(frozen=True, slots=True)
class TurnScore:
    """How one reply of a trial was scored.

    ``turn`` is the target call (1-based); ``method`` is ``marker``, ``regex``, ``refusal`` (a clear refusal,
    short-cut without a judge) or ``judge``; ``score`` the combined score in [0, 1]; ``judges`` each judge's
    score, in the order of the scorer's judges (empty unless judged). No text: goals and replies stay in the
    transcript only.
    """

    turn: int
    method: str
    score: float
    judges: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"turn": self.turn, "method": self.method, "score": self.score, "judges": list(self.judges)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnScore:
        judges = tuple(float(s) for s in data.get("judges", ()))
        return cls(int(data["turn"]), str(data["method"]), float(data["score"]), judges)


@dataclass(frozen=True, slots=True)
class TrialResult:
    """One independent multi-turn trial of one strategy against one objective.

    ``score`` is the combined score of the deciding reply (the successful one, else the highest-scored; None
    when no reply was scored); ``verdicts`` each judge's score and rationale on that reply (empty when no
    judge was asked); ``turn_scores`` how every reply was scored. Records written before these fields
    existed load with their defaults.
    """

    objective_id: str
    strategy: str
    trial: int
    seed: int
    success: bool
    turns: int  # target calls made
    turns_to_success: int | None
    backtracks: int
    refusals: int
    prompt_tokens: int
    completion_tokens: int
    transcript: tuple[Message, ...] = field(default=())
    error: str | None = None
    score: float | None = None
    verdicts: tuple[Verdict, ...] = field(default=())
    turn_scores: tuple[TurnScore, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "objective_id": self.objective_id,
            "strategy": self.strategy,
            "trial": self.trial,
            "seed": self.seed,
            "success": self.success,
            "turns": self.turns,
            "turns_to_success": self.turns_to_success,
            "backtracks": self.backtracks,
            "refusals": self.refusals,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "transcript": [list(m) for m in self.transcript],
            "error": self.error,
            "score": self.score,
            "verdicts": [v.as_dict() for v in self.verdicts],
            "turn_scores": [t.as_dict() for t in self.turn_scores],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialResult:
        values = dict(data)
        values["transcript"] = tuple((str(r), str(t)) for r, t in values.get("transcript", ()))
        values["verdicts"] = tuple(Verdict.from_dict(v) for v in values.get("verdicts", ()))
        values["turn_scores"] = tuple(TurnScore.from_dict(t) for t in values.get("turn_scores", ()))
        return cls(**values)


class TrialAborted(ExportgateError):
    """A trial that failed midway (a target, judge or attacker error): ``partial`` is the trial so far, with
    its transcript, counts and ``error`` set, so the runner keeps what happened instead of an empty record."""

    code = "trial_aborted"

    def __init__(self, message: str, partial: TrialResult) -> None:
        super().__init__(message)
        self.partial = partial
