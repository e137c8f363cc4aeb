"""The account record (docs/identity.md)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from exportgate._types import KycLevel, ScreeningStatus, Subject

__all__ = ["Account", "ApiKeyInfo", "Trip"]


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    organization: str | None
    citizenships: tuple[str, ...]
    residencies: tuple[str, ...]
    us_person_attested: bool | None
    kyc: KycLevel
    screening: ScreeningStatus | None
    controlled_by: str | None
    suspended: bool
    created_at: str
    deleted_at: str | None = None
    revision: int = 1
    updated_at: str | None = None
    legal_name: str | None = None  # the person's name as screened (docs/screening.md)

    def subject(self, key_id: str | None = None) -> Subject:
        return Subject(
            subject_id=f"account:{self.name}",
            citizenships=self.citizenships,
            residencies=self.residencies,
            us_person_attested=self.us_person_attested,
            kyc=self.kyc,
            screening=self.screening,
            controlled_by=self.controlled_by,
            suspended=self.suspended,
            name=self.name,
            organization=self.organization,
            key_id=key_id,
            source="api_key",
        )

    @property
    def us_person(self) -> bool | None:
        return self.subject().us_person


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    key_id: str
    account: str
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class Trip:
    """A declared stay abroad: the account uses the service from ``country`` from ``starts`` to ``ends``
    (inclusive, UTC dates). The monitor does not count such requests as residency mismatches or hops."""

    id: int
    account: str
    country: str
    starts: dt.date
    ends: dt.date
    note: str | None = None

    def covers(self, country: str | None, day: dt.date) -> bool:
        return country == self.country and self.starts <= day <= self.ends
