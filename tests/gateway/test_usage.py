"""Token counts read from upstream answers: the small parse of a trailing ``usage`` member gives what
parsing the whole answer gives, wherever ``usage`` appears, however the answer is spaced, and whatever
its strings hold (``"usage":`` inside a string, escaped quotes in keys)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from exportgate.gateway._usage import UsageSniffer, usage_of

TRICKY = st.sampled_from(['"usage":', 'a"usage', '\\', '"usage":{"prompt_tokens":9}}', "usage", "}", "{"])
TEXT = st.text(max_size=6) | TRICKY
USAGE = st.fixed_dictionaries(
    {}, optional={"prompt_tokens": st.integers(0, 10**6), "completion_tokens": st.integers(0, 10**6),
                  "input_tokens": st.integers(0, 10**6), "output_tokens": st.integers(0, 10**6),
                  "prompt_tokens_details": st.fixed_dictionaries({"cached_tokens": st.integers(0, 9)})},
)  # fmt: skip
LEAF = st.none() | st.booleans() | st.integers(-5, 5) | TEXT | USAGE
KEYS = st.sampled_from(["usage", "id", "choices", "model", "message"]) | TEXT
VALUES = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
                      max_leaves=12)  # fmt: skip
ANSWERS = st.dictionaries(KEYS, VALUES, max_size=5)


def expected(answer: dict[str, Any]) -> dict[str, int] | None:
    usage = answer.get("usage")
    if not isinstance(usage, dict):
        return None
    names = {"prompt_tokens": "prompt_tokens", "completion_tokens": "completion_tokens",
             "input_tokens": "prompt_tokens", "output_tokens": "completion_tokens"}  # fmt: skip
    found = {}
    for key, name in names.items():
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            found[name] = value
    return found or None


@settings(max_examples=500)
@given(ANSWERS, st.sampled_from([None, 1, 2]), st.sampled_from(["", " ", "\n"]))
def test_usage_is_what_the_whole_answer_says(answer: dict[str, Any], indent: int | None, trailing: str):
    body = json.dumps(answer, indent=indent, ensure_ascii=False).encode() + trailing.encode()
    assert usage_of(body) == expected(answer)
    assert usage_of(orjson.dumps(answer)) == expected(answer)


def test_usage_last_is_read_from_the_tail_and_elsewhere_from_the_whole():
    last = b'{"id":"x","choices":[{"usage":{"prompt_tokens":1}}],"usage":{"prompt_tokens":7,"completion_tokens":2}}'
    first = b'{"usage":{"prompt_tokens":7,"completion_tokens":2},"choices":[{"usage":{"prompt_tokens":1}}]}'
    assert usage_of(last) == usage_of(first) == {"prompt_tokens": 7, "completion_tokens": 2}
    assert usage_of(b'{"a":"\\"usage\\":{\\"prompt_tokens\\":5}"}') is None
    assert usage_of(b"not json") is None and usage_of(b'{"usage": 5}') is None


def test_only_a_valid_answers_top_level_usage_counts():
    """Found by the outside pass against a parse of the trailing member only: tokens were recorded from
    answers that are not JSON, from a nested member of a truncated one, and missed ``"usage" :``."""
    assert usage_of(b'garbage,"usage":{"prompt_tokens":15}}') is None
    assert usage_of(b'{"id": oops,"usage":{"prompt_tokens":15}}') is None
    assert usage_of(b'{"a":{"b":1,"usage":{"prompt_tokens":99}}') is None  # truncated: its last brace is missing
    assert usage_of(b'{"a":1}{"usage":{"prompt_tokens":17}}') is None  # two documents
    assert usage_of(b'\xef\xbb\xbf{"usage":{"prompt_tokens":3}}') is None  # a BOM: not JSON to orjson
    assert usage_of(b'{"id":"a","usage" : {"prompt_tokens":19}}') == {"prompt_tokens": 19}
    assert usage_of(b'{"\\u0075sage":{"prompt_tokens":21}}') == {"prompt_tokens": 21}


@settings(max_examples=200)
@given(st.lists(st.integers(1, 40), max_size=8), st.integers(0, 10**6), st.integers(0, 10**6))
def test_a_stream_split_anywhere_gives_the_same_usage(cuts: list[int], prompt: int, completion: int):
    events = [b'data: {"choices":[{"delta":{"content":"usage"}}]}\n\n',
              b'data: {"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d}}\n\n' % (prompt, completion),
              b"data: [DONE]\n\n"]  # fmt: skip
    stream = b"".join(events)
    sniffer, at = UsageSniffer(), 0
    for cut in cuts:
        sniffer.feed(stream[at : at + cut])
        at += cut
    sniffer.feed(stream[at:])
    assert sniffer.result() == {"prompt_tokens": prompt, "completion_tokens": completion}
