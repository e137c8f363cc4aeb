"""The directive's rule keys, their checks, and the order they run in.

Evaluation order (SPEC §4; every failing rule is reported, none short-cuts):

0. ``account_suspended``   the account is suspended (any model, any tier)
1. ``unknown_model``       the model is not in the directive and
                           ``unknown_models: deny``
2. tier rules, in the order of :data:`RULE_ORDER`:
   ``deny_citizenship``, ``allow_citizenship``, ``require_us_person``,
   ``deny_location``, ``allow_location``, ``deny_anonymizers``,
   ``require_kyc``, ``deny_controlled_by``, ``require_screening_clear``.

Identity rules come before location rules because a deemed export (15 CFR
734.13) follows the person, not the address. Each check returns ``None``
when its rule passes, or the :class:`Reason` it fails with. A check never
passes on a missing fact: an unknown attribute gives ``identity_incomplete``
and an unknown country gives ``location_unknown``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

from exportgate._types import ANONYMIZER_KINDS, KycLevel, Reason, ReasonCode, RequestContext, ScreeningStatus, Subject

__all__ = ["COUNTRY_SET_RULES", "RULE_ORDER", "RULES", "Check", "CountrySet"]

Check = Callable[[Any, Subject, RequestContext], "Reason | None"]

_INCOMPLETE = ReasonCode.IDENTITY_INCOMPLETE


class CountrySet:
    """A resolved set of countries plus a memo of the reasons it has produced.

    Reasons are immutable, so one instance per (code, value) is shared by
    every decision: a denial allocates no new reasons after the first.
    """

    __slots__ = ("_memo", "members")

    def __init__(self, members: frozenset[str]) -> None:
        self.members = members
        self._memo: dict[tuple[str, str, object], Reason] = {}

    def __contains__(self, code: object) -> bool:
        return code in self.members

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.members))

    def __len__(self) -> int:
        return len(self.members)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CountrySet):
            return self.members == other.members
        return self.members == other

    def __hash__(self) -> int:
        return hash(self.members)

    def __repr__(self) -> str:
        return f"CountrySet({sorted(self.members)})"

    def reason(self, code: ReasonCode, rule: str, value: object) -> Reason:
        key = (code, rule, value)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = Reason(code, rule, value)
        return found


def _fixed(code: ReasonCode, rule: str, value: object) -> Reason:
    return Reason(code, rule, value)


_NO_CITIZENSHIPS = {
    rule: _fixed(_INCOMPLETE, rule, "citizenships") for rule in ("deny_citizenship", "allow_citizenship")
}
_NO_RESIDENCIES = _fixed(_INCOMPLETE, "deny_citizenship", "residencies")


def deny_citizenship(denied: CountrySet, subject: Subject, _: RequestContext) -> Reason | None:
    cits, res = subject.citizenships, subject.residencies
    if not cits:
        return _NO_CITIZENSHIPS["deny_citizenship"]
    if res is None:
        return _NO_RESIDENCIES
    members = denied.members
    hit = [code for code in cits if code in members]
    hit.extend(code for code in res if code in members)
    if hit:
        return denied.reason(ReasonCode.CITIZENSHIP_DENIED, "deny_citizenship", tuple(sorted(set(hit))))
    return None


def allow_citizenship(allowed: CountrySet, subject: Subject, _: RequestContext) -> Reason | None:
    cits = subject.citizenships
    if not cits:
        return _NO_CITIZENSHIPS["allow_citizenship"]
    members = allowed.members
    outside = [code for code in cits if code not in members]
    if outside:
        return allowed.reason(ReasonCode.CITIZENSHIP_NOT_ALLOWED, "allow_citizenship", tuple(sorted(set(outside))))
    return None


_US_PERSON_UNKNOWN = _fixed(_INCOMPLETE, "require_us_person", "us_person")
_NOT_US_PERSON = _fixed(ReasonCode.US_PERSON_REQUIRED, "require_us_person", False)


def require_us_person(_: bool, subject: Subject, __: RequestContext) -> Reason | None:
    status = subject.us_person
    if status is None:
        return _US_PERSON_UNKNOWN
    return None if status else _NOT_US_PERSON


_LOCATION_UNKNOWN = {
    rule: _fixed(ReasonCode.LOCATION_UNKNOWN, rule, None) for rule in ("deny_location", "allow_location")
}


def deny_location(denied: CountrySet, _: Subject, context: RequestContext) -> Reason | None:
    country = context.country
    if country is None:
        return _LOCATION_UNKNOWN["deny_location"]
    if country in denied.members:
        return denied.reason(ReasonCode.LOCATION_DENIED, "deny_location", country)
    return None


def allow_location(allowed: CountrySet, _: Subject, context: RequestContext) -> Reason | None:
    country = context.country
    if country is None:
        return _LOCATION_UNKNOWN["allow_location"]
    if country not in allowed.members:
        return allowed.reason(ReasonCode.LOCATION_NOT_ALLOWED, "allow_location", country)
    return None


_ANONYMIZER_UNKNOWN = _fixed(ReasonCode.ANONYMIZER_DENIED, "deny_anonymizers", "unknown")
_ANONYMIZER_HIT = {
    kinds: _fixed(ReasonCode.ANONYMIZER_DENIED, "deny_anonymizers", tuple(sorted(kinds)))
    for kinds in (frozenset(c) for n in range(1, 4) for c in itertools.combinations(sorted(ANONYMIZER_KINDS), n))
}


def deny_anonymizers(kinds: frozenset[str], _: Subject, context: RequestContext) -> Reason | None:
    flags = context.anonymizers
    if flags is None:
        return _ANONYMIZER_UNKNOWN
    if flags and not kinds.isdisjoint(flags):
        hit = kinds & flags
        return _ANONYMIZER_HIT.get(hit) or _fixed(ReasonCode.ANONYMIZER_DENIED, "deny_anonymizers", tuple(sorted(hit)))
    return None


_KYC_UNKNOWN = _fixed(_INCOMPLETE, "require_kyc", "kyc")
_KYC_TOO_LOW = {level: _fixed(ReasonCode.KYC_REQUIRED, "require_kyc", level.label) for level in KycLevel}


def require_kyc(level: KycLevel, subject: Subject, _: RequestContext) -> Reason | None:
    kyc = subject.kyc
    if kyc is None:
        return _KYC_UNKNOWN
    return _KYC_TOO_LOW[kyc] if kyc < level else None


_CONTROLLER_UNKNOWN = _fixed(_INCOMPLETE, "deny_controlled_by", "controlled_by")


def deny_controlled_by(denied: CountrySet, subject: Subject, _: RequestContext) -> Reason | None:
    country = subject.controlled_by
    if country is None:
        return _CONTROLLER_UNKNOWN
    if country in denied.members:
        return denied.reason(ReasonCode.CONTROLLED_BY_DENIED, "deny_controlled_by", country)
    return None


_SCREENING = {
    None: _fixed(_INCOMPLETE, "require_screening_clear", "screening"),
    ScreeningStatus.PENDING: _fixed(_INCOMPLETE, "require_screening_clear", "screening:pending"),
    ScreeningStatus.HIT: _fixed(ReasonCode.SCREENING_HIT, "require_screening_clear", "hit"),
}


def require_screening_clear(_: bool, subject: Subject, __: RequestContext) -> Reason | None:
    status = subject.screening
    return None if status is ScreeningStatus.CLEAR else _SCREENING[status]


#: Rule key -> check, in evaluation order.
RULES: dict[str, Check] = {
    "deny_citizenship": deny_citizenship,
    "allow_citizenship": allow_citizenship,
    "require_us_person": require_us_person,
    "deny_location": deny_location,
    "allow_location": allow_location,
    "deny_anonymizers": deny_anonymizers,
    "require_kyc": require_kyc,
    "deny_controlled_by": deny_controlled_by,
    "require_screening_clear": require_screening_clear,
}
RULE_ORDER: tuple[str, ...] = tuple(RULES)

#: Rule keys whose value is a set of countries (codes and group names).
COUNTRY_SET_RULES = frozenset(
    {"deny_citizenship", "allow_citizenship", "deny_location", "allow_location", "deny_controlled_by"}
)
