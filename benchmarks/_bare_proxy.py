"""The bare pass-through proxy the gateway benchmark compares against: the same server (granian) and client
(aiohttp) as exportgate, and nothing else. ``python _bare_proxy.py PORT UPSTREAM``."""

from __future__ import annotations

import os
import sys

import aiohttp


class Bare:
    session: aiohttp.ClientSession | None = None

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await self.session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["method"] == "GET":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        async with self.session.request(
            scope["method"], os.environ["BARE_UPSTREAM"] + scope["path"], data=body,
            headers={"content-type": "application/json"},
        ) as response:
            await send({"type": "http.response.start", "status": response.status,
                        "headers": [(b"content-type", response.headers.get("content-type", "").encode())]})
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


def make() -> Bare:
    return Bare()


if __name__ == "__main__":
    from granian import Granian
    from granian.constants import Interfaces, Loops

    os.environ["BARE_UPSTREAM"] = sys.argv[2]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    Granian("_bare_proxy:make", address="127.0.0.1", port=int(sys.argv[1]), interface=Interfaces.ASGI,
            loop=Loops.uvloop, factory=True, log_enabled=False).serve()
