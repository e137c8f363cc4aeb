"""Token counts from upstream answers, JSON or SSE, without parsing what need not be parsed."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["UsageSniffer", "usage_of"]

_KEYS = {
    "prompt_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens",
    "input_tokens": "prompt_tokens",
    "output_tokens": "completion_tokens",
}


def _merge(into: dict[str, int], usage: Any) -> None:
    if isinstance(usage, dict):
        for key, name in _KEYS.items():
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                into[name] = value


def usage_of(body: bytes) -> dict[str, int] | None:
    """``usage`` of a JSON answer (OpenAI chat/completions/embeddings/responses, Anthropic messages)."""
    at = body.rfind(b'"usage":')
    if at < 0:
        return None
    value = _last_member(body, at + 8) if at and body[at - 1] != 0x5C else _UNSURE  # 0x5C: a backslash
    if value is _UNSURE:
        try:
            whole = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        value = whole.get("usage") if isinstance(whole, dict) else None
    found: dict[str, int] = {}
    _merge(found, value)
    return found or None


_UNSURE = object()


def _last_member(body: bytes, start: int) -> Any:
    """The value from ``start`` to the body's closing brace, when that is one JSON value: then the key
    before it is the top-level object's last member (a key nested deeper would leave a second closing
    bracket in the slice, which then does not parse; a raw ``"usage":`` is a key, as a quote inside a
    string is escaped). Upstreams put ``usage`` last, so one small parse replaces parsing the answer.
    Anything else is :data:`_UNSURE`, and the whole answer is parsed."""
    end = len(body.rstrip()) - 1
    if end <= start or body[end] != 0x7D:  # 0x7D: the closing brace
        return _UNSURE
    try:
        return orjson.loads(body[start:end])
    except orjson.JSONDecodeError:
        return _UNSURE


class UsageSniffer:
    """Collects usage from SSE events as they pass (OpenAI's final usage chunk; Anthropic's
    ``message_start`` and ``message_delta``). Only chunks that mention usage are parsed."""

    def __init__(self) -> None:
        self.found: dict[str, int] = {}
        self._partial = b""  # an incomplete last line, kept for the next chunk

    def feed(self, chunk: bytes) -> None:
        data = self._partial + chunk if self._partial else chunk
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:][-65536:]
        if data.find(b'"usage"', 0, cut) < 0:
            return
        for line in data[:cut].split(b"\n"):
            if line.startswith(b"data:") and b'"usage"' in line:
                try:
                    event = orjson.loads(line[5:])
                except orjson.JSONDecodeError:
                    continue
                if isinstance(event, dict):
                    _merge(self.found, event.get("usage"))
                    message = event.get("message") or event.get("response")
                    if isinstance(message, dict):
                        _merge(self.found, message.get("usage"))

    def result(self) -> dict[str, int] | None:
        return dict(self.found) or None
