"""The decision core: reason codes, fail-closed rules, model-name aliasing."""

from __future__ import annotations

import pytest

from exportgate._types import KycLevel, ReasonCode, RequestContext, ScreeningStatus, Subject
from exportgate.policy import decide, parse_directive
from tests.conftest import at, us_citizen

R = ReasonCode


def codes(decision):
    return [r.code for r in decision.reasons]


def test_spec_example_cn_citizen_in_china(directive):
    subject = Subject("cn", citizenships=("CN",))
    decision = decide(subject, at("CN"), "fable-5", directive)
    assert decision.decision == "deny"
    assert codes(decision) == [R.US_PERSON_REQUIRED, R.LOCATION_NOT_ALLOWED, R.IDENTITY_INCOMPLETE]
    assert decision.reasons[1].rule == "allow_location" and decision.reasons[1].value == "CN"
    assert (decision.model, decision.tier) == ("fable-5", "domestic")
    assert (decision.directive_id, decision.directive_version) == ("frontier-ai-access", "2026-06-14.1")


def test_us_citizen_at_home_is_allowed(directive):
    decision = decide(us_citizen(), at("US"), "fable-5", directive)
    assert decision.allowed and decision.reasons == ()


@pytest.mark.parametrize(
    "spelling",
    [
        "FABLE-5",
        " fable5 ",
        "vendor/fable-5",
        "Fable-5-Latest",
        "ｆａｂｌｅ－５",
        "fa\u200bble-5",
        "\u202efable-5",
        "openai/ FABLE5",
        "a/b/fable-5",
    ],
)
def test_equivalent_spellings_decide_the_same(directive, spelling):
    for subject, context in [(us_citizen(), at("US")), (Subject("cn", citizenships=("CN",)), at("CN"))]:
        canonical = decide(subject, context, "fable-5", directive)
        variant = decide(subject, context, spelling, directive)
        assert variant._replace(requested_model="fable-5") == canonical
        assert variant.requested_model == spelling


@pytest.mark.parametrize("name", ["fable-6", "fable 5", "fable-5\x00", "fab1e-5", "fаble-5", ""])
def test_near_misses_are_unknown_and_denied(directive, name):
    decision = decide(us_citizen(), at("US"), name, directive)
    assert codes(decision) == [R.UNKNOWN_MODEL]
    assert decision.model is None and decision.tier is None


def test_restricted_tier_reasons():
    d = parse_directive(
        """
directive: t
version: "1"
tiers:
  r:
    deny_citizenship: [ear:D:5, MO]
    allow_citizenship: [five]
    deny_location: [ear:E:1]
    deny_anonymizers: [tor]
    require_kyc: basic
    deny_controlled_by: [CN]
    require_screening_clear: true
groups: {five: [US, GB, CA, AU, NZ, MO]}
models: {m: r}
"""
    )
    bad = Subject(
        "x",
        citizenships=("MO", "DE"),
        residencies=("RU",),
        kyc=KycLevel.NONE,
        controlled_by="CN",
        screening=ScreeningStatus.HIT,
    )
    decision = decide(bad, at("IR", "tor", "vpn"), "m", d)
    by_rule = {r.rule: r for r in decision.reasons}
    assert by_rule["deny_citizenship"].value == ("MO", "RU")
    assert by_rule["allow_citizenship"].code is R.CITIZENSHIP_NOT_ALLOWED and by_rule["allow_citizenship"].value == (
        "DE",
    )
    assert by_rule["deny_location"].code is R.LOCATION_DENIED
    assert by_rule["deny_anonymizers"].value == ("tor",)
    assert by_rule["require_kyc"].code is R.KYC_REQUIRED and by_rule["require_kyc"].value == "none"
    assert by_rule["deny_controlled_by"].code is R.CONTROLLED_BY_DENIED
    assert by_rule["require_screening_clear"].code is R.SCREENING_HIT
    assert [r.rule for r in decision.reasons] == [
        "deny_citizenship",
        "allow_citizenship",
        "deny_location",
        "deny_anonymizers",
        "require_kyc",
        "deny_controlled_by",
        "require_screening_clear",
    ]
    good = Subject("y", citizenships=("GB",), kyc=KycLevel.BASIC, controlled_by="GB", screening=ScreeningStatus.CLEAR)
    assert decide(good, at("GB", "vpn"), "m", d).allowed


def test_permanent_residency_counts_for_deemed_export(directive):
    decision = decide(
        Subject("x", citizenships=("DE",), residencies=("IR",), kyc=KycLevel.BASIC), at("DE"), "fable-5", directive
    )
    assert decision.decision == "deny"
    tiers = parse_directive('directive: t\nversion: "1"\ntiers: {r: {deny_citizenship: [IR]}}\nmodels: {m: r}\n')
    decision = decide(Subject("x", citizenships=("DE",), residencies=("IR",)), at("DE"), "m", tiers)
    assert codes(decision) == [R.CITIZENSHIP_DENIED] and decision.reasons[0].value == ("IR",)


