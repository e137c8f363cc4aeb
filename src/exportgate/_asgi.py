"""Small ASGI helpers shared by the gateway and the simulator (no framework).

Both are plain ASGI callables: a framework's routing and request objects cost
more per request than everything exportgate decides (docs/gateway.md).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from exportgate._logs import server_log_config
from exportgate.errors import ConfigError

__all__ = [
    "JSON",
    "SSE",
    "RawHeaders",
    "Receive",
    "Scope",
    "Send",
    "check_listen",
    "read_body",
    "send_bytes",
    "send_json",
    "start_stream",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: Header names (lower case) and values as ASGI carries them.
RawHeaders = list[tuple[bytes, bytes]]

JSON = b"application/json"
SSE = b"text/event-stream"


class BodyTooLarge(Exception):
    """The request body exceeds the limit."""


class ClientGone(Exception):
    """The client disconnected before the request body arrived."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; raises :class:`BodyTooLarge` past ``limit`` bytes."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise BodyTooLarge
        return body  # type: ignore[no-any-return]
    parts = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
    return b"".join(parts)


async def send_bytes(
    send: Send, status: int, body: bytes, content_type: bytes = JSON, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    head = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        head.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, value: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send_bytes(send, status, orjson.dumps(value), JSON, headers)


async def start_stream(send: Send, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    head = [(b"content-type", SSE), (b"cache-control", b"no-cache")]
    if headers:
        head.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": head})


def check_listen(host: str, port: int, *, reuse_port: bool = False) -> None:
    """Refuse, with one clear :class:`ConfigError`, an address this server could not have to itself: a
    port out of range, an address not on this machine, or a port another process listens on. granian
    binds with ``SO_REUSEPORT``, so a second server on a port in use would start silently and take part
    of the first one's traffic; sharing a port is possible only when asked for (``reuse_port``)."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"port {port} is out of range (1-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host[:80]}:{port}: {exc.strerror}") from None
    except UnicodeError:  # a name no resolver would take (a label over 63 characters, say)
        raise ConfigError(f"cannot listen on {host[:80]}: not a valid host name or address") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection in TIME_WAIT is no owner
        if reuse_port:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            hint = ""
            if exc.errno == errno.EADDRINUSE:
                hint = "; another process listens there (stop it, choose another --port, or --reuse-port to share it)"
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None


def serve(
    target: str,
    *,
    host: str,
    port: int,
    workers: int = 1,
    factory: bool = True,
    log_level: str = "warning",
    reuse_port: bool = False,
    header_timeout: float = 10.0,
    shutdown_grace: float = 30.0,
) -> None:
    """Run an ASGI app (an import path, ``module:callable``) on granian until interrupted.

    granian (Rust, hyper) measured fastest of the servers tried (docs/gateway.md); each worker is a
    process that imports the target itself. A worker that dies is started again (a replica loses that
    worker's requests in flight, not its service; a worker that dies again within seconds of its
    restart stops the server: that is a crash loop, not bad luck). A client has ``header_timeout``
    seconds, from its first byte, to send a request's headers, and at most 64 KiB of them are buffered;
    HTTP/1.1 only (HTTP/2 is a reverse proxy's to terminate).
    """
    from granian import Granian  # noqa: PLC0415 - heavy, only when serving
    from granian.constants import HTTPModes, Interfaces, Loops  # noqa: PLC0415
    from granian.http import HTTP1Settings  # noqa: PLC0415
    from granian.log import LogLevels  # noqa: PLC0415

    check_listen(host, port, reuse_port=reuse_port)
    Granian(
        target,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        factory=factory,
        log_enabled=True,
        log_level=LogLevels(log_level),
        log_dictconfig=server_log_config(),
        backlog=2048,
        respawn_failed_workers=True,
        respawn_interval=1.0,
        workers_kill_timeout=max(1, round(shutdown_grace)),  # in-flight requests get this long; a worker that
        # cannot stop (told to while still starting) is killed then, instead of being awaited forever
        http=HTTPModes.http1,  # HTTP/2 (and its own resource limits) is the reverse proxy's to terminate
        http1_settings=HTTP1Settings(header_read_timeout=int(header_timeout * 1000), max_buffer_size=65536),
    ).serve()
