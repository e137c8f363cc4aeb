"""Classification history: every record, kept in ``HOME/classifications.db`` (SQLite, append-only).

A pending relaxation also keeps the directive it would write (``pending`` table), so its approval
writes exactly what was classified.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import NamedTuple

from exportgate._files import sqlite_connect
from exportgate.errors import ClassificationRefused, StoreError

from ._record import ClassificationRecord

__all__ = ["ClassificationHistory", "PendingChange"]


class PendingChange(NamedTuple):
    record: ClassificationRecord
    text: str  # the new directive
    out: str  # where it goes
    directive: str  # the directive file it was classified against


class ClassificationHistory:
    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        """``read_only`` reads an existing history and never creates one (a missing one has no records)."""
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        if read_only and not self.path.is_file():
            return
        try:
            self._db = sqlite_connect(self.path, read_only=read_only, isolation_level=None)
            if read_only:
                return
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS classifications (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE"
                " NOT NULL, model TEXT NOT NULL, created TEXT NOT NULL, record TEXT NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS classifications_model ON classifications (model, seq)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS pending (id TEXT PRIMARY KEY, text TEXT NOT NULL, out TEXT NOT NULL,"
                " directive TEXT NOT NULL)"
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the classification history {self.path}: {exc}") from None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"the classification history {self.path} is open read-only")
        return self._db

    def add(self, record: ClassificationRecord, pending: tuple[str, str, str] | None = None) -> None:
        """Keep ``record``; ``pending`` = (directive text, out path, directive path) of a pending change,
        stored in the same transaction."""
        db = self._open()
        try:
            with db:
                db.execute("BEGIN IMMEDIATE")
                if record.approves is not None:  # in the same write transaction: two approvers cannot both win
                    rows = db.execute("SELECT record FROM classifications WHERE model = ?", (record.model,))
                    for (text,) in rows.fetchall():
                        done = ClassificationRecord.from_json(text)
                        if done.approves == record.approves:
                            raise ClassificationRefused(f"classification {record.approves} was already approved,"
                                                        f" by {done.approved_by} (record {done.id})")  # fmt: skip
                db.execute(
                    "INSERT INTO classifications (id, model, created, record) VALUES (?, ?, ?, ?)",
                    (record.id, record.model, record.created, record.to_json().decode()),
                )
                if pending is not None:
                    db.execute("INSERT INTO pending (id, text, out, directive) VALUES (?, ?, ?, ?)",
                               (record.id, *pending))  # fmt: skip
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record the classification in {self.path}: {exc}") from None

    def remove(self, record_id: str) -> None:
        """Take back a record whose directive could not be put in place (nothing else removes records)."""
        db = self._open()
        try:
            with db:
                db.execute("DELETE FROM pending WHERE id = ?", (record_id,))
                db.execute("DELETE FROM classifications WHERE id = ?", (record_id,))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot take back classification {record_id} in {self.path}: {exc}") from None

    def _select(self, sql: str, args: tuple[str, ...]) -> list[ClassificationRecord]:
        if self._db is None:
            return []  # read-only, and no history yet
        try:
            rows = self._db.execute(sql, args).fetchall()
            return [ClassificationRecord.from_json(row[0]) for row in rows]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the classification history {self.path}: {exc}") from None
        except ValueError as exc:
            raise StoreError(f"the classification history {self.path} holds a damaged record: {exc}") from None

    def records(self, model: str) -> list[ClassificationRecord]:
        """The model's classifications, oldest first (pending relaxations and approvals included)."""
        return self._select("SELECT record FROM classifications WHERE model = ? ORDER BY seq", (model,))

    def get(self, record_id: str) -> ClassificationRecord | None:
        found = self._select("SELECT record FROM classifications WHERE id = ?", (record_id,))
        return found[0] if found else None

    def pending(self, record_id: str) -> PendingChange | None:
        record = self.get(record_id)
        if record is None or record.status != "pending" or self._db is None:
            return None
        row = self._db.execute("SELECT text, out, directive FROM pending WHERE id = ?", (record_id,)).fetchone()
        return PendingChange(record, *row) if row else None

    def approval_of(self, record_id: str) -> ClassificationRecord | None:
        record = self.get(record_id)
        if record is None:
            return None
        return next((r for r in self.records(record.model) if r.approves == record_id), None)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
