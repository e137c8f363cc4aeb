"""A served gateway in operation: streaming, disconnects, hot reload, health, metrics, upstream failures, audit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import ADMIN, Server, serve

ROOT = Path(__file__).resolve().parents[2]
CHAT = {"model": "fable-5", "messages": [{"role": "user", "content": "Say hello."}]}


def headers(server: Server, who: str = "ada", ip: str = "3.3.3.3") -> dict[str, str]:
    return {"Authorization": f"Bearer {server.keys[who]}", "X-Forwarded-For": ip}


def audit_rows(home: Path) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "exportgate.cli", "audit", "export", "--home", str(home)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="module")
def streaming_gateway(tmp_path_factory: pytest.TempPathFactory, slow_sim: str):
    server = serve(tmp_path_factory.mktemp("gw-stream"), "--trusted-proxy", "127.0.0.1/32", "--upstream", slow_sim)
    yield server
    server.stop()


def stream_chat(server: Server):
    return httpx.stream(
        "POST", server.url + "/v1/chat/completions", headers=headers(server), json={**CHAT, "stream": True}, timeout=30
    )


def test_first_chunk_arrives_before_the_upstream_finishes(streaming_gateway: Server):
    arrivals = []
    with stream_chat(streaming_gateway) as response:
        assert response.status_code == 200
        start = time.monotonic()
        for chunk in response.iter_raw():
            if chunk:
                arrivals.append(time.monotonic() - start)
    # the simulator spaces ~10 events 100 ms apart; unbuffered, they arrive spread out, not in one lump at the end
    assert len(arrivals) >= 5
    assert arrivals[-1] - arrivals[0] >= 0.5


def test_client_disconnect_cancels_the_upstream_and_is_recorded(streaming_gateway: Server):
    with stream_chat(streaming_gateway) as response:
        request_id = response.headers["x-request-id"]
        next(response.iter_raw())  # one chunk, then hang up
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        outcomes = [
            o for r in audit_rows(streaming_gateway.home) if r.get("event") == "outcomes" for o in r["outcomes"]
        ]
        mine = [o for o in outcomes if o["request_id"] == request_id]
        if mine:
            assert mine[0]["http_status"] == 499
            return
        time.sleep(0.2)
    pytest.fail("the disconnected request's outcome was not recorded")


def test_health_ready_metrics_and_directive_page(gateway: Server):
    assert httpx.get(gateway.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(gateway.url + "/readyz").json() == {"status": "ready"}  # the public answer says no more
    ready = httpx.get(gateway.url + "/readyz", headers=ADMIN).json()
    assert ready["status"] == "ready" and ready["checks"]["directive"]["id"] == "frontier-ai-access"
    assert {name for name, check in ready["checks"].items() if check["ok"]} == {"audit", "accounts", "state",
                                                                                 "directive", "gateway"}  # fmt: skip
    assert ready["checks"]["state"]["backend"] == "sqlite" and ready["checks"]["state"]["stale"] is False
    httpx.post(gateway.url + "/v1/chat/completions", headers=headers(gateway, "li", "114.114.114.114"), json=CHAT)
    assert httpx.get(gateway.url + "/metrics").status_code == 401
    metrics = httpx.get(gateway.url + "/metrics", headers=ADMIN).text
    assert (
        'exportgate_decisions_total{result="deny",reason="us_person_required",model="fable-5",tier="domestic"}'
        in metrics
    )
    assert "exportgate_request_duration_seconds_bucket" in metrics and "exportgate_audit_up{" in metrics
    page = httpx.get(gateway.url + "/directive").json()
    assert page["directive"] == "frontier-ai-access" and "models" not in page  # the legal basis, no model table
    page = httpx.get(gateway.url + "/directive", headers=ADMIN).json()
    assert page["models"]["fable-5"] == "domestic"


def test_bad_requests_get_well_formed_errors(gateway: Server):
    url = gateway.url + "/v1/chat/completions"
    for body in (b"{not json", b"[]", b'{"messages": []}', b'{"model": 5}'):
        response = httpx.post(url, headers=headers(gateway), content=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["type"] == "invalid_request_error"
    response = httpx.post(gateway.url + "/v1/messages", headers=headers(gateway), content=b"{oops")
    assert response.status_code == 400 and response.json()["type"] == "error"
    assert httpx.get(gateway.url + "/v1/nothing").status_code == 404


def test_every_decision_is_audited_and_the_trail_verifies(gateway: Server):
    response = httpx.post(
        gateway.url + "/v1/chat/completions", headers=headers(gateway, "li", "114.114.114.114"), json=CHAT
    )
    request_id = response.headers["x-request-id"]
    time.sleep(0.3)
    record = next(r for r in audit_rows(gateway.home) if r.get("request_id") == request_id)
    assert record["decision"] == "deny" and record["http_status"] == 451
    assert record["country"] == "CN" and record["client_ip"] == "114.114.114.114"
    assert [r["code"] for r in record["reasons"]] == ["us_person_required", "location_not_allowed"]
    assert record["subject"]["citizenships"] == ["CN"]
    assert record["directive_sha256"] and record["account"] == "li"
    assert "egk_" not in json.dumps(record)  # never the key itself
    verify = subprocess.run(
        [sys.executable, "-m", "exportgate.cli", "audit", "verify", "--home", str(gateway.home)],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stdout


def test_unreachable_upstream_is_502_and_audited(tmp_path: Path):
    server = serve(tmp_path / "home", "--trusted-proxy", "127.0.0.1/32", "--upstream", "http://127.0.0.1:9")
    try:
        response = httpx.post(server.url + "/v1/chat/completions", headers=headers(server), json=CHAT)
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_error"
        response = httpx.post(server.url + "/v1/messages", headers=headers(server), json={**CHAT, "max_tokens": 10})
        assert response.status_code == 400 and response.json()["type"] == "error"  # an OpenAI-style upstream
        assert "call /v1/chat/completions" in response.json()["error"]["message"]
    finally:
        server.stop()
    outcomes = [o for r in audit_rows(tmp_path / "home") if r.get("event") == "outcomes" for o in r["outcomes"]]
    assert [o["http_status"] for o in outcomes] == [502, 400]


def test_directive_hot_reload_keeps_the_last_good_one(tmp_path: Path):
    directive = tmp_path / "directive.yaml"
    original = (ROOT / "examples" / "directive.yaml").read_text()
    directive.write_text(original)
    server = serve(tmp_path / "home", "--trusted-proxy", "127.0.0.1/32", "--directive", str(directive))
    url = server.url + "/v1/chat/completions"
    cn = headers(server, "li", "114.114.114.114")
    try:
        assert httpx.post(url, headers=cn, json=CHAT).status_code == 451
        directive.write_text(
            original.replace("fable-5:  {tier: domestic", "fable-5:  {tier: open").replace(
                'version: "2026-06-14.1"', 'version: "2026-06-14.2"'
            )
        )
        _eventually(lambda: httpx.post(url, headers=cn, json=CHAT).status_code == 200)
        directive.write_text("directive: broken\ntiers: {open: {bogus_rule: 1}}\n")
        reload_error = lambda: httpx.get(server.url + "/readyz", headers=ADMIN).json()["checks"]["directive"]  # noqa: E731
        _eventually(lambda: reload_error()["reload_error"] is not None)
        assert reload_error()["version"] == "2026-06-14.2"  # the last good one is still in force
        assert httpx.post(url, headers=cn, json=CHAT).status_code == 200
    finally:
        server.stop()


def _eventually(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail("condition not reached")
