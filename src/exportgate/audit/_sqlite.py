"""SQLite audit store: WAL, one writer connection, a fresh reader connection per query.

Durable mode uses ``synchronous=FULL`` (a committed batch survives power
loss); the async writer mode uses ``NORMAL`` (survives a process crash).
``sqlite:///path?mode=ro`` opens read-only, for auditors.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from exportgate._files import private_sqlite
from exportgate.errors import ConfigError, StoreError

from ._record import ChainRow
from ._store import COLUMNS, SIGNAL_SELECT, AuditStore, RawRow, RecordFilter, SignalRow, read_meta, where_clause

__all__ = ["SqliteStore"]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE audit_records (
        writer TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        time_ns INTEGER NOT NULL,
        request_id TEXT,
        account TEXT,
        model TEXT,
        decision TEXT,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (writer, seq)
    );
    CREATE INDEX audit_records_time ON audit_records (time_ns);
    CREATE TABLE audit_writers (
        writer TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        key_id TEXT NOT NULL,
        started_ns INTEGER NOT NULL
    );
    CREATE TABLE audit_prunes (
        time_ns INTEGER NOT NULL,
        writer TEXT NOT NULL,
        below_seq INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        note TEXT NOT NULL
    );
    """,
    "ALTER TABLE audit_records ADD COLUMN signals TEXT",
    """
    CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO audit_meta VALUES ('store_id', lower(hex(randomblob(16))));
    INSERT INTO audit_meta VALUES ('opening_checkpoints_since_ns',
        CAST(CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) * 1000000 AS TEXT));
    CREATE TABLE audit_probes (writer TEXT PRIMARY KEY, time_ns INTEGER NOT NULL);
    """,
)

_INSERT = f"INSERT INTO audit_records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM audit_records"  # noqa: S608 - constant column list


def _path_and_mode(url: str) -> tuple[str, bool]:
    """SQLAlchemy's convention: ``sqlite:///relative.db``, ``sqlite:////absolute/path.db``."""
    parts = urlsplit(url)
    rest = url.split("?", 1)[0]
    path = rest[len("sqlite:///") :] if rest.startswith("sqlite:///") else rest[len("sqlite:") :]
    if not path:
        raise ConfigError(f"audit URL {url!r} names no file")
    read_only = parse_qs(parts.query).get("mode", [""])[0] == "ro"
    return path, read_only


