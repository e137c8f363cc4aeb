"""Where allowed requests go: upstream routing and the transports that reach them.

A routing file (YAML, ``--upstreams FILE``) maps canonical models to
upstreams::

    upstreams:
      openai: {base_url: https://api.openai.com/v1, api: openai, api_key: $env:OPENAI_API_KEY}
      claude: {base_url: https://api.anthropic.com, api: anthropic, api_key: $env:ANTHROPIC_API_KEY,
               connect_timeout: 5, read_timeout: 600}
    models:
      fable-5: {upstream: openai, model: gpt-fable-5-2026-06}   # model: the upstream's name, optional
    default: openai                                              # for models not listed

A base URL may end in ``/v1`` or not (``parse_base_url``: the routes sent already start with ``/v1``).

``--upstream URL`` sets an OpenAI-style default; with neither, the built-in
simulator answers in-process. Upstream keys are given only by ``$env:NAME``
reference and resolved at load; they go only into the upstream request,
never into a response, a log line or the audit record.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from exportgate._asgi import Scope
from exportgate._http import HttpClient, Origin, parse_base_url
from exportgate.config import resolve_secret
from exportgate.errors import BadRequestError, ConfigError, UpstreamError

__all__ = [
    "FORWARD_REQUEST",
    "JSON_CONTENT_TYPE",
    "HttpTransport",
    "LocalTransport",
    "Routing",
    "Upstream",
    "UpstreamResponse",
    "load_routing",
]

SIMULATOR = "sim:"
#: Request headers passed on to the upstream (everything else, credentials first, stays here). The content
#: type is not among them: the gateway always sends ``JSON_CONTENT_TYPE`` (it checked the body is JSON).
FORWARD_REQUEST = frozenset({b"accept", b"anthropic-version", b"anthropic-beta", b"openai-beta", b"idempotency-key"})
JSON_CONTENT_TYPE = b"application/json"
#: Response headers passed back to the client.
FORWARD_RESPONSE_PREFIXES = (b"x-ratelimit-", b"anthropic-ratelimit-", b"retry-after", b"openai-processing-ms")


@dataclass(frozen=True)
class Upstream:
    name: str
    base_url: str
    api: str  # "openai" | "anthropic" | "any" (the simulator)
    api_key: str | None = field(default=None, repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    #: Derived once, not per request: the credential headers, where to connect, the transport it needs.
    auth: tuple[tuple[bytes, bytes], ...] = field(init=False, repr=False, compare=False)
    origin: Origin | None = field(init=False, repr=False, compare=False)  # None for the simulator
    prefix: bytes = field(init=False, repr=False, compare=False)  # the base URL's path, put before each route
    transport: str = field(init=False, compare=False)  # "local" (the simulator, in-process) or "http"

    def __post_init__(self) -> None:
        auth: tuple[tuple[bytes, bytes], ...] = ()
        if self.api_key:
            key = self.api_key.encode("latin-1", "replace")
            if b"\r" in key or b"\n" in key:
                raise ConfigError(f"upstream {self.name}: the API key contains a line break")
            auth = ((b"x-api-key", key),) if self.api == "anthropic" else ((b"authorization", b"Bearer " + key),)
        object.__setattr__(self, "auth", auth)
        local = self.base_url.startswith(SIMULATOR)
        object.__setattr__(self, "transport", "local" if local else "http")
        origin, prefix = (None, b"") if local else _origin(self.name, self.base_url)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "prefix", prefix)

    def accepts(self, api: str) -> bool:
        return self.api in ("any", api)


SIMULATOR_UPSTREAM = Upstream("simulator", SIMULATOR, "any")


def _origin(name: str, base_url: str) -> tuple[Origin, bytes]:
    try:
        return parse_base_url(base_url)
    except ConfigError as exc:
        raise ConfigError(f"upstream {name}: {exc.message}") from None


@dataclass(frozen=True)
class Routing:
    upstreams: Mapping[str, Upstream]
    models: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    default: str | None = None

    def route(self, model: str, api: str) -> tuple[Upstream, str]:
        """The upstream for a canonical model and the model name to send it."""
        name, upstream_model = self.models.get(model, (self.default, None))
        if name is None:
            raise BadRequestError(f"no upstream is configured for model '{model}'")
        upstream = self.upstreams[name]
        if not upstream.accepts(api):
            other = "/v1/messages" if upstream.api == "anthropic" else "/v1/chat/completions"
            raise BadRequestError(f"model '{model}' is served by an {upstream.api}-style upstream; call {other} for it")
        return upstream, upstream_model or model

    @classmethod
    def simulator(cls) -> Routing:
        return cls({"simulator": SIMULATOR_UPSTREAM}, default="simulator")

    @classmethod
    def single(cls, base_url: str, api_key: str | None = None) -> Routing:
        return cls({"default": Upstream("default", base_url.rstrip("/"), "openai", api_key)}, default="default")


def _number(where: str, value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where}: must be a positive number of seconds")
    return float(value)


def _upstream(name: str, spec: Any, where: str) -> Upstream:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: must be a mapping")
    unknown = set(spec) - {"base_url", "api", "api_key", "connect_timeout", "read_timeout"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    base_url = spec.get("base_url")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://", SIMULATOR)):
        raise ConfigError(f"{where}.base_url: must be an http(s) URL")
    api = spec.get("api", "openai")
    if api not in ("openai", "anthropic"):
        raise ConfigError(f"{where}.api: must be openai or anthropic")
    key = spec.get("api_key")
    if key is not None and (not isinstance(key, str) or not key.startswith("$env:")):
        raise ConfigError(f"{where}.api_key: give the key by reference, $env:NAME, never inline")
    return Upstream(
        name,
        base_url.rstrip("/"),
        "any" if base_url.startswith(SIMULATOR) else api,
        resolve_secret(key),
        _number(f"{where}.connect_timeout", spec.get("connect_timeout"), 10.0),
        _number(f"{where}.read_timeout", spec.get("read_timeout"), 600.0),
    )


def load_routing(path: str | Path) -> Routing:
    """Read and check a routing file; every problem is a :class:`ConfigError` naming the file and key."""
    try:
        data = YAML(typ="safe").load(Path(path).read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        raise ConfigError(f"cannot read upstreams file {path}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"cannot read upstreams file {path}: nested too deeply") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("upstreams"), Mapping) or not data["upstreams"]:
        raise ConfigError(f"{path}: needs an 'upstreams' mapping with at least one upstream")
    unknown = set(data) - {"upstreams", "models", "default"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    upstreams = {str(n): _upstream(str(n), s, f"{path}: upstreams.{n}") for n, s in data["upstreams"].items()}
    models: dict[str, tuple[str, str | None]] = {}
    for model, spec in (data.get("models") or {}).items():
        where = f"{path}: models.{model}"
        target = spec.get("upstream") if isinstance(spec, Mapping) else spec
        if target not in upstreams:
            raise ConfigError(f"{where}: upstream {target!r} is not defined")
        name = spec.get("model") if isinstance(spec, Mapping) else None
        models[str(model)] = (str(target), str(name) if name else None)
    default = data.get("default")
    if default is not None and default not in upstreams:
        raise ConfigError(f"{path}: default upstream {default!r} is not defined")
    return Routing(upstreams, models, default)


# -- transports --------------------------------------------------------------


class UpstreamResponse(Protocol):
    status: int
    headers: list[tuple[bytes, bytes]]

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def read(self) -> bytes: ...

    def close(self) -> None: ...


class Transport(Protocol):
    """Sends one request upstream. ``headers`` belongs to the call: a transport may extend it."""

    async def send(
        self, upstream: Upstream, method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> UpstreamResponse: ...

    async def close(self) -> None: ...


def _passed_back(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers a client gets: content type, rate limits, the upstream's request id,
    and the content encoding of bytes passed on as they came (the gateway asks for ``identity``; an upstream
    that encodes anyway is not decoded, and its answer's tokens are not read)."""
    out = []
    for name, value in headers:
        if name in (b"content-type", b"content-encoding") or name.startswith(FORWARD_RESPONSE_PREFIXES):
            out.append((name, value))
        elif name in (b"x-request-id", b"request-id"):
            out.append((b"x-upstream-request-id", value))
    return out


