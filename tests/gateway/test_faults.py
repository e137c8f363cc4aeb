"""Faults the gateway must survive without an unrecorded answer: values that cannot be recorded, a writer
thread that stops, a store that goes down (SQLite in-process, PostgreSQL under a served gateway), and
upstreams that hang while clients give up."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exportgate.errors import StoreError
from tests.audit.test_resilience import Boom
from tests.idp import TestIdp
from tests.pgserver import PgServer
from tests.upstreams import HangingUpstream

from .conftest import ADMIN, Server, serve
from .test_requests import US, InProcess

CHAT = {"model": "sonnet-4", "messages": [{"role": "user", "content": "hi"}]}


def _audit(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exportgate.cli", "audit", *args, "--home", str(home)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _decisions(home: Path) -> dict[str, dict[str, Any]]:
    out = _audit(home, "export").stdout
    records = [json.loads(line) for line in out.splitlines()]
    return {r["request_id"]: r for r in records if r.get("event") == "decision"}


def _outcomes(home: Path) -> dict[str, dict[str, Any]]:
    records = [json.loads(line) for line in _audit(home, "export").stdout.splitlines()]
    return {o["request_id"]: o for r in records if r.get("event") == "outcomes" for o in r["outcomes"]}


@pytest.mark.parametrize("mode", ["strict", "async"])
def test_a_claim_that_cannot_be_recorded_fails_that_request_only(tmp_path: Path, mode: str):
    idp = TestIdp(tmp_path)
    server = serve(tmp_path / "home", "--trusted-proxy", "127.0.0.1/32", "--audit-mode", mode, env=idp.settings())
    url = server.url + "/v1/chat/completions"
    try:
        bad = httpx.post(url, json=CHAT, headers={"Authorization": f"Bearer {idp.token(sub=chr(0xD800))}"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "unrecordable_request"
        ids = []
        for i in range(21):
            ok = httpx.post(url, json=CHAT, headers={"Authorization": f"Bearer {idp.token(sub=f'user-{i}')}",
                                                     "X-Forwarded-For": US})  # fmt: skip
            assert ok.status_code == 200
            ids.append(ok.headers["x-request-id"])
        assert httpx.get(server.url + "/readyz").status_code == 200
    finally:
        server.stop()
    decisions = _decisions(server.home)
    assert all(i in decisions for i in ids) and bad.headers["x-request-id"] not in decisions
    assert _audit(server.home, "verify").returncode == 0


names = st.text(max_size=24)
claims = st.fixed_dictionaries(
    {},
    optional={
        "sub": names, "name": names, "org": names, "kyc": names, "screening": names, "controlled_by": names,
        "citizenships": st.lists(names, max_size=3) | names, "residencies": st.lists(names, max_size=3),
        "us_person": st.booleans() | names,
    },
)  # fmt: skip
latin1 = st.text(st.characters(max_codepoint=255, blacklist_characters="\r\n\x00"), max_size=40)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("fuzz")
    idp = TestIdp(home)
    gateway = InProcess(home / "home", jwks=str(idp.jwks), jwt_issuer="https://idp.example.test",
                        jwt_audience="exportgate")  # fmt: skip
    yield gateway, idp
    gateway.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(claims, st.text(max_size=30), latin1, st.sampled_from([None, "application/json", "text/plain", "x\x7f"]),
       st.sampled_from(["jwt", "key", "garbage"]))  # fmt: skip
def test_whatever_a_client_sends_is_answered_well_formed_and_recorded(fuzzed, claim, model, forwarded, ctype, cred):
    gateway, idp = fuzzed
    make = {"jwt": lambda: idp.token(**claim), "key": lambda: gateway.keys["ada"], "garbage": lambda: forwarded}
    token = make[cred]()
    headers: dict[str, Any] = {"Authorization": f"Bearer {token}".encode("latin-1"),
                               "X-Forwarded-For": forwarded.encode("latin-1")}  # fmt: skip
    if ctype is not None:
        headers["Content-Type"] = ctype.encode("latin-1")
    response = gateway.request("POST", "/v1/chat/completions", who=None, headers=headers,
                               content=json.dumps({"model": model, "messages": []}).encode())  # fmt: skip
    assert response.status_code in {200, 400, 401, 404, 415, 451}
    if response.status_code != 200:
        assert set(response.json()["error"]) >= {"message", "type", "code"}
    if response.status_code in (200, 451) or response.json()["error"]["code"] == "model_not_found":
        rid = response.headers["x-request-id"]
        assert any(r["request_id"] == rid for r in gateway.records())  # every decided request has its record
    assert gateway.parts.audit.error is None


def test_a_stopped_writer_makes_every_request_503_and_the_gateway_not_ready(tmp_path: Path):
    gateway = InProcess(tmp_path / "home")
    assert gateway.chat(CHAT).status_code == 200

    def explode(rows: Any) -> None:
        raise Boom("a bug in the writer thread")

    gateway.parts.audit.store.append_rows = explode  # type: ignore[method-assign]
    assert gateway.chat(CHAT).status_code == 503  # its commit never comes: answered, not hung
    assert gateway.chat(CHAT).status_code == 503
    assert gateway.request("GET", "/readyz", who=None).status_code == 503
    gateway.close()


def test_readiness_follows_the_store_in_strict_mode_and_recovers(tmp_path: Path):
    gateway = InProcess(tmp_path / "home")
    store = gateway.parts.audit.store
    writes = store.append_rows, store.probe

    def down(*args: Any) -> None:
        raise StoreError("database or disk is full")

    store.append_rows = store.probe = down  # type: ignore[method-assign]
    assert gateway.chat(CHAT).status_code == 503
    assert gateway.request("GET", "/readyz", who=None).status_code == 503  # at once, not after traffic
    store.append_rows, store.probe = writes  # type: ignore[method-assign]
    deadline = time.monotonic() + 10
    while gateway.request("GET", "/readyz", who=None).status_code != 200:  # no request needed to find it back
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert gateway.chat(CHAT).status_code == 200
    gateway.close()


@pytest.mark.parametrize("stream", [False, True])
def test_clients_that_give_up_on_a_hanging_upstream_release_it(tmp_path: Path, stream: bool):
    hanging = HangingUpstream()
    server = serve(tmp_path / "home", "--trusted-proxy", "127.0.0.1/32", "--upstream", hanging.url)
    headers = {"Authorization": f"Bearer {server.keys['ada']}", "X-Forwarded-For": US}
    gave_up = []
    try:
        for _ in range(20):
            try:
                httpx.post(server.url + "/v1/chat/completions", json={**CHAT, "stream": stream}, headers=headers,
                           timeout=httpx.Timeout(5, read=0.5))  # fmt: skip
            except httpx.ReadTimeout:
                gave_up.append(True)
        assert len(gave_up) == 20 and hanging.accepted >= 20
        assert hanging.wait_open(0), f"{hanging.open} upstream connections still open after their clients left"
    finally:
        server.stop()
        hanging.close()
    statuses = [o["http_status"] for o in _outcomes(server.home).values()]
    assert statuses == [499] * 20  # recorded as the client going away, not as an upstream timeout


def test_a_postgres_outage_is_refused_fast_reported_and_survived(tmp_path: Path, pg_server: PgServer):
    url = pg_server.create_database()
    server = serve(tmp_path / "home", "--trusted-proxy", "127.0.0.1/32", "--audit-url", url)
    chat = server.url + "/v1/chat/completions"
    headers = {"Authorization": f"Bearer {server.keys['ada']}", "X-Forwarded-For": US}
    try:
        assert httpx.post(chat, json=CHAT, headers=headers).status_code == 200
        pg_server.stop("fast")
        try:
            answers = [httpx.post(chat, json=CHAT, headers=headers, timeout=3).status_code for _ in range(10)]
            assert answers == [503] * 10  # each well inside 3 s: the store is known down, nobody waits on it
            assert httpx.get(server.url + "/readyz", headers=ADMIN).json()["checks"]["audit"]["ok"] is False
        finally:
            pg_server.start()
        _recovers(server, chat, headers)
    finally:
        server.stop()
    verified = subprocess.run([sys.executable, "-m", "exportgate.cli", "audit", "verify", "--audit-url", url,
                               "--home", str(server.home)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _recovers(server: Server, chat: str, headers: dict[str, str], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while httpx.get(server.url + "/readyz").status_code != 200:
        assert time.monotonic() < deadline, "not ready again after the store came back"
        time.sleep(0.2)
    assert httpx.post(chat, json=CHAT, headers=headers).status_code == 200
