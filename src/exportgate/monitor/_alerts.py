"""Alerts (``exportgate.alert/v1``) and their store: deduplicated, with states open / acknowledged /
resolved, in the state database (``HOME/alerts.db`` on SQLite; the shared PostgreSQL database of
``database_url``, where every replica sees the same alerts).

An alert's id is derived from the detector, the account and the dedup period its finding started in, so
running the monitor twice over the same records, or ``--follow`` seeing a pattern continue, adds evidence
to the same alert instead of raising a new one.

Every change of state is kept in the alert's ``history`` (when, from what, to what, by whom, why), in a
column of its own that the monitor's evidence updates never rewrite. A resolved alert is reopened before it
can be acknowledged again. Schema changes are numbered migrations (:data:`exportgate.state.ALERTS`);
files from before the history column still list (read-only, they show an empty history).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from exportgate.errors import ConfigError, ConflictError, NotFoundError, StoreError
from exportgate.state import ALERTS, Database, Transaction, database_at

from ._detectors import NS_PER_S, Finding

__all__ = ["MEMORY", "SCHEMA", "STATES", "TRANSITIONS", "AlertStore", "Transition", "alert_id", "check_state"]

SCHEMA = "exportgate.alert/v1"
STATES = ("open", "acknowledged", "resolved")
TRANSITIONS = {"open": ("acknowledged", "resolved"), "acknowledged": ("open", "resolved"), "resolved": ("open",)}
MEMORY = ":memory:"  # an AlertStore at this path keeps its alerts in memory only
MAX_EVIDENCE = 200
_UPSERT = (
    "INSERT INTO alerts (id, detector, account, severity, state, start_ns, end_ns, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET severity = excluded.severity,"
    " state = excluded.state, end_ns = excluded.end_ns, record = excluded.record"
)


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / NS_PER_S, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _now_ns() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * NS_PER_S)


def alert_id(finding: Finding, dedup_s: int) -> str:
    period = finding.start_ns // (dedup_s * NS_PER_S)
    material = f"{finding.detector}\0{finding.account}\0{period}"
    return "alert-" + hashlib.sha256(material.encode()).hexdigest()[:16]


def check_state(state: str) -> str:
    if state not in STATES:
        raise ConfigError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    return state


@dataclass(frozen=True)
class Upserted:
    alert: dict[str, Any]
    new: bool


@dataclass(frozen=True)
class Transition:
    alert: dict[str, Any]
    changed: bool  # False: the alert was already in that state (nothing recorded)
    previous: str


class AlertStore:
    """Alerts in a state database (:mod:`exportgate.state`; shared by every replica on PostgreSQL), or in
    SQLite at a path (created 0600 in a 0700 directory), or in memory at :data:`MEMORY`. ``read_only``
    opens an existing file for listing: nothing is created, migrated or written."""

    def __init__(self, source: str | Path | Database, *, read_only: bool = False) -> None:
        self.db = database_at(source, ALERTS, read_only=read_only)
        self.path = self.db.label
        self.read_only = self.db.read_only
        if self.db.backend == "sqlite":
            self._columns = {str(r[1]) for r in self.db.query("PRAGMA table_info(alerts)")}
        else:
            self._columns = {"history"}
        self._history = "history" if "history" in self._columns else "'[]'"  # read-only, a file from before it

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[Transaction]:
        try:
            with self.db.transaction() as tx:
                tx.touch("alerts")
                yield tx
        except StoreError as exc:
            raise StoreError(f"{what} the alert store: {exc}") from None

    def upsert(self, finding: Finding, dedup_s: int, action: str) -> Upserted:
        """A new alert for the finding, or the finding merged into the alert it continues."""
        return self.upsert_many([(finding, action)], dedup_s)[0]

    def upsert_many(self, findings: list[tuple[Finding, str]], dedup_s: int) -> list[Upserted]:
        """Upsert findings (with their actions) in one transaction; one result per alert touched. An
        alert's state and history are kept as they are."""
        now = _iso(_now_ns())
        merged: dict[str, dict[str, Any]] = {}
        histories: dict[str, list[dict[str, Any]]] = {}
        new: set[str] = set()
        with self._transaction("cannot record alerts in") as tx:
            for finding, action in findings:
                key = alert_id(finding, dedup_s)
                alert = merged.get(key)
                if alert is None:
                    row = self._row(key, tx)
                    if row is None:
                        new.add(key)
                        merged[key], histories[key] = _new_alert(key, finding, action, now), []
                        continue
                    alert, histories[key] = orjson.loads(row[0]), orjson.loads(row[1])
                merged[key] = _merged(alert, finding, now)
            tx.executemany(
                _UPSERT,
                [(k, a["detector"], a["account"], a["severity"], a["state"], a["_start_ns"], a["_end_ns"],
                  orjson.dumps(a).decode()) for k, a in merged.items()],
            )  # fmt: skip
        return [Upserted(_public(a, histories[k]), k in new) for k, a in merged.items()]

    def set_state(self, alert: str, state: str, note: str | None = None, by: str | None = None) -> Transition:
        """Move an alert to ``state`` and record the transition in its history (at, state, from, by, note).
        Already in that state: nothing changes or is recorded. A resolved alert cannot be acknowledged
        (ConflictError): it is reopened first."""
        check_state(state)
        with self._transaction(f"cannot change {alert} in") as tx:
            tx.lock(f"exportgate.alert:{alert}")
            row = self._row(alert, tx)
            if row is None:
                raise NotFoundError(f"no alert {alert!r}")
            record, history = orjson.loads(row[0]), orjson.loads(row[1])
            previous = record["state"]
            if previous == state:
                return Transition(_public(record, history), False, previous)
            if state not in TRANSITIONS[previous]:
                raise ConflictError(f"alert {alert} is {previous}: it cannot become {state} before it is reopened")
            record["state"] = state
            record["updated"] = _iso(_now_ns())
            history.append({"at": record["updated"], "state": state, "from": previous, "by": by, "note": note})
            tx.execute("UPDATE alerts SET state = ?, record = ?, history = ? WHERE id = ?",
                             (state, orjson.dumps(record).decode(), orjson.dumps(history).decode(), alert))  # fmt: skip
        return Transition(_public(record, history), True, previous)

    def _row(self, alert: str, tx: Transaction | None = None) -> tuple[str, str] | None:
        sql = f"SELECT record, {self._history} FROM alerts WHERE id = ?"  # noqa: S608 - a column name or a constant
        rows = self.db.query(sql, (alert,)) if tx is None else tx.execute(sql, (alert,)).fetchall()
        return None if not rows else (str(rows[0][0]), str(rows[0][1]))

    def get(self, alert: str) -> dict[str, Any]:
        row = self._row(alert) if self._columns else None
        if row is None:
            raise NotFoundError(f"no alert {alert!r}")
        return _public(orjson.loads(row[0]), orjson.loads(row[1]))

    def list(self, state: str | None = None, since_ns: int | None = None, *, account: str | None = None,
             detector: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Alerts in start order; each filter given narrows the query (on the table's indexed columns)."""
        if state is not None:
            check_state(state)
        if not self._columns:  # read-only, a file without the table
            return []
        where = [(c, v) for c, v in (("state = ?", state), ("end_ns >= ?", since_ns), ("account = ?", account),
                                     ("detector = ?", detector)) if v is not None]  # fmt: skip
        clauses = " AND ".join(c for c, _ in where) or "1 = 1"  # constant clauses; the values are parameters
        sql = f"SELECT record, {self._history} FROM alerts WHERE {clauses} ORDER BY start_ns, id"  # noqa: S608
        rows = self.db.query(sql, [v for _, v in where])
        return [_public(orjson.loads(r[0]), orjson.loads(r[1])) for r in rows]

    def close(self) -> None:
        self.db.close()


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


def _public(alert: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """The alert as shown and delivered: its ``history`` of transitions, and ``notes`` as alerts from
    before the history kept them."""
    return {**{k: v for k, v in alert.items() if not k.startswith("_")}, "history": history}
