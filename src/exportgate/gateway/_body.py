"""What a model route accepts as a request body, so the gateway and any upstream read it the same way.

The gateway decides on the ``model`` it parsed; the upstream must act on that same model. JSON parsers
disagree on inputs the standard leaves open, and a body either could read differently is a way past the
decision: ``{"model": "restricted", "model": "open"}`` is the open model to a last-wins parser and the
restricted one to a first-wins parser, and a JSON body sent as a form reads as form fields to an
upstream that honours the content type. So (docs/gateway.md, "Request bodies"):

- the content type must be JSON (``application/json``, any ``charset`` but UTF-8 refused) or absent,
  else 415; the upstream is always sent ``content-type: application/json``;
- the body must be one JSON object in strict UTF-8 (no comments, NaN, trailing data: what orjson
  refuses), else 400;
- no object anywhere in it may hold two keys that some parser reads as one: the same key however
  it is escaped (``"model"`` and ``"mod\\u0065l"``), keys equal but for case (Go's encoding/json and
  .NET match keys case-insensitively: ``"MODEL"``), or keys equal up to a NUL (C parsers stop at it:
  ``"model\\u0000"``), else 400;
- no top-level key that lets an upstream choose another model than the one decided on
  (:data:`ROUTING_KEYS`: LiteLLM's ``fallbacks`` and ``user_config``, OpenRouter's ``models`` and
  ``route``, ``api_base`` and the like), else 400;
- nesting at most ``max_depth`` levels and at most ``max_elements`` values in all (parse cost and
  memory are bounded before the body is parsed), else 400 or 413;
- ``model`` a non-empty string of at most 256 bytes, else 400.

A body that passes has one reading, and the gateway forwards those bytes unchanged (or, when the
upstream's name for the model differs from what the caller wrote, the object re-encoded with that name:
then an integer past 64 bits becomes a float, as orjson reads it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from exportgate.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaError

from ._errors import shown

__all__ = ["MAX_MODEL_BYTES", "ROUTING_KEYS", "BodyLimits", "check_content_type", "parse_request"]

MAX_MODEL_BYTES = 256
#: Top-level body keys with which known upstreams (LiteLLM's proxy, OpenRouter, Azure, gateways of the
#: same kind) pick a model, a deployment or an endpoint other than ``model``: compared case-insensitively.
ROUTING_KEYS = frozenset({
    "models", "fallbacks", "fallback", "fallback_models", "context_window_fallbacks", "content_policy_fallbacks",
    "mock_testing_fallbacks", "user_config", "litellm_params", "model_list", "deployment_id", "deployment",
    "engine", "route", "api_base", "base_url", "api_key", "api_version", "extra_body", "model_id",
})  # fmt: skip


@dataclass(frozen=True)
class BodyLimits:
    max_depth: int = 64
    max_elements: int = 500_000
    #: Seconds the whole body may take to arrive (a client trickling it holds a connection and a task).
    timeout: float = 30.0


def check_content_type(value: bytes | None) -> None:
    """415 unless the content type is JSON in UTF-8, or absent."""
    if value is None:
        return
    media, _, params = value.partition(b";")
    if media.strip().lower() != b"application/json":
        raise UnsupportedMediaError("the request body must be JSON (Content-Type: application/json)")
    for param in params.split(b";"):
        name, _, charset = param.partition(b"=")
        if name.strip().lower() == b"charset" and charset.strip().strip(b'"').lower() not in (b"utf-8", b"utf8"):
            raise UnsupportedMediaError("the request body must be UTF-8 JSON")


def parse_request(body: bytes, limits: BodyLimits) -> tuple[dict[str, Any], str]:
    """The request object and its model, or the error a body outside the rules above gets."""
    # A value takes at least a byte of its own (a container two), so a body shorter than the limit is within it.
    if len(body) >= limits.max_elements and _separators(body) >= limits.max_elements \
            and _values_at_most(body) >= limits.max_elements:  # fmt: skip
        raise PayloadTooLargeError(f"the request body has more than {limits.max_elements} JSON values")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequestError("the request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise BadRequestError("the request body must be a JSON object")
    keys, depth = _shape(payload, limits.max_depth, b"\\u0000" in body)
    if depth > limits.max_depth:
        raise BadRequestError(f"the request body nests deeper than {limits.max_depth} levels")
    if body.count(b":") != keys and _raw_keys(body) != keys:  # colons in strings: count keys exactly
        raise BadRequestError("the request body repeats a key in an object; each key may appear once")
    routing = [k for k in payload if k.casefold() in ROUTING_KEYS]
    if routing:
        routing.sort()
        raise BadRequestError(f"the request body sets {shown(routing[0])!r}, with which an upstream could pick "
                              "another model than 'model': the gateway refuses it")  # fmt: skip
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequestError("'model' is required and must be a string")
    if len(model) > MAX_MODEL_BYTES or len(model.encode("utf-8")) > MAX_MODEL_BYTES:
        raise BadRequestError(f"'model' is longer than {MAX_MODEL_BYTES} bytes")
    return payload, model


def _shape(value: dict[str, Any], max_depth: int, nul: bool) -> tuple[int, int]:
    """Keys in every object, and the depth reached (level by level; stops one level past ``max_depth``);
    BadRequestError for an object holding two keys some parser reads as one (see the module docstring)."""
    keys, depth = 0, 0
    level: list[Any] = [value]
    while level and depth <= max_depth:
        depth += 1
        below: list[Any] = []
        for item in level:
            children: Any = item
            if type(item) is dict:
                size = len(item)
                keys += size
                children = item.values()
                if size > 1 and len({_loosest(k) for k in item} if nul else {k.casefold() for k in item}) != size:
                    raise BadRequestError("the request body has keys that differ only in case or after a NUL "
                                          "character; some parsers read them as one key")  # fmt: skip
            for child in children:
                kind = type(child)
                if kind is dict or kind is list:
                    below.append(child)
        level = below
    return keys, depth + (1 if level else 0)


def _outside_strings(body: bytes) -> bytes:
    """The body with every string's contents removed (escaped quotes and backslashes first)."""
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(body.split(b'"')[0::2])


def _raw_keys(body: bytes) -> int:
    """Keys as written: outside strings, every ``:`` follows a key."""
    return _outside_strings(body).count(b":")


def _loosest(key: str) -> str:
    """A key as the loosest parser reads it: cut at a NUL (C), compared without case (Go, .NET). Only
    when the body holds an escaped NUL at all; otherwise keys are compared case-folded as they are."""
    return key.split("\x00", 1)[0].casefold()


def _separators(body: bytes) -> int:
    """An upper bound on a (valid) body's values, counted over the raw bytes: every value but the first
    follows a comma or opens a container (``[[[...]]]`` has no comma at all)."""
    return body.count(b",") + body.count(b"[") + body.count(b"{")


def _values_at_most(body: bytes) -> int:
    """The same bound, counted outside strings only (when the raw one says there may be too many)."""
    return _separators(_outside_strings(body)) + 1
