"""The gateway: a plain ASGI app that decides every call before it reaches a model.

Per request (docs/gateway.md): authenticate -> client IP (trusted proxies)
-> country and anonymizer flags -> ``policy.decide`` -> audit record (strict:
committed before anything is forwarded) -> deny in the API's own error shape,
or forward and pass the answer through, chunk by chunk for streams -> the
outcome (statuses, latency, tokens), written in batched ``outcomes`` audit rows. Whatever cannot be
established denies: a store that is down is a 503, an unknown country or
anonymizer status is a 451 from the decision core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from exportgate._asgi import (
    BodyTooLarge,
    ClientGone,
    RawHeaders,
    Receive,
    Scope,
    Send,
    read_body,
    send_bytes,
    send_json,
)
from exportgate._types import Decision, RequestContext, Subject
from exportgate.audit import AuditWriter, Outcome, OutcomeBatch, entry_for
from exportgate.errors import BadRequestError, ExportgateError, StoreError, UpstreamError
from exportgate.geo import GeoLookup
from exportgate.identity import Authenticator
from exportgate.policy import decide

from ._clientip import ClientIpResolver
from ._directives import DirectiveHolder
from ._errors import ErrorAnswer, denial, error_answer
from ._logging import AccessLog
from ._metrics import Metrics
from ._monitoring import BackgroundMonitor
from ._upstream import FORWARD_REQUEST, Routing, Transport, Upstream, UpstreamResponse
from ._usage import UsageSniffer, usage_of

__all__ = ["Gateway", "GatewayParts"]

log = logging.getLogger("exportgate.gateway")

#: POST routes: path -> the API whose shapes it speaks.
API_ROUTES = {
    "/v1/chat/completions": "openai",
    "/v1/completions": "openai",
    "/v1/embeddings": "openai",
    "/v1/responses": "openai",
    "/v1/messages": "anthropic",
}


@dataclass
class GatewayParts:
    """Everything a gateway needs; built from settings by ``create_app`` or by tests directly."""

    directives: DirectiveHolder
    authenticator: Authenticator
    geo: GeoLookup
    audit: AuditWriter
    routing: Routing
    transports: dict[str, Transport]  # "http" and "local" (the simulator)
    client_ip: ClientIpResolver = field(default_factory=ClientIpResolver)
    blocked_by: str = "/directive"
    max_body: int = 32 * 1024 * 1024
    access_log: AccessLog | None = None
    metrics: Metrics = field(default_factory=Metrics)
    watch_interval: float = 1.0
    monitor: BackgroundMonitor | None = None


@dataclass
class _Call:
    """One request's facts as they are established."""

    request_id: str
    api: str
    route: str
    started: float
    subject: Subject | None = None
    context: RequestContext = field(default_factory=RequestContext)
    decision: Decision | None = None
    status: int = 0


