"""``exportgate audit ...`` end to end on the default store and on PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from pathlib import Path

import pytest

from tests.audit.conftest import entry, run, write_records

YEAR_NS = 365 * 86400 * 10**9


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    write_records(None, home, 12)  # the default store: HOME/audit.db
    return home


def test_verify_intact_text_and_json(capsys, home):
    code, out, _ = run(capsys, "audit", "verify", "--home", home)
    assert code == 0 and out.startswith("intact: 16 rows in 1 chain checked")
    code, out, _ = run(capsys, "audit", "verify", "--home", home, "--format", "json")
    assert code == 0 and json.loads(out)["ok"] is True


def test_verify_names_the_first_bad_record_and_exits_1(capsys, home):
    with sqlite3.connect(home / "audit.db") as db:
        db.execute("UPDATE audit_records SET account = 'mallory' WHERE seq = 7")
        db.execute("DELETE FROM audit_records WHERE seq = 9")
    code, out, _ = run(capsys, "audit", "verify", "--home", home)
    assert code == 1 and out.startswith("TAMPERED")
    assert ":7: content does not match its hash" in out and ":9: record(s) 9 missing" in out


def test_verify_cannot_read_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "audit", "verify", "--home", tmp_path / "empty")
    assert code == 2 and err.startswith("exportgate: error: cannot read the audit store: no audit store at")
    (tmp_path / "bad.db").write_bytes(b"garbage" * 1000)
    code, _, err = run(capsys, "audit", "verify", "--audit-url", f"sqlite:///{tmp_path / 'bad.db'}")
    assert code == 2 and err.count("\n") == 1


def test_verify_postgres_store(capsys, pg_server, tmp_path):
    url = pg_server.create_database()
    write_records(url, tmp_path, 7)
    code, out, _ = run(capsys, "audit", "verify", "--audit-url", url, "--home", tmp_path)
    assert code == 0 and "intact: 10 rows" in out


def test_export_jsonl_and_csv_with_filters(capsys, home, tmp_path):
    code, out, _ = run(capsys, "audit", "export", "--home", home)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == 12 and all(len(r["hash"]) == 64 for r in lines)
    assert lines[0]["schema"] == "exportgate.audit/v1"
    code, out, _ = run(capsys, "audit", "export", "--home", home, "--decision", "deny")
    assert {json.loads(line)["decision"] for line in out.splitlines()} == {"deny"}
    assert len(out.splitlines()) == 4
    code, out, _ = run(capsys, "audit", "export", "--home", home, "--account", "acct-1", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3 and {r["account"] for r in rows} == {"acct-1"}
    assert rows[0]["time"].endswith("Z") and rows[0]["model"] == "fable-5"
    code, _, err = run(capsys, "audit", "export", "--home", home, "--checkpoints", "--out", tmp_path / "all.jsonl")
    assert code == 0 and "exported 16 records" in err
    code, out, _ = run(capsys, "audit", "export", "--home", home, "--since", "1h", "--until", "2099-01-01")
    assert len(out.splitlines()) == 12
    code, out, _ = run(capsys, "audit", "export", "--home", home, "--until", "2000-01-01")
    assert out == ""


def test_export_reports_undecodable_rows_without_dropping_the_rest(capsys, home):
    with sqlite3.connect(home / "audit.db") as db:
        db.execute("UPDATE audit_records SET body = '{broken' WHERE seq = 2")
    code, out, err = run(capsys, "audit", "export", "--home", home)
    assert code == 1 and len(out.splitlines()) == 11
    assert "1 record(s) could not be decoded" in err and ":2" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--format", "xml"], "expected jsonl or csv"),
        (["--since", "yesterday"], "expected an ISO date/time or an age"),
        (["--decision", "maybe"], "expected allow or deny"),
        (["--record", "w-1"], "expected WRITER:SEQ"),
        (["--record", "w-1:x"], "expected WRITER:SEQ"),
        (["--record", "w-1:1", "--since", "1h"], "takes no --since"),
        (["--outcome-wait", "soon"], "expected seconds or an age like 15m"),
    ],
)
def test_export_bad_options(capsys, home, args, fragment):
    code, _, err = run(capsys, "audit", "export", "--home", home, *args)
    assert code == 2 and fragment in err and err.count("\n") == 1


def test_tail(capsys, home):
    code, out, _ = run(capsys, "audit", "tail", "-n", "3", "--home", home)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["time", "record", "account"] and len(lines) == 4


def test_prune_refuses_records_inside_retention(capsys, home):
    code, _, err = run(capsys, "audit", "prune", "--before", "30d", "--yes", "--home", home)
    assert code == 1 and "within the 5-year retention period" in err


def test_prune_old_records_keeps_a_verifiable_chain(capsys, tmp_path):
    home = tmp_path / "home"
    old = time.time_ns() - 7 * YEAR_NS
    writer = write_records(None, home, 0, close=False, checkpoint_every=5, clock=lambda: old)
    for i in range(10):
        writer.append(entry(i, time_ns=old + i))
    writer._clock = time.time_ns
    for i in range(10, 15):
        writer.append(entry(i))
    writer.close()
    writer.store.close()
    code, out, _ = run(capsys, "audit", "prune", "--before", "2020-01-01", "--home", home)
    assert code == 0 and "would cut 1 chain(s)" in out
    code, out, _ = run(capsys, "audit", "prune", "--before", "2020-01-01", "--yes", "--home", home)
    assert code == 0 and out.startswith("pruned 12 rows")  # records 1-12 go; checkpoint 13 stays as the anchor
    code, out, _ = run(capsys, "audit", "verify", "--home", home)
    assert code == 0, out


def test_public_key_lets_another_home_verify(capsys, home, tmp_path):
    key = tmp_path / "writer.pem"
    code, _, err = run(capsys, "audit", "public-key", "--out", key, "--home", home)
    assert code == 0 and "wrote public key" in err and key.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    url = f"sqlite:///{home / 'audit.db'}"
    other = tmp_path / "regulator"
    code, out, _ = run(capsys, "audit", "verify", "--audit-url", url, "--home", other)
    assert code == 1 and "not trusted" in out
    code, out, _ = run(capsys, "audit", "verify", "--audit-url", url, "--home", other, "--public-key", key)
    assert code == 0, out
