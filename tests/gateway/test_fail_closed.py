"""Whatever cannot be established denies: each fail-closed path, in-process through the ASGI app."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from exportgate.config import Settings
from exportgate.errors import GeoDataError, StoreError
from exportgate.gateway import ClientIpResolver, Gateway, parts_from_settings

from .conftest import make_home

CHAT = {"model": "fable-5", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def built(tmp_path: Path):
    home = tmp_path / "home"
    keys = make_home(home)
    parts = parts_from_settings(Settings({"home": str(home), "access_log": False}))
    parts.client_ip = ClientIpResolver(["127.0.0.1/32"])
    gateway = Gateway(parts)
    yield gateway, keys
    if not gateway._closed:
        asyncio.run(gateway.close())


def post(gateway: Gateway, key: str, ip: str = "3.3.3.3", body: dict | None = None, path: str = "/v1/chat/completions"):
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=gateway, client=("127.0.0.1", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(
                path, json=body or CHAT, headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": ip}
            )

    return asyncio.run(go())


def test_allowed_in_process(built):
    gateway, keys = built
    assert post(gateway, keys["ada"]).status_code == 200


def test_audit_store_down_denies_with_503(built):
    gateway, keys = built
    gateway.parts.audit.store.close()  # every commit now fails
    response = post(gateway, keys["ada"])
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "store_unavailable"
    anthropic = post(gateway, keys["ada"], body={**CHAT, "max_tokens": 5}, path="/v1/messages")
    assert anthropic.status_code == 503 and anthropic.json()["type"] == "error"


def test_account_store_down_denies_with_503(built):
    gateway, keys = built
    gateway.parts.authenticator.store.close()
    gateway.parts.authenticator.invalidate()
    assert post(gateway, keys["ada"]).status_code == 503


def test_geo_failure_is_an_unknown_location(built):
    gateway, keys = built

    def broken(ip: str):
        raise GeoDataError("database unreadable")

    gateway.parts.geo.lookup = broken  # type: ignore[method-assign]
    response = post(gateway, keys["ada"])
    assert response.status_code == 451
    assert [r["code"] for r in response.json()["error"]["reasons"]] == ["location_unknown", "anonymizer_denied"]
    assert (
        post(gateway, keys["li"], body={**CHAT, "model": "sonnet-4"}).status_code == 200
    )  # open tier: no facts needed


def test_async_audit_failure_denies_until_the_store_recovers(tmp_path: Path):
    home = tmp_path / "home"
    keys = make_home(home)
    parts = parts_from_settings(Settings({"home": str(home), "access_log": False, "audit_mode": "async"}))
    parts.client_ip = ClientIpResolver(["127.0.0.1/32"])
    gateway = Gateway(parts)
    store = parts.audit.store
    original = store.append_rows, store.probe

    def failing(*args):
        raise StoreError("disk full")

    store.append_rows = store.probe = failing  # type: ignore[method-assign]  # the store takes no writes at all
    post(gateway, keys["ada"])  # queued; its commit fails in the writer thread
    deadline = asyncio.run(_wait_for(lambda: parts.audit.error is not None))
    assert deadline
    assert post(gateway, keys["ada"]).status_code == 503
    store.append_rows, store.probe = original  # type: ignore[method-assign]
    assert asyncio.run(_wait_for(lambda: parts.audit.error is None, 5.0))
    assert post(gateway, keys["ada"]).status_code == 200
    asyncio.run(gateway.close())


async def _wait_for(check, timeout: float = 3.0) -> bool:
    for _ in range(int(timeout / 0.05)):
        if check():
            return True
        await asyncio.sleep(0.05)
    return False
