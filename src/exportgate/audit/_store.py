"""The store interface shared by SQLite and PostgreSQL, and ``open_store(url)``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from exportgate._text import store_label
from exportgate.errors import ConfigError

from ._record import ChainRow

__all__ = [
    "AuditStore",
    "RawRow",
    "RecordFilter",
    "SignalRow",
    "open_store",
    "read_meta",
    "store_label",
    "store_url",
    "where_clause",
]

#: A row as verify reads it: the ChainRow columns, text as bytes (None stays None).
RawRow = tuple[
    bytes, int, bytes, int, bytes | None, bytes | None, bytes | None, bytes | None, bytes, bytes, bytes, bytes | None
]
#: What monitoring reads of a decision row: its id ``writer:seq``, time_ns, account, model, decision, signals,
#: and the body only when the row has no signals (written before schema 2).
SignalRow = tuple[str, int, str | None, str | None, str | None, str | None, str | None]


def _b(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8", "surrogatepass")


COLUMNS = (
    "writer", "seq", "kind", "time_ns", "request_id", "account", "model", "decision", "prev", "hash", "body", "signals",
)  # fmt: skip
#: The narrow read behind :meth:`AuditStore.signal_rows` (the body only where there are no signals).
SIGNAL_SELECT = (
    "SELECT writer || ':' || seq, time_ns, account, model, decision, signals, CASE WHEN signals IS NULL THEN body END "
    "FROM audit_records"
)


@dataclass(frozen=True)
class RecordFilter:
    """Filters for export and tail; ``None`` means any."""

    since_ns: int | None = None
    until_ns: int | None = None
    account: str | None = None
    model: str | None = None
    decision: str | None = None
    include_checkpoints: bool = False
    decisions_only: bool = False  # decision records only (no outcomes rows, no checkpoints)
    kinds: tuple[str, ...] | None = None  # only rows of these kinds ("decision", "outcomes", "checkpoint")


class AuditStore(ABC):
    """Append-only rows in per-writer hash chains. Implementations translate
    their driver's errors into :class:`~exportgate.errors.StoreError`.

    ``store_id`` is a random id written into the store when it is created (``audit_meta``): heads files
    and verifiers name a store by it, so a copy, a relative path or another spelling of the URL is
    still the same store. ``None`` only for a read-only store from before schema 3."""

    url: str
    store_id: str | None = None
    #: Writers registered from this time on open their chain with a signed checkpoint (schema 3).
    opening_checkpoints_since_ns: int | None = None

    @abstractmethod
    def register_writer(self, writer: str, host: str, pid: int, key_id: str, started_ns: int) -> None: ...

    @abstractmethod
    def writers(self) -> dict[str, int]:
        """Every registered writer and when it started (``audit_writers``)."""

    @abstractmethod
    def append_rows(self, rows: Sequence[ChainRow]) -> None:
        """Write rows in one transaction: all of them are durable on return, or none."""

    @abstractmethod
    def probe(self, writer: str, time_ns: int) -> None:
        """A small real write (``audit_probes``), committed as records are: raises StoreError while the
        store cannot take writes (down, locked, full, read-only)."""

    @abstractmethod
    def chain_rows(self) -> Iterator[ChainRow]:
        """Every row, ordered by writer then sequence number (streamed)."""

    def chain_rows_bytes(self) -> Iterator[RawRow]:
        """As :meth:`chain_rows`, text columns as UTF-8 bytes (what verify hashes; a store may do it faster)."""
        for row in self.chain_rows():
            yield (
                row.writer.encode(),
                row.seq,
                row.kind.encode(),
                row.time_ns,
                _b(row.request_id),
                _b(row.account),
                _b(row.model),
                _b(row.decision),
                row.prev.encode(),
                row.hash.encode(),
                row.body.encode(),
                _b(row.signals),
            )

    @abstractmethod
    def get_row(self, writer: str, seq: int) -> ChainRow | None: ...

    def signal_rows(self, where: RecordFilter) -> Iterator[SignalRow]:
        """The matching rows as monitoring reads them (see :data:`SignalRow`), in time order (a store may
        fetch them faster)."""
        for row in self.query(where):
            yield (f"{row.writer}:{row.seq}", row.time_ns, row.account, row.model, row.decision, row.signals,
                   row.body if row.signals is None else None)  # fmt: skip

    @abstractmethod
    def query(
        self, where: RecordFilter, *, limit: int | None = None, newest_first: bool = False
    ) -> Iterator[ChainRow]: ...

    @abstractmethod
    def prune(self, writer: str, below_seq: int, note: str) -> int:
        """Delete a writer's rows below ``below_seq``; return how many."""

    @abstractmethod
    def checkpoints_before(self, time_ns: int) -> dict[str, int]:
        """Per writer, the highest checkpoint seq with a time before ``time_ns``."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def schema_version(self) -> int: ...

    @abstractmethod
    def close(self) -> None: ...


def read_meta(rows: Iterable[tuple[str, str]]) -> tuple[str | None, int | None]:
    """``store_id`` and ``opening_checkpoints_since_ns`` from ``audit_meta`` rows."""
    meta = dict(rows)
    since = meta.get("opening_checkpoints_since_ns")
    return meta.get("store_id"), int(since) if since is not None else None


def store_url(url: str | None, home: str | Path) -> str:
    """The effective store URL: the default is SQLite at ``HOME/audit.db`` (absolute: four slashes)."""
    if not url:
        return f"sqlite:///{Path(home).expanduser().resolve() / 'audit.db'}"
    return url


def open_store(
    url: str | None, home: str | Path, *, durable: bool = True, busy_timeout_ms: int = 5000, read_only: bool = False
) -> AuditStore:
    """Open the store a URL names: ``sqlite:///PATH`` (``?mode=ro`` read-only) or ``postgresql://...``.

    ``read_only`` never creates anything: a store that does not exist is a StoreError, not a new one."""
    url = store_url(url, home)
    if url.startswith("sqlite:"):
        from ._sqlite import SqliteStore  # noqa: PLC0415 - each backend loads only when used

        return SqliteStore(url, durable=durable, busy_timeout_ms=busy_timeout_ms, read_only=read_only)
    if url.startswith(("postgresql://", "postgres://")):
        from ._postgres import PostgresStore  # noqa: PLC0415 - psycopg loads only when used

        return PostgresStore(url, read_only=read_only)
    raise ConfigError(f"unsupported audit URL {url!r} (expected sqlite:///PATH or postgresql://...)")


def where_clause(where: RecordFilter, placeholder: str = "?") -> tuple[list[str], list[object]]:
    """SQL conditions and parameters for a filter (both stores)."""
    clauses: list[str] = []
    params: list[object] = []
    for column, op, value in (
        ("time_ns", ">=", where.since_ns),
        ("time_ns", "<", where.until_ns),
        ("account", "=", where.account),
        ("model", "=", where.model),
        ("decision", "=", where.decision),
    ):
        if value is not None:
            clauses.append(f"{column} {op} {placeholder}")
            params.append(value)
    if not where.include_checkpoints:
        clauses.append("kind <> 'checkpoint'")
    if where.decisions_only:
        clauses.append("decision IS NOT NULL")
    if where.kinds is not None:
        clauses.append(f"kind IN ({', '.join([placeholder] * len(where.kinds))})")
        params.extend(where.kinds)
    return clauses, params
