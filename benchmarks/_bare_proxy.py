"""The bare pass-through proxies the gateway benchmark compares against: the same server (granian) as
exportgate and nothing else, with aiohttp's client (``aiohttp``, the usual Python choice) or with
exportgate's own upstream client (``lean``: the same pass-through, so the difference to exportgate is the
checks and the audit alone). ``python _bare_proxy.py PORT UPSTREAM aiohttp|lean``."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import aiohttp

from exportgate._http import HttpClient, Origin


async def _lifespan(receive, send, start, stop):  # type: ignore[no-untyped-def]
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            start()
            await send({"type": "lifespan.startup.complete"})
        else:
            await stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _body(receive) -> bytes:  # type: ignore[no-untyped-def]
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _ok(send) -> None:  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class Bare:
    session: aiohttp.ClientSession | None = None

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            def start() -> None:
                self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            await _lifespan(receive, send, start, self._close)
        elif scope["method"] == "GET":
            await _ok(send)
        else:
            await self._proxy(scope, receive, send)

    async def _close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def _proxy(self, scope, receive, send):  # type: ignore[no-untyped-def]
        body = await _body(receive)
        async with self.session.request(
            scope["method"], os.environ["BARE_UPSTREAM"] + scope["path"], data=body,
            headers={"content-type": "application/json"},
        ) as response:
            await send({"type": "http.response.start", "status": response.status,
                        "headers": [(b"content-type", response.headers.get("content-type", "").encode())]})
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


class Lean:
    def __init__(self) -> None:
        url = urlsplit(os.environ["BARE_UPSTREAM"])
        self.origin = Origin(url.scheme, url.hostname or "", url.port or 80)
        self.client = HttpClient()

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, lambda: None, self.client.close)
        elif scope["method"] == "GET":
            await _ok(send)
        else:
            await self._proxy(scope, receive, send)

    async def _proxy(self, scope, receive, send):  # type: ignore[no-untyped-def]
        body = await _body(receive)
        response = await self.client.request(self.origin, scope["method"].encode(), scope["path"].encode(),
                                             [(b"content-type", b"application/json")], body, 10, 600)
        try:
            content_type = next((v for k, v in response.headers if k == b"content-type"), b"")
            await send({"type": "http.response.start", "status": response.status,
                        "headers": [(b"content-type", content_type)]})
            async for chunk in response.chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            response.close()


def make() -> Bare | Lean:
    return Lean() if os.environ.get("BARE_CLIENT") == "lean" else Bare()


if __name__ == "__main__":
    from granian import Granian
    from granian.constants import Interfaces, Loops

    os.environ["BARE_UPSTREAM"] = sys.argv[2]
    os.environ["BARE_CLIENT"] = sys.argv[3] if len(sys.argv) > 3 else "aiohttp"
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    Granian("_bare_proxy:make", address="127.0.0.1", port=int(sys.argv[1]), interface=Interfaces.ASGI,
            loop=Loops.uvloop, factory=True, log_enabled=False).serve()
