"""The built-in model simulator (SPEC §7): a guarded, seeded, OpenAI- and Anthropic-compatible model."""

from ._app import SimApp
from ._model import REFUSAL, Reply, SimModel, count_tokens

__all__ = ["REFUSAL", "Reply", "SimApp", "SimModel", "count_tokens"]


def app_from_env() -> SimApp:
    """The simulator configured from ``EXPORTGATE_SIM_*`` (granian's factory target for ``sim serve``)."""
    import os  # noqa: PLC0415

    return SimApp(
        SimModel(seed=int(os.environ.get("EXPORTGATE_SIM_SEED", "0"))),
        chunk_delay=float(os.environ.get("EXPORTGATE_SIM_CHUNK_DELAY_MS", "0")) / 1000,
    )


__all__ += ["app_from_env"]
