"""The audit row's ``signals`` column gives the monitor exactly what the record's body says, on both
stores, and stores from before the column (schema 1) upgrade in place: their rows still verify and are
read from their bodies."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import orjson
import pytest

from exportgate.audit import AuditEntry, load_heads, open_store, verify_store
from exportgate.monitor import read_events
from exportgate.monitor._events import _event
from exportgate.signing import trusted_keys
from tests.audit.conftest import Raw, entry, write_records

START = time.time_ns()

VARIED: list[AuditEntry] = [
    entry(0, account="ada", key_id="k1", client_ip="3.3.3.7", decision="allow", reasons=()),
    entry(1, account="ada", key_id="k1", client_ip="2001:db8:aa:bb::1", country="DE", anonymizers=("hosting", "vpn"),
          decision="deny", reasons=({"code": "anonymizer_denied", "rule": "deny_anonymizers", "value": "vpn"},)),
    entry(2, account="bo", key_id=None, client_ip=None, country=None, subject=None, tier=None, decision="deny",
          reasons=({"code": "unauthenticated", "rule": "authentication"},)),
    entry(3, account="cy", key_id="k,3\x1fx", subject={"citizenships": ["FR"], "residencies": ["US", "DE"]},
          decision="deny", reasons=({"code": "location_unknown", "rule": "allow_location"},
                                    {"code": "kyc_insufficient", "rule": "require_kyc"})),
    entry(4, account="dee", subject={"citizenships": [], "residencies": []}, tier="domestic,eu", decision="allow",
          reasons=()),
    entry(5, account="cy", key_id="k,3x", decision="allow", reasons=()),  # not the same key as "k,3\x1fx"
]  # fmt: skip


def _url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return str(request.getfixturevalue("pg_server").create_database())


def _write(url: str, home: Path, entries: list[AuditEntry], first: int = 0) -> None:
    writer = write_records(url, home, 0, close=False)
    for i, item in enumerate(entries):
        writer.append(dataclasses.replace(item, time_ns=START + first + i))
    writer.close()
    writer.store.close()


def _from_bodies(url: str, home: Path) -> list:
    store = open_store(url, home)
    try:
        rows = sorted((r for r in store.chain_rows() if r.kind == "decision"), key=lambda r: r.time_ns)
        return [_event(f"{r.writer}:{r.seq}", r.time_ns, orjson.loads(r.body)) for r in rows]
    finally:
        store.close()


def _read(url: str, home: Path) -> list:
    store = open_store(url, home)
    try:
        return list(read_events(store, START))
    finally:
        store.close()


def _verifies(url: str, home: Path) -> bool:
    store = open_store(url, home)
    try:
        report = verify_store(store, trusted_keys(home), load_heads(home / "audit", store))
    finally:
        store.close()
    return report.ok


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_signals_say_what_the_body_says(backend: str, tmp_path: Path, request: pytest.FixtureRequest):
    url, home = _url(backend, tmp_path, request), tmp_path / "home"
    _write(url, home, VARIED)
    stored = [r[0] for r in Raw(url).execute("SELECT signals FROM audit_records WHERE kind = 'decision' ORDER BY seq")]
    assert [s is not None for s in stored] == [True, True, True, False, True, True]  # a separator in a key: no signals
    events = _read(url, home)
    assert events == _from_bodies(url, home)
    assert events[1].network == "2001:db8:aa::/48" and events[1].anonymizers == ("hosting", "vpn")
    assert events[1].location_denied and events[3].location_denied and not events[2].location_denied
    assert events[3].homes == ("DE", "US") and events[4].homes == ()
    assert events[2].key_id is None and events[2].country is None and events[2].tier is None


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_from_before_the_column_upgrades_in_place(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
):
    url, home = _url(backend, tmp_path, request), tmp_path / "home"
    with monkeypatch.context() as old:  # what an exportgate before schema 2 wrote
        old.setattr(AuditEntry, "signals", lambda self: None)
        _write(url, home, VARIED[:3])
    raw = Raw(url)
    raw.execute("ALTER TABLE audit_records DROP COLUMN signals")
    raw.execute("DROP TABLE audit_meta")
    raw.execute("DROP TABLE audit_probes")
    if backend == "sqlite":
        raw.execute("PRAGMA user_version = 1")
    else:
        raw.execute("DELETE FROM exportgate_schema WHERE version > 1")

    _write(url, home, VARIED[4:], 4)  # opening the store upgrades it; new rows carry signals
    assert [r[0] is not None for r in raw.execute("SELECT signals FROM audit_records WHERE kind = 'decision' "
                                                    "ORDER BY time_ns")] == [False] * 3 + [True] * 2  # fmt: skip
    assert _verifies(url, home)
    assert _read(url, home) == _from_bodies(url, home) and len(_from_bodies(url, home)) == 5
