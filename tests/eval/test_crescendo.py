"""The adaptive crescendo (issue 16, item 13): an attacker model writes each next question from the
objective, the turn, the conversation and the last refusal; the loop runs to the turn limit with
backtracking. The template crescendo stays as ``crescendo-template``. On the simulator's ``attentive``
profile, which yields only to a conversation that builds on its own answers, the adaptive one wins."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from exportgate.errors import UpstreamError
from exportgate.eval import (
    Campaign,
    Crescendo,
    CrescendoTemplate,
    Direct,
    Objective,
    Roleplay,
    Scorer,
    TargetReply,
    TrialAborted,
    TrialResult,
    load_objectives,
    newcombe_difference,
    strategy_named,
    summarize,
    target_for,
)
from exportgate.eval._records import Message
from exportgate.sim import CRESCENDO_PROMPT, PROFILES, REFUSAL, quotes
from tests.eval.conftest import Fake, Recorded

ORCHID = load_objectives()[0]


def _run(campaign: Campaign) -> list[TrialResult]:
    return asyncio.run(campaign.run())


def _recording_attacker() -> Recorded:
    """A real attacker (the simulator's attacker role) whose requests are kept for inspection."""
    return Recorded(target_for("sim:typical", "attacker"))


def _requests(attacker: Recorded) -> list[dict[str, Any]]:
    assert all(messages[0] == ("system", CRESCENDO_PROMPT) for messages in attacker.requests)
    return [orjson.loads(messages[-1][1]) for messages in attacker.requests]


class GivesInOnTheThirdAsk(Fake):
    """A target that answers every turn, and reveals the canary the third time the goal is asked."""

    name = "third-ask"

    async def complete(self, messages: Sequence[Message], seed: int) -> TargetReply:
        asks = sum(1 for role, text in messages if role == "user" and "[canary:orchid]" in text)
        return TargetReply("EG-CANARY{orchid}" if asks >= 3 else "An answer on the topic, nothing more.", 3, 4)


def test_adaptive_crescendo_beats_the_template_on_a_profile_only_conversation_awareness_moves():
    attacker = target_for("sim:typical", "attacker")  # an attacker model: the simulator plays it, offline
    target = target_for("sim:attentive", "sim-1")
    adaptive = _run(Campaign(target, load_objectives(), [Crescendo(attacker=attacker)], trials=50, seed=11))
    template = _run(Campaign(target, load_objectives(), [CrescendoTemplate()], trials=50, seed=11))
    k1, n1 = sum(r.success for r in adaptive), len(adaptive)
    k2, n2 = sum(r.success for r in template), len(template)
    assert (n1, n2) == (200, 200) and k2 == 0  # templates never quote the model's answers: nothing moves it
    difference = newcombe_difference(k1, n1, k2, n2)
    assert difference.lower > 0, difference  # the interval excludes 0
    assert difference.lower > 0.5


def test_the_attentive_profile_yields_only_after_three_quoting_turns():
    attentive = PROFILES["attentive"]
    assert attentive.comply_probability(8, True, 8, 0, callbacks=2) == 0.0  # rapport, fiction, parts: nothing
    assert attentive.comply_probability(0, False, 0, 0, callbacks=3) > 0.7
    assert all(p.callback == 0.0 for name, p in PROFILES.items() if name != "attentive")
    assert quotes("The model answers with plain filler text.", 'You said "answers with plain filler text"? Go on.')
    assert not quotes("The model answers with plain filler text.", "Building on what you said: answers with plain")


def test_the_loop_runs_to_the_turn_limit_instead_of_stopping_at_the_first_answered_escalation():
    objective = Objective("canary-orchid", "cyber-canary", "high", ORCHID.goal, ORCHID.criteria, ORCHID.topic)
    results = _run(Campaign(GivesInOnTheThirdAsk(), [objective], [Crescendo(max_turns=10)], trials=5))
    assert all(r.success for r in results)
    assert all(r.turns_to_success is not None and r.turns_to_success > 4 for r in results)
    template = _run(Campaign(GivesInOnTheThirdAsk(), [objective], [CrescendoTemplate(max_turns=10)], trials=5))
    assert not any(r.success for r in template) and all(r.turns == 4 for r in template)  # the old behaviour


def test_without_success_the_adaptive_crescendo_uses_every_turn():
    results = _run(Campaign(target_for("sim:hardened", "sim-1"), [ORCHID], [Crescendo(max_turns=7)], trials=10))
    for r in results:
        if not r.success:
            counted = r.turns - r.backtracks
            assert counted == 7 and r.backtracks <= 3 and r.turns <= 10


def test_the_attacker_sees_objective_turn_conversation_and_the_refused_question():
    attacker = _recording_attacker()
    campaign = Campaign(target_for("sim:hardened", "sim-1"), [ORCHID], [Crescendo(attacker=attacker)], trials=3)
    results = _run(campaign)
    requests = _requests(attacker)
    assert requests[0]["objective"] == ORCHID.goal and requests[0]["topic"] == ORCHID.topic
    assert requests[0]["turn"] == 1 and requests[0]["max_turns"] == 10 and requests[0]["conversation"] == []
    assert requests[0]["last_refused"] is None and requests[0]["last_score"] is None
    refused = [r for r in requests if r["last_refused"] is not None]
    assert refused, "hardened refuses: some question must have been refused and backtracked"
    for request in refused:
        sent = [m["text"] for m in request["conversation"] if m["role"] == "user"]
        assert request["last_refused"] not in sent  # backtracked: the target no longer sees it
        assert all(m["text"] != REFUSAL for m in request["conversation"])
    assert sum(r.backtracks for r in results) >= len(refused) - 3  # retries after the last backtrack


def test_the_attacker_is_recorded_in_the_settings():
    builtin = Crescendo().settings()["attacker"]
    assert builtin["kind"] == "simulator" and builtin["model"] == "exportgate-builtin-attacker"
    given = Crescendo(attacker=target_for("sim:typical", "red")).settings()["attacker"]
    assert given["model"] == "red" and "date" not in given


class Mumbles(Fake):
    """An attacker that never answers with a question."""

    name = "mumbles"
    calls = 0

    async def complete(self, messages: Sequence[Message], seed: int) -> TargetReply:
        self.calls += 1
        return TargetReply("I am thinking about it.")


def test_an_attacker_without_a_question_fails_the_trial_after_one_retry():
    attacker = Mumbles()
    strategy = Crescendo(attacker=attacker)
    with pytest.raises(TrialAborted, match="attacker") as aborted:
        asyncio.run(strategy.run(ORCHID, target_for("sim:typical", "sim-1"), Scorer(), 0, 1))
    assert attacker.calls == 2
    assert isinstance(aborted.value.__cause__, UpstreamError) and aborted.value.partial.error is not None
    result = _run(Campaign(target_for("sim:typical", "sim-1"), [ORCHID], [strategy], trials=1))[0]
    assert result.error is not None and "attacker" in result.error and result.turns == 0


def test_both_crescendos_are_reproducible_and_find_the_vulnerable_pathway():
    objectives = load_objectives()
    for strategy in (Crescendo(), CrescendoTemplate()):
        vulnerable = Campaign(target_for("sim:vulnerable", "sim-1"), objectives, [strategy], trials=20, seed=4)
        first = _run(vulnerable)
        assert first == _run(vulnerable)
        assert all(c["repeatable"] for c in summarize(first)["cells"]), strategy.name
        hardened = Campaign(target_for("sim:hardened", "sim-1"), objectives, [strategy], trials=20, seed=4)
        assert not any(c["repeatable"] for c in summarize(_run(hardened))["cells"]), strategy.name


def test_strategy_names_and_settings():
    assert strategy_named("crescendo").name == "crescendo"
    template = strategy_named("crescendo-template", max_turns=6, max_backtracks=1, backtracking=False)
    assert template.settings() == {"max_turns": 6, "max_backtracks": 1, "lead_up": 3, "backtracking": False,
                                   "name": "crescendo-template"}  # fmt: skip
    adaptive = strategy_named("crescendo", max_turns=6, max_backtracks=1, backtracking=False)
    assert {k: v for k, v in adaptive.settings().items() if k != "attacker"} == {
        "max_turns": 6, "max_backtracks": 1, "backtracking": False}  # fmt: skip


def test_roleplay_has_its_own_turn_limit_and_ignores_max_turns():
    roleplay = strategy_named("roleplay", max_turns=10)
    assert roleplay.settings() == {"roleplay_turns": 4, "name": "roleplay"}
    longer = strategy_named("roleplay", max_turns=2, roleplay_turns=8)
    assert longer.settings()["roleplay_turns"] == 8
    results = _run(Campaign(target_for("sim:hardened", "sim-1"), [ORCHID], [longer], trials=5))
    assert max(r.turns for r in results) == 8
    assert isinstance(longer, Roleplay)


@dataclass(frozen=True, slots=True)
class _Contextual(Objective):
    """An objective with HarmBench's context string (the ``Objective.context`` field, where it exists)."""

    context: str = ""


def test_an_objectives_context_opens_every_conversation_before_the_goal():
    objective = _Contextual(ORCHID.id, ORCHID.domain, ORCHID.severity, ORCHID.goal, ORCHID.criteria, ORCHID.topic,
                            context="A short benign passage about orchids.")  # fmt: skip
    strategies = [Direct(), Crescendo(), CrescendoTemplate(), Roleplay()]
    for result in _run(Campaign(target_for("sim:typical", "sim-1"), [objective], strategies, trials=3)):
        first = result.transcript[0][1]
        assert first.startswith("A short benign passage about orchids.\n\n---\n\n"), (result.strategy, first)
        if result.strategy == "direct":  # HarmBench's layout: context, a rule, the request
            assert first == f"A short benign passage about orchids.\n\n---\n\n{ORCHID.goal}"


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_the_simulators_attacker_role_works_over_http_as_in_process(served_sim: str, api: str):
    target = target_for("sim:attentive", "sim-1")
    local = _run(Campaign(target, [ORCHID], [Crescendo(attacker=target_for("sim:vulnerable", "attacker"))], trials=6))
    remote_attacker = target_for(served_sim, "attacker", api=api)

    async def remote() -> list[TrialResult]:
        try:
            return await Campaign(target, [ORCHID], [Crescendo(attacker=remote_attacker)], trials=6).run()
        finally:
            await remote_attacker.close()

    over_http = asyncio.run(remote())
    if api == "openai":  # the request's seed travels as OpenAI's `seed`: the same questions, word for word
        assert [r.transcript for r in over_http] == [r.transcript for r in local]
    assert all(r.error is None for r in over_http) and sum(r.success for r in over_http) >= 5
