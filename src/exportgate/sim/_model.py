"""The simulated model's behaviour: pure, seeded, no I/O.

A reply depends only on (seed, model, the conversation). The simulator is a
*guarded* model: it refuses requests that touch a restricted canary topic
and otherwise answers with filler text. It never produces harmful content;
where a later profile "complies" it emits a canary marker instead.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["REFUSAL", "Reply", "SimModel", "count_tokens"]

#: Words that mark a request as touching a restricted topic (benign stand-ins).
RESTRICTED_MARKERS = ("canary-restricted", "exploit", "malware", "ransomware", "zero-day", "payload")
REFUSAL = "I can't help with that request. I can help with defensive security practices instead."
_WORDS = [
    "the",
    "model",
    "answers",
    "with",
    "plain",
    "filler",
    "text",
    "so",
    "that",
    "clients",
    "see",
    "a",
    "realistic",
    "reply",
    "shape",
    "and",
    "token",
    "counts",
    "without",
    "any",
    "real",
    "content",
    "latency",
    "budget",
    "stream",
    "chunk",
    "gateway",
    "audit",
    "record",
    "decision",
    "tier",
    "directive",
]


def count_tokens(text: str) -> int:
    """A stable, cheap token estimate: about four characters a token, at least one for non-empty text."""
    return (len(text) + 3) // 4 if text else 0


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    refused: bool
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"

    def openai_usage(self) -> dict[str, int]:
        total = self.prompt_tokens + self.completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "total_tokens": total}


class SimModel:
    def __init__(self, seed: int = 0, reply_words: int = 24) -> None:
        self.seed = seed
        self.reply_words = reply_words

    def reply(self, model: str, messages: Sequence[tuple[str, str]], max_tokens: int | None = None) -> Reply:
        """Answer a conversation of ``(role, text)`` pairs."""
        prompt = "\n".join(text for _, text in messages)
        last_user = next((text for role, text in reversed(messages) if role == "user"), "")
        prompt_tokens = count_tokens(prompt)
        if any(marker in last_user.lower() for marker in RESTRICTED_MARKERS):
            return Reply(REFUSAL, True, prompt_tokens, count_tokens(REFUSAL))
        digest = hashlib.blake2b(f"{self.seed}\0{model}\0{prompt}".encode(), digest_size=8).digest()
        rng = random.Random(int.from_bytes(digest, "big"))  # noqa: S311 - filler text, not security
        words = [rng.choice(_WORDS) for _ in range(self.reply_words)]
        text = " ".join(words).capitalize() + "."
        finish = "stop"
        if max_tokens is not None and count_tokens(text) > max_tokens > 0:
            text, finish = text[: max_tokens * 4], "length"
        return Reply(text, False, prompt_tokens, count_tokens(text), finish)

    def embed(self, text: str, dimensions: int = 16) -> list[float]:
        """A deterministic unit-length vector for a text."""
        digest = hashlib.sha256(f"{self.seed}\0{text}".encode()).digest()
        raw = [(b - 127.5) / 127.5 for b in (digest * (dimensions // 32 + 1))[:dimensions]]
        norm = sum(v * v for v in raw) ** 0.5 or 1.0
        return [round(v / norm, 6) for v in raw]
