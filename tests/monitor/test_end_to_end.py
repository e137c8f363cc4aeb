"""Synthetic populations through a real gateway: the monitor alerts on every evader and on nobody else
(the US person travelling on a declared trip included), and its actions take effect on the next request."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from exportgate.cli import main
from exportgate.geo import GeoLookup
from exportgate.identity import AccountStore
from exportgate.monitor import AddressBook
from tests.gateway.conftest import Server, serve

CONFIG = "detectors:\n  key_sharing: {action: suspend}\n  impossible_travel: {action: reverify}\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict]]:
    work = tmp_path_factory.mktemp("monitor-e2e")
    server = serve(work / "home", "--trusted-proxy", "127.0.0.1/32")
    labels, config = work / "labels.json", work / "monitor.yaml"
    config.write_text(CONFIG)
    (server.home / "synthetic").write_text("synthetic accounts only\n")  # alerts and actions of scaled runs kept
    assert main(["sim", "traffic", "--gateway", server.url, "--home", str(server.home), "--per-population", "2",
                 "--hours", "12", "--time-scale", "7200", "--labels", str(labels), "--seed", "3"]) == 0  # fmt: skip
    assert main(["monitor", "--home", str(server.home), "--since", "5m", "--time-scale", "7200",
                 "--config", str(config), "--format", "json"]) == 0  # fmt: skip
    yield server, orjson.loads(labels.read_bytes())
    server.stop()


def _alerts(server: Server) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "exportgate.cli", "monitor", "alerts", "--home", str(server.home),
                          "--format", "json"], capture_output=True, check=True).stdout  # fmt: skip
    return orjson.loads(out)


def test_every_evader_is_caught_and_nobody_else(run: tuple[Server, dict]):
    server, labels = run
    alerts = _alerts(server)
    by_account: dict[str, set[str]] = {}
    for alert in alerts:
        by_account.setdefault(alert["account"], set()).add(alert["detector"])
        assert alert["schema"] == "exportgate.alert/v1" and alert["evidence"]
    for name, label in labels["accounts"].items():
        assert by_account.get(name, set()) == set(label["expected"]), (name, label["population"])
    travellers = [n for n, a in labels["accounts"].items() if a["population"] == "us-traveller"]
    assert travellers and not any(t in by_account for t in travellers)


def test_actions_take_effect_on_the_next_request(run: tuple[Server, dict]):
    server, labels = run
    store = AccountStore(server.home / "accounts.db")
    sharer = next(n for n, a in labels["accounts"].items() if a["population"] == "key-sharer")
    hopper = next(n for n, a in labels["accounts"].items() if a["population"] == "region-hopper")
    assert store.get_account(sharer).suspended
    assert store.kyc_held(hopper) is not None
    key = store.create_key(sharer).secret
    body = {"model": "sonnet-4", "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=10,
                        headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": "3.3.3.3"})  # fmt: skip
    assert answer.status_code == 451 and answer.json()["error"]["code"] == "account_suspended"
    alert = next(a for a in _alerts(server) if a["account"] == sharer)
    assert main(["monitor", "resolve", alert["id"], "--restore", "--home", str(server.home)]) == 0
    answer = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=10,
                        headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": "3.3.3.3"})  # fmt: skip
    assert answer.status_code == 200  # unsuspended: the very next request is served again
    store.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_the_gateway_runs_the_monitor_in_the_background(tmp_path: Path, workers: int):
    config = tmp_path / "monitor.yaml"
    config.write_text("detectors:\n  key_sharing: {action: suspend}\n")
    server = serve(tmp_path / "home", "--trusted-proxy", "127.0.0.1/32", "--monitor", "--monitor-config", str(config),
                   "--workers", str(workers), env={"EXPORTGATE_MONITOR_INTERVAL": "0.2"})  # fmt: skip
    try:
        places = AddressBook(GeoLookup(), random.Random(1), ["US"], per_country=3).residential["US"]
        body = {"model": "sonnet-4", "messages": [{"role": "user", "content": "hi"}]}

        def ask(ip: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {server.keys['ada']}", "X-Forwarded-For": ip}
            return httpx.post(server.url + "/v1/chat/completions", json=body, timeout=10, headers=headers)

        # one key, three places at once: the fourth request makes the third switch, and the pattern
        assert [ask(places[i % 3]).status_code for i in range(4)] == [200] * 4
        deadline = time.monotonic() + 15
        while ask(places[1]).status_code != 451:
            assert time.monotonic() < deadline, "the background monitor did not suspend the shared key's account"
            time.sleep(0.2)
        assert ask(places[0]).json()["error"]["code"] == "account_suspended"
        # however many workers serve, one of them runs the detectors (the holder of HOME/monitor.lock)
        assert server.log.read_text().count("runs the evasion detectors") == 1
    finally:
        server.stop()
