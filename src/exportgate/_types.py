"""Shared records at the bottom of the layer stack.

Every layer (policy, geo, identity, audit, gateway, CLI) speaks in these
types, so they live here and import nothing from the rest of exportgate.

``None`` always means *unknown*, never "no" or "not restricted": the decision
core treats an unknown attribute as a reason to deny whenever a rule needs it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

__all__ = [
    "ANONYMIZER_KINDS",
    "Decision",
    "GeoInfo",
    "KycLevel",
    "Reason",
    "ReasonCode",
    "RequestContext",
    "ScreeningStatus",
    "Subject",
]

#: The anonymizer flags a geo lookup may raise, and ``deny_anonymizers`` denies.
ANONYMIZER_KINDS: frozenset[str] = frozenset({"tor", "vpn", "hosting"})


class KycLevel(enum.IntEnum):
    """Know-your-customer assurance, ordered: ``none`` < ``basic`` < ``verified``."""

    NONE = 0
    BASIC = 1
    VERIFIED = 2

    @classmethod
    def parse(cls, value: str) -> KycLevel:
        """Parse ``none``/``basic``/``verified`` (case-insensitive); ValueError otherwise."""
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(level.label for level in cls)
            raise ValueError(f"unknown KYC level {value!r} (expected one of: {names})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


class ScreeningStatus(enum.Enum):
    """Result of denied-party screening for an account."""

    CLEAR = "clear"
    HIT = "hit"
    PENDING = "pending"


class ReasonCode(enum.StrEnum):
    """The fixed reason codes (docs/directives.md, Reason codes). Values are part of the wire format."""

    UNKNOWN_MODEL = "unknown_model"
    CITIZENSHIP_DENIED = "citizenship_denied"
    CITIZENSHIP_NOT_ALLOWED = "citizenship_not_allowed"
    US_PERSON_REQUIRED = "us_person_required"
    LOCATION_DENIED = "location_denied"
    LOCATION_NOT_ALLOWED = "location_not_allowed"
    LOCATION_UNKNOWN = "location_unknown"
    ANONYMIZER_DENIED = "anonymizer_denied"
    KYC_REQUIRED = "kyc_required"
    CONTROLLED_BY_DENIED = "controlled_by_denied"
    SCREENING_HIT = "screening_hit"
    SCREENING_PENDING = "screening_pending"
    ACCOUNT_SUSPENDED = "account_suspended"
    IDENTITY_INCOMPLETE = "identity_incomplete"
    GUARD_BLOCKED = "guard_blocked"


@dataclass(frozen=True, slots=True)
class Subject:
    """The person (and organization) behind a request.

    ``citizenships`` and ``residencies`` are ISO 3166-1 alpha-2 codes.
    ``us_person_attested`` records an explicit attestation (e.g. a protected
    individual); :attr:`us_person` combines it with what the record derives.
    """

    subject_id: str
    citizenships: tuple[str, ...] | None = None
    residencies: tuple[str, ...] | None = ()
    us_person_attested: bool | None = None
    kyc: KycLevel | None = None
    screening: ScreeningStatus | None = None
    controlled_by: str | None = None
    suspended: bool = False
    name: str | None = None
    organization: str | None = None
    key_id: str | None = None
    source: str = "account"
    us_person: bool | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "us_person", _derive_us_person(self))

    @property
    def account(self) -> str:
        """How records name the subject: the account name for API keys, the subject id otherwise."""
        return self.name if self.source == "api_key" and self.name else self.subject_id

    def snapshot(self) -> dict[str, object]:
        """The attributes a decision may use, and the organization for the record, as plain JSON-ready values."""
        return {
            "subject_id": self.subject_id,
            "organization": self.organization,
            "citizenships": list(self.citizenships) if self.citizenships is not None else None,
            "residencies": list(self.residencies) if self.residencies is not None else None,
            "us_person": self.us_person,
            "kyc": self.kyc.label if self.kyc is not None else None,
            "screening": self.screening.value if self.screening is not None else None,
            "controlled_by": self.controlled_by,
            "suspended": self.suspended,
        }


def _derive_us_person(subject: Subject) -> bool | None:
    """US citizen or US permanent resident (15 CFR 772.1), else the attestation.

    A derivation can only add US-person status; an attestation of ``False``
    does not override US citizenship. Unknown citizenship stays unknown.
    """
    cits, res = subject.citizenships, subject.residencies
    if (cits is not None and "US" in cits) or (res is not None and "US" in res):
        return True
    if subject.us_person_attested is not None:
        return subject.us_person_attested
    if cits is None or res is None or not cits:
        return None
    return False


class GeoInfo(NamedTuple):
    """What is known about a client address.

    ``country`` is ``None`` when no source answers (private addresses,
    unallocated space, no data); it never means "not embargoed".
    ``anonymizers`` holds the raised flags (``tor``, ``vpn``, ``hosting``);
    ``None`` means the anonymizer status could not be established.
    """

    country: str | None
    anonymizers: frozenset[str] | None
    source: str


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Facts about the request itself, established at the edge."""

    ip: str | None = None
    country: str | None = None
    anonymizers: frozenset[str] | None = None

    @classmethod
    def from_geo(cls, ip: str | None, geo: GeoInfo) -> RequestContext:
        return cls(ip=ip, country=geo.country, anonymizers=geo.anonymizers)


class Reason(NamedTuple):
    """Why a rule failed: the code, the directive rule key, the value seen."""

    code: ReasonCode
    rule: str
    value: object

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code.value, "rule": self.rule, "value": self.value}


class Decision(NamedTuple):
    """The outcome of :func:`exportgate.policy.decide` for one request."""

    decision: Literal["allow", "deny"]
    requested_model: str
    model: str | None
    tier: str | None
    directive_id: str
    directive_version: str
    reasons: tuple[Reason, ...]

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    @property
    def primary_reason(self) -> Reason | None:
        return self.reasons[0] if self.reasons else None

    def as_dict(self) -> dict[str, object]:
        return {
            "decision": self.decision,
            "requested_model": self.requested_model,
            "model": self.model,
            "tier": self.tier,
            "directive": self.directive_id,
            "directive_version": self.directive_version,
            "reasons": [reason.as_dict() for reason in self.reasons],
        }
