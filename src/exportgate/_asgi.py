"""Small ASGI helpers shared by the gateway and the simulator (no framework).

Both are plain ASGI callables: a framework's routing and request objects cost
more per request than everything exportgate decides (docs/gateway.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

__all__ = [
    "JSON",
    "SSE",
    "RawHeaders",
    "Receive",
    "Scope",
    "Send",
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


def serve(target: str, *, host: str, port: int, workers: int = 1, factory: bool = True, log: bool = False) -> None:
    """Run an ASGI app (an import path, ``module:callable``) on granian until interrupted.

    granian (Rust, hyper) measured fastest of the servers tried (docs/gateway.md);
    each worker is a process that imports the target itself.
    """
    from granian import Granian  # noqa: PLC0415 - heavy, only when serving
    from granian.constants import Interfaces, Loops  # noqa: PLC0415

    Granian(
        target,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        factory=factory,
        log_enabled=log,
        backlog=2048,
    ).serve()
