"""The access log: one JSON line per request whatever the request carried. The decision's fields are
encoded once per decision; a value a client controls (account, model) may hold quotes, line breaks or a
lone surrogate, and the line still parses and says what was seen (a surrogate as a backslash escape)."""

from __future__ import annotations

import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from exportgate._logs import printable
from exportgate._types import Decision, Reason, ReasonCode, RequestContext
from exportgate.gateway._logging import AccessLog

#: Any text, and often the characters that break encoders: lone surrogates, NUL, the signals separator,
#: commas, quotes, backslashes, line breaks (st.text alone almost never yields a surrogate).
TRICKY = st.sampled_from(["\ud800", "\udfff", "\x00", "\x1f", ",", '"', "\\", "\n", "\x85", "a", "é"])
TEXT = st.text(max_size=10) | st.text(TRICKY, max_size=6)
decisions = st.none() | st.builds(
    Decision, st.sampled_from(["allow", "deny"]), TEXT, st.none() | TEXT, st.none() | TEXT, TEXT, TEXT,
    st.lists(st.builds(Reason, st.sampled_from(list(ReasonCode)), TEXT, TEXT), max_size=2).map(tuple),
)  # fmt: skip


@settings(max_examples=300)
@given(decisions, st.none() | TEXT, st.none() | TEXT, st.none() | TEXT, st.integers(100, 599),
       st.floats(0, 1000), st.integers(1, 2))  # fmt: skip
def test_every_request_is_one_line_that_says_what_was_seen(
    decision: Decision | None, account: str | None, ip: str | None, country: str | None, status: int,
    seconds: float, times: int,
) -> None:  # fmt: skip
    stream = io.BytesIO()
    log = AccessLog(stream)
    for _ in range(times):  # the second line comes from the decision's cached fields
        log.request("req_1", "/v1/chat/completions", status, decision, account, RequestContext(ip, country), seconds)
    log.flush()
    lines = stream.getvalue().decode("utf-8").split("\n")[:-1]  # a line ends at \n only (not at U+0085)
    assert len(lines) == times
    for line in lines:
        seen = json.loads(line)
        assert seen["event"] == "request" and seen["status"] == status and seen["route"] == "/v1/chat/completions"
        assert seen["account"] == printable(account) and seen["client_ip"] == printable(ip)
        assert seen["country"] == printable(country)
        assert seen["decision"] == (decision.decision if decision else None)
        assert seen["model"] == printable(decision.model if decision else None)
        assert seen["reasons"] == ([r.code.value for r in decision.reasons] if decision else None)
        assert abs(seen["latency_ms"] - seconds * 1000) <= 0.0005 + 1e-9 * seconds * 1000
