"""``--time-scale`` runs: time is stretched from the first record read (where the synthetic traffic
started), not from ``--since``, so a declared trip covers the stretched days; outside a synthetic home the
alerts stay in memory and no account is touched. ``--labels`` is checked before anything is scanned."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exportgate._types import KycLevel
from exportgate.audit import open_store
from exportgate.cli import main
from exportgate.identity import AccountStore
from exportgate.monitor import AlertStore, Monitor, MonitorConfig
from tests.monitor._records import abroad, record, shared_key

MEMORY = ":memory:"
S = 1_000_000_000
T0 = time.time_ns() - 600 * S  # ten minutes ago: records written then


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("scaled")
    yield record(home, shared_key(T0))


@settings(max_examples=40, deadline=None)
@given(gap_s=st.integers(0, 7 * 86400), scale=st.floats(2.0, 20_000.0))
def test_time_is_stretched_from_the_first_record_read(shared: str, gap_s: int, scale: float):
    store = open_store(shared, None)
    monitor = Monitor(MonitorConfig(), AlertStore(MEMORY))
    alerts = monitor.scan_store(store, T0 - gap_s * S, time_scale=scale)
    store.close()
    assert monitor.scale_base_ns == T0 and monitor.events == 6
    assert monitor.last_ns == T0 + int(5 * S * scale)  # the last of six records a second apart
    for alert in alerts:  # key sharing, while the stretched switches are within its 10 minutes
        assert _iso(T0) <= alert["window"]["start"] <= alert["window"]["end"] <= _iso(monitor.last_ns)


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / S, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_follow_keeps_stretching_from_the_same_first_record(tmp_path: Path):
    home = tmp_path / "home"
    url = record(home, shared_key(T0, count=3))
    store = open_store(url, None)
    monitor = Monitor(MonitorConfig(), AlertStore(MEMORY))
    monitor.scan_store(store, T0 - 3600 * S, time_scale=100)
    record(home, shared_key(T0 + 3 * S, account="bo", count=3))
    monitor.follow_once(store)
    store.close()
    assert monitor.events == 6 and monitor.scale_base_ns == T0 and monitor.last_ns == T0 + 5 * S * 100


def test_a_declared_trip_covers_a_scaled_run(tmp_path: Path):
    """The US traveller of the synthetic populations: abroad on a declared trip, read back an hour after
    ``--since`` at 3600x (once flagged residency_mismatch: the stretch started at --since, months ahead)."""
    home = tmp_path / "home"
    accounts = AccountStore(home / "accounts.db")
    today = dt.datetime.now(dt.UTC).date()
    for name in ("traveller", "expat"):
        accounts.add_account(name, citizenships=["US"], kyc=KycLevel.VERIFIED)
    accounts.add_trip("traveller", "DE", today - dt.timedelta(1), today + dt.timedelta(2), "synthetic")
    url = record(home, abroad(T0, "traveller") + abroad(T0, "expat"))
    store = open_store(url, None)
    monitor = Monitor(MonitorConfig(), AlertStore(MEMORY), accounts)
    alerts = monitor.scan_store(store, T0 - 3600 * S, time_scale=600)  # 12 requests, 10 simulated minutes apart
    store.close()
    accounts.close()
    assert {(a["detector"], a["account"]) for a in alerts} == {("residency_mismatch", "expat")}


@pytest.fixture
def real_home(tmp_path: Path) -> Path:
    """A home with a real account whose key is shared, and a config that suspends for key sharing."""
    home = tmp_path / "home"
    accounts = AccountStore(home / "accounts.db")
    accounts.add_account("ada", citizenships=["US"], kyc=KycLevel.VERIFIED)
    accounts.close()
    record(home, shared_key(time.time_ns() - 60 * S))
    (tmp_path / "monitor.yaml").write_text("detectors:\n  key_sharing: {action: suspend}\n")
    return home


def _scaled(home: Path) -> int:
    return main(["monitor", "--home", str(home), "--since", "10m", "--time-scale", "30", "--format", "json",
                 "--config", str(home.parent / "monitor.yaml")])  # fmt: skip


def _suspended(home: Path) -> bool:
    accounts = AccountStore(home / "accounts.db")
    try:
        return accounts.get_account("ada").suspended
    finally:
        accounts.close()


def test_a_scaled_run_in_a_real_home_stores_nothing_and_acts_on_no_one(real_home: Path,
                                                                       capsys: pytest.CaptureFixture[str]):  # fmt: skip
    assert _scaled(real_home) == 0
    out, err = capsys.readouterr()
    assert [a["detector"] for a in orjson.loads(out)] == ["key_sharing"]  # found, and shown
    assert len(err.strip().splitlines()) == 1 and "not a synthetic home" in err and "in memory" in err
    assert not (real_home / "alerts.db").exists() and not _suspended(real_home)

    (real_home / "synthetic").write_text("synthetic accounts\n")  # a synthetic home: stored and acted on as usual
    assert _scaled(real_home) == 0
    assert capsys.readouterr().err == ""
    assert [a["detector"] for a in AlertStore(real_home / "alerts.db").list()] == ["key_sharing"]
    assert _suspended(real_home)


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read labels"),
    (b"{not json", "are not JSON"),
    (b"[]", "holds no labels"),
    (b'{"accounts": ["ada"]}', "holds no labels"),
    (b'{"accounts": {"ada": {"population": "x"}}}', "holds no labels"),
])  # fmt: skip
def test_labels_are_checked_before_the_scan(real_home: Path, content: bytes | None, message: str,
                                            capsys: pytest.CaptureFixture[str]):  # fmt: skip
    labels = real_home.parent / "labels.json"
    if content is not None:
        labels.write_bytes(content)
    assert main(["monitor", "--home", str(real_home), "--since", "10m", "--labels", str(labels)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("exportgate: error: ") and message in err and len(err.strip().splitlines()) == 1, err
    assert not (real_home / "alerts.db").exists()  # nothing scanned, nothing stored


def test_good_labels_give_a_scorecard(real_home: Path, capsys: pytest.CaptureFixture[str]):
    labels = real_home.parent / "labels.json"
    labels.write_bytes(orjson.dumps({"accounts": {"ada": {"population": "key-sharer", "expected": ["key_sharing"]}}}))
    assert main(["monitor", "--home", str(real_home), "--since", "10m", "--labels", str(labels)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("key_sharing "))
    assert row.split()[-2:] == ["1.0", "1.0"]
