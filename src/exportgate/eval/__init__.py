"""Evaluation campaigns (docs/evaluation.md): multi-turn red-teaming with honest statistics and signed evidence.

Parts compose as small protocols over shared records (``_records``): a :class:`Target` answers a
conversation, a strategy drives one trial, a :class:`Scorer` says whether a reply reached the objective,
a :class:`Campaign` runs objectives x strategies x N trials, checkpointed in a :class:`CampaignStore`;
:func:`build_bundle` / :func:`verify_bundle` make and check the evidence.
"""

from ._compare import Difference, cohen_kappa, fleiss_kappa, newcombe_difference
from ._evidence import SCHEMA, build_bundle, load_bundle, sign_bundle, verify_bundle, write_bundle, write_transcripts
from ._objectives import Criteria, Objective, bundled_objectives_path, load_objectives
from ._records import Message, TargetReply, TrialAborted, TrialResult, TurnScore, Verdict
from ._report import html_report, text_report
from ._runner import Campaign, trial_seed
from ._scoring import (
    Calibration,
    Judge,
    Scorer,
    agreement,
    calibrate,
    corrected_rate,
    is_refusal,
    judge_agreement,
    load_calibration,
    scorer_for,
)
from ._stats import summarize, wilson
from ._store import CampaignStore
from ._strategies import (
    STRATEGIES,
    Crescendo,
    CrescendoTemplate,
    Decomposition,
    Direct,
    Pair,
    Roleplay,
    Strategy,
    strategy_named,
)
from ._targets import AnthropicTarget, OpenAITarget, RateLimits, SimTarget, Target, target_for
from ._usage import Pricing, usage

__all__ = [
    "SCHEMA",
    "STRATEGIES",
    "AnthropicTarget",
    "Calibration",
    "Campaign",
    "CampaignStore",
    "Crescendo",
    "CrescendoTemplate",
    "Criteria",
    "Decomposition",
    "Difference",
    "Direct",
    "Judge",
    "Message",
    "Objective",
    "OpenAITarget",
    "Pair",
    "Pricing",
    "RateLimits",
    "Roleplay",
    "Scorer",
    "SimTarget",
    "Strategy",
    "Target",
    "TargetReply",
    "TrialAborted",
    "TrialResult",
    "TurnScore",
    "Verdict",
    "agreement",
    "build_bundle",
    "bundled_objectives_path",
    "calibrate",
    "cohen_kappa",
    "corrected_rate",
    "fleiss_kappa",
    "html_report",
    "is_refusal",
    "judge_agreement",
    "load_bundle",
    "load_calibration",
    "load_objectives",
    "newcombe_difference",
    "scorer_for",
    "sign_bundle",
    "strategy_named",
    "summarize",
    "target_for",
    "text_report",
    "trial_seed",
    "usage",
    "verify_bundle",
    "wilson",
    "write_bundle",
    "write_transcripts",
]
