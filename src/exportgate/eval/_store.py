"""The campaign checkpoint: finished trials in SQLite, so a killed run resumes without redoing them.

It holds the raw, unredacted transcripts, so it is owner-only and ``eval run`` removes it once the
evidence is written. Errored trials are kept but count as not done: a resume runs them again. The model
ids the target's provider served are kept too (``served_models``), so a resumed campaign names them all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from exportgate._files import private_sqlite
from exportgate.errors import ConfigError, StoreError

from ._records import TrialResult

__all__ = ["CampaignStore"]


class CampaignStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            private_sqlite(self.path, own_directory=False)  # raw, unredacted transcripts: owner-only
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS campaign (id INTEGER PRIMARY KEY CHECK (id = 1), config TEXT)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS trials (objective TEXT, strategy TEXT, trial INTEGER, result TEXT,"
                " PRIMARY KEY (objective, strategy, trial))"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS served (model TEXT PRIMARY KEY)")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the campaign checkpoint {self.path}: {exc}") from None

    def start(self, config: dict[str, Any], *, resume: bool) -> None:
        """Record the campaign's config; resuming requires the same config, a new run an empty file."""
        row = self._db.execute("SELECT config FROM campaign").fetchone()
        encoded = orjson.dumps(config, option=orjson.OPT_SORT_KEYS).decode()
        if row is None:
            self._db.execute("INSERT INTO campaign VALUES (1, ?)", (encoded,))
        elif not resume:
            raise ConfigError(
                f"{self.path} already holds a campaign: resume it, or start this one in another checkpoint file"
            )
        elif row[0] != encoded:
            raise ConfigError(f"{self.path} holds a campaign with different settings; it cannot be resumed with these")

    def saved(self) -> dict[tuple[str, str, int], TrialResult]:
        """Every saved trial, errored ones (with their partial transcripts) included."""
        rows = self._db.execute("SELECT objective, strategy, trial, result FROM trials").fetchall()
        saved = {}
        for objective, strategy, trial, text in rows:
            try:
                result = TrialResult.from_dict(orjson.loads(text))
            except (KeyError, TypeError, ValueError, AttributeError, orjson.JSONDecodeError) as exc:
                raise ConfigError(f"{self.path}: the saved trial {objective}/{strategy}/{trial} is damaged"
                                  f" ({exc!r:.120})") from None  # fmt: skip
            if not _well_formed(result):
                raise ConfigError(f"{self.path}: the saved trial {objective}/{strategy}/{trial} is damaged (a field"
                                  " of the wrong type or range)")  # fmt: skip
            if (result.objective_id, result.strategy, result.trial) != (objective, strategy, trial):
                raise ConfigError(f"{self.path}: the saved trial {objective}/{strategy}/{trial} names another trial")
            saved[(objective, strategy, trial)] = result
        return saved

    def done(self) -> dict[tuple[str, str, int], TrialResult]:
        """The finished trials that need not run again: every saved one but those that errored."""
        return {key: result for key, result in self.saved().items() if result.error is None}

    def save(self, result: TrialResult) -> None:
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?)",
                (result.objective_id, result.strategy, result.trial, orjson.dumps(result.as_dict()).decode()),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot save a trial to {self.path}: {exc}") from None

    def served_models(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT model FROM served ORDER BY model")]

    def save_served_models(self, models: Iterable[str]) -> None:
        try:
            self._db.executemany("INSERT OR IGNORE INTO served VALUES (?)", [(m,) for m in models])
        except sqlite3.Error as exc:
            raise StoreError(f"cannot save to {self.path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def remove(self) -> None:
        """Close and delete the checkpoint (and SQLite's companion files)."""
        self.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)


def _well_formed(result: TrialResult) -> bool:
    try:
        return _fields_well_formed(result)
    except (TypeError, ValueError):
        return False


def _fields_well_formed(result: TrialResult) -> bool:
    counts = (result.trial, result.seed, result.turns, result.backtracks, result.refusals, result.prompt_tokens,
              result.completion_tokens)  # fmt: skip
    return (isinstance(result.success, bool) and all(type(n) is int and n >= 0 for n in counts)
            and (result.error is None or isinstance(result.error, str))
            and all(isinstance(role, str) and isinstance(text, str) for role, text in result.transcript))  # fmt: skip
