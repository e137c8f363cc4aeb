"""An account's screening from its names, the lists in force and the reviews made (docs/screening.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from exportgate._types import ScreeningStatus

from ._entry import Candidate, Query
from ._index import ScreeningIndex
from ._normalize import tokens
from ._store import Review, ScreeningResult, screening_input

__all__ = ["MANUAL_HIT", "assess", "screenable"]

#: How a hit set by hand before any list was loaded stands among the confirmed candidates: no list can
#: lower it; an officer clears it like any other (``screening clear ACCOUNT --candidate manual:hit``).
MANUAL_HIT = "manual:hit"


def screenable(name: str) -> bool:
    """Whether a name holds something to screen: tokens of three letters or more in all ("." or "X" or a
    zero-width space does not; an account with no such name is not screened, which a screened tier denies)."""
    return sum(len(t) for t in tokens(name)) >= 3


def assess(index: ScreeningIndex, lists: str, account_id: int, *, legal_name: str | None, organization: str | None,
           countries: Sequence[str], reviews: Sequence[Review],
           held_hits: Sequence[str] = ()) -> ScreeningResult:  # fmt: skip
    """Screen the person's name (as an individual) and the organization (as an entity), with the account's
    first country as a hint. A candidate an officer cleared for the same input and the same entry content
    is not raised again; a confirmed candidate makes the account a hit until it is cleared. Nothing to
    screen (neither name on file, or only names without letters to compare: :func:`screenable`) gives the
    status None: not screened, which a tier that requires a clear screening denies. ``held_hits``: confirmations
    made outside a review (:data:`MANUAL_HIT`: a hit set by hand before lists decided), kept until cleared."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    digest = screening_input(legal_name, organization)
    latest: dict[str, Review] = {}
    for review in reviews:
        latest[review.candidate] = review
    confirmed = tuple(sorted({c for c, r in latest.items() if r.decision == "confirm"}
                             | {h for h in held_hits if h not in latest or latest[h].decision != "clear"}))
    legal_name = legal_name if legal_name and screenable(legal_name) else None
    organization = organization if organization and screenable(organization) else None
    if not legal_name and not organization:
        return ScreeningResult(
            account_id, ScreeningStatus.HIT if confirmed else None, lists, digest, (), now, confirmed
        )
    country = countries[0] if countries else None
    found: dict[str, Candidate] = {}
    for name, kind in ((legal_name, "individual"), (organization, "entity")):
        if name:
            for candidate in index.screen(Query(name, country=country, type=kind)):
                if candidate.id not in found or candidate.score > found[candidate.id].score:
                    found[candidate.id] = candidate
    kept = []
    for candidate in found.values():
        held = latest.get(candidate.id)
        cleared = (held is not None and held.decision == "clear" and held.input == digest
                   and held.entry_digest == candidate.entry_digest)  # fmt: skip
        if not cleared:
            kept.append(candidate)
    kept.sort(key=lambda c: (-c.score, c.id))
    open_ = [c for c in kept if c.id not in confirmed]
    status = ScreeningStatus.HIT if confirmed else ScreeningStatus.PENDING if open_ else ScreeningStatus.CLEAR
    return ScreeningResult(account_id, status, lists, digest, tuple(kept), now, confirmed)
