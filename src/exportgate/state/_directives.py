"""Published directives: every version kept (content, sha256, who, when, note); the newest is in force.

A rollback publishes the content of an earlier version again as a new version (``rollback_of`` names it),
so the history is one line that only grows and ``history`` shows exactly what was enforced when. The
store keeps bytes: validating them is the caller's part (:func:`exportgate.actions.publish_directive`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from exportgate.errors import NotFoundError

from ._db import Database, Transaction

__all__ = ["DirectiveStore", "PublishedDirective"]

TOPIC = "directive"
_COLUMNS = "version, directive_id, directive_version, sha256, published_by, published_at, note, rollback_of"


@dataclass(frozen=True)
class PublishedDirective:
    version: int
    directive_id: str
    directive_version: str
    sha256: str
    published_by: str
    published_at: str
    note: str | None
    rollback_of: int | None
    content: str | None = None  # only when asked for

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "content" or v is not None}


def _row(row: tuple[object, ...], content: str | None = None) -> PublishedDirective:
    version, did, dversion, sha, by, at, note, rollback_of = row[:8]
    return PublishedDirective(int(str(version)), str(did), str(dversion), str(sha), str(by), str(at),
                              None if note is None else str(note),
                              None if rollback_of is None else int(str(rollback_of)), content)  # fmt: skip


class DirectiveStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def publish(self, content: str, *, directive_id: str, directive_version: str, by: str,
                note: str | None = None, rollback_of: int | None = None) -> PublishedDirective:  # fmt: skip
        """Store ``content`` (already validated) as the next version, in force from its commit."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        sha = hashlib.sha256(content.encode("utf-8")).hexdigest()
        with self.db.transaction() as tx:
            version = self._next(tx)
            sql = f"INSERT INTO directives ({_COLUMNS}, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
            tx.execute(sql, (version, directive_id, directive_version, sha, by, now, note, rollback_of, content))
            tx.touch(TOPIC)
        return PublishedDirective(version, directive_id, directive_version, sha, by, now, note, rollback_of, content)

    @staticmethod
    def _next(tx: Transaction) -> int:
        tx.lock("exportgate.directives")
        return int(tx.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM directives").fetchone()[0])

    def active(self) -> PublishedDirective | None:
        """The version in force (the newest), with its content; None when nothing was ever published."""
        rows = self.db.query(f"SELECT {_COLUMNS}, content FROM directives ORDER BY version DESC LIMIT 1")  # noqa: S608
        return _row(rows[0], str(rows[0][8])) if rows else None

    def latest_version(self) -> int:
        return int(self.db.query("SELECT COALESCE(MAX(version), 0) FROM directives")[0][0])

    def get(self, version: int) -> PublishedDirective:
        rows = self.db.query(f"SELECT {_COLUMNS}, content FROM directives WHERE version = ?", (version,))  # noqa: S608
        if not rows:
            raise NotFoundError(f"no published directive version {version}")
        return _row(rows[0], str(rows[0][8]))

    def history(self) -> list[PublishedDirective]:
        return [_row(r) for r in self.db.query(f"SELECT {_COLUMNS} FROM directives ORDER BY version")]  # noqa: S608
