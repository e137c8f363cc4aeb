"""The upstream HTTP/1.1 client: keep-alive pools per origin, the ``httptools`` (llhttp) parser, no more
objects per call than the call needs.

Why not aiohttp's client: measured on this gateway's path (docs/gateway.md), one aiohttp call cost about
115 µs of CPU, this client 27 µs; in a proxy that is the difference between a per-request cost dominated
by the HTTP client and one dominated by the checks exportgate exists for.

What it does: ``http`` and ``https`` (the system's CA store, or a given :class:`ssl.SSLContext`);
responses framed by ``Content-Length``, chunked, or closed connection; interim ``1xx`` answers skipped;
connect and read timeouts (the read timeout bounds each wait for more of the answer, as aiohttp's
``sock_read`` does); back-pressure (reading from the upstream pauses while more than ``HIGH_WATER`` bytes
wait for a slow client); idle connections reused newest first and dropped after ``keepalive`` seconds; a
request on a reused connection that the upstream had closed (the keep-alive race) is sent once more on a
new connection, only when not a byte of the answer arrived; at most ``limit`` connections per origin
(callers wait beyond). Closing an unfinished response closes its connection, which is how an upstream
generation is cancelled. No proxies (``HTTP_PROXY`` is ignored), no redirects, no cookies, no
decompression: an upstream API answers directly, and the gateway passes bytes through.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

from exportgate.errors import BadRequestError, ConfigError, UpstreamError, UpstreamTimeoutError

__all__ = ["HttpClient", "HttpResponse", "Origin", "parse_base_url"]

#: Bytes buffered for a slow client before reading from the upstream pauses, and resumes below LOW_WATER.
HIGH_WATER = 1 << 20
LOW_WATER = 1 << 18


@dataclass(frozen=True)
class Origin:
    """Where a connection goes: scheme, host and port; ``host_header`` is what ``Host:`` says."""

    scheme: str
    host: str
    port: int
    host_header: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        object.__setattr__(self, "host_header", (host if self.port == default else f"{host}:{self.port}").encode())

    def url(self, path: bytes = b"") -> str:
        """``scheme://host[:port]`` and ``path``: one spelling for every base URL that reaches the same place."""
        return f"{self.scheme}://{self.host_header.decode()}{path.decode('ascii')}"


def parse_base_url(base_url: str) -> tuple[Origin, bytes]:
    """The origin of a base URL and the prefix put before each request path; anything that is not a plain
    http(s) URL with a host is a :class:`ConfigError`.

    Every path exportgate sends starts with ``/v1`` (``/v1/chat/completions``, ``/v1/messages``), and
    OpenAI-compatible tools spell base URLs with it (``https://api.openai.com/v1``) while Anthropic's do not
    (``https://api.anthropic.com``). So one rule, here and nowhere else: trailing slashes are dropped, then a
    path that ends in ``/v1`` loses it. ``https://host``, ``https://host/v1`` and ``https://host/v1/`` all
    send ``/v1/chat/completions``; ``https://host/openai/v1`` sends ``/openai/v1/chat/completions``."""
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"base URL {base_url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL must be an http(s) URL with a host, not {base_url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"base URL {base_url!r} takes no query, fragment or credentials")
    path = parts.path.rstrip("/").removesuffix("/v1")
    if not path.isascii() or any(c in path for c in " \r\n"):
        raise ConfigError(f"base URL {base_url!r}: the path must be plain ASCII without spaces")
    origin = Origin(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80))
    return origin, path.encode("ascii")


class _Stale(Exception):
    """A reused connection closed before any of the answer arrived (the keep-alive race)."""


