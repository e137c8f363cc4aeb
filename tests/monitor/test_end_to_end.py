"""Synthetic populations through a real gateway: the monitor alerts on every evader and on nobody else
(the US person travelling on a declared trip included), and its actions take effect on the next request."""

from __future__ import annotations

import random
import shlex
import stat
import subprocess
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
from tests.gateway.conftest import EXPORTGATE, Server, serve
from tests.gateway.test_operations import audit_rows

CONFIG = "detectors:\n  key_sharing: {action: suspend}\n  impossible_travel: {action: reverify}\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict, dict]]:
    """``sim traffic`` in a home of its own (a new directory where it runs, its own gateway), then the
    monitor command it prints, with actions configured: the labels and the scorecard."""
    work = tmp_path_factory.mktemp("monitor-e2e")
    config = work / "monitor.yaml"
    config.write_text(CONFIG)
    sent = subprocess.run([*EXPORTGATE, "sim", "traffic", "--per-population", "2", "--hours", "12", "--time-scale",
                           "7200", "--seed", "3"], cwd=work, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    [home] = work.glob("sim-traffic-*")
    then = shlex.split(sent.stdout.splitlines()[-1].removeprefix("then: "))
    assert then[:4] == ["exportgate", "monitor", "--home", home.name] and "--time-scale" in then
    scan = subprocess.run([*EXPORTGATE, *then[1:], "--config", str(config)], cwd=work, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert scan.returncode == 0 and "not a synthetic home" not in scan.stderr, scan.stderr
    lines = scan.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("detector "))
    card = {row.split()[0]: row.split()[1:] for row in lines[header + 1 :]}
    yield home, orjson.loads((home / "labels.json").read_bytes()), card


def _alerts(home: Path) -> list[dict]:
    out = subprocess.run([*EXPORTGATE, "monitor", "alerts", "--home", str(home), "--format", "json"],
                         capture_output=True, check=True).stdout  # fmt: skip
    return orjson.loads(out)


def test_the_scorecard_of_the_printed_command_is_perfect(run: tuple[Path, dict, dict]):
    _, _, card = run
    assert set(card) == {"anonymizer_restricted", "country_hopping", "deny_then_allow", "impossible_travel",
                         "key_sharing", "residency_mismatch"}  # fmt: skip
    assert all(row[-2:] == ["1.0", "1.0"] for row in card.values()), card  # precision, recall


def test_every_evader_is_caught_and_nobody_else(run: tuple[Path, dict, dict]):
    home, labels, _ = run
    alerts = _alerts(home)
    by_account: dict[str, set[str]] = {}
    for alert in alerts:
        by_account.setdefault(alert["account"], set()).add(alert["detector"])
        assert alert["schema"] == "exportgate.alert/v1" and alert["evidence"]
    for name, label in labels["accounts"].items():
        assert by_account.get(name, set()) == set(label["expected"]), (name, label["population"])
    travellers = [n for n, a in labels["accounts"].items() if a["population"] == "us-traveller"]
    assert travellers and not any(t in by_account for t in travellers)


def test_actions_take_effect_on_the_next_request(run: tuple[Path, dict, dict]):
    home, labels, _ = run
    server = serve(home, "--trusted-proxy", "127.0.0.1/32")  # a gateway on the synthetic home again
    try:
        _next_request_sees_the_actions(server, labels)
    finally:
        server.stop()


def _next_request_sees_the_actions(server: Server, labels: dict) -> None:
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
    alert = next(a for a in _alerts(server.home) if a["account"] == sharer)
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
        # and its action is on the record: who (the monitor), what, before and after, the alert as the note
        deadline = time.monotonic() + 10
        while not (actions := [r for r in audit_rows(server.home) if r.get("event") == "admin"]):
            assert time.monotonic() < deadline, "the monitor's action is not in the audit record"
            time.sleep(0.2)
        (action,) = actions
        assert (action["actor"], action["via"], action["action"], action["account"]) == (
            "monitor", "monitor", "account.suspend", "ada")
        assert action["before"]["suspended"] is False and action["after"]["suspended"] is True
        assert action["note"].startswith("alert alert-") and "key_sharing" in action["note"]
    finally:
        server.stop()


def test_sim_traffic_leaves_a_marked_home_and_no_gateway(run: tuple[Path, dict, dict]):
    home, labels, _ = run
    assert "synthetic accounts" in (home / "synthetic").read_text()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert all(stat.S_IMODE((home / f).stat().st_mode) == 0o600 for f in ("synthetic", "labels.json", "alerts.db"))
    assert len(labels["accounts"]) == 16 and (home / "gateway.log").read_text().startswith("exportgate gateway on ")
    assert running_in(home) == []  # the gateway it started has stopped


def running_in(home: Path) -> list[str]:
    """Command lines of the processes that name ``home`` (a gateway serving it)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # ended meanwhile
            continue
        if str(home).encode() in args or home.name.encode() in args:
            found.append(b" ".join(args).decode(errors="replace"))
    return found
