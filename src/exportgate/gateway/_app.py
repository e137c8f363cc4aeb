"""The gateway: a plain ASGI app that decides every call before it reaches a model.

Per request (docs/gateway.md): authenticate (from the headers, before the body is read) -> content
type and body rules (``_body``: one reading for every parser) -> client IP (trusted proxies) -> country
and anonymizer flags -> ``policy.decide`` -> audit record (encoded here, so a value that cannot be
recorded fails this request; strict: committed before anything is forwarded) -> deny in the API's own
error shape, or forward and pass the answer through, chunk by chunk for streams, cancelling the upstream
request the moment the client goes away -> the outcome (statuses, latency, tokens), written in batched
``outcomes`` audit rows. Whatever cannot be established denies: a store that is down is a 503, an
unknown country or anonymizer status is a 451 from the decision core.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable
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
from exportgate.audit import AuditWriter, Outcome, OutcomeBatch, seal_decision
from exportgate.errors import (
    ExportgateError,
    RequestTimeoutError,
    StaleStateError,
    StoreError,
    UpstreamError,
    UpstreamTimeoutError,
)
from exportgate.geo import GeoInfo, GeoLookup
from exportgate.identity import Authenticator
from exportgate.policy import decide

from ._admin import AdminGuard
from ._body import BodyLimits, check_content_type, parse_request
from ._clientip import ClientIpResolver
from ._directives import DirectiveHolder
from ._errors import ErrorAnswer, denial, error_answer, shown
from ._ids import request_id
from ._inflight import DisconnectWatch, Sweep, cancel_on_expiry
from ._logging import AccessLog
from ._metrics import Metrics
from ._monitoring import BackgroundMonitor
from ._upstream import FORWARD_REQUEST, JSON_CONTENT_TYPE, Routing, Transport, Upstream, UpstreamResponse
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
    body_limits: BodyLimits = field(default_factory=BodyLimits)
    access_log: AccessLog | None = None
    metrics: Metrics = field(default_factory=Metrics)
    watch_interval: float = 1.0
    monitor: BackgroundMonitor | None = None
    admin: AdminGuard = field(default_factory=AdminGuard)


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
    recorded: bool = False  # the decision's audit record is written (or queued): its outcome may follow
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
        self.state = parts.authenticator.store.db  # the shared state: accounts, suspensions, directives
        self._state_revision = self.state.revision.current()
        self._sweep = Sweep()  # body deadlines and disconnect watches for requests in flight
        self._places: dict[str, tuple[GeoInfo, RequestContext]] = {}  # client address -> its context
        #: The routes that are not model calls, as data: (method, path) -> handler.
        self._routes: dict[tuple[str, str], Callable[[Scope, Send], Awaitable[None]]] = {
            ("GET", "/healthz"): self._health,
            ("GET", "/readyz"): self._ready,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/directive"): self._directive,
            ("GET", "/v1/models"): self._models,
        }

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
                        send, error_answer(api or "openai", 500, "internal_error", "internal error", request_id())
                    )
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                settle_garbage_collector()  # a serving worker's process only, not a library caller's
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def start(self) -> None:
        if self._watcher is None:
            self.state.listen(self._state_changed)  # PostgreSQL: changes from every replica, pushed
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
        self._sweep.close()
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

    def _state_changed(self, revision: int, topics: frozenset[str]) -> None:
        """A change committed anywhere (called on the state's listening thread): a published directive is
        taken at once; accounts and keys need nothing here (the authenticator watches the revision)."""
        if topics & {"directive", "*"}:
            self._refresh_directive()

    def _refresh_directive(self) -> None:
        try:
            outcome = self.parts.directives.refresh()
        except StoreError as exc:
            log.error("cannot read the published directive (the one in force stays): %s", exc)
            return
        if outcome is not None:
            self.metrics.count("exportgate_directive_reloads_total", (outcome,))

    def _current_state(self) -> None:
        """Refuse (503) a request that depends on shared state this replica cannot confirm is current."""
        if self.state.stale():
            raise StaleStateError(f"shared state not confirmed for {self.state.staleness():.1f} s")

    async def _watch(self) -> None:
        parts = self.parts
        while True:
            await asyncio.sleep(parts.watch_interval)
            revision = self.state.revision.current()
            if revision != self._state_revision:  # SQLite: the only way this process learns of a publication
                self._state_revision = revision
                await asyncio.get_running_loop().run_in_executor(None, self._refresh_directive)
            if parts.directives.changed():
                outcome = parts.directives.reload()
                if outcome != "waiting":  # a file still being written is looked at again next time
                    self.metrics.count("exportgate_directive_reloads_total", (outcome,))
            self._gauges()
            self.metrics.save()
            if parts.access_log is not None:
                parts.access_log.flush()

    # -- the proxied API routes ----------------------------------------------------

    async def _proxy(self, scope: Scope, receive: Receive, send: Send, api: str, path: str) -> None:
        call = _Call(request_id(), api, path, time.perf_counter())
        token, forwarded_for, upstream_headers, content_type = _read_headers(scope["headers"])
        try:
            self._current_state()
            call.subject = self.parts.authenticator.authenticate(token)  # from the headers: no body read unless known
            check_content_type(content_type)
            body = await self._body(receive)
            payload, model = parse_request(body, self.parts.body_limits)
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
        if upstream_model != model:  # exactly the model decided on (its upstream name), however it was spelt
            payload["model"] = upstream_model
            body = orjson.dumps(payload)  # else the checked bytes, which every parser reads as this model
        upstream_headers += ((b"content-type", JSON_CONTENT_TYPE), (b"accept-encoding", b"identity"),
                             (b"x-request-id", call.request_id.encode()))  # fmt: skip
        self.metrics.observe("exportgate_gateway_overhead_seconds", (path,), time.perf_counter() - call.started)
        await self._forward(send, receive, call, upstream, body, upstream_headers)

    async def _body(self, receive: Receive) -> bytes:
        """The whole body, within ``body_timeout`` (filed with the sweep, see ``_inflight``)."""
        task = asyncio.current_task()
        assert task is not None
        expired: list[bool] = []
        token = self._sweep.after(self.parts.body_limits.timeout, cancel_on_expiry(task, expired))
        try:
            return await read_body(receive, self.parts.max_body)
        except asyncio.CancelledError:
            if not expired or task.uncancel():
                raise
            raise RequestTimeoutError("the request body did not arrive in time") from None
        finally:
            self._sweep.drop(token)

    def _context(self, scope: Scope, forwarded_for: list[bytes]) -> RequestContext:
        client = scope.get("client")
        ip = self.parts.client_ip.resolve(client[0] if client else None, forwarded_for)
        if ip is None:
            return RequestContext()
        try:
            geo = self.parts.geo.lookup(ip)
        except ExportgateError:  # unreadable data or a malformed address: unknown, so it denies
            return RequestContext(ip)
        known = self._places.get(ip)  # the same place from the same facts: built once (a frozen dataclass)
        if known is not None and known[0] is geo:
            return known[1]
        context = RequestContext.from_geo(ip, geo)
        if len(self._places) >= PLACES:
            self._places.clear()
        self._places[ip] = (geo, context)
        return context

    async def _record(self, call: _Call, directive_sha256: str, status: int | None) -> None:
        """The decision's audit record; strict mode returns once it is committed."""
        assert call.decision is not None
        sealed = seal_decision(call.decision, call.subject, call.context, request_id=call.request_id,
                               time_ns=time.time_ns(), directive_sha256=directive_sha256,
                               http_status=status)  # fmt: skip
        await self.parts.audit.append_sealed(sealed)
        call.recorded = True
        decision = call.decision
        reason = decision.reasons[0].code.value if decision.reasons else ""
        self.metrics.count(
            "exportgate_decisions_total", (decision.decision, reason, decision.model or "", decision.tier or "")
        )

    async def _outcome(self, call: _Call, upstream_status: int | None, tokens: dict[str, int] | None) -> None:
        """Queue what followed a recorded decision; outcomes are written in batches (see OutcomeBatch)."""
        if not call.recorded:
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
        """Send the request upstream and the answer back. A client that goes away at any point, before the
        upstream's headers or during the body, cancels the upstream request (its connection is closed, so
        the model stops generating) and the outcome is 499."""
        transport = self.parts.transports[upstream.transport]
        watch = DisconnectWatch(receive, self._sweep)
        response: UpstreamResponse | None = None
        tokens: dict[str, int] | None = None
        try:
            response = await transport.send(upstream, "POST", call.route, body, headers)
            streaming = any(k == b"content-type" and v.startswith(b"text/event-stream") for k, v in response.headers)
            if streaming and response.status == 200:
                tokens = await self._stream(send, call, upstream.name, response)
            else:
                tokens = await self._relay(send, call, upstream.name, response)
            watch.answered()
        except asyncio.CancelledError:
            if not watch.stop():
                raise
            call.status = 499
        except UpstreamError as exc:
            self.metrics.count("exportgate_upstream_errors_total", (upstream.name, exc.code))
            if watch.stop():
                call.status = 499
            else:
                await self._fail(send, call, exc)
                return
        finally:
            watch.stop()
            if response is not None:
                response.close()
        await self._outcome(call, response.status if response is not None else None, tokens)
        self._done(call)

    async def _relay(self, send: Send, call: _Call, upstream: str, response: UpstreamResponse) -> dict[str, int] | None:
        try:
            content = await response.read()
        except UpstreamError as exc:
            self.metrics.count("exportgate_upstream_errors_total", (upstream, exc.code))
            await self._send(send, call, self._upstream_error(call, exc))
            return None
        status = response.status
        if status == 401:  # the upstream refused *our* key: not the caller's problem to fix
            self.metrics.count("exportgate_upstream_errors_total", (upstream, "upstream_auth"))
            log.error("request %s: upstream %s refused the gateway's credentials", call.request_id, upstream)
            await self._send(send, call, self._error(call, 502, "upstream_error", "the upstream model is unavailable"))
            return None
        if status >= 500:  # its body may name hosts, keys or stack traces: the caller gets a generic answer
            self.metrics.count("exportgate_upstream_errors_total", (upstream, f"status_{status}"))
            log.error("request %s: upstream %s answered %d: %s", call.request_id, upstream, status,
                      content[:500].decode("utf-8", "replace"))  # fmt: skip
            shown_status = status if status in (502, 503, 504) else 502
            await self._send(send, call, self._error(call, shown_status, "upstream_error", "the upstream model failed"))
            return None
        call.status = status
        content_type, extra = _split_content_type(response.headers)
        await send_bytes(send, status, content, content_type, [*extra, (b"x-request-id", call.request_id.encode())])
        return usage_of(content) if status == 200 else None

    async def _stream(
        self, send: Send, call: _Call, upstream: str, response: UpstreamResponse
    ) -> dict[str, int] | None:
        """Pass SSE through chunk by chunk (a client that goes away cancels this: see :meth:`_forward`)."""
        sniffer = UsageSniffer()
        call.status = 200
        headers = [*response.headers, (b"cache-control", b"no-cache"), (b"x-request-id", call.request_id.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            async for chunk in response.chunks():
                sniffer.feed(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError as exc:  # headers are gone: end the stream with an error event
            self.metrics.count("exportgate_upstream_errors_total", (upstream, exc.code))
            call.status = exc.status
            log.error("request %s: upstream %s failed mid-stream: %s", call.request_id, upstream, exc)
            await send({"type": "http.response.body", "body": _sse_error(call, exc), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
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
        if isinstance(exc, UpstreamError):
            answer = self._upstream_error(call, exc)
        else:
            status = exc.status if 400 <= exc.status < 600 else 500
            message = exc.message if status != 500 else "internal error"
            if isinstance(exc, StoreError):
                message = "a required store is unavailable; the request was not forwarded"
                log.error("request %s denied, store unavailable: %s", call.request_id, exc)
            answer = self._error(call, status, exc.code, message)
        await self._send(send, call, answer)
        await self._outcome(call, None, None)
        self._done(call)

    def _upstream_error(self, call: _Call, exc: UpstreamError) -> ErrorAnswer:
        """502/504 in the API's shape, saying nothing of where the upstream is; the detail goes to the log."""
        log.error("request %s: %s", call.request_id, exc)
        return self._error(call, exc.status, exc.code, _public_upstream_message(exc))

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
        route = self._routes.get((method, path))
        if route is not None:
            await route(scope, send)
            return
        api = "anthropic" if path.startswith("/v1/messages") else "openai"
        await _send_answer(send, error_answer(api, 404, "not_found", f"no route {shown(method)} {shown(path)}",
                                              request_id()))  # fmt: skip

    async def _health(self, scope: Scope, send: Send) -> None:
        await send_json(send, 200, {"status": "ok"})

    async def _ready(self, scope: Scope, send: Send) -> None:
        """200 when every dependency a request needs answers, else 503; the detail only for the admin."""
        ready, checks = self._checks()
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready"}
        if self.parts.admin.allows(scope["headers"]):
            body["checks"] = checks
        await send_json(send, 200 if ready else 503, body)

    def _checks(self) -> tuple[bool, dict[str, Any]]:
        parts = self.parts
        directive = parts.directives.current
        audit_error, accounts_error = parts.audit.error, parts.authenticator.store.health()
        stale = self.state.stale()
        checks: dict[str, Any] = {
            "audit": {"ok": audit_error is None, "mode": parts.audit.mode, "writer": parts.audit.writer_id,
                      "error": str(audit_error) if audit_error else None, "unwritten": parts.audit.unwritten},
            "accounts": {"ok": accounts_error is None, "error": accounts_error},
            "state": {"ok": not stale, "backend": self.state.backend, "revision": self.state.revision.current(),
                      "staleness_seconds": round(self.state.staleness(), 3), "stale": stale,
                      "listening": getattr(self.state, "listening", None)},
            "directive": {"ok": True, "id": directive.id, "version": directive.version, "sha256": directive.sha256,
                          "source": parts.directives.source, "reload_error": parts.directives.error},
            "gateway": {"ok": not self._closed},
        }  # fmt: skip
        if parts.monitor is not None:
            checks["monitor"] = {"ok": parts.monitor.running, "leading": parts.monitor.leading,
                                 "passes": parts.monitor.passes}  # fmt: skip
        return all(check["ok"] for check in checks.values()), checks

    async def _metrics(self, scope: Scope, send: Send) -> None:
        if not await self._admin_only(scope, send):
            return
        self._gauges()
        await send_bytes(send, 200, self.metrics.render(), b"text/plain; version=0.0.4; charset=utf-8")

    def _gauges(self) -> None:
        audit = self.parts.audit
        self.metrics.gauge("exportgate_audit_up", (audit.writer_id,), 0.0 if audit.error else 1.0)
        self.metrics.gauge("exportgate_audit_unwritten_records", (audit.writer_id,), float(audit.unwritten))
        self.metrics.gauge("exportgate_state_staleness_seconds", (self.state.backend,), self.state.staleness())
        self.metrics.gauge("exportgate_state_stale", (self.state.backend,), 1.0 if self.state.stale() else 0.0)
        self.metrics.gauge("exportgate_directive_published_version", (), float(self.parts.directives.published_version))

    async def _directive(self, scope: Scope, send: Send) -> None:
        """What a denied caller's ``Link: rel="blocked-by"`` points to: the legal demand in force; the
        models and their tiers only for the admin."""
        d = self.parts.directives.current
        page: dict[str, Any] = {
            "directive": d.id,
            "version": d.version,
            "effective": d.effective,
            "authority": d.authority,
            "references": list(d.references),
            "sha256": d.sha256,
        }
        if self.parts.admin.allows(scope["headers"]):
            page["models"] = {name: entry.tier for name, entry in d.models.items()}
        await send_json(send, 200, page)

    async def _admin_only(self, scope: Scope, send: Send) -> bool:
        if self.parts.admin.allows(scope["headers"]):
            return True
        if self.parts.admin.enabled:
            answer = error_answer("openai", 401, "admin_token_required", "this endpoint needs the admin token",
                                  request_id(), headers=[(b"www-authenticate", b"Bearer")])  # fmt: skip
        else:
            answer = error_answer(
                "openai",
                403,
                "admin_disabled",
                "admin endpoints are off: set admin_token (EXPORTGATE_ADMIN_TOKEN)",
                request_id(),
            )
        await _send_answer(send, answer)
        return False

    async def _models(self, scope: Scope, send: Send) -> None:
        """Only the models this caller may use, decided exactly as a request for each would be."""
        token, forwarded_for, _, _ = _read_headers(scope["headers"])
        rid = request_id()
        try:
            self._current_state()
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


#: Client addresses whose request context is kept (the cache is emptied when it fills).
PLACES = 65_536

#: The young generation's threshold while serving (CPython's default is 700): a request allocates a few
#: hundred containers, so the default collected every two or three requests.
GC_THRESHOLD = (20_000, 20, 20)


def settle_garbage_collector() -> None:
    """What start-up built (directive, geo data, caches, imported modules) lives as long as the worker:
    collect once and freeze it, so no later collection walks it again (a full collection over it paused
    every request in flight, the tail of the latency distribution), then collect the young less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def _read_headers(headers: RawHeaders) -> tuple[str, list[bytes], RawHeaders, bytes | None]:
    """One pass over the request headers: the credential, X-Forwarded-For values, headers to pass on, and
    the content type (``None`` when absent; a repeated one makes the request ambiguous, so it is refused)."""
    token = ""
    forwarded_for: list[bytes] = []
    upstream: RawHeaders = []
    content_type: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, rest = value.partition(b" ")
            if scheme.lower() == b"bearer":
                token = rest.strip().decode("latin-1")
        elif name == b"x-api-key":
            token = token or value.strip().decode("latin-1")
        elif name == b"x-forwarded-for":
            forwarded_for.append(value)
        elif name == b"content-type":
            content_type = value if content_type is None else b"multiple/content-types"
        elif name in FORWARD_REQUEST:
            upstream.append((name, value))
    return token, forwarded_for, upstream, content_type


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


def _public_upstream_message(exc: UpstreamError) -> str:
    if isinstance(exc, UpstreamTimeoutError):
        return "the upstream model did not answer in time"
    return "the upstream model is unavailable"


def _sse_error(call: _Call, exc: UpstreamError) -> bytes:
    _, body, _ = error_answer(call.api, exc.status, exc.code, _public_upstream_message(exc), call.request_id)
    if call.api == "anthropic":
        return b"event: error\ndata: " + body + b"\n\n"
    return b"data: " + body + b"\n\n"
