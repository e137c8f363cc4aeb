"""A trial that fails midway keeps what happened (issue 16, item 11): its transcript so far, its turn and
token counts, and the error, through the runner and the checkpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from exportgate.errors import UpstreamError
from exportgate.eval import (
    Campaign,
    CampaignStore,
    Crescendo,
    CrescendoTemplate,
    Decomposition,
    Direct,
    Pair,
    Roleplay,
    TargetReply,
    load_objectives,
    summarize,
    target_for,
)
from exportgate.eval._records import Message
from tests.eval.conftest import Fake


class FailsOnTheThirdTurn(Fake):
    """The simulator, except that the third user turn of a conversation gets a connection failure."""

    name = "fails-third"

    def __init__(self) -> None:
        self.inner = target_for("sim:typical", "sim-1")

    async def complete(self, messages: Sequence[Message], seed: int) -> TargetReply:
        if sum(role == "user" for role, _ in messages) >= 3:
            raise UpstreamError("http://model.example: gave up after 5 attempts: connection refused")
        reply: TargetReply = await self.inner.complete(messages, seed)
        return reply


@pytest.mark.parametrize("strategy", [CrescendoTemplate(backtracking=False), Crescendo(backtracking=False)],
                         ids=["crescendo-template", "crescendo"])  # fmt: skip
def test_an_errored_trial_keeps_its_partial_transcript_and_counts(strategy: Any, tmp_path: Path):
    objectives = load_objectives()[:2]
    campaign = Campaign(FailsOnTheThirdTurn(), objectives, [strategy], trials=3)
    store = CampaignStore(tmp_path / "c.db")
    store.start(campaign.config(), resume=False)
    results = asyncio.run(campaign.run(store))
    for result in results:
        assert result.error is not None and "connection refused" in result.error
        assert result.turns == 2 and result.prompt_tokens > 0 and result.completion_tokens > 0
        roles = [role for role, _ in result.transcript]
        assert roles == ["user", "assistant", "user", "assistant", "user"]  # the unanswered turn is kept
        assert len(result.turn_scores) == 2 and result.success is False
    assert store.done() == {}  # errored trials run again on --resume
    assert sorted(store.saved().values(), key=lambda r: (r.objective_id, r.trial)) == sorted(
        results, key=lambda r: (r.objective_id, r.trial)
    )  # the checkpoint keeps them whole
    cell = summarize(results)["cells"][0]
    assert (cell["trials"], cell["errors"]) == (0, 3)  # still counted apart, not as failures


def test_every_strategy_keeps_what_it_sent_when_the_target_fails():
    class Down(Fake):
        async def complete(self, messages: Sequence[Message], seed: int) -> TargetReply:
            raise UpstreamError("http://127.0.0.1:9: gave up after 5 attempts: connection refused")

    strategies = [Direct(), Crescendo(), CrescendoTemplate(), Roleplay(), Decomposition(), Pair()]
    for result in asyncio.run(Campaign(Down(), load_objectives()[:1], strategies, trials=1).run()):
        assert result.error is not None and result.turns == 0
        assert [role for role, _ in result.transcript] == ["user"], result.strategy