class HttpTransport:
    """Upstreams over HTTP(S) with pooled keep-alive connections (:mod:`exportgate._http`; aiohttp and httpx were
    measured and not chosen, docs/gateway.md)."""

    def __init__(self, client: HttpClient | None = None) -> None:
        self._client = client or HttpClient()

    async def send(
        self, upstream: Upstream, method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> UpstreamResponse:
        assert upstream.origin is not None
        headers.extend(upstream.auth)
        try:
            response = await self._client.request(
                upstream.origin, method.encode(), upstream.prefix + path.encode(), headers, body,
                upstream.connect_timeout, upstream.read_timeout,
            )  # fmt: skip
        except UpstreamError as exc:
            raise type(exc)(f"upstream {upstream.name}: {exc.message}") from None
        response.headers = _passed_back(response.headers)
        return response

    async def close(self) -> None:
        await self._client.close()


class _LocalResponse:
    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        queue: asyncio.Queue[bytes | None],
        task: asyncio.Task[None],
    ) -> None:
        self.status, self.headers, self._queue, self._task = status, headers, queue, task

    async def chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self._queue.get()) is not None:
            yield chunk

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    def close(self) -> None:
        self._task.cancel()


class LocalTransport:
    """An ASGI app (the built-in simulator) as the upstream, called in-process: no socket, same semantics."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def send(
        self, upstream: Upstream, method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> UpstreamResponse:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = asyncio.get_running_loop().create_future()
        scope: Scope = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": b"",
            "client": None,
            "headers": [*headers, *upstream.auth],
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # no more body: wait until cancelled
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result((message["status"], [(k, v) for k, v in message["headers"] if k == b"content-type"]))
                return
            if message.get("body"):
                queue.put_nowait(message["body"])
            if not message.get("more_body", False):
                queue.put_nowait(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                if not started.done():
                    started.set_exception(UpstreamError(f"simulator failed: {exc!r}"))
                queue.put_nowait(None)

        task = asyncio.ensure_future(run())
        try:
            status, head = await started
        except asyncio.CancelledError:  # the caller went away before the answer started
            task.cancel()
            raise
        return _LocalResponse(status, head, queue, task)

    async def close(self) -> None:
        return None
