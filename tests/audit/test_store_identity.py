"""A store is named by the id written into it, not by its URL: truncation is found whichever way the store
is reached; and whole chains cannot be deleted or fabricated unseen."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
from pathlib import Path

import pytest

from exportgate.audit import AuditWriter, chain_hash, load_heads, open_store, verify_store
from exportgate.cli import main
from exportgate.signing import home_signer, trusted_keys
from tests.audit.conftest import Raw, entry, write_records


def run(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    write_records(None, home, 20)  # HOME/audit.db; its final checkpoint is in HOME/audit/heads
    return home


def _cut_the_tail(db: Path) -> None:
    with sqlite3.connect(db) as conn:  # everything after the second checkpoint, the final one included
        conn.execute("DELETE FROM audit_records WHERE seq > 13")


def test_default_verify_finds_a_tail_cut_behind_the_signed_final_checkpoint(capsys, home: Path):
    assert run(capsys, "audit", "verify", "--home", home)[0] == 0
    _cut_the_tail(home / "audit.db")
    code, out = run(capsys, "audit", "verify", "--home", home)  # the store is opened read-only here
    assert code == 1 and "truncated" in out


@pytest.mark.parametrize("spelling", ["relative", "doubled-slash", "copy"])
def test_truncation_is_found_however_the_store_is_reached(capsys, home: Path, tmp_path: Path, spelling: str,
                                                           monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    db = home / "audit.db"
    if spelling == "copy":
        db = tmp_path / "elsewhere" / "copy.db"
        db.parent.mkdir()
        shutil.copy(home / "audit.db", db)
    _cut_the_tail(db)
    if spelling == "relative":
        monkeypatch.chdir(db.parent)
        url = f"sqlite:///{db.name}"
    elif spelling == "doubled-slash":
        url = "sqlite:///" + str(db).replace("/home/", "//home//")
    else:
        url = f"sqlite:///{db}"
    code, out = run(capsys, "audit", "verify", "--home", home, "--audit-url", url)
    assert code == 1 and "truncated" in out, out


def test_a_whole_chain_deleted_with_its_heads_file_is_found(capsys, home: Path):
    raw = Raw(f"sqlite:///{home / 'audit.db'}")
    writer = raw.writer()
    raw.execute("DELETE FROM audit_records WHERE writer = ?", (writer,))
    (home / "audit" / "heads" / f"{writer}.json").unlink()
    code, out = run(capsys, "audit", "verify", "--home", home)
    assert code == 1 and "deleted" in out and "whole chain" in out


def test_a_fabricated_chain_for_an_unregistered_writer_fails(capsys, home: Path):
    raw = Raw(f"sqlite:///{home / 'audit.db'}")
    prev = "0" * 64
    for seq in (1, 2):  # hashes and links all valid: only registration and signatures can tell
        body = entry(seq).body("forger", seq)
        digest = chain_hash(prev, "forger", "decision", 1, f"req-{seq}", "acct", "fable-5", "allow", body)
        raw.execute(
            "INSERT INTO audit_records VALUES (?, ?, 'decision', 1, ?, 'acct', 'fable-5', 'allow', ?, ?, ?, NULL)",
            ("forger", seq, f"req-{seq}", prev, digest, body),
        )
        prev = digest
    code, out = run(capsys, "audit", "verify", "--home", home, "--format", "json")
    assert code == 1
    assert '"inserted"' in out and '"bad_checkpoint"' in out and "never registered" in out


class LegacyWriter(AuditWriter):
    """A writer as exportgate wrote before schema 3: no opening checkpoint."""

    def start(self) -> AuditWriter:
        self.store.register_writer(self.writer_id, socket.gethostname(), os.getpid(), self.signer.key_id, 1)
        self._thread.start()
        return self


def test_a_store_from_before_store_ids_upgrades_and_verifies(tmp_path: Path):
    url, home = f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "home"
    store = open_store(url, home)
    legacy = LegacyWriter(store, home_signer(home), home=home, checkpoint_every=5).start()
    for i in range(7):
        legacy.append(entry(i))
    legacy.close()
    store.register_writer("never-wrote", "host", 1, legacy.signer.key_id, 1)  # an old gateway with no traffic
    store.close()
    raw = Raw(url)
    raw.execute("DROP TABLE audit_meta")
    raw.execute("DROP TABLE audit_probes")
    raw.execute("PRAGMA user_version = 2")
    store = open_store(url, home)  # upgraded in place: a store id, and since when chains open with a checkpoint
    assert store.store_id and store.schema_version() == 3
    write_records(url, home, 3)  # a new writer alongside
    report = verify_store(store, trusted_keys(home), load_heads(home / "audit", store))
    assert report.ok, report.problems
    store.close()
