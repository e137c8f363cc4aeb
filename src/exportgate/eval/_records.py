"""Records shared by every evaluation part (below targets, strategies, scorers and the runner)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Message", "TargetReply", "TrialResult"]

#: One message of a conversation: (role, text), role in system | user | assistant.
Message = tuple[str, str]


@dataclass(frozen=True, slots=True)
class TargetReply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class TrialResult:
    """One independent multi-turn trial of one strategy against one objective."""

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

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["transcript"] = [list(m) for m in self.transcript]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        values = dict(data)
        values["transcript"] = tuple((str(r), str(t)) for r, t in values.get("transcript", ()))
        return cls(**values)