FAIL_CLOSED = [
    ("deny_citizenship: [CU]", Subject("x", citizenships=None), at("US"), R.IDENTITY_INCOMPLETE, "citizenships"),
    ("deny_citizenship: [CU]", Subject("x", citizenships=()), at("US"), R.IDENTITY_INCOMPLETE, "citizenships"),
    (
        "deny_citizenship: [CU]",
        Subject("x", citizenships=("DE",), residencies=None),
        at("US"),
        R.IDENTITY_INCOMPLETE,
        "residencies",
    ),
    ("allow_citizenship: [US]", Subject("x", citizenships=None), at("US"), R.IDENTITY_INCOMPLETE, "citizenships"),
    ("require_us_person: true", Subject("x", citizenships=None), at("US"), R.IDENTITY_INCOMPLETE, "us_person"),
    (
        "require_us_person: true",
        Subject("x", citizenships=("DE",), residencies=None),
        at("US"),
        R.IDENTITY_INCOMPLETE,
        "us_person",
    ),
    ("deny_location: [CU]", us_citizen(), at(None), R.LOCATION_UNKNOWN, None),
    ("allow_location: [US]", us_citizen(), at(None), R.LOCATION_UNKNOWN, None),
    (
        "deny_anonymizers: true",
        us_citizen(),
        RequestContext(ip="1.2.3.4", country="US", anonymizers=None),
        R.ANONYMIZER_DENIED,
        "unknown",
    ),
    ("require_kyc: basic", us_citizen(kyc=None), at("US"), R.IDENTITY_INCOMPLETE, "kyc"),
    ("deny_controlled_by: [CN]", us_citizen(), at("US"), R.IDENTITY_INCOMPLETE, "controlled_by"),
    ("require_screening_clear: true", us_citizen(), at("US"), R.IDENTITY_INCOMPLETE, "screening"),
    (
        "require_screening_clear: true",
        us_citizen(screening=ScreeningStatus.PENDING),
        at("US"),
        R.SCREENING_PENDING,
        "pending",
    ),
]


@pytest.mark.parametrize(("rule", "subject", "context", "code", "value"), FAIL_CLOSED)
def test_missing_facts_never_allow(rule, subject, context, code, value):
    d = parse_directive(f'directive: t\nversion: "1"\ntiers: {{r: {{{rule}}}}}\nmodels: {{m: r}}\n')
    decision = decide(subject, context, "m", d)
    assert decision.decision == "deny"
    assert [(r.code, r.value) for r in decision.reasons] == [(code, value)]


def test_suspended_account_is_denied_for_every_model(directive):
    subject = us_citizen(suspended=True)
    for model in ("fable-5", "sonnet-4"):
        decision = decide(subject, at("US"), model, directive)
        assert codes(decision) == [R.ACCOUNT_SUSPENDED]
    assert codes(decide(subject, at("US"), "nope", directive)) == [R.ACCOUNT_SUSPENDED, R.UNKNOWN_MODEL]


UNKNOWN_ALLOW = """
directive: t
version: "1"
unknown_models: allow
tiers: {open: {}, dom: {allow_location: [US]}}
models: {fable-5: {tier: dom, aliases: [fable5]}, sonnet-4: open}
"""


def test_unknown_models_allow_lets_unlisted_models_through():
    d = parse_directive(UNKNOWN_ALLOW)
    decision = decide(us_citizen(), at("CN"), "other-model", d)
    assert decision.allowed and decision.model is None
    assert codes(decide(us_citizen(suspended=True), at("CN"), "other-model", d)) == [R.ACCOUNT_SUSPENDED]


@pytest.mark.parametrize("name", ["fable-5:beta", "FABLE-5@2026", "vendor/fable5-preview", "fable-5 "])
def test_suffixes_cannot_smuggle_a_restricted_model_under_unknown_allow(name):
    d = parse_directive(UNKNOWN_ALLOW)
    decision = decide(us_citizen(), at("CN"), name, d)
    assert decision.decision == "deny" and decision.model == "fable-5"
    assert codes(decision) == [R.LOCATION_NOT_ALLOWED]
    assert decision.requested_model == name


@pytest.mark.parametrize(
    ("cits", "res", "attested", "expected"),
    [
        (("US",), (), None, True),
        (("DE",), ("US",), None, True),
        (("DE",), (), True, True),
        (("US",), (), False, True),  # an attestation cannot remove citizenship
        (("DE",), (), None, False),
        (("DE",), (), False, False),
        (None, (), None, None),
        (("DE",), None, None, None),
        ((), (), None, None),
    ],
)
def test_us_person_derivation(cits, res, attested, expected):
    assert Subject("x", citizenships=cits, residencies=res, us_person_attested=attested).us_person is expected


def test_decision_serializes(directive):
    decision = decide(Subject("cn", citizenships=("CN",)), at("CN"), "FABLE5", directive)
    data = decision.as_dict()
    assert data["requested_model"] == "FABLE5" and data["model"] == "fable-5"
    assert data["reasons"][0] == {"code": "us_person_required", "rule": "require_us_person", "value": False}


def test_allow_decisions_are_shared_and_immutable(directive):
    first = decide(us_citizen(), at("US"), "fable-5", directive)
    second = decide(us_citizen(), at("US"), "fable-5", directive)
    assert first is second
    with pytest.raises(AttributeError):
        first.decision = "deny"  # type: ignore[misc]


def test_the_spelling_memo_is_bounded_whatever_names_clients_send(directive):
    long_names = [f"{'x' * 300}-{i}" for i in range(2000)]  # past the 256 characters a memo entry may hold
    for name in long_names:
        assert directive.resolve_model(name) is None
    assert not any(len(k) > 256 for k in directive._spellings)
    for i in range(10_000):
        directive.resolve_model(f"unknown-model-{i}")
    assert len(directive._spellings) <= 4096  # entries x characters: about 1 MiB at most
