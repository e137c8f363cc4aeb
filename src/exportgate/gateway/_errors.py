"""Every error answer the gateway gives, in the calling API's own shape.

OpenAI routes: ``{"error": {"message", "type", "code", "param"}}``;
Anthropic routes: ``{"type": "error", "error": {"type", "message"}}``. Both
carry ``request_id`` and, for policy denials, every reason code. Legal
denials are 451 (RFC 7725) with ``Link: <operator-url>; rel="blocked-by"``.
"""

from __future__ import annotations

from typing import Any

import orjson

from exportgate._types import Decision, ReasonCode

__all__ = ["SHOWN", "ErrorAnswer", "denial", "error_answer", "shown"]

#: OpenAI error ``type`` by status.
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    451: "access_denied",
    502: "upstream_error",
    503: "service_unavailable",
    504: "upstream_timeout",
}
#: Anthropic error ``type`` by status.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    408: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    451: "access_denied",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
}

ErrorAnswer = tuple[int, bytes, list[tuple[bytes, bytes]]]


def error_answer(
    api: str,
    status: int,
    code: str,
    message: str,
    request_id: str,
    *,
    reasons: list[dict[str, Any]] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> ErrorAnswer:
    """The status, body and extra headers of an error answer on an ``api`` (``openai``/``anthropic``) route."""
    error: dict[str, Any]
    if api == "anthropic":
        error = {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message, "code": code}
        body: dict[str, Any] = {"type": "error", "error": error, "request_id": request_id}
    else:
        error = {"message": message, "type": _OPENAI_TYPES.get(status, "server_error"), "code": code, "param": None}
        body = {"error": error, "request_id": request_id}
    if reasons is not None:
        error["reasons"] = reasons
    extra = [(b"x-request-id", request_id.encode())]
    if headers:
        extra.extend(headers)
    return status, orjson.dumps(body), extra


#: The most of a client's own value (a model name) an answer repeats back.
SHOWN = 64


def shown(value: str) -> str:
    """A client's value as an answer repeats it: at most :data:`SHOWN` characters."""
    return value if len(value) <= SHOWN else value[:SHOWN] + "..."


def denial(api: str, decision: Decision, request_id: str, blocked_by: str) -> ErrorAnswer:
    """A policy denial: 404 for an unknown model, otherwise 451 with the blocked-by link."""
    reasons = [r.as_dict() for r in decision.reasons]
    codes = [r.code for r in decision.reasons]
    if codes == [ReasonCode.UNKNOWN_MODEL]:
        model = shown(decision.requested_model)
        return error_answer(
            api,
            404,
            "model_not_found",
            f"The model '{model}' does not exist or you do not have access to it.",
            request_id,
            reasons=[{**r, "value": shown(str(r["value"]))} for r in reasons],
        )
    first = codes[0] if codes else "access_denied"
    message = (
        f"Access to model '{decision.model}' is denied under {decision.directive_id} {decision.directive_version}: "
        + ", ".join(codes)
    )
    link = [(b"link", f'<{blocked_by}>; rel="blocked-by"'.encode())]
    return error_answer(api, 451, str(first), message, request_id, reasons=reasons, headers=link)
