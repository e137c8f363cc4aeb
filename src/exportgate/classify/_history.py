"""Classification history: every record, kept in ``HOME/classifications.db`` (SQLite, append-only)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from exportgate._files import sqlite_connect
from exportgate.errors import StoreError

__all__ = ["ClassificationHistory"]


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
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the classification history {self.path}: {exc}") from None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"the classification history {self.path} is open read-only")
        return self._db

    def add(self, record: dict[str, Any]) -> None:
        try:
            self._open().execute(
                "INSERT INTO classifications (id, model, created, record) VALUES (?, ?, ?, ?)",
                (record["id"], record["model"], record["created"], orjson.dumps(record).decode()),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record the classification in {self.path}: {exc}") from None

    def records(self, model: str) -> list[dict[str, Any]]:
        """The model's classifications, oldest first."""
        if self._db is None:
            return []  # read-only, and no history yet
        try:
            rows = self._db.execute("SELECT record FROM classifications WHERE model = ? ORDER BY seq", (model,))
            return [orjson.loads(row[0]) for row in rows.fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the classification history {self.path}: {exc}") from None

    def latest(self, model: str) -> dict[str, Any] | None:
        records = self.records(model)
        return records[-1] if records else None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
