"""Alerts (``exportgate.alert/v1``) and their store: deduplicated, with states open / acknowledged /
resolved, in ``HOME/alerts.db`` (SQLite).

An alert's id is derived from the detector, the account and the dedup period its finding started in, so
running the monitor twice over the same records, or ``--follow`` seeing a pattern continue, adds evidence
to the same alert instead of raising a new one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from exportgate.errors import ConfigError, NotFoundError, StoreError

from ._detectors import NS_PER_S, Finding

__all__ = ["SCHEMA", "STATES", "AlertStore", "alert_id"]

SCHEMA = "exportgate.alert/v1"
STATES = ("open", "acknowledged", "resolved")
MAX_EVIDENCE = 200


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / NS_PER_S, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _now_ns() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * NS_PER_S)


def alert_id(finding: Finding, dedup_s: int) -> str:
    period = finding.start_ns // (dedup_s * NS_PER_S)
    material = f"{finding.detector}\0{finding.account}\0{period}"
    return "alert-" + hashlib.sha256(material.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Upserted:
    alert: dict[str, Any]
    new: bool


class AlertStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never corrupt
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, detector TEXT NOT NULL, account TEXT NOT NULL,"
                " severity TEXT NOT NULL, state TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
                " record TEXT NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state, start_ns)")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the alert store {self.path}: {exc}") from None

    def upsert(self, finding: Finding, dedup_s: int, action: str) -> Upserted:
        """A new alert for the finding, or the finding merged into the alert it continues."""
        return self.upsert_many([(finding, action)], dedup_s)[0]

    def upsert_many(self, findings: list[tuple[Finding, str]], dedup_s: int) -> list[Upserted]:
        """Upsert findings (with their actions) in one transaction; one result per alert touched."""
        now = _iso(_now_ns())
        merged: dict[str, dict[str, Any]] = {}
        new: set[str] = set()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for finding, action in findings:
                key = alert_id(finding, dedup_s)
                alert = merged.get(key)
                if alert is None:
                    row = self._db.execute("SELECT record FROM alerts WHERE id = ?", (key,)).fetchone()
                    if row is None:
                        new.add(key)
                        merged[key] = _new_alert(key, finding, action, now)
                        continue
                    alert = orjson.loads(row[0])
                merged[key] = _merged(alert, finding, now)
            self._db.executemany(
                "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(k, a["detector"], a["account"], a["severity"], a["state"], a["_start_ns"], a["_end_ns"],
                  orjson.dumps(a).decode()) for k, a in merged.items()],
            )  # fmt: skip
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"cannot record alerts in {self.path}: {exc}") from None
        return [Upserted(_public(a), k in new) for k, a in merged.items()]

    def set_state(self, alert: str, state: str, note: str | None = None) -> dict[str, Any]:
        if state not in STATES:
            raise ConfigError(f"state must be one of {', '.join(STATES)}")
        row = self._db.execute("SELECT record FROM alerts WHERE id = ?", (alert,)).fetchone()
        if row is None:
            raise NotFoundError(f"no alert {alert!r}")
        record = orjson.loads(row[0])
        record["state"] = state
        record["updated"] = _iso(_now_ns())
        if note:
            record.setdefault("notes", []).append({"at": record["updated"], "state": state, "note": note})
        self._db.execute(
            "UPDATE alerts SET state = ?, record = ? WHERE id = ?", (state, orjson.dumps(record).decode(), alert)
        )
        return _public(record)

    def get(self, alert: str) -> dict[str, Any]:
        row = self._db.execute("SELECT record FROM alerts WHERE id = ?", (alert,)).fetchone()
        if row is None:
            raise NotFoundError(f"no alert {alert!r}")
        return _public(orjson.loads(row[0]))

    def list(self, state: str | None = None, since_ns: int | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT record FROM alerts WHERE 1 = 1", list[object]()
        if state is not None:
            sql, params = sql + " AND state = ?", [state]
        if since_ns is not None:
            sql += " AND end_ns >= ?"
            params.append(since_ns)
        rows = self._db.execute(sql + " ORDER BY start_ns, id", params).fetchall()
        return [_public(orjson.loads(r[0])) for r in rows]

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def close(self) -> None:
        self._db.close()


def _new_alert(key: str, finding: Finding, action: str, now: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "id": key,
        "detector": finding.detector,
        "account": finding.account,
        "severity": finding.severity,
        "state": "open",
        "window": {"start": _iso(finding.start_ns), "end": _iso(finding.end_ns)},
        "summary": finding.summary,
        "details": finding.details,
        "evidence": list(finding.evidence),
        "action": action,
        "created": now,
        "updated": now,
        "_start_ns": finding.start_ns,
        "_end_ns": finding.end_ns,
    }


def _merged(alert: dict[str, Any], finding: Finding, now: str) -> dict[str, Any]:
    evidence = list(dict.fromkeys([*alert["evidence"], *finding.evidence]))[:MAX_EVIDENCE]
    end_ns = max(alert["_end_ns"], finding.end_ns)
    return {
        **alert,
        "evidence": evidence,
        "summary": finding.summary,
        "details": finding.details,
        "window": {"start": alert["window"]["start"], "end": _iso(end_ns)},
        "_end_ns": end_ns,
        "updated": now,
    }


def _public(alert: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in alert.items() if not k.startswith("_")}
