"""Alert triage: states and their transitions (who, when, why) in each alert's history, the CLI's
ack / resolve / reopen and its filtered, read-only listing, and alert stores from before the history."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exportgate.cli import main
from exportgate.errors import ConfigError, ConflictError, NotFoundError, StoreError
from exportgate.monitor import DETECTORS, STATES, AlertStore, Finding
from exportgate.state import PostgresDatabase

DAY = 86400 * 10**9
FINDING = Finding("key_sharing", "ada", "high", 1_000 * 10**9, 1_060 * 10**9, ("w:1", "w:2"), "shared", {"n": 2})
MEMORY = ":memory:"
OLD_SCHEMA = (  # alerts.db as the first release wrote it (no user_version, no history)
    "CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, detector TEXT NOT NULL, account TEXT NOT NULL,"
    " severity TEXT NOT NULL, state TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
    " record TEXT NOT NULL)"
)


def finding(detector: str = "key_sharing", account: str = "ada", day: int = 0) -> Finding:
    return Finding(detector, account, "high", FINDING.start_ns + day * DAY, FINDING.end_ns + day * DAY,
                   (f"w:{day}",), f"{detector} by {account}", {})  # fmt: skip


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("exportgate: error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest) -> Iterator[AlertStore]:
    """An alert store on each backend (on PostgreSQL: what every replica shares)."""
    if request.param == "sqlite":
        store = AlertStore(MEMORY)
    else:
        store = AlertStore(PostgresDatabase(request.getfixturevalue("state_url")))
    yield store
    store.close()


def test_every_transition_is_recorded_with_who_and_why(shared: AlertStore):
    store = shared
    key = store.upsert(FINDING, 86400, "suspend").alert["id"]
    acked = store.set_state(key, "acknowledged", "looking", by="ana")
    assert acked.changed and acked.previous == "open" and acked.alert["state"] == "acknowledged"
    [entry] = acked.alert["history"]
    assert set(entry) == {"at", "state", "from", "by", "note"}
    assert (entry["state"], entry["from"], entry["by"], entry["note"]) == ("acknowledged", "open", "ana", "looking")
    again = store.set_state(key, "acknowledged", by="bo")
    assert not again.changed and len(again.alert["history"]) == 1  # a no-op records nothing
    store.set_state(key, "resolved", "false alarm", by="bo")
    with pytest.raises(ConflictError, match="reopened"):
        store.set_state(key, "acknowledged", by="cy")
    assert not store.set_state(key, "resolved", by="cy").changed
    store.set_state(key, "open", "it came back", by="cy")
    store.upsert(Finding(**{**FINDING.__dict__, "evidence": ("w:3",)}), 86400, "suspend")  # evidence keeps history
    alert = store.get(key)
    assert [(h["from"], h["state"], h["by"]) for h in alert["history"]] == [
        ("open", "acknowledged", "ana"), ("acknowledged", "resolved", "bo"), ("resolved", "open", "cy")]  # fmt: skip
    assert alert["state"] == "open" and alert["evidence"] == ["w:1", "w:2", "w:3"]
    with pytest.raises(ConfigError, match="open, acknowledged, resolved"):
        store.set_state(key, "ignored")
    with pytest.raises(NotFoundError):
        store.set_state("alert-nope", "resolved")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.sampled_from(STATES), st.sampled_from(["ana", "bo"])), st.just(("seen", ""))),
                max_size=12))  # fmt: skip
def test_history_holds_each_change_and_nothing_else(steps: list[tuple[str, str]]):
    store = AlertStore(MEMORY)
    key = store.upsert(FINDING, 86400, "alert").alert["id"]
    state, expected = "open", []
    for target, by in steps:
        if target == "seen":  # the monitor sees the pattern again: evidence only
            assert not store.upsert(FINDING, 86400, "alert").new
        elif (state, target) == ("resolved", "acknowledged"):  # the one move refused: reopen first
            with pytest.raises(ConflictError):
                store.set_state(key, target, by=by)
        else:
            change = store.set_state(key, target, by=by)
            assert change.changed == (target != state)
            if change.changed:
                expected.append((state, target, by))
                state = target
    alert = store.get(key)
    assert alert["state"] == state and [a["state"] for a in store.list(state)] == [state]
    assert [(h["from"], h["state"], h["by"]) for h in alert["history"]] == expected
    store.close()


def test_filters_are_applied_by_the_store(shared: AlertStore):
    store = shared
    pairs = [("key_sharing", "ada"), ("key_sharing", "bo"), ("impossible_travel", "ada"), ("residency_mismatch", "cy")]
    for day, (detector, account) in enumerate(pairs):
        store.upsert(finding(detector, account, day), 86400, "alert")
    assert {a["detector"] for a in store.list(account="ada")} == {"key_sharing", "impossible_travel"}
    assert {a["account"] for a in store.list(detector="key_sharing")} == {"ada", "bo"}
    assert [a["detector"] for a in store.list(account="ada", detector="impossible_travel")] == ["impossible_travel"]
    assert store.list(account="nobody") == [] and len(store.list(since_ns=FINDING.end_ns + 2 * DAY)) == 2
    with pytest.raises(ConfigError):
        store.list("bogus")


def test_alert_files_are_private(tmp_path: Path):
    path = tmp_path / "home" / "alerts.db"
    store = AlertStore(path)
    store.upsert(FINDING, 86400, "alert")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for made in path.parent.iterdir():  # the database, and SQLite's -wal and -shm beside it
        assert stat.S_IMODE(made.stat().st_mode) == 0o600, made.name
    store.close()


def _old_store(path: Path) -> dict:
    old = {"schema": "exportgate.alert/v1", "id": "alert-00000000000000aa", "detector": "key_sharing",
           "account": "ada", "severity": "high", "state": "acknowledged",
           "window": {"start": "2026-01-01T00:00:00.000Z", "end": "2026-01-01T00:01:00.000Z"}, "summary": "shared",
           "details": {}, "evidence": ["w:1"], "action": "alert", "created": "2026-01-01T00:02:00.000Z",
           "updated": "2026-01-01T00:03:00.000Z",
           "notes": [{"at": "2026-01-01T00:03:00.000Z", "state": "acknowledged", "note": "on it"}],
           "_start_ns": 1, "_end_ns": 2}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(OLD_SCHEMA)
        db.execute("INSERT INTO alerts VALUES (?, 'key_sharing', 'ada', 'high', 'acknowledged', 1, 2, ?)",
                   (old["id"], orjson.dumps(old).decode()))  # fmt: skip
    return old


def _schema(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_an_alert_store_from_before_the_history_lists_then_upgrades(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]):  # fmt: skip
    home = tmp_path / "home"
    old = _old_store(home / "alerts.db")
    assert main(["monitor", "alerts", "--home", str(home), "--format", "json"]) == 0
    [listed] = orjson.loads(capsys.readouterr().out)
    assert listed["history"] == [] and listed["notes"] == old["notes"] and listed["state"] == "acknowledged"
    assert _schema(home / "alerts.db") == 0  # listing changed nothing

    assert main(["monitor", "resolve", old["id"], "--by", "ana", "--home", str(home)]) == 0
    assert _schema(home / "alerts.db") == 2
    upgraded = AlertStore(home / "alerts.db").get(old["id"])
    assert upgraded["notes"] == old["notes"] and upgraded["state"] == "resolved"
    assert [(h["from"], h["state"], h["by"]) for h in upgraded["history"]] == [("acknowledged", "resolved", "ana")]


def test_a_newer_alert_store_is_refused(tmp_path: Path):
    path = tmp_path / "alerts.db"
    AlertStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema 99"):
        AlertStore(path)


@pytest.mark.parametrize(("args", "names"), [
    (["--state", "bogus"], STATES),
    (["--detector", "telepathy"], tuple(DETECTORS)),
])  # fmt: skip
def test_listing_refuses_unknown_states_and_detectors(args: list[str], names: tuple[str, ...], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]):  # fmt: skip
    home = tmp_path / "home"
    AlertStore(home / "alerts.db").upsert(FINDING, 86400, "alert")
    assert main(["monitor", "alerts", *args, "--home", str(home)]) == 2
    err = one_line_error(capsys)
    assert all(name in err for name in names) and args[1] in err


def test_listing_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    home = tmp_path / "home"
    home.mkdir()  # a home without alerts (without a home at all: an error, tests/cli/test_read_only.py)
    assert main(["monitor", "alerts", "--home", str(home)]) == 0
    assert capsys.readouterr().out.strip() == "no alerts"
    assert main(["monitor", "alerts", "--home", str(home), "--format", "json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == []
    assert main(["monitor", "ack", "alert-0000", "--home", str(home)]) == 1
    assert "no alert 'alert-0000'" in one_line_error(capsys)
    assert list(home.iterdir()) == []


def _listed(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    capsys.readouterr()
    assert main(["monitor", "alerts", "--home", str(home), "--format", "json", *args]) == 0
    return list(orjson.loads(capsys.readouterr().out))


def test_triage_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    home = tmp_path / "home"
    store = AlertStore(home / "alerts.db")
    key = store.upsert(finding("key_sharing", "ada"), 86400, "alert").alert["id"]
    other = store.upsert(finding("impossible_travel", "bo", 1), 86400, "alert").alert["id"]
    store.close()
    monkeypatch.setenv("LOGNAME", "ops-kim")  # the OS user name, as getpass finds it
    assert main(["monitor", "ack", key, "--note", "looking", "--home", str(home)]) == 0
    assert "acknowledged (was open; by ops-kim)" in capsys.readouterr().out
    assert main(["monitor", "ack", key, "--by", "ana", "--home", str(home)]) == 0
    assert "already acknowledged" in capsys.readouterr().out
    assert main(["monitor", "resolve", key, "--by", "ana", "--note", "a family plan", "--home", str(home)]) == 0
    assert main(["monitor", "resolve", key, "--home", str(home)]) == 0
    assert "already resolved" in capsys.readouterr().out

    assert main(["monitor", "ack", key, "--home", str(home)]) == 1
    assert f"exportgate monitor reopen {key}" in one_line_error(capsys)
    assert main(["monitor", "reopen", key, "--by", "bo", "--home", str(home)]) == 0
    assert main(["monitor", "ack", key, "--by", "bo", "--home", str(home)]) == 0

    [alert] = _listed(home, capsys, "--account", "ada")
    assert [(h["from"], h["state"], h["by"], h["note"]) for h in alert["history"]] == [
        ("open", "acknowledged", "ops-kim", "looking"), ("acknowledged", "resolved", "ana", "a family plan"),
        ("resolved", "open", "bo", None), ("open", "acknowledged", "bo", None)]  # fmt: skip
    assert [a["id"] for a in _listed(home, capsys, "--detector", "impossible_travel")] == [other]
    assert _listed(home, capsys, "--detector", "impossible_travel", "--account", "ada") == []
    assert [a["id"] for a in _listed(home, capsys, "--state", "open")] == [other]
    assert main(["monitor", "alerts", "--home", str(home)]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:6] == ["id", "detector", "account", "severity", "state", "by"]
    assert [r.split()[5] for r in rows] == ["bo", "-"]  # who made the last transition
