"""The gateway's sealing path (``seal_decision``, parts encoded once per subject, decision and place) is
the record ``entry_for(...).seal()`` gives, to the byte, signals column included; and it refuses exactly
what that refuses, whatever the cache holds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exportgate._types import Decision, KycLevel, Reason, ReasonCode, RequestContext, ScreeningStatus, Subject
from exportgate.audit import entry_for, seal_decision
from exportgate.errors import UnrecordableError

#: Any text, and often the characters that break encoders: lone surrogates, NUL, the signals separator,
#: commas, quotes, backslashes, line breaks (st.text alone almost never yields a surrogate).
TRICKY = st.sampled_from(["\ud800", "\udfff", "\x00", "\x1f", ",", '"', "\\", "\n", "\x85", "a", "é"])
TEXT = st.text(max_size=10) | st.text(TRICKY, max_size=6)

subjects = st.none() | st.builds(
    Subject,
    subject_id=TEXT,
    citizenships=st.none() | st.lists(TEXT, max_size=3).map(tuple),
    residencies=st.none() | st.lists(TEXT, max_size=3).map(tuple),
    us_person_attested=st.none() | st.booleans(),
    kyc=st.none() | st.sampled_from(list(KycLevel)),
    screening=st.none() | st.sampled_from(list(ScreeningStatus)),
    controlled_by=st.none() | TEXT,
    suspended=st.booleans(),
    name=st.none() | TEXT,
    organization=st.none() | TEXT,
    key_id=st.none() | TEXT,
    source=st.sampled_from(["account", "api_key", "jwt"]),
)
decisions = st.builds(
    Decision,
    decision=st.sampled_from(["allow", "deny"]),
    requested_model=TEXT,
    model=st.none() | TEXT,
    tier=st.none() | TEXT,
    directive_id=TEXT,
    directive_version=TEXT,
    reasons=st.lists(
        st.builds(Reason, st.sampled_from(list(ReasonCode)), TEXT, st.none() | TEXT | st.integers()), max_size=3
    ).map(tuple),
)
contexts = st.builds(
    RequestContext,
    ip=st.none() | TEXT | st.ip_addresses().map(str),
    country=st.none() | TEXT,
    anonymizers=st.none() | st.frozensets(TEXT, max_size=3),
)


def _sealed(how, *args, **kwargs):  # type: ignore[no-untyped-def]
    try:
        return how(*args, **kwargs)
    except UnrecordableError:
        return UnrecordableError


@settings(max_examples=1000)
@given(decisions, subjects, contexts, TEXT, st.integers(0, 2**63 - 1), st.none() | TEXT,
       st.none() | st.integers(100, 599), st.integers(1, 3))  # fmt: skip
def test_the_gateways_sealing_is_entry_for_sealed(
    decision: Decision,
    subject: Subject | None,
    context: RequestContext,
    request_id: str,
    time_ns: int,
    sha: str | None,
    status: int | None,
    repeat: int,
):
    def slow():  # type: ignore[no-untyped-def]
        entry = entry_for(decision, subject, context, request_id=request_id, time_ns=time_ns,
                          directive_sha256=sha, http_status=status)  # fmt: skip
        return entry.seal()

    expected = _sealed(slow)
    for _ in range(repeat):  # the second time from the caches
        got = _sealed(seal_decision, decision, subject, context, request_id=request_id, time_ns=time_ns,
                      directive_sha256=sha, http_status=status)  # fmt: skip
        assert got == expected


def test_a_cached_part_is_never_another_objects():
    """Parts are cached by identity, holding the object: a new subject at a reused address is encoded anew."""
    seen = set()
    for n in range(50):
        subject = Subject(f"user-{n}", citizenships=("US",))
        record = seal_decision(Decision("allow", "m", "m", "t", "d", "1", ()), subject, RequestContext("1.2.3.4", "US"),
                               request_id=f"req_{n}", time_ns=n)  # fmt: skip
        assert f'"subject_id":"user-{n}"' in record.tail
        seen.add(id(subject))
        del subject
    assert seen  # addresses were reused or not: every record named its own subject


def test_a_nul_in_an_indexed_column_is_refused_from_the_cache_too():
    decision = Decision("allow", "m", "m\x00", "t", "d", "1", ())
    for _ in range(2):
        with pytest.raises(UnrecordableError):
            seal_decision(decision, None, RequestContext(), request_id="req_1", time_ns=1)
