"""PostgreSQL audit store (psycopg 3 with a connection pool).

For several gateway processes or hosts sharing one record. Batches are
written with ``COPY`` inside one transaction; a connection that cannot be
had within ``timeout`` seconds is a :class:`StoreError` (the gateway denies).

After any failure the pool is not trusted: the next operation first makes one
direct connection (``connect_timeout`` bounded) and, when the server answers,
replaces the pool with a fresh one. psycopg's pool reconnects on its own with
an exponential backoff that grows with the outage (54 s to recover after a
380 s outage was measured); this way service resumes with the first probe
after the server is back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from exportgate.errors import StoreError

from ._record import ChainRow
from ._store import COLUMNS, SIGNAL_SELECT, AuditStore, RecordFilter, SignalRow, read_meta, store_label, where_clause

__all__ = ["PostgresStore"]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE audit_records (
        writer TEXT NOT NULL,
        seq BIGINT NOT NULL,
        kind TEXT NOT NULL,
        time_ns BIGINT NOT NULL,
        request_id TEXT,
        account TEXT,
        model TEXT,
        decision TEXT,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (writer, seq)
    );
    CREATE INDEX audit_records_time ON audit_records (time_ns);
    CREATE TABLE audit_writers (
        writer TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        key_id TEXT NOT NULL,
        started_ns BIGINT NOT NULL
    );
    CREATE TABLE audit_prunes (
        time_ns BIGINT NOT NULL,
        writer TEXT NOT NULL,
        below_seq BIGINT NOT NULL,
        deleted BIGINT NOT NULL,
        note TEXT NOT NULL
    );
    """,
    "ALTER TABLE audit_records ADD COLUMN signals TEXT",
    """
    CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO audit_meta VALUES ('store_id', replace(gen_random_uuid()::text, '-', ''));
    INSERT INTO audit_meta VALUES ('opening_checkpoints_since_ns',
        ((extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000)::text);
    CREATE TABLE audit_probes (writer TEXT PRIMARY KEY, time_ns BIGINT NOT NULL);
    """,
)

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM audit_records"  # noqa: S608 - constant column list
_COPY = f"COPY audit_records ({', '.join(COLUMNS)}) FROM STDIN"