class SqliteStore(AuditStore):
    def __init__(self, url: str, *, durable: bool = True, busy_timeout_ms: int = 5000, read_only: bool = False) -> None:
        self.url = url
        path, ro = _path_and_mode(url)
        self.read_only = read_only or ro
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        try:
            if not self.read_only:
                private_sqlite(self.path)
            elif not self.path.exists():
                raise StoreError(f"audit store {self.path} does not exist")
            self._db = self._connect()
            if not self.read_only:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open audit store {self.path}: {exc}") from None
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        target = f"file:{self.path}?mode=ro" if self.read_only else f"file:{self.path}"
        db = sqlite3.connect(target, uri=True, check_same_thread=False, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        return db

    def _error(self, exc: BaseException) -> StoreError:
        return StoreError(f"audit store {self.path}: {exc}")

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        try:
            db = self._connect()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            yield db
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        finally:
            db.close()

    def _write(self, statements: Sequence[tuple[str, Any, bool]]) -> int:
        changed = 0
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for sql, params, many in statements:
                        cursor = self._db.executemany(sql, params) if many else self._db.execute(sql, params)
                        changed += max(cursor.rowcount, 0)
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._error(exc) from None
        return changed

    def _migrate(self) -> None:
        try:
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read audit store {self.path}: {exc}") from None
        if version > len(MIGRATIONS):
            raise StoreError(f"audit store {self.path} has schema {version}; this exportgate knows {len(MIGRATIONS)}")
        if version == len(MIGRATIONS) or (self.read_only and version >= 2):  # 2: every column verify reads
            self._read_meta()
            return
        if self.read_only:
            raise StoreError(f"audit store {self.path} needs a schema upgrade and is open read-only")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            steps = [(s, (), False) for s in script.split(";") if s.strip()]
            self._write([*steps, (f"PRAGMA user_version = {number}", (), False)])
        self._read_meta()

    def _read_meta(self) -> None:
        try:
            self.store_id, self.opening_checkpoints_since_ns = read_meta(
                self._db.execute("SELECT key, value FROM audit_meta")
            )
        except sqlite3.Error:
            self.store_id = self.opening_checkpoints_since_ns = None  # a read-only store from before schema 3

    def schema_version(self) -> int:
        with self._reader() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def register_writer(self, writer: str, host: str, pid: int, key_id: str, started_ns: int) -> None:
        self._write(
            [
                (
                    "INSERT OR REPLACE INTO audit_writers VALUES (?, ?, ?, ?, ?)",
                    (writer, host, pid, key_id, started_ns),
                    False,
                )
            ]
        )

    def writers(self) -> dict[str, int]:
        with self._reader() as db:
            return {str(w): int(t) for w, t in db.execute("SELECT writer, started_ns FROM audit_writers")}

    def append_rows(self, rows: Sequence[ChainRow]) -> None:
        if rows:
            self._write([(_INSERT, rows, True)])

    def probe(self, writer: str, time_ns: int) -> None:
        self._write([("INSERT OR REPLACE INTO audit_probes VALUES (?, ?)", (writer, time_ns), False)])

    def chain_rows(self) -> Iterator[ChainRow]:
        with self._reader() as db:
            for row in db.execute(_SELECT + " ORDER BY writer, seq"):
                yield ChainRow(*row)

    def chain_rows_bytes(self) -> Iterator[RawRow]:
        with self._reader() as db:
            db.text_factory = bytes  # no UTF-8 decoding: verify hashes the bytes as stored
            yield from db.execute(_SELECT + " ORDER BY writer, seq")

    def get_row(self, writer: str, seq: int) -> ChainRow | None:
        with self._reader() as db:
            row = db.execute(_SELECT + " WHERE writer = ? AND seq = ?", (writer, seq)).fetchone()
        return ChainRow(*row) if row else None

    def query(self, where: RecordFilter, *, limit: int | None = None, newest_first: bool = False) -> Iterator[ChainRow]:
        clauses, params = where_clause(where)
        sql = _SELECT + (" WHERE " + " AND ".join(clauses) if clauses else "")
        sql += " ORDER BY time_ns DESC, writer, seq DESC" if newest_first else " ORDER BY time_ns, writer, seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._reader() as db:
            for row in db.execute(sql, params):
                yield ChainRow(*row)

    def signal_rows(self, where: RecordFilter) -> Iterator[SignalRow]:
        clauses, params = where_clause(where)
        # rowid breaks time ties in insertion order and lets SQLite walk the time index without sorting
        sql = SIGNAL_SELECT + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY time_ns, rowid"
        with self._reader() as db:
            yield from db.execute(sql, params)

    def prune(self, writer: str, below_seq: int, note: str) -> int:
        return (
            self._write(
                [
                    ("DELETE FROM audit_records WHERE writer = ? AND seq < ?", (writer, below_seq), False),
                    (
                        "INSERT INTO audit_prunes SELECT ?, ?, ?, changes(), ?",
                        (time.time_ns(), writer, below_seq, note),
                        False,
                    ),
                ]
            )
            - 1
        )

    def checkpoints_before(self, time_ns: int) -> dict[str, int]:
        with self._reader() as db:
            rows = db.execute(
                "SELECT writer, MAX(seq) FROM audit_records WHERE kind = 'checkpoint' AND time_ns < ? GROUP BY writer",
                (time_ns,),
            ).fetchall()
        return {str(w): int(s) for w, s in rows}

    def count(self) -> int:
        with self._reader() as db:
            return int(db.execute("SELECT COUNT(*) FROM audit_records").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
