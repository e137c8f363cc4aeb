"""Classification history: every record, kept in ``HOME/classifications.db`` (SQLite, append-only)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from exportgate._files import private_sqlite
from exportgate.errors import StoreError

__all__ = ["ClassificationHistory"]


class ClassificationHistory:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            private_sqlite(self.path)
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS classifications (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE"
                " NOT NULL, model TEXT NOT NULL, created TEXT NOT NULL, record TEXT NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS classifications_model ON classifications (model, seq)")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the classification history {self.path}: {exc}") from None

    def add(self, record: dict[str, Any]) -> None:
        try:
            self._db.execute(
                "INSERT INTO classifications (id, model, created, record) VALUES (?, ?, ?, ?)",
                (record["id"], record["model"], record["created"], orjson.dumps(record).decode()),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record the classification in {self.path}: {exc}") from None

    def records(self, model: str) -> list[dict[str, Any]]:
        """The model's classifications, oldest first."""
        try:
            rows = self._db.execute("SELECT record FROM classifications WHERE model = ? ORDER BY seq", (model,))
            return [orjson.loads(row[0]) for row in rows.fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the classification history {self.path}: {exc}") from None

    def latest(self, model: str) -> dict[str, Any] | None:
        records = self.records(model)
        return records[-1] if records else None

    def close(self) -> None:
        self._db.close()