class PostgresStore(AuditStore):
    def __init__(self, url: str, *, timeout: float = 5.0, max_size: int = 4, read_only: bool = False) -> None:
        self.url = url
        self._label = store_label(url)
        self._timeout, self._max_size, self.read_only = timeout, max_size, read_only
        self._suspect = False  # a failure happened: check the server directly before using the pool again
        try:
            psycopg.connect(url, connect_timeout=max(1, int(timeout))).close()  # a clear error before pooling
            self._pool = self._new_pool()
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"cannot connect to audit store {self._label}: {exc}") from None
        self._migrate()

    def _new_pool(self) -> ConnectionPool:
        pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=self._max_size,
            timeout=self._timeout,
            open=False,
            kwargs={"autocommit": False, "connect_timeout": max(1, int(self._timeout))},
        )
        pool.open(wait=True, timeout=self._timeout)
        return pool

    def _renew(self) -> None:
        """After a failure: one direct connection; if the server answers, a fresh pool replaces the old."""
        psycopg.connect(self.url, connect_timeout=2).close()
        old, self._pool = self._pool, self._new_pool()
        self._suspect = False
        old.close(timeout=0)

    def _run(self, work: Any) -> Any:
        try:
            if self._suspect:
                self._renew()
            with self._pool.connection() as conn:
                return work(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            self._suspect = True
            raise StoreError(f"audit store {self._label}: {str(exc).strip() or type(exc).__name__}") from None

    def _migrate(self) -> None:
        def migrate(conn: psycopg.Connection[Any]) -> tuple[str | None, int | None]:
            with conn.transaction():
                if self.read_only:
                    return self._existing(conn)
                conn.execute("CREATE TABLE IF NOT EXISTS exportgate_schema (version INTEGER NOT NULL)")
                conn.execute("LOCK TABLE exportgate_schema IN EXCLUSIVE MODE")
                version = _version(conn)
                if version > len(MIGRATIONS):
                    raise StoreError(f"audit store has schema {version}; this exportgate knows {len(MIGRATIONS)}")
                for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    for statement in filter(str.strip, script.split(";")):
                        conn.execute(statement)
                    conn.execute("INSERT INTO exportgate_schema (version) VALUES (%s)", (number,))
                return read_meta(conn.execute("SELECT key, value FROM audit_meta").fetchall())

        self.store_id, self.opening_checkpoints_since_ns = self._run(migrate)

    def _existing(self, conn: psycopg.Connection[Any]) -> tuple[str | None, int | None]:
        """Read-only: the schema must be there already (nothing is created); meta when it has it."""
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        if "audit_records" not in tables or "exportgate_schema" not in tables:
            raise StoreError(f"no audit store at {self._label}")
        if _version(conn) < 2:
            raise StoreError(f"audit store {self._label} needs a schema upgrade and is open read-only")
        if "audit_meta" not in tables:
            return None, None
        return read_meta(conn.execute("SELECT key, value FROM audit_meta").fetchall())

    def schema_version(self) -> int:
        return int(self._run(lambda c: c.execute("SELECT MAX(version) FROM exportgate_schema").fetchone()[0]))

    def register_writer(self, writer: str, host: str, pid: int, key_id: str, started_ns: int) -> None:
        def register(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO audit_writers VALUES (%s, %s, %s, %s, %s) ON CONFLICT (writer) DO NOTHING",
                    (writer, host, pid, key_id, started_ns),
                )

        self._run(register)

    def writers(self) -> dict[str, int]:
        rows = self._run(lambda c: c.execute("SELECT writer, started_ns FROM audit_writers").fetchall())
        return {str(w): int(t) for w, t in rows}

    def probe(self, writer: str, time_ns: int) -> None:
        def probe(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO audit_probes VALUES (%s, %s) ON CONFLICT (writer) DO UPDATE SET time_ns = %s",
                    (writer, time_ns, time_ns),
                )

        self._run(probe)

    def append_rows(self, rows: Sequence[ChainRow]) -> None:
        if not rows:
            return

        def append(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cursor, cursor.copy(_COPY) as copy:
                for row in rows:
                    copy.write_row(row)

        self._run(append)

    def _stream(self, sql: str, params: Sequence[object] = ()) -> Iterator[ChainRow]:
        for row in self._stream_raw(sql, params):
            yield ChainRow(*row)

    def _stream_raw(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        try:
            if self._suspect:
                self._renew()
            with self._pool.connection() as conn, conn.transaction(), conn.cursor(name="audit_stream") as cursor:
                cursor.itersize = 5000
                cursor.execute(sql, params)
                yield from cursor
        except (psycopg.Error, PoolTimeout) as exc:
            self._suspect = True
            raise StoreError(f"audit store {self._label}: {exc}") from None

    def signal_rows(self, where: RecordFilter) -> Iterator[SignalRow]:
        clauses, params = where_clause(where, "%s")
        sql = SIGNAL_SELECT + (" WHERE " + " AND ".join(clauses) if clauses else "")
        return self._stream_raw(sql + " ORDER BY time_ns, writer, seq", params)

    def chain_rows(self) -> Iterator[ChainRow]:
        return self._stream(_SELECT + " ORDER BY writer, seq")

    def get_row(self, writer: str, seq: int) -> ChainRow | None:
        row = self._run(lambda c: c.execute(_SELECT + " WHERE writer = %s AND seq = %s", (writer, seq)).fetchone())
        return ChainRow(*row) if row else None

    def query(self, where: RecordFilter, *, limit: int | None = None, newest_first: bool = False) -> Iterator[ChainRow]:
        clauses, params = where_clause(where, "%s")
        sql = _SELECT + (" WHERE " + " AND ".join(clauses) if clauses else "")
        sql += " ORDER BY time_ns DESC, writer, seq DESC" if newest_first else " ORDER BY time_ns, writer, seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._stream(sql, params)

    def prune(self, writer: str, below_seq: int, note: str) -> int:
        def prune(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                deleted = conn.execute(
                    "DELETE FROM audit_records WHERE writer = %s AND seq < %s", (writer, below_seq)
                ).rowcount
                conn.execute(
                    "INSERT INTO audit_prunes VALUES (%s, %s, %s, %s, %s)",
                    (time.time_ns(), writer, below_seq, deleted, note),
                )
            return int(deleted)

        return int(self._run(prune))

    def checkpoints_before(self, time_ns: int) -> dict[str, int]:
        rows = self._run(
            lambda c: c.execute(
                "SELECT writer, MAX(seq) FROM audit_records WHERE kind = 'checkpoint' AND time_ns < %s GROUP BY writer",
                (time_ns,),
            ).fetchall()
        )
        return {str(w): int(s) for w, s in rows}

    def count(self) -> int:
        return int(self._run(lambda c: c.execute("SELECT COUNT(*) FROM audit_records").fetchone()[0]))

    def close(self) -> None:
        self._pool.close()


def _version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT MAX(version) FROM exportgate_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else 0
