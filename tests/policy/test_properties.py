"""Property tests of the decision core (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from exportgate._types import KycLevel, RequestContext, ScreeningStatus, Subject
from exportgate.policy import decide, parse_directive
from exportgate.policy._rules import RULES

CODES = ["US", "CN", "RU", "IR", "DE", "GB", "MO", "CU", "IN", "FR"]
DIRECTIVE = parse_directive(
    """
directive: props
version: "1"
tiers:
  open: {}
  everything:
    deny_citizenship: [CN, RU, IR, MO, CU]
    allow_citizenship: [US, DE, GB, IN, FR, CN]
    require_us_person: true
    deny_location: [CN, RU, IR, CU]
    allow_location: [US, DE, GB, FR]
    deny_anonymizers: true
    require_kyc: basic
    deny_controlled_by: [CN, RU]
    require_screening_clear: true
models:
  gated: {tier: everything, aliases: [gated-latest]}
  free: open
"""
)
TIER = DIRECTIVE.tiers["everything"]

maybe_codes = st.one_of(st.none(), st.lists(st.sampled_from(CODES), max_size=3).map(tuple))
subjects = st.builds(
    Subject,
    subject_id=st.just("p"),
    citizenships=maybe_codes,
    residencies=maybe_codes,
    us_person_attested=st.sampled_from([None, True, False]),
    kyc=st.sampled_from([None, *KycLevel]),
    screening=st.sampled_from([None, *ScreeningStatus]),
    controlled_by=st.sampled_from([None, *CODES]),
    suspended=st.booleans(),
)
contexts = st.builds(
    RequestContext,
    ip=st.just("192.0.2.1"),
    country=st.sampled_from([None, *CODES]),
    anonymizers=st.one_of(st.none(), st.frozensets(st.sampled_from(["tor", "vpn", "hosting"]))),
)


@settings(max_examples=400)
@given(subjects, contexts)
def test_allow_iff_every_rule_passes(subject, context):
    decision = decide(subject, context, "gated", DIRECTIVE)
    failing = [key for key, check in RULES.items() if check(TIER.rules[key], subject, context) is not None]
    assert decision.allowed == (not failing and not subject.suspended)
    assert [r.rule for r in decision.reasons if r.rule != "account"] == failing


@settings(max_examples=300)
@given(subjects, contexts)
def test_a_denied_citizenship_never_passes(subject, context):
    denied = TIER.rules["deny_citizenship"].members
    held = set(subject.citizenships or ()) | set(subject.residencies or ())
    if held & denied:
        assert not decide(subject, context, "gated", DIRECTIVE).allowed


@settings(max_examples=300)
@given(subjects, contexts)
def test_a_missing_attribute_never_allows(subject, context):
    missing = (
        not subject.citizenships
        or subject.residencies is None
        or subject.us_person is None
        or subject.kyc is None
        or subject.controlled_by is None
        or subject.screening is None
        or context.country is None
        or context.anonymizers is None
    )
    if missing:
        assert not decide(subject, context, "gated", DIRECTIVE).allowed


spellings = st.tuples(
    st.sampled_from(["gated", "GATED", "Gated-Latest", "gated-latest"]),
    st.sampled_from(["", "vendor/", "acme/ ", "x/y/"]),
    st.sampled_from(["", " ", "\t", "\u200b"]),
).map(lambda t: f"{t[2]}{t[1]}{t[0]}{t[2]}")


@settings(max_examples=300)
@given(subjects, contexts, spellings)
def test_equivalent_spellings_always_get_the_same_decision(subject, context, spelling):
    base = decide(subject, context, "gated", DIRECTIVE)
    other = decide(subject, context, spelling, DIRECTIVE)
    assert other._replace(requested_model="gated") == base


@settings(max_examples=200)
@given(subjects, contexts, st.text(max_size=20))
def test_any_name_gets_exactly_one_well_formed_decision(subject, context, name):
    decision = decide(subject, context, name, DIRECTIVE)
    assert decision.decision in ("allow", "deny")
    assert decision.allowed == (decision.reasons == ())
    if decision.model is None:
        assert not decision.allowed
