"""Bad conditions give a clear error, never a silent loss and never an allow."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exportgate.audit import AuditWriter, open_store, verify_store
from exportgate.errors import StoreError
from exportgate.signing import home_signer, trusted_keys
from tests.audit.conftest import entry, write_records
from tests.pgserver import PgServer


def test_corrupt_database_file_cannot_be_opened(tmp_path: Path):
    path = tmp_path / "audit.db"
    path.write_bytes(b"this is not a database" * 200)
    with pytest.raises(StoreError, match=r"cannot read audit store|file is not a database"):
        open_store(f"sqlite:///{path}", tmp_path)


def test_locked_database_gives_a_store_error_then_recovers(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = open_store(url, tmp_path, busy_timeout_ms=100)
    writer = AuditWriter(store, home_signer(tmp_path), home=tmp_path, retry_interval=0.05).start()
    assert writer.append(entry(1)) == 2  # seq 1 is the chain's opening checkpoint
    blocker = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreError, match="locked"):
        writer.append(entry(2))
    with pytest.raises(StoreError, match="unavailable"):  # known down: refused at once, without waiting
        writer.append(entry(2))
    assert writer.error is not None
    blocker.execute("ROLLBACK")
    blocker.close()
    deadline = time.monotonic() + 10
    while writer.error is not None and time.monotonic() < deadline:  # the writer probes and finds it back
        time.sleep(0.02)
    assert writer.append(entry(3)) == 3
    writer.close()
    assert verify_store(store, trusted_keys(tmp_path)).ok
    store.close()


def test_read_only_store_refuses_writes_but_verifies(tmp_path: Path):
    write_records(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path, 3)
    ro = open_store(f"sqlite:///{tmp_path / 'audit.db'}?mode=ro", tmp_path)
    assert verify_store(ro, trusted_keys(tmp_path)).ok
    with pytest.raises(StoreError, match="readonly"):
        AuditWriter(ro, home_signer(tmp_path), home=tmp_path).start()
    with pytest.raises(StoreError, match="readonly"):
        ro.append_rows(list(ro.chain_rows())[:1])
    ro.close()
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}?mode=ro", tmp_path)


@contextlib.contextmanager
def tiny_filesystem(tmp_path: Path) -> Iterator[tuple[Path, bool]]:
    """A 400 KiB tmpfs where mounting is allowed (root); else SQLite's own page limit stands in."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], capture_output=True, check=False
        ).returncode
        == 0
    )
    try:
        yield mount, mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_fails_loudly_and_loses_nothing_acknowledged(tmp_path: Path):
    with tiny_filesystem(tmp_path) as (mount, mounted):
        url = f"sqlite:///{mount / 'audit.db'}"
        store = open_store(url, tmp_path)
        if not mounted:
            store._db.execute("PRAGMA max_page_count = 100")  # type: ignore[attr-defined]
        writer = AuditWriter(store, home_signer(tmp_path), home=tmp_path, checkpoint_every=50).start()
        acknowledged = []
        with pytest.raises(StoreError, match="full"):
            for i in range(100_000):
                acknowledged.append((f"req-{i}", writer.append(entry(i, subject={"pad": "x" * 2000}))))
        assert len(acknowledged) > 10
        writer.close()  # its final checkpoint cannot be written either: that fails quietly in strict mode
        stored = {r.request_id: r.seq for r in store.chain_rows()}
        assert all(stored.get(req) == seq for req, seq in acknowledged)
        report = verify_store(store, trusted_keys(tmp_path))
        assert report.ok, report.problems
        store.close()


def test_postgres_server_going_down_is_a_store_error_and_recovers(pg_server: PgServer, tmp_path: Path):
    url = pg_server.create_database()
    store = open_store(url, tmp_path)
    writer = AuditWriter(store, home_signer(tmp_path), home=tmp_path).start()
    assert writer.append(entry(1)) == 2
    pg_server.stop("immediate")
    try:
        with pytest.raises(StoreError):
            writer.append(entry(2))
    finally:
        pg_server.start()
    deadline = time.monotonic() + 20
    while True:
        try:
            seq = writer.append(entry(3))
            break
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert seq == 3
    writer.close()
    report = verify_store(store, trusted_keys(tmp_path))
    assert report.ok, report.problems
    store.close()


def test_unreachable_postgres_is_a_clear_store_error(tmp_path: Path):
    from exportgate.audit._postgres import PostgresStore

    with pytest.raises(
        StoreError, match=r"cannot connect to audit store postgresql://127.0.0.1:9/x: .*refused"
    ) as info:
        PostgresStore("postgresql://nobody:secret@127.0.0.1:9/x", timeout=1.0)
    assert "secret" not in str(info.value)


def test_concurrent_readers_while_writing(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    writer = write_records(url, tmp_path, 0, close=False, checkpoint_every=100)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            reader = open_store(url + "?mode=ro", tmp_path)
            for _ in range(20):
                reader.count()
            reader.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(300):
        writer.append(entry(i))
    for t in threads:
        t.join()
    writer.close()
    writer.store.close()
    assert not errors