class Gateway:
    #: Outcomes are written every OUTCOME_SECONDS or OUTCOME_BATCH requests, whichever comes first.
    OUTCOME_BATCH = 256
    OUTCOME_SECONDS = 0.1

    def __init__(self, parts: GatewayParts) -> None:
        self.parts = parts
        self.metrics = parts.metrics
        self._outcomes: list[Outcome] = []
        self._outcome_timer: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False

    # -- ASGI ------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            api = API_ROUTES.get(path)
            try:
                if api is not None and scope["method"] == "POST":
                    await self._proxy(scope, receive, send, api, path)
                else:
                    await self._other(scope, receive, send, path)
            except Exception:  # a bug, not a user error: logged, answered 500, never forwarded
                log.exception("unexpected error on %s %s", scope["method"], path)
                with contextlib.suppress(Exception):
                    await _send_answer(
                        send, error_answer(api or "openai", 500, "internal_error", "internal error", _request_id())
                    )
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def start(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.ensure_future(self._watch())
            if self.parts.monitor is not None:
                self.parts.monitor.start()

    async def close(self) -> None:
        """Stop watching, close upstream connections, drain the audit queue (final checkpoint)."""
        if self._closed:
            return
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
        if self.parts.monitor is not None:
            self.parts.monitor.close()
        await self._flush_outcomes()
        for transport in self.parts.transports.values():
            await transport.close()
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.parts.audit.close)
        except StoreError as exc:
            log.error("audit writer closed with unwritten records: %s", exc)
        self.metrics.save()
        if self.parts.access_log is not None:
            self.parts.access_log.flush()

    async def _watch(self) -> None:
        parts = self.parts
        while True:
            await asyncio.sleep(parts.watch_interval)
            if parts.directives.changed():
                outcome = "ok" if parts.directives.reload() else "refused"
                self.metrics.count("exportgate_directive_reloads_total", (outcome,))
            self.metrics.save()
            if parts.access_log is not None:
                parts.access_log.flush()

    # -- the proxied API routes ----------------------------------------------------

    async def _proxy(self, scope: Scope, receive: Receive, send: Send, api: str, path: str) -> None:
        call = _Call(_request_id(), api, path, time.perf_counter())
        token, forwarded_for, upstream_headers = _read_headers(scope["headers"])
        try:
            body = await read_body(receive, self.parts.max_body)
            payload, model = _payload(body)
            call.subject = self.parts.authenticator.authenticate(token)
            call.context = self._context(scope, forwarded_for)
            directive = self.parts.directives.current
            call.decision = decision = decide(call.subject, call.context, model, directive)
            denied = decision.decision != "allow"
            answer = denial(api, decision, call.request_id, self.parts.blocked_by) if denied else None
            await self._record(call, directive.sha256, answer[0] if answer else None)
            if answer is not None:
                await self._answer(send, call, answer)
                return
            upstream, upstream_model = self.parts.routing.route(decision.model or model, api)
        except ClientGone:
            return
        except BodyTooLarge:
            await self._answer(send, call, self._error(call, 413, "request_too_large", "request body too large"))
            return
        except ExportgateError as exc:
            await self._fail(send, call, exc)
            return
        if upstream_model != payload.get("model"):
            payload["model"] = upstream_model
            body = orjson.dumps(payload)
        upstream_headers.append((b"x-request-id", call.request_id.encode()))
        self.metrics.observe("exportgate_gateway_overhead_seconds", (path,), time.perf_counter() - call.started)
        await self._forward(send, receive, call, upstream, body, upstream_headers)

    def _context(self, scope: Scope, forwarded_for: list[bytes]) -> RequestContext:
        client = scope.get("client")
        ip = self.parts.client_ip.resolve(client[0] if client else None, forwarded_for)
        if ip is None:
            return RequestContext()
        try:
            return RequestContext.from_geo(ip, self.parts.geo.lookup(ip))
        except ExportgateError:  # unreadable data or a malformed address: unknown, so it denies
            return RequestContext(ip)

    async def _record(self, call: _Call, directive_sha256: str, status: int | None) -> None:
        """The decision's audit record; strict mode returns once it is committed."""
        assert call.decision is not None
        entry = entry_for(
            call.decision,
            call.subject,
            call.context,
            request_id=call.request_id,
            time_ns=time.time_ns(),
            directive_sha256=directive_sha256,
            http_status=status,
        )
        await self.parts.audit.append_async(entry)
        decision = call.decision
        reason = decision.reasons[0].code.value if decision.reasons else ""
        self.metrics.count(
            "exportgate_decisions_total", (decision.decision, reason, decision.model or "", decision.tier or "")
        )

    async def _outcome(self, call: _Call, upstream_status: int | None, tokens: dict[str, int] | None) -> None:
        """Queue what followed an allowed decision; outcomes are written in batches (see OutcomeBatch)."""
        if call.decision is None:
            return
        latency = (time.perf_counter() - call.started) * 1000
        self._outcomes.append(Outcome(call.request_id, call.status, upstream_status, latency, tokens))
        if len(self._outcomes) >= self.OUTCOME_BATCH:
            await self._flush_outcomes()
        elif self._outcome_timer is None:
            self._outcome_timer = asyncio.get_running_loop().call_later(
                self.OUTCOME_SECONDS, lambda: asyncio.ensure_future(self._flush_outcomes())
            )

    async def _flush_outcomes(self) -> None:
        if self._outcome_timer is not None:
            self._outcome_timer.cancel()
            self._outcome_timer = None
        if not self._outcomes:
            return
        batch, self._outcomes = tuple(self._outcomes), []
        try:
            await self.parts.audit.append_async(OutcomeBatch(time.time_ns(), batch), wait=False)
        except StoreError as exc:
            log.error("%d request outcomes not recorded: %s", len(batch), exc)

    async def _forward(  # noqa: PLR0917
        self, send: Send, receive: Receive, call: _Call, upstream: Upstream, body: bytes, headers: RawHeaders
    ) -> None:
        transport = self.parts.transports[upstream.transport]
        try:
            response = await transport.send(upstream, "POST", call.route, body, headers)
        except UpstreamError as exc:
            self.metrics.count("exportgate_upstream_errors_total", (upstream.name, exc.code))
            await self._fail(send, call, exc)
            return
        try:
            streaming = any(k == b"content-type" and v.startswith(b"text/event-stream") for k, v in response.headers)
            if streaming and response.status == 200:
                tokens = await self._stream(send, receive, call, upstream.name, response)
            else:
                tokens = await self._relay(send, call, upstream.name, response)
        finally:
            response.close()
        await self._outcome(call, response.status, tokens)
        self._done(call)

    async def _relay(self, send: Send, call: _Call, upstream: str, response: UpstreamResponse) -> dict[str, int] | None:
        try:
            content = await response.read()
        except UpstreamError as exc:
            self.metrics.count("exportgate_upstream_errors_total", (upstream, exc.code))
            await self._send(send, call, self._error(call, exc.status, exc.code, exc.message))
            return None
        status = response.status
        if status == 401:  # the upstream refused *our* key: not the caller's problem to fix
            self.metrics.count("exportgate_upstream_errors_total", (upstream, "upstream_auth"))
            refused = "the upstream refused the gateway's credentials"
            await self._send(send, call, self._error(call, 502, "upstream_error", refused))
            return None
        call.status = status
        content_type, extra = _split_content_type(response.headers)
        await send_bytes(send, status, content, content_type, [*extra, (b"x-request-id", call.request_id.encode())])
        return usage_of(content) if status == 200 else None

    async def _stream(
        self, send: Send, receive: Receive, call: _Call, upstream: str, response: UpstreamResponse
    ) -> dict[str, int] | None:
        """Pass SSE through chunk by chunk; a client that goes away cancels the upstream request."""
        sniffer = UsageSniffer()
        call.status = 200

        async def pump() -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        *response.headers,
                        (b"cache-control", b"no-cache"),
                        (b"x-request-id", call.request_id.encode()),
                    ],
                }
            )
            try:
                async for chunk in response.chunks():
                    sniffer.feed(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError as exc:  # headers are gone: end the stream with an error event
                self.metrics.count("exportgate_upstream_errors_total", (upstream, exc.code))
                call.status = exc.status
                await send({"type": "http.response.body", "body": _sse_error(call, exc), "more_body": True})
            await send({"type": "http.response.body", "body": b""})

        async def gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        pumping, watching = asyncio.ensure_future(pump()), asyncio.ensure_future(gone())
        try:
            await asyncio.wait((pumping, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
            if not pumping.done():  # the client went away: stop reading from the upstream
                pumping.cancel()
                call.status = 499
                with contextlib.suppress(BaseException):
                    await pumping
        if pumping.done() and not pumping.cancelled() and pumping.exception() is not None:
            call.status = 499  # the client's connection failed while we wrote to it
        return sniffer.result()

    # -- answers ---------------------------------------------------------------

    @staticmethod
    def _error(call: _Call, status: int, code: str, message: str) -> ErrorAnswer:
        return error_answer(call.api, status, code, message, call.request_id)

    @staticmethod
    async def _send(send: Send, call: _Call, answer: ErrorAnswer) -> None:
        call.status = answer[0]
        await _send_answer(send, answer)

    async def _answer(self, send: Send, call: _Call, answer: ErrorAnswer) -> None:
        await self._send(send, call, answer)
        self._done(call)

    async def _fail(self, send: Send, call: _Call, exc: ExportgateError) -> None:
        """An error before or instead of forwarding: its own status, never a forward."""
        status = exc.status if 400 <= exc.status < 600 else 500
        message = exc.message if status != 500 else "internal error"
        if isinstance(exc, StoreError):
            message = "a required store is unavailable; the request was not forwarded"
            log.error("request %s denied, store unavailable: %s", call.request_id, exc)
        await self._send(send, call, self._error(call, status, exc.code, message))
        if not isinstance(exc, StoreError):  # a decision that was recorded gets its outcome
            await self._outcome(call, None, None)
        self._done(call)

    def _done(self, call: _Call) -> None:
        elapsed = time.perf_counter() - call.started
        self.metrics.count("exportgate_responses_total", (call.route, str(call.status)))
        self.metrics.observe("exportgate_request_duration_seconds", (call.route,), elapsed)
        if self.parts.access_log is not None:
            self.parts.access_log.request(
                call.request_id, call.route, call.status, call.decision, _account(call.subject), call.context, elapsed
            )

    # -- everything else -------------------------------------------------------

    async def _other(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        method = scope["method"]
        if method == "GET" and path == "/healthz":
            await send_json(send, 200, {"status": "ok"})
        elif method == "GET" and path == "/readyz":
            await self._ready(send)
        elif method == "GET" and path == "/metrics":
            await send_bytes(send, 200, self.metrics.render(), b"text/plain; version=0.0.4; charset=utf-8")
        elif method == "GET" and path == "/directive":
            await send_json(send, 200, self._directive_page())
        elif method == "GET" and path == "/v1/models":
            await self._models(scope, send)
        else:
            api = "anthropic" if path.startswith("/v1/messages") else "openai"
            await _send_answer(send, error_answer(api, 404, "not_found", f"no route {method} {path}", _request_id()))

    async def _ready(self, send: Send) -> None:
        parts = self.parts
        directive = parts.directives.current
        audit_error = parts.audit.error
        ready = audit_error is None and not self._closed
        await send_json(
            send,
            200 if ready else 503,
            {
                "status": "ready" if ready else "not_ready",
                "directive": {
                    "id": directive.id,
                    "version": directive.version,
                    "sha256": directive.sha256,
                    "source": str(parts.directives.path),
                    "reload_error": parts.directives.error,
                },
                "audit": {
                    "mode": parts.audit.mode,
                    "writer": parts.audit.writer_id,
                    "error": str(audit_error) if audit_error else None,
                },
            },
        )

    def _directive_page(self) -> dict[str, Any]:
        """What a denied caller's ``Link: rel="blocked-by"`` points to: the legal demand in force."""
        d = self.parts.directives.current
        return {
            "directive": d.id,
            "version": d.version,
            "effective": d.effective,
            "authority": d.authority,
            "references": list(d.references),
            "sha256": d.sha256,
            "models": {name: entry.tier for name, entry in d.models.items()},
        }

    async def _models(self, scope: Scope, send: Send) -> None:
        """Only the models this caller may use, decided exactly as a request for each would be."""
        token, forwarded_for, _ = _read_headers(scope["headers"])
        rid = _request_id()
        try:
            subject = self.parts.authenticator.authenticate(token)
        except ExportgateError as exc:
            await _send_answer(send, error_answer("openai", exc.status, exc.code, exc.message, rid))
            return
        context = self._context(scope, forwarded_for)
        directive = self.parts.directives.current
        allowed = [m for m in directive.models if decide(subject, context, m, directive).decision == "allow"]
        await send_json(
            send,
            200,
            {
                "object": "list",
                "data": [{"id": m, "object": "model", "created": 0, "owned_by": directive.id} for m in allowed],
            },
            [(b"x-request-id", rid.encode())],
        )


def _read_headers(headers: RawHeaders) -> tuple[str, list[bytes], RawHeaders]:
    """One pass over the request headers: the credential, X-Forwarded-For values, headers to pass on."""
    token = ""
    forwarded_for: list[bytes] = []
    upstream: RawHeaders = []
    for name, value in headers:
        if name == b"authorization":
            scheme, _, rest = value.partition(b" ")
            if scheme.lower() == b"bearer":
                token = rest.strip().decode("latin-1")
        elif name == b"x-api-key":
            token = token or value.strip().decode("latin-1")
        elif name == b"x-forwarded-for":
            forwarded_for.append(value)
        elif name in FORWARD_REQUEST:
            upstream.append((name, value))
    return token, forwarded_for, upstream


def _payload(body: bytes) -> tuple[dict[str, Any], str]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequestError("the request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise BadRequestError("the request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequestError("'model' is required and must be a string")
    return payload, model


def _request_id() -> str:
    return "req_" + os.urandom(12).hex()


async def _send_answer(send: Send, answer: ErrorAnswer) -> None:
    status, body, headers = answer
    await send_bytes(send, status, body, headers=headers)


def _account(subject: Subject | None) -> str | None:
    return subject.account if subject is not None else None


def _split_content_type(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The content type (JSON when absent) and the other headers, in one pass."""
    content_type, extra = b"application/json", []
    for name, value in headers:
        if name == b"content-type":
            content_type = value
        else:
            extra.append((name, value))
    return content_type, extra


def _sse_error(call: _Call, exc: ExportgateError) -> bytes:
    _, body, _ = error_answer(call.api, exc.status, exc.code, exc.message, call.request_id)
    if call.api == "anthropic":
        return b"event: error\ndata: " + body + b"\n\n"
    return b"data: " + body + b"\n\n"
