"""A campaign run to its outcome: the library call behind ``eval run`` (as ``inspect_ai.eval()`` is behind
its command line), with the error policy that evidence depends on.

Errored trials are not failed attacks: a campaign against an unreachable target would otherwise read as
"0% attack success". :func:`run_campaign` runs every planned trial (finished ones in a checkpoint are not
redone; errored ones are run again), closes the target, and refuses with :class:`CampaignFailed` when more
than ``max_error_share`` of the trials errored, unless ``allow_errors``. The model ids the target's
provider served are kept in the checkpoint too, so a resumed campaign's fingerprint names them all.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from exportgate.errors import CampaignFailed, ConfigError

from ._records import TrialResult
from ._runner import Campaign
from ._store import CampaignStore
from ._targets import _Target

__all__ = ["CampaignOutcome", "run_campaign"]


@dataclass(frozen=True, slots=True)
class CampaignOutcome:
    """Every planned trial's result in plan order, how many errored, and the first error in plan order."""

    results: tuple[TrialResult, ...]
    errors: int
    first_error: str | None

    @classmethod
    def of(cls, results: Sequence[TrialResult]) -> CampaignOutcome:
        errored = [r.error for r in results if r.error is not None]
        return cls(tuple(results), len(errored), errored[0] if errored else None)

    @property
    def error_share(self) -> float:
        return self.errors / len(self.results) if self.results else 0.0


def run_campaign(
    campaign: Campaign,
    *,
    store: CampaignStore | None = None,
    progress: Callable[[TrialResult], None] | None = None,
    max_error_share: float = 0.1,
    allow_errors: bool = False,
) -> CampaignOutcome:
    """Run ``campaign`` (resuming from ``store``, a started checkpoint) and return its outcome; raise
    :class:`CampaignFailed` when more than ``max_error_share`` of its trials errored and not ``allow_errors``.

    ``progress`` is called with each trial's result as it finishes. Ctrl-C (``KeyboardInterrupt``) passes
    through once the trials in flight are cancelled; every finished trial is in ``store`` by then."""
    if not (math.isfinite(max_error_share) and 0 <= max_error_share <= 1):
        raise ConfigError(f"the share of errored trials allowed must be between 0 and 1, not {max_error_share}")
    outcome = CampaignOutcome.of(asyncio.run(_run(campaign, store, progress)))
    if outcome.error_share > max_error_share and not allow_errors:
        raise CampaignFailed(
            f"{outcome.errors} of {len(outcome.results)} trials errored ({outcome.error_share:.1%}), more than the"
            f" {max_error_share:.1%} allowed; the first: {' '.join(str(outcome.first_error).split())}"
        )
    return outcome


async def _run(
    campaign: Campaign, store: CampaignStore | None, progress: Callable[[TrialResult], None] | None
) -> list[TrialResult]:
    target = campaign.target if isinstance(campaign.target, _Target) else None
    if store is not None and target is not None:
        for model in store.served_models():
            target.note_served(model)
    kept = len(target.served_models) if target is not None else 0

    def finished(result: TrialResult) -> None:
        nonlocal kept
        if store is not None and target is not None and len(target.served_models) != kept:
            store.save_served_models(target.served_models)
            kept = len(target.served_models)
        if progress is not None:
            progress(result)

    try:
        return await campaign.run(store, finished)
    finally:
        await campaign.target.close()
