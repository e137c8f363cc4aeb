"""Evaluation campaigns (docs/evaluation.md): multi-turn red-teaming with honest statistics and signed evidence.

Parts compose as small protocols over shared records (``_records``): a :class:`Target` answers a
conversation, a strategy drives one trial, a :class:`Scorer` says whether a reply reached the objective,
a :class:`Campaign` runs objectives x strategies x N trials, checkpointed in a :class:`CampaignStore`;
:func:`run_campaign` runs one to its :class:`CampaignOutcome` under the error policy;
:func:`build_bundle` / :func:`verify_evidence` make and check the evidence.
"""

from ._campaign import CampaignOutcome, run_campaign
from ._compare import Difference, cohen_kappa, fleiss_kappa, newcombe_difference
from ._evidence import (
    SCHEMA,
    SCHEMA_V1,
    EvidenceBundle,
    EvidenceCheck,
    Signature,
    build_bundle,
    bundle_statistics,
    check_plan,
    evidence_resource,
    load_bundle,
    verify_evidence,
    write_bundle,
    write_transcripts,
)
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
from ._stats import (
    Observation,
    Rules,
    benjamini_hochberg,
    binomial_tail,
    design_effect,
    holm,
    observations,
    rollup,
    summarize,
    wilson,
)
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
    "AnthropicTarget",
    "Calibration",
    "Campaign",
    "CampaignOutcome",
    "CampaignStore",
    "Crescendo",
    "CrescendoTemplate",
    "Criteria",
    "Decomposition",
    "Difference",
    "Direct",
    "EvidenceBundle",
    "EvidenceCheck",
    "Judge",
    "Message",
    "Objective",
    "Observation",
    "OpenAITarget",
    "Pair",
    "Pricing",
    "RateLimits",
    "Roleplay",
    "Rules",
    "SCHEMA",
    "SCHEMA_V1",
    "STRATEGIES",
    "Scorer",
    "Signature",
    "SimTarget",
    "Strategy",
    "Target",
    "TargetReply",
    "TrialAborted",
    "TrialResult",
    "TurnScore",
    "Verdict",
    "agreement",
    "benjamini_hochberg",
    "binomial_tail",
    "build_bundle",
    "bundle_statistics",
    "bundled_objectives_path",
    "calibrate",
    "check_plan",
    "cohen_kappa",
    "corrected_rate",
    "design_effect",
    "evidence_resource",
    "fleiss_kappa",
    "holm",
    "html_report",
    "is_refusal",
    "judge_agreement",
    "load_bundle",
    "load_calibration",
    "load_objectives",
    "newcombe_difference",
    "observations",
    "rollup",
    "run_campaign",
    "scorer_for",
    "strategy_named",
    "summarize",
    "target_for",
    "text_report",
    "trial_seed",
    "usage",
    "verify_evidence",
    "wilson",
    "write_bundle",
    "write_transcripts",
]
