"""The loop closed for real: evaluate the simulator, classify, write the directive a running gateway
enforces, see the gateway reload it and change its decisions for the model; then re-evaluate a hardened
model, relax the tier (pending until a second person approves it), and see the gateway open the model again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from exportgate.cli import main
from exportgate.policy import load_directive
from tests.gateway.conftest import ADMIN, Server, serve

from .conftest import MakeEvidence, classify_args

GERMANY, USA = "84.128.0.1", "3.3.3.3"  # a German and a US residential address in the bundled geo data


@pytest.fixture
def gateway(directive_file: Path, tmp_path: Path) -> Iterator[Server]:
    server = serve(tmp_path / "gateway-home", "--directive", str(directive_file), "--trusted-proxy", "127.0.0.1/32")
    yield server
    server.stop()


def _status(server: Server, who: str, ip: str) -> int:
    body = {"model": "sonnet-4", "messages": [{"role": "user", "content": "Say hello."}]}
    headers = {"Authorization": f"Bearer {server.keys[who]}", "X-Forwarded-For": ip}
    return httpx.post(server.url + "/v1/chat/completions", headers=headers, json=body, timeout=10).status_code


def _served_version(server: Server) -> str:
    return str(httpx.get(server.url + "/readyz", headers=ADMIN, timeout=5).json()["checks"]["directive"]["version"])


def _until_reloaded(server: Server, version: str) -> None:
    deadline = time.monotonic() + 15
    while _served_version(server) != version:
        if time.monotonic() > deadline:
            pytest.fail(f"the gateway did not reload directive version {version}")
        time.sleep(0.1)


def test_classification_changes_what_a_running_gateway_allows(
    gateway: Server, make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):  # fmt: skip
    home = tmp_path / "classify-home"
    assert _status(gateway, "olaf", GERMANY) == 200  # sonnet-4 is open: a German user is served
    assert _status(gateway, "ada", USA) == 200

    raise_ = classify_args([make_evidence("vulnerable", trials=20, home=home)], directive_file, home, "--by", "ada")
    assert main(raise_) == 0
    assert "tier raised from open to domestic" in capsys.readouterr().out
    _until_reloaded(gateway, _version_in(directive_file))
    assert _status(gateway, "olaf", GERMANY) == 451  # a foreign person is now denied, legally
    assert _status(gateway, "ada", USA) == 200  # a US person in the US still is served

    pending = _version_in(directive_file)
    relax = classify_args([make_evidence("hardened", trials=20, home=home)], directive_file, home, "--by", "ada")
    capsys.readouterr()
    assert main([*relax, "--format", "json"]) == 0
    record = orjson.loads(capsys.readouterr().out)
    assert record["status"] == "pending" and _version_in(directive_file) == pending  # nothing applied yet
    assert _status(gateway, "olaf", GERMANY) == 451
    assert main(["classify", "approve", record["id"], "--by", "grace", "--home", str(home)]) == 0
    assert "tier relaxed from domestic to open" in capsys.readouterr().out
    _until_reloaded(gateway, _version_in(directive_file))
    assert _status(gateway, "olaf", GERMANY) == 200


def _version_in(directive: Path) -> str:
    return load_directive(directive).version
