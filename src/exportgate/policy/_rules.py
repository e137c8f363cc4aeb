"""The directive's rule keys, their checks, and the order they run in.

Evaluation order (docs/directives.md, "Rules, in evaluation order"; every failing rule is reported,
none short-cuts):

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

from collections.abc import Callable, Iterator
from typing import Any

from exportgate._types import KycLevel, Reason, ReasonCode, RequestContext, ScreeningStatus, Subject

__all__ = ["COUNTRY_SET_RULES", "RULE_ORDER", "RULES", "Check", "MemberSet"]

Check = Callable[[Any, Subject, RequestContext], "Reason | None"]

_INCOMPLETE = ReasonCode.IDENTITY_INCOMPLETE


class MemberSet:
    """A rule's resolved set (countries, anonymizer kinds) plus memos of its answers.

    Reasons are immutable, so one instance per (code, value) is shared by
    every decision: a denial allocates no new reasons after the first.
    ``by_flags`` memoizes the anonymizer answer per (interned) flag set.
    """

    __slots__ = ("_memo", "by_flags", "members")

    def __init__(self, members: frozenset[str]) -> None:
        self.members = members
        self._memo: dict[tuple[str, str, object], Reason] = {}
        self.by_flags: dict[frozenset[str], Reason | None] = {}

    def __contains__(self, code: object) -> bool:
        return code in self.members

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.members))

    def __len__(self) -> int:
        return len(self.members)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MemberSet):
            return self.members == other.members
        return self.members == other

    def __hash__(self) -> int:
        return hash(self.members)

    def __repr__(self) -> str:
        return f"MemberSet({sorted(self.members)})"

    def reason(self, code: ReasonCode, rule: str, value: object) -> Reason:
        key = (code, rule, value)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = Reason(code, rule, value)
        return found


_NO_CITIZENSHIPS = {
    rule: Reason(_INCOMPLETE, rule, "citizenships") for rule in ("deny_citizenship", "allow_citizenship")
}
_NO_RESIDENCIES = Reason(_INCOMPLETE, "deny_citizenship", "residencies")


def deny_citizenship(denied: MemberSet, subject: Subject, _: RequestContext) -> Reason | None:
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


def allow_citizenship(allowed: MemberSet, subject: Subject, _: RequestContext) -> Reason | None:
    cits = subject.citizenships
    if not cits:
        return _NO_CITIZENSHIPS["allow_citizenship"]
    members = allowed.members
    outside = [code for code in cits if code not in members]
    if outside:
        return allowed.reason(ReasonCode.CITIZENSHIP_NOT_ALLOWED, "allow_citizenship", tuple(sorted(set(outside))))
    return None


_US_PERSON_UNKNOWN = Reason(_INCOMPLETE, "require_us_person", "us_person")
_NOT_US_PERSON = Reason(ReasonCode.US_PERSON_REQUIRED, "require_us_person", False)


def require_us_person(_: bool, subject: Subject, __: RequestContext) -> Reason | None:
    status = subject.us_person
    if status is None:
        return _US_PERSON_UNKNOWN
    return None if status else _NOT_US_PERSON


_LOCATION_UNKNOWN = {
    rule: Reason(ReasonCode.LOCATION_UNKNOWN, rule, None) for rule in ("deny_location", "allow_location")
}


def deny_location(denied: MemberSet, _: Subject, context: RequestContext) -> Reason | None:
    country = context.country
    if country is None:
        return _LOCATION_UNKNOWN["deny_location"]
    if country in denied.members:
        return denied.reason(ReasonCode.LOCATION_DENIED, "deny_location", country)
    return None


def allow_location(allowed: MemberSet, _: Subject, context: RequestContext) -> Reason | None:
    country = context.country
    if country is None:
        return _LOCATION_UNKNOWN["allow_location"]
    if country not in allowed.members:
        return allowed.reason(ReasonCode.LOCATION_NOT_ALLOWED, "allow_location", country)
    return None


_ANONYMIZER_UNKNOWN = Reason(ReasonCode.ANONYMIZER_DENIED, "deny_anonymizers", "unknown")


def deny_anonymizers(kinds: MemberSet, _: Subject, context: RequestContext) -> Reason | None:
    flags = context.anonymizers
    if flags is None:
        return _ANONYMIZER_UNKNOWN
    if not flags:
        return None
    memo = kinds.by_flags
    if flags in memo:
        return memo[flags]
    hit = kinds.members & flags
    reason = kinds.reason(ReasonCode.ANONYMIZER_DENIED, "deny_anonymizers", tuple(sorted(hit))) if hit else None
    if len(memo) < _FLAG_MEMO_SIZE:
        memo[flags] = reason
    return reason


_FLAG_MEMO_SIZE = 64  # there are 8 possible flag sets; the bound guards odd callers


_KYC_UNKNOWN = Reason(_INCOMPLETE, "require_kyc", "kyc")
_KYC_TOO_LOW = {level: Reason(ReasonCode.KYC_REQUIRED, "require_kyc", level.label) for level in KycLevel}


def require_kyc(level: KycLevel, subject: Subject, _: RequestContext) -> Reason | None:
    kyc = subject.kyc
    if kyc is None:
        return _KYC_UNKNOWN
    return _KYC_TOO_LOW[kyc] if kyc < level else None


_CONTROLLER_UNKNOWN = Reason(_INCOMPLETE, "deny_controlled_by", "controlled_by")


def deny_controlled_by(denied: MemberSet, subject: Subject, _: RequestContext) -> Reason | None:
    country = subject.controlled_by
    if country is None:
        return _CONTROLLER_UNKNOWN
    if country in denied.members:
        return denied.reason(ReasonCode.CONTROLLED_BY_DENIED, "deny_controlled_by", country)
    return None


_SCREENING = {
    None: Reason(_INCOMPLETE, "require_screening_clear", "screening"),
    ScreeningStatus.PENDING: Reason(ReasonCode.SCREENING_PENDING, "require_screening_clear", "pending"),
    ScreeningStatus.HIT: Reason(ReasonCode.SCREENING_HIT, "require_screening_clear", "hit"),
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
