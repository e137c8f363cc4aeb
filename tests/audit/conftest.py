"""Audit fixtures: a store of each kind, a writer, raw SQL access for tampering."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from exportgate.audit import AuditEntry, AuditWriter, open_store
from exportgate.cli import main
from exportgate.signing import home_signer
from tests.pgserver import PgServer


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.create_database()


@pytest.fixture
def audit_home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def entry(i: int = 0, **kw: Any) -> AuditEntry:
    base: dict[str, Any] = {
        "request_id": f"req-{i}",
        "decision": "allow" if i % 3 else "deny",
        "time_ns": time.time_ns(),
        "account": f"acct-{i % 4}",
        "model": "fable-5",
        "requested_model": "FABLE5",
        "tier": "domestic",
        "subject": {"citizenships": ["US"], "kyc": "verified"},
        "client_ip": "3.3.3.3",
        "country": "US",
        "anonymizers": (),
        "directive_id": "frontier-ai-access",
        "directive_version": "1",
        "directive_sha256": "ab" * 32,
        "http_status": 200 if i % 3 else 451,
        "reasons": () if i % 3 else ({"code": "location_not_allowed", "rule": "allow_location", "value": "CN"},),
    }
    base.update(kw)
    return AuditEntry(**base)


def write_records(
    url: str, home: Path, count: int, *, checkpoint_every: int = 5, close: bool = True, **kw: Any
) -> AuditWriter:
    store = open_store(url, home)
    writer = AuditWriter(store, home_signer(home), home=home, checkpoint_every=checkpoint_every, **kw).start()
    for i in range(count):
        writer.append(entry(i))
    if close:
        writer.close()
        store.close()
    return writer


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """The CLI in-process: its exit status, stdout and stderr."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


class Raw:
    """Direct SQL on the store's database, as an attacker with write access would have."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pg = url.startswith("postgresql")

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.pg:
            with psycopg.connect(self.url, autocommit=True) as conn:
                cursor = conn.execute(sql.replace("?", "%s"), params)
                return list(cursor.fetchall()) if cursor.description else []
        with sqlite3.connect(self.url[len("sqlite:///") :]) as db:
            return list(db.execute(sql, params).fetchall())

    def row(self, writer: str, seq: int) -> tuple[Any, ...]:
        return self.execute(
            "SELECT writer, seq, kind, time_ns, request_id, account, model, decision, prev, hash, body, signals"
            " FROM audit_records WHERE writer = ? AND seq = ?",
            (writer, seq),
        )[0]

    def writer(self) -> str:
        return str(self.execute("SELECT DISTINCT writer FROM audit_records")[0][0])
