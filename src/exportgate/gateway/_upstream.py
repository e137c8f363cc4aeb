"""Where allowed requests go: upstream routing and the transports that reach them.

A routing file (YAML, ``--upstreams FILE``) maps canonical models to
upstreams::

    upstreams:
      openai: {base_url: https://api.openai.com, api: openai, api_key: $env:OPENAI_API_KEY}
      claude: {base_url: https://api.anthropic.com, api: anthropic, api_key: $env:ANTHROPIC_API_KEY,
               connect_timeout: 5, read_timeout: 600}
    models:
      fable-5: {upstream: openai, model: gpt-fable-5-2026-06}   # model: the upstream's name, optional
    default: openai                                              # for models not listed

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

import aiohttp
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from exportgate._asgi import Scope
from exportgate.config import resolve_secret
from exportgate.errors import BadRequestError, ConfigError, UpstreamError, UpstreamTimeoutError

__all__ = ["HttpTransport", "LocalTransport", "Routing", "Upstream", "UpstreamResponse", "load_routing"]

SIMULATOR = "sim:"
#: Request headers passed on to the upstream (everything else, credentials first, stays here).
FORWARD_REQUEST = frozenset(
    {b"content-type", b"accept", b"anthropic-version", b"anthropic-beta", b"openai-beta", b"idempotency-key"}
)
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
    #: Derived once, not per request: the credential headers, the client timeout, the transport it needs.
    auth: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    timeout: aiohttp.ClientTimeout = field(init=False, repr=False, compare=False)
    transport: str = field(init=False, compare=False)  # "local" (the simulator, in-process) or "http"

    def __post_init__(self) -> None:
        auth: tuple[tuple[str, str], ...] = ()
        if self.api_key:
            auth = (
                (("x-api-key", self.api_key),)
                if self.api == "anthropic"
                else (("authorization", f"Bearer {self.api_key}"),)
            )
        object.__setattr__(self, "auth", auth)
        object.__setattr__(
            self,
            "timeout",
            aiohttp.ClientTimeout(total=None, connect=self.connect_timeout, sock_read=self.read_timeout),
        )
        object.__setattr__(self, "transport", "local" if self.base_url.startswith(SIMULATOR) else "http")

    def accepts(self, api: str) -> bool:
        return self.api in ("any", api)


SIMULATOR_UPSTREAM = Upstream("simulator", SIMULATOR, "any")


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
        self, upstream: Upstream, method: str, path: str, body: bytes, headers: list[tuple[str, str]]
    ) -> UpstreamResponse: ...

    async def close(self) -> None: ...


def _passed_back(headers: Any) -> list[tuple[bytes, bytes]]:
    out = []
    for name, value in headers.items():
        lower = name.lower().encode("latin-1")
        if lower == b"content-type" or lower.startswith(FORWARD_RESPONSE_PREFIXES):
            out.append((lower, value.encode("latin-1")))
        elif lower in (b"x-request-id", b"request-id"):
            out.append((b"x-upstream-request-id", value.encode("latin-1")))
    return out


class _HttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = _passed_back(response.headers)
        self._complete = False

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
            self._complete = True
        except TimeoutError:
            raise UpstreamTimeoutError("the upstream stopped sending within its read timeout") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"the upstream connection failed mid-response: {exc}") from None

    async def read(self) -> bytes:
        try:
            content = await self._response.read()
        except TimeoutError:
            raise UpstreamTimeoutError("the upstream did not answer within its read timeout") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"the upstream connection failed: {exc}") from None
        self._complete = True
        return content

    def close(self) -> None:
        """Keep the connection for the next request when the answer was read whole; drop it otherwise
        (a client that went away mid-stream: closing is what cancels the upstream generation)."""
        if self._complete:
            self._response.release()
        else:
            self._response.close()


class HttpTransport:
    """Upstreams over HTTP with one pooled aiohttp session (measured: httpx's pool collapses at 64 connections)."""

    def __init__(self, limit: int = 512) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._limit = limit

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=60, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def send(
        self, upstream: Upstream, method: str, path: str, body: bytes, headers: list[tuple[str, str]]
    ) -> UpstreamResponse:
        headers.extend(upstream.auth)
        try:
            response = await self._client().request(
                method, upstream.base_url + path, data=body, headers=headers, timeout=upstream.timeout
            )
        except TimeoutError:
            raise UpstreamTimeoutError(f"upstream {upstream.name} did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream {upstream.name} is unreachable: {type(exc).__name__}") from None
        return _HttpResponse(response)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


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
        self, upstream: Upstream, method: str, path: str, body: bytes, headers: list[tuple[str, str]]
    ) -> UpstreamResponse:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = asyncio.get_running_loop().create_future()
        scope: Scope = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": b"",
            "client": None,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (*headers, *upstream.auth)],
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
        status, head = await started
        return _LocalResponse(status, head, queue, task)

    async def close(self) -> None:
        return None
