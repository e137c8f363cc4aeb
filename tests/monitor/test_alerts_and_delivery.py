"""Alerts: dedup, states, config errors; events read from real SQLite and PostgreSQL audit stores;
webhook delivery to a real HTTP server with a verified HMAC and retries."""

from __future__ import annotations

import hmac
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import orjson
import pytest

from exportgate.audit import open_store
from exportgate.errors import ConfigError, NotFoundError
from exportgate.monitor import AlertStore, Finding, Monitor, MonitorConfig, Webhook, load_config, read_events, signature
from tests.audit.conftest import entry, write_records

FINDING = Finding("key_sharing", "ada", "high", 1_000 * 10**9, 1_060 * 10**9, ("w:1", "w:2"), "shared", {"n": 2})


def test_alerts_are_deduplicated_and_keep_their_evidence(tmp_path: Path):
    store = AlertStore(tmp_path / "alerts.db")
    first = store.upsert(FINDING, 86400, "suspend")
    again = store.upsert(Finding(**{**FINDING.__dict__, "evidence": ("w:2", "w:3"), "end_ns": 2_000 * 10**9}),
                         86400, "suspend")  # fmt: skip
    assert first.new and not again.new and first.alert["id"] == again.alert["id"]
    alert = store.get(first.alert["id"])
    assert alert["schema"] == "exportgate.alert/v1" and alert["evidence"] == ["w:1", "w:2", "w:3"]
    assert alert["state"] == "open" and alert["action"] == "suspend" and alert["severity"] == "high"
    next_day = Finding(**{**FINDING.__dict__, "start_ns": FINDING.start_ns + 86400 * 10**9})
    assert store.upsert(next_day, 86400, "suspend").new
    assert store.set_state(alert["id"], "acknowledged", "looking").alert["history"][0]["note"] == "looking"
    assert [a["state"] for a in store.list()] == ["acknowledged", "open"]
    with pytest.raises(ConfigError):
        store.set_state(alert["id"], "ignored")
    with pytest.raises(NotFoundError):
        store.get("alert-nope")
    store.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("detectors: {telepathy: {}}\n", "unknown detector"),
        ("detectors: {key_sharing: {action: delete}}\n", "action must be one of"),
        ("detectors: {key_sharing: {window: 5}}\n", "has no parameter window"),
        ("dedup_s: -1\n", "dedup_s"),
        ("colour: blue\n", "holds detectors"),
    ],
)
def test_config_errors_are_clear(tmp_path: Path, text: str, message: str):
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_config_sets_parameters_actions_and_disables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    path = tmp_path / "monitor.yaml"
    path.write_text("detectors:\n  key_sharing: {min_switches: 5, action: suspend}\n  residency_mismatch: "
                    "{enabled: false}\nwebhook: {url: 'http://x', secret: '$env:HOOK_SECRET'}\n")  # fmt: skip
    config = load_config(path)
    assert config.params["key_sharing"] == {"min_switches": 5} and config.actions["key_sharing"] == "suspend"
    assert "residency_mismatch" not in config.params and config.webhook_secret == "s3cret"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_events_come_from_either_audit_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        url = request.getfixturevalue("pg_server").create_database()
    home = tmp_path / "home"
    start = time.time_ns()
    shared = [entry(i, account="ada", key_id="k1", decision="allow", reasons=(), client_ip=f"3.3.{i % 3}.7",
                    time_ns=start + i * 60 * 10**9) for i in range(6)]  # fmt: skip
    writer = write_records(url, home, 0, close=False)
    for item in shared:
        writer.append(item)
    writer.close()
    store = open_store(url, home)
    events = list(read_events(store, start))
    assert [e.network for e in events] == ["3.3.0.0/24", "3.3.1.0/24", "3.3.2.0/24"] * 2
    assert all(e.account == "ada" and e.allowed and e.homes == ("US",) for e in events)
    monitor = Monitor(MonitorConfig(), AlertStore(tmp_path / "alerts.db"))
    alerts = monitor.scan(events)
    assert [a["detector"] for a in alerts] == ["key_sharing"]
    assert alerts[0]["evidence"] == [e.record for e in events]
    store.close()


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[bytes, str]]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Receiver.fail_first > 0:
            _Receiver.fail_first -= 1
            self.send_response(503)
        else:
            _Receiver.received.append((body, self.headers.get("X-Exportgate-Signature", "")))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received, _Receiver.fail_first = [], 2
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_webhook_signs_retries_and_never_blocks(receiver: str, tmp_path: Path):
    hook = Webhook(receiver, "s3cret", backoff_s=0.05)
    alert = AlertStore(tmp_path / "a.db").upsert(FINDING, 86400, "alert").alert
    started = time.monotonic()
    hook.send(alert)
    assert time.monotonic() - started < 0.05  # queued, not delivered inline
    hook.close()
    assert hook.delivered == 1 and hook.failed == 0
    body, sent = _Receiver.received[0]
    assert orjson.loads(body)["id"] == alert["id"]
    assert hmac.compare_digest(sent, signature("s3cret", body))  # two 503s, then delivered


def test_webhook_gives_up_on_a_refusal(tmp_path: Path):
    hook = Webhook("http://127.0.0.1:9/unreachable", None, attempts=2, backoff_s=0.01, timeout_s=0.5)
    hook.send({"id": "x"})
    hook.close()
    assert hook.delivered == 0 and hook.failed == 1


def test_follow_sees_each_record_once_even_when_committed_late(tmp_path: Path):
    url, home = f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "home"
    now = time.time_ns()
    writer = write_records(url, home, 0, close=False)
    for i in range(3):
        writer.append(entry(i, time_ns=now + i * 10**9))
    writer.flush()
    store = open_store(url, home)
    monitor = Monitor(MonitorConfig(), AlertStore(tmp_path / "alerts.db"))
    monitor.follow_once(store)
    assert monitor.events == 3
    monitor.follow_once(store)
    assert monitor.events == 3  # nothing new: nothing read twice
    writer.append(entry(3, time_ns=now + 3 * 10**9))
    writer.append(entry(4, time_ns=now + 1_500_000_000))  # another worker's record, older, committed later
    writer.close()
    monitor.follow_once(store)
    assert monitor.events == 5
    store.close()


def test_follow_after_an_empty_window_does_not_read_older_records(tmp_path: Path):
    url, home = f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "home"
    now = time.time_ns()
    writer = write_records(url, home, 0, close=False)
    writer.append(entry(0, time_ns=now - 3600 * 10**9))  # an hour old: outside the window asked for
    writer.flush()
    store = open_store(url, home)
    monitor = Monitor(MonitorConfig(), AlertStore(tmp_path / "alerts.db"))
    assert monitor.scan_store(store, now - 60 * 10**9) == [] and monitor.events == 0
    monitor.follow_once(store)
    assert monitor.events == 0
    writer.append(entry(1, time_ns=time.time_ns()))
    writer.close()
    monitor.follow_once(store)
    assert monitor.events == 1
    store.close()
