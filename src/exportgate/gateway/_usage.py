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
    """``usage`` of a JSON answer (OpenAI chat/completions/embeddings/responses, Anthropic messages): the
    top-level member of the answer parsed whole. (Parsing only a trailing ``"usage":`` member was tried
    and dropped: it cannot tell a valid answer from one that only ends like one, and it missed
    ``"usage" :`` and an escaped key. An answer that is not JSON records no tokens.)"""
    if b"usage" not in body and b"\\u" not in body:
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    found: dict[str, int] = {}
    if isinstance(value, dict):
        _merge(found, value.get("usage"))
    return found or None


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
