"""The admin API: a plain ASGI app over :mod:`exportgate.actions` (routes in ``_routes``).

JSON in and out; every error is ``{"error": {"code", "message"}}`` with its status. Request bodies are one
JSON object of at most 1 MiB (a directive: 4 MiB of YAML), duplicate or unknown keys refused (400), so what
was acted on is exactly what was sent. The store work runs on a thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from exportgate._asgi import BodyTooLarge, ClientGone, Receive, Scope, Send, read_body, send_bytes, send_json
from exportgate.actions import Actions, Actor
from exportgate.audit import AdminAction, AuditStore, AuditWriter
from exportgate.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    DirectiveError,
    ExportgateError,
    ForbiddenError,
)
from exportgate.monitor import AlertStore
from exportgate.screening import ScreeningStore
from exportgate.state import AdminToken, AdminTokens, Database

from ._handlers import Handlers, Reply, Stream
from ._openapi import openapi
from ._routes import Route, match

__all__ = ["AdminApp", "AdminParts"]

log = logging.getLogger("exportgate.admin")
MAX_BODY = 1 << 20
MAX_DIRECTIVE = 4 << 20


@dataclass
class AdminParts:
    state: Database
    alerts: AlertStore
    audit: AuditWriter
    records: AuditStore  # the audit record, read (decisions, evidence, verification)
    trusted: Any = None  # the keys audit/status verifies checkpoints with
    extra: dict[str, Any] = field(default_factory=dict)
    screening: ScreeningStore | None = None  # shared by every request: the list index is built once


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    headers: dict[bytes, bytes]
    body: bytes
    token: AdminToken | None = None
    request_id: str = ""


class AdminApp:
    def __init__(self, parts: AdminParts) -> None:
        self.parts = parts
        self.tokens = AdminTokens(parts.state)
        self._document = orjson.dumps(openapi())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        rid = "adm_" + time.strftime("%Y%m%d%H%M%S") + f"{time.perf_counter_ns() % 1_000_000:06d}"
        try:
            await self._handle(scope, receive, send, rid)
        except ClientGone:
            return
        except ExportgateError as exc:
            await _error(send, exc.status, exc.code, exc.message, rid)
        except Exception:  # a bug: logged, a 500, nothing half-done is reported as done
            log.exception("admin API: unexpected error on %s %s", scope.get("method"), scope.get("path"))
            with contextlib.suppress(Exception):
                await _error(send, 500, "internal_error", "internal error", rid)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.parts.audit.close()
        for part in (self.parts.records, self.parts.alerts, self.parts.state):
            with contextlib.suppress(Exception):
                part.close()

    async def _handle(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        method, path = scope["method"], scope["path"]
        raw = scope.get("raw_path")
        try:
            route, params, other = match(method, raw.decode("latin-1").partition("?")[0] if raw else path)
        except UnicodeDecodeError:
            await _error(send, 400, "invalid_request", "a path parameter is not UTF-8", rid)
            return
        query_string = scope.get("query_string", b"").decode("latin-1")
        if any("\x00" in v for v in params.values()) or "%00" in query_string or "\x00" in path:
            await _error(send, 400, "invalid_request", "a NUL character in the path or the query", rid)
            return
        if route is None:
            status, code = (405, "method_not_allowed") if other else (404, "not_found")
            await _error(send, status, code, f"no route {method} {path[:200]!r}", rid)
            return
        if route.handler == "openapi":
            await send_bytes(send, 200, self._document)
            return
        limit = MAX_DIRECTIVE if route.handler == "publish_directive" else MAX_BODY
        try:
            body = await read_body(receive, limit) if method in ("POST", "PATCH", "DELETE") else b""
        except BodyTooLarge:
            await _error(send, 413, "request_too_large", f"request body larger than {limit >> 20} MiB", rid)
            return
        try:
            query = urllib.parse.parse_qs(query_string, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            await _error(send, 400, "invalid_request", "a query parameter is not UTF-8", rid)
            return
        request = Request(method, path, params, query, dict(scope["headers"]), body, request_id=rid)
        loop = asyncio.get_running_loop()
        reply: Reply | Stream = await loop.run_in_executor(None, self._dispatch, route, request)
        if isinstance(reply, Stream):
            await _stream(send, reply)
        else:
            await send_json(send, reply.status, reply.body, [(b"x-request-id", rid.encode()), *reply.headers])

    def _dispatch(self, route: Route, request: Request) -> Reply | Stream:
        """On a worker thread: who is asking, may they, then the handler."""
        try:
            token = self._authenticate(route, request)
        except ExportgateError as exc:
            return Reply(exc.status, _error_body(exc.code, exc.message, request.request_id),
                         [(b"www-authenticate", b"Bearer")] if exc.status == 401 else [])  # fmt: skip
        request.token = token
        actor = Actor(token.name, token.role, "api")
        actions = Actions(self.parts.state, self.parts.audit, actor, alerts=self.parts.alerts,
                          screening=self.parts.screening)  # fmt: skip
        handler: Callable[[Request], Reply | Stream] = getattr(Handlers(actions, self.parts), route.handler)
        try:
            return handler(request)
        except (ConfigError, DirectiveError) as exc:  # what was sent does not validate: the caller's to fix
            body = _error_body(exc.code, exc.message, request.request_id)
            problems = getattr(exc, "problems", None)
            if problems:
                body["error"]["problems"] = [{"line": line, "message": message} for line, message in problems]
            return Reply(400, body)
        except ExportgateError as exc:
            if exc.status == 500:
                log.error("admin API %s %s: %s", request.method, request.path, exc)
            return Reply(exc.status, _error_body(exc.code, exc.message, request.request_id))

    def _authenticate(self, route: Route, request: Request) -> AdminToken:
        value = request.headers.get(b"authorization", b"")
        scheme, _, secret = value.partition(b" ")
        try:
            if scheme.lower() != b"bearer" or not secret.strip():
                raise AuthenticationError("this endpoint needs an admin token (Authorization: Bearer egadm_...)")
            token = self.tokens.verify(secret.strip().decode("ascii", "replace"))
        except AuthenticationError as exc:
            self._denied(request, "anonymous", "none", route, 401, exc.message)
            raise
        assert route.role is not None
        if not token.may(route.role):
            message = f"{route.method} {route.path} needs the {route.role} role; this token is {token.role}"
            self._denied(request, token.name, token.role, route, 403, message)
            raise ForbiddenError(message)
        return token

    def _denied(self, request: Request, actor: str, role: str, route: Route, status: int, why: str) -> None:  # noqa: PLR0917
        """A refused request is on the record too (who tried what)."""
        entry = AdminAction(time.time_ns(), actor, role, "api", "api.denied", f"{route.method} {request.path}",
                            None, {"status": status, "reason": why}, None, None, request.request_id)  # fmt: skip
        try:
            self.parts.audit.append(entry)
        except ExportgateError as exc:
            log.error("admin API: a refused request could not be recorded: %s", exc)


def _error_body(code: str, message: str, rid: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": rid}}


async def _error(send: Send, status: int, code: str, message: str, rid: str) -> None:
    await send_json(send, status, _error_body(code, message, rid), [(b"x-request-id", rid.encode())])


async def _stream(send: Send, stream: Stream) -> None:
    """A streamed export: rows are produced on a worker thread, a chunk at a time."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", stream.content_type),
                (b"content-disposition", b"attachment; filename=" + stream.filename)]})  # fmt: skip
    loop = asyncio.get_running_loop()
    chunks: Iterator[bytes] = stream.chunks
    while True:
        chunk = await loop.run_in_executor(None, next, chunks, None)
        if chunk is None:
            break
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def parse_json_object(body: bytes) -> dict[str, Any]:
    """One JSON object; a duplicate key is refused (a reader that keeps the first and one that keeps the
    last would act on different values)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        if len(keys) != len(set(keys)):
            raise BadRequestError("duplicate key in the JSON body")
        return dict(items)

    import json  # noqa: PLC0415 - the stdlib parser for its object_pairs_hook

    try:
        value = json.loads(body.decode("utf-8") or "{}", object_pairs_hook=pairs)
    except (ValueError, RecursionError) as exc:
        raise BadRequestError(f"the body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise BadRequestError("the body must be a JSON object")
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequestError("the body holds a lone surrogate (\\ud800-\\udfff): not text") from None
    return value
