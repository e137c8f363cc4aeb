"""One database interface, two backends: SQLite in the home directory (one host, zero setup) and
PostgreSQL (any number of replicas).

Stores write their SQL once, with ``?`` placeholders; the PostgreSQL backend turns them into psycopg's.
A write happens in :meth:`Database.transaction`; every committed write moves the database's *revision*,
a counter the other processes watch:

- SQLite: an 8-byte memory-mapped file next to the database (:class:`~exportgate.state.Revision`), read
  on every request for about 0.1 µs.
- PostgreSQL: the row ``state_revision``, incremented inside the writing transaction, which also sends
  ``NOTIFY exportgate_state, '<revision> <topics>'`` (delivered at commit, never for a rollback). A
  replica that listens (:meth:`PostgresDatabase.listen`) keeps one connection on ``LISTEN``; it also reads
  the revision every ``poll`` seconds, which confirms it is current and catches a change whose
  notification was lost while the connection was down. :meth:`Database.staleness` is the time since the
  replica last confirmed it was current; past ``max_staleness`` the replica is *stale* and the gateway
  answers 503 for everything that depends on shared state until it is current again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from exportgate._files import sqlite_connect
from exportgate._text import store_label
from exportgate.errors import StoreError

from ._revision import Revision

__all__ = [
    "CHANNEL",
    "Cursor",
    "Database",
    "Migrations",
    "PostgresDatabase",
    "SqliteDatabase",
    "Transaction",
    "database_at",
]

log = logging.getLogger("exportgate.state")
CHANNEL = "exportgate_state"
#: What a listener is told: the new revision and the topics the change touched ("*": unknown, reload all).
Listener = Callable[[int, frozenset[str]], None]


class Migrations(NamedTuple):
    """A component's schema as numbered steps, one list per backend. Versions count per backend: SQLite
    homes carry their history from before PostgreSQL was supported; a PostgreSQL schema starts whole."""

    component: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]
    #: Whether its store can read (never write) an older SQLite schema as it is.
    reads_older: bool = False


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Transaction:
    """What a store writes with: ``execute`` (``?`` placeholders) and ``touch`` (topics the change concerns,
    sent with its notification)."""

    def __init__(self, execute: Callable[[str, Sequence[object]], Cursor], *, locks: bool = False) -> None:
        self._execute = execute
        self._locks = locks
        self.topics: set[str] = set()

    def lock(self, name: str) -> None:
        """Serialize with every other transaction that takes the same lock (until this one ends). SQLite's
        write transactions are serial already; PostgreSQL takes a transaction-level advisory lock."""
        if self._locks:
            self._execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        return self._execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        for row in rows:
            self._execute(sql, row)

    def touch(self, *topics: str) -> None:
        self.topics.update(topics)


class Database(ABC):
    """The interface every store uses; see the module docstring."""

    backend: str
    label: str
    read_only: bool
    revision: Revision

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """One write transaction: committed when the block ends, rolled back if it raises."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Every row of one read."""

    @abstractmethod
    def version(self, component: str) -> int:
        """The schema version of ``component`` in this database (0: none)."""

    def migrate(self, migrations: Migrations, *, upgrade: bool = True) -> None:
        """Bring ``migrations.component`` to the newest version (``upgrade``), or check that it is there.
        A schema newer than this code knows is always refused rather than misread."""
        known = len(self._steps(migrations))
        version = self.version(migrations.component)
        if version > known:
            raise StoreError(f"{self.label} has {migrations.component} schema {version}; this exportgate "
                             f"knows up to {known}: upgrade exportgate")  # fmt: skip
        if version == known:
            return
        if self.read_only and migrations.reads_older and self.backend == "sqlite":
            return
        if not upgrade or self.read_only:
            raise StoreError(f"{self.label} has {migrations.component} schema {version}, this exportgate needs "
                             f"{known}: run exportgate db upgrade")  # fmt: skip
        self._upgrade(migrations, version)

    def _steps(self, migrations: Migrations) -> tuple[str, ...]:
        return migrations.postgresql if self.backend == "postgresql" else migrations.sqlite

    @abstractmethod
    def _upgrade(self, migrations: Migrations, version: int) -> None:
        """Apply the steps of ``migrations`` after ``version``."""

    def health(self) -> str | None:
        """``None`` while the database answers a query, else why not (what ``/readyz`` reports)."""
        try:
            self.query("SELECT 1")
        except StoreError as exc:
            return str(exc)
        return None

    def staleness(self) -> float:
        """Seconds since this process last confirmed it sees the newest state (0 when it cannot lag)."""
        return 0.0

    def stale(self) -> bool:
        return False

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` (on a background thread) after every change committed by any process. A
        database only this host writes (SQLite) has nothing to push: its readers watch the revision."""
        del listener

    @abstractmethod
    def close(self) -> None:
        """Release the connections (and stop listening)."""


def database_at(source: str | Path | Database, migrations: Migrations, *, read_only: bool = False) -> Database:
    """``source`` itself when it is a Database; else the SQLite file at that path (``:memory:`` too), its
    schema brought up to date (read-only: checked, never changed)."""
    if isinstance(source, Database):
        return source
    db = SqliteDatabase(source, read_only=read_only)
    try:
        db.migrate(migrations, upgrade=not read_only)
    except BaseException:
        db.close()
        raise
    return db


def _split(script: str) -> list[str]:
    return [s for s in (part.strip() for part in script.split(";")) if s]


class SqliteDatabase(Database):
    """One SQLite file (WAL), one connection behind a lock; ``:memory:`` for tests. ``read_only`` opens an
    existing file and never creates one. The component's version is ``PRAGMA user_version`` (one component
    per file)."""

    backend = "sqlite"

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.label = f"store {self.path}"
        self.read_only = read_only
        memory = str(path) == ":memory:"
        try:
            self._db = sqlite_connect(self.path, read_only=read_only, check_same_thread=False, isolation_level=None)
            if not read_only:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("PRAGMA foreign_keys=ON")
            self.revision = Revision(None if memory or read_only else self.path.with_name(self.path.name + ".rev"))
        except FileNotFoundError:
            raise StoreError(f"no store at {self.path}") from None
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield Transaction(self._db.execute)  # type: ignore[arg-type]
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise StoreError(f"{self.label}: {exc}") from None
            self.revision.bump()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._db.execute(sql, params))
            except sqlite3.Error as exc:
                raise StoreError(f"{self.label}: {exc}") from None

    def version(self, component: str) -> int:
        return int(self.query("PRAGMA user_version")[0][0])

    def _upgrade(self, migrations: Migrations, version: int) -> None:
        with self.transaction() as tx:
            version = int(tx.execute("PRAGMA user_version").fetchone()[0])  # under the write lock
            for number, script in enumerate(migrations.sqlite[version:], start=version + 1):
                for statement in _split(script):
                    tx.execute(statement)
                tx.execute(f"PRAGMA user_version = {number}")

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self.revision.close()


@functools.lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDatabase(Database):
    """PostgreSQL through psycopg 3 and its pool. The first failure marks the pool suspect: the next
    operation makes one direct connection first and, if the server answers, replaces the pool (psycopg's
    own reconnection backs off for up to a minute after a long outage)."""

    backend = "postgresql"
    POLL = 0.25  # seconds between revision reads of a listening replica

    def __init__(self, url: str, *, read_only: bool = False, timeout: float = 2.0, max_size: int = 8,
                 max_staleness: float = 5.0) -> None:  # fmt: skip
        import psycopg  # noqa: PLC0415 - the driver only where PostgreSQL is used
        from psycopg_pool import ConnectionPool  # noqa: PLC0415

        self._psycopg, self._pool_class = psycopg, ConnectionPool
        self.url, self.read_only, self.label = url, read_only, f"database {_label(url)}"
        self._timeout, self._max_size, self.max_staleness = timeout, max_size, max_staleness
        self.revision = Revision(None)
        self._suspect = False
        self._listeners: list[Listener] = []
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self._confirmed = time.monotonic()
        self.listening = False
        try:
            psycopg.connect(url, connect_timeout=max(1, int(timeout))).close()  # one clear error before pooling
            self._pool = self._new_pool()
        except (psycopg.Error, self._pool_error()) as exc:
            raise StoreError(f"cannot connect to {self.label}: {_first_line(exc)}") from None
        self._ensure_tables()

    def _pool_error(self) -> type[Exception]:
        from psycopg_pool import PoolTimeout  # noqa: PLC0415

        return PoolTimeout

    def _new_pool(self) -> Any:
        kwargs = {"autocommit": False, "connect_timeout": max(1, int(self._timeout))}
        pool = self._pool_class(self.url, min_size=1, max_size=self._max_size, timeout=self._timeout, open=False,
                                kwargs=kwargs)  # fmt: skip
        pool.open(wait=True, timeout=self._timeout)
        return pool

    def _run(self, work: Callable[[Any], Any]) -> Any:
        try:
            if self._suspect:
                self._psycopg.connect(self.url, connect_timeout=2).close()
                old, self._pool = self._pool, self._new_pool()
                self._suspect = False
                old.close(timeout=0)
            with self._pool.connection() as conn:
                return work(conn)
        except (self._psycopg.Error, self._pool_error()) as exc:
            self._suspect = True
            raise StoreError(f"{self.label}: {_first_line(exc)}") from None

    def _ensure_tables(self) -> None:
        def work(conn: Any) -> None:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('exportgate.schema'))")
                conn.execute("CREATE TABLE IF NOT EXISTS state_schema (component TEXT PRIMARY KEY,"
                             " version INTEGER NOT NULL)")  # fmt: skip
                conn.execute("CREATE TABLE IF NOT EXISTS state_revision (id INTEGER PRIMARY KEY CHECK (id = 1),"
                             " value BIGINT NOT NULL)")  # fmt: skip
                conn.execute("INSERT INTO state_revision VALUES (1, 0) ON CONFLICT (id) DO NOTHING")

        if not self.read_only:
            self._run(work)
        self._read_revision()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        if self.read_only:
            raise StoreError(f"{self.label} is opened read-only")
        holder: list[Any] = []
        try:
            with self._connection() as conn, conn.transaction():
                tx = Transaction(lambda sql, params: conn.execute(_pg_sql(sql), params), locks=True)
                holder.append(tx)
                yield tx
                revision = conn.execute("UPDATE state_revision SET value = value + 1 WHERE id = 1"
                                        " RETURNING value").fetchone()[0]  # fmt: skip
                payload = f"{revision} {' '.join(sorted(tx.topics)) or '*'}"
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        except self._psycopg.Error as exc:
            self._suspect = True
            raise StoreError(f"{self.label}: {_first_line(exc)}") from None
        self.revision.advance(int(revision))

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        try:
            if self._suspect:
                self._run(lambda conn: None)
            with self._pool.connection() as conn:
                yield conn
        except self._pool_error() as exc:
            self._suspect = True
            raise StoreError(f"{self.label}: {_first_line(exc)}") from None

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        def work(conn: Any) -> list[tuple[Any, ...]]:
            try:
                return list(conn.execute(_pg_sql(sql), params).fetchall())
            finally:
                conn.rollback()

        return list(self._run(work))

    def version(self, component: str) -> int:
        rows = self.query("SELECT version FROM state_schema WHERE component = ?", (component,))
        return int(rows[0][0]) if rows else 0

    def _upgrade(self, migrations: Migrations, version: int) -> None:
        def work(conn: Any) -> None:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('exportgate.schema'))")  # one upgrader at a time
                row = conn.execute("SELECT version FROM state_schema WHERE component = %s",
                                   (migrations.component,)).fetchone()  # fmt: skip
                current = int(row[0]) if row else 0
                for number, script in enumerate(migrations.postgresql[current:], start=current + 1):
                    for statement in _split(script):
                        conn.execute(statement)
                    conn.execute("INSERT INTO state_schema VALUES (%s, %s) ON CONFLICT (component) DO UPDATE"
                                 " SET version = excluded.version", (migrations.component, number))  # fmt: skip

        self._run(work)

    # -- change notifications and staleness -------------------------------------------------------

    def _read_revision(self) -> int:
        rows = self.query("SELECT value FROM state_revision WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    def staleness(self) -> float:
        return 0.0 if self._listener is None else max(0.0, time.monotonic() - self._confirmed)

    def stale(self) -> bool:
        return self._listener is not None and time.monotonic() - self._confirmed > self.max_staleness

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)
        if self._listener is None:
            self._confirmed = time.monotonic()
            self._listener = threading.Thread(target=self._listen_loop, name="exportgate-state-listen", daemon=True)
            self._listener.start()

    def _listen_loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self._psycopg.connect(self.url, autocommit=True, connect_timeout=2) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    self._poll(conn)  # after LISTEN: whatever changed before it is seen here
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self.POLL, stop_after=64):
                            self._changed(*_parse_payload(note.payload))
                        self._poll(conn)
            except self._psycopg.Error as exc:
                if self.listening:
                    log.warning("state: lost the notification connection to %s (%s); retrying", self.label,
                                _first_line(exc))  # fmt: skip
            self.listening = False
            self._stop.wait(0.2)

    def _poll(self, conn: Any) -> None:
        value = int(conn.execute("SELECT value FROM state_revision WHERE id = 1").fetchone()[0])
        self._confirmed = time.monotonic()
        if value != self.revision.current():
            self._changed(value, frozenset({"*"}))

    def _changed(self, revision: int, topics: frozenset[str]) -> None:
        self.revision.advance(revision)
        for listener in self._listeners:
            try:
                listener(revision, topics)
            except Exception:  # a listener's bug must not stop the notifications
                log.exception("state: a change listener failed")

    def advisory_lock(self, name: str) -> Any | None:
        """A session-level advisory lock on a connection of its own, held until that connection closes
        (``close()`` on the result, or the process dies); None when another session holds it."""
        try:
            conn = self._psycopg.connect(self.url, autocommit=True, connect_timeout=2)
        except self._psycopg.Error as exc:
            raise StoreError(f"{self.label}: {_first_line(exc)}") from None
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,)).fetchone()
            held = bool(row and row[0])
        except self._psycopg.Error as exc:
            conn.close()
            raise StoreError(f"{self.label}: {_first_line(exc)}") from None
        if not held:
            conn.close()
            return None
        return conn

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=2)
        self._pool.close(timeout=1)


def _parse_payload(payload: str) -> tuple[int, frozenset[str]]:
    revision, _, topics = payload.partition(" ")
    try:
        return int(revision), frozenset(topics.split()) or frozenset({"*"})
    except ValueError:
        return 0, frozenset({"*"})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _label(url: str) -> str:
    return store_label(url)
