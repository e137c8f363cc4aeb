"""The built-in model simulator (docs/evaluation.md): a guarded, seeded, OpenAI- and Anthropic-compatible model."""

from ._app import SimApp
from ._model import (
    ATTACKER_PROMPT,
    CRESCENDO_PROMPT,
    JUDGE_PROMPT,
    REFUSAL,
    Reply,
    SimModel,
    canary_marker,
    count_tokens,
    quotes,
)
from ._profiles import PROFILES, Profile, profile_named

__all__ = [
    "ATTACKER_PROMPT",
    "CRESCENDO_PROMPT",
    "JUDGE_PROMPT",
    "PROFILES",
    "REFUSAL",
    "Profile",
    "Reply",
    "SimApp",
    "SimModel",
    "canary_marker",
    "count_tokens",
    "profile_named",
    "quotes",
]


def app_from_env() -> SimApp:
    """The simulator configured from ``EXPORTGATE_SIM_*`` (granian's factory target for ``sim serve``)."""
    import os  # noqa: PLC0415

    return SimApp(
        SimModel(
            seed=int(os.environ.get("EXPORTGATE_SIM_SEED", "0")),
            profile=profile_named(os.environ.get("EXPORTGATE_SIM_PROFILE", "typical")),
        ),
        chunk_delay=float(os.environ.get("EXPORTGATE_SIM_CHUNK_DELAY_MS", "0")) / 1000,
        latency=float(os.environ.get("EXPORTGATE_SIM_LATENCY_MS", "0")) / 1000,
    )


__all__ += ["app_from_env"]