class HttpResponse:
    """One upstream answer: status and headers at once, the body as it arrives."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_done",
        "_error",
        "_framed",
        "_got_bytes",
        "_interim",
        "_read_timeout",
        "_waiter",
        "headers",
        "status",
    )

    def __init__(self, conn: _Connection, read_timeout: float) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._conn: _Connection | None = conn
        self._read_timeout = read_timeout
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._framed = False  # Content-Length or chunked: an early close is a truncated answer
        self._got_bytes = False
        self._interim = False

    # -- consumer side ------------------------------------------------------

    async def read(self) -> bytes:
        """The whole body."""
        while not self._done:
            await self._wait()
        if self._error is not None:
            raise self._error
        self._buffered = 0
        return b"".join(self._chunks)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, piece by piece, unbuffered."""
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._buffered < LOW_WATER and self._conn is not None:
                    self._conn.resume()
                yield chunk
            if self._done:
                if self._error is not None:
                    raise self._error
                return
            await self._wait()

    def close(self) -> None:
        """Done with this answer. Unfinished, its connection is closed (the upstream stops generating)."""
        conn, self._conn = self._conn, None
        if conn is not None and not self._done:
            conn.abort()
        self._done = True

    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(self._read_timeout, _expire, waiter)
        try:
            await waiter
        except UpstreamTimeoutError:
            error = UpstreamTimeoutError("the upstream stopped answering within its read timeout")
            self._fail(error)
            self.close()
            raise error from None
        finally:
            timer.cancel()
            self._waiter = None

    # -- connection side ----------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._done:
            return
        self._error, self._done = error, True
        self._wake()

    def _body(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and self._conn is not None:
            self._conn.pause()
        self._wake()

    def _complete(self) -> None:
        self._done = True
        self._conn = None
        self._wake()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeoutError("read timeout"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection; the parser calls back into it (``on_*``)."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.response: HttpResponse | None = None
        self.head: asyncio.Future[None] | None = None
        self.idle_since = 0.0
        self.reused = False
        self.closed = False
        self.paused = False

    # -- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # bytes nobody asked for: the connection cannot be trusted any more
            self.abort()
            return
        response._got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._lost(UpstreamError(f"the upstream sent a malformed HTTP answer: {exc}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        response = self.response
        if response is None:
            return
        if not response._got_bytes and self.reused:
            self._lost(_Stale())
        elif self.head is None and not response._framed and exc is None:
            self.response = None
            response._complete()  # an answer delimited by closing the connection
        else:
            self._lost(UpstreamError("the upstream closed the connection before the answer was complete"))

    # -- httptools callbacks ------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        response = self.response
        assert response is not None
        name = name.lower()
        if name == b"content-length" or (name == b"transfer-encoding" and b"chunked" in value.lower()):
            response._framed = True
        response.headers.append((name, value))

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer: the real one follows
            response.headers.clear()
            response._interim, response._framed = True, False
            return
        response.status = status
        if self.head is not None and not self.head.done():
            self.head.set_result(None)
        self.head = None

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response._body(body)

    def on_message_complete(self) -> None:
        response = self.response
        assert response is not None
        if response._interim:
            response._interim = False
            return
        self.response = None
        keep = self.parser.should_keep_alive()
        self.resume()
        response._complete()
        if keep and not self.closed:
            self.pool.release(self)
        else:
            self.abort()

    # -- the client's side --------------------------------------------------

    def begin(self, read_timeout: float) -> tuple[HttpResponse, asyncio.Future[None]]:
        self.response = response = HttpResponse(self, read_timeout)
        self.head = head = asyncio.get_running_loop().create_future()
        return response, head

    def _lost(self, error: BaseException) -> None:
        response, self.response = self.response, None
        head, self.head = self.head, None
        if head is not None and not head.done():
            head.set_exception(error)
        if response is not None:
            response._fail(error if not isinstance(error, _Stale) else UpstreamError("connection closed"))

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class _Pool:
    """The connections to one origin: idle ones newest first, at most ``limit`` in all."""

    def __init__(self, client: HttpClient, origin: Origin) -> None:
        self.client, self.origin = client, origin
        self.idle: list[_Connection] = []
        self.count = 0
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, connect_timeout: float) -> _Connection:
        now = time.monotonic()
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed and now - conn.idle_since < self.client.keepalive:
                conn.reused = True
                return conn
            conn.abort()
        while self.count >= self.client.limit:
            waiter = asyncio.get_running_loop().create_future()
            self.waiting.append(waiter)
            await waiter
            if self.idle:
                return await self.acquire(connect_timeout)
        self.count += 1
        try:
            return await self._connect(connect_timeout)
        except BaseException:
            self.count -= 1
            self._next()
            raise

    async def _connect(self, timeout: float) -> _Connection:
        origin = self.origin
        loop = asyncio.get_running_loop()
        tls = self.client.tls if origin.scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self), origin.host, origin.port, ssl=tls,
                    server_hostname=origin.host if tls is not None else None,
                )  # fmt: skip
        except TimeoutError:
            raise UpstreamTimeoutError(f"could not connect to {origin.host}:{origin.port} in time") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(f"cannot connect to {origin.host}:{origin.port}: {exc.strerror or exc}") from None
        return conn

    def release(self, conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        self.idle.append(conn)
        if len(self.idle) > self.client.max_idle:
            self.idle.pop(0).abort()
        self._next()

    def forget(self, conn: _Connection) -> None:
        """A connection closed (by either side): it no longer counts against the limit."""
        self.count -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        self._next()

    def _next(self) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _check_header(name: bytes, value: bytes) -> None:
    if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name or b":" in name:
        raise BadRequestError("a request header contains a line break")


class HttpClient:
    """Pooled HTTP/1.1 connections to any number of origins."""

    def __init__(
        self, *, limit: int = 512, max_idle: int = 256, keepalive: float = 30.0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.limit, self.max_idle, self.keepalive = limit, max_idle, keepalive
        self.tls = tls or ssl.create_default_context()
        self._pools: dict[Origin, _Pool] = {}

    async def request(  # noqa: PLR0917 - one HTTP request's parts
        self,
        origin: Origin,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        connect_timeout: float,
        read_timeout: float,
    ) -> HttpResponse:
        """Send one request; returns once the status and headers are in (the body follows)."""
        parts = [method, b" ", target, b" HTTP/1.1\r\nhost: ", origin.host_header, b"\r\ncontent-length: "]
        parts.append(str(len(body)).encode())
        for name, value in headers:
            _check_header(name, value)
            parts += (b"\r\n", name, b": ", value)
        parts += (b"\r\n\r\n", body)
        message = b"".join(parts)
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _Pool(self, origin)
        for attempt in (1, 2):
            conn = await pool.acquire(connect_timeout)
            response, head = conn.begin(read_timeout)
            assert conn.transport is not None
            conn.transport.write(message)
            try:
                await _within(head, read_timeout)
            except _Stale:
                if attempt == 1:
                    continue
                raise UpstreamError("the upstream closed the connection without answering") from None
            except UpstreamTimeoutError:
                conn.abort()
                raise UpstreamTimeoutError("the upstream did not answer within its read timeout") from None
            except asyncio.CancelledError:
                conn.abort()
                raise
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        for pool in self._pools.values():
            for conn in pool.idle:
                conn.abort()
            pool.idle.clear()
        self._pools.clear()


async def _within(future: asyncio.Future[None], seconds: float) -> None:
    timer = asyncio.get_running_loop().call_later(seconds, _expire, future)
    try:
        await future
    finally:
        timer.cancel()
