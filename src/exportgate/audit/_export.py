"""The regulator's view of the trail (``audit export``): decisions joined with what followed them.

An allowed decision is committed before its request is forwarded; its outcome (statuses, latency, tokens)
arrives later in a batched ``outcomes`` row. The join streams: rows are read in time order, decisions wait
in a FIFO until their outcome has been seen or the stream has moved ``horizon_ns`` past them, and leave in
the order they were decided. Memory holds one horizon's decisions, not the export.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeGuard

import orjson

from ._record import ChainRow
from ._store import AuditStore, RecordFilter

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_HORIZON_NS",
    "UNKNOWN",
    "Exported",
    "csv_row",
    "export_rows",
    "exported",
    "iso_time",
    "join_outcomes",
    "jsonl_line",
    "row_with_outcome",
]

#: Default wait for an allowed decision's outcome: the gateway records an outcome within ~100 ms of the
#: request's end, so 15 minutes covers long streamed answers with room to spare.
DEFAULT_HORIZON_NS = 15 * 60 * 1_000_000_000
#: A subject attribute the record does not know (``null``, absent, or no subject at all).
UNKNOWN = "?"
#: The CSV columns, in order; those after ``hash`` came later and are appended so positions stay stable.
CSV_COLUMNS = (
    "time", "writer", "seq", "request_id", "account", "key_id", "client_ip", "country", "anonymizers",
    "requested_model", "model", "tier", "decision", "reasons", "http_status", "upstream_status", "latency_ms",
    "directive_id", "directive_version", "directive_sha256", "hash",
    "subject_id", "organization", "citizenships", "residencies", "us_person", "kyc", "screening", "controlled_by",
    "outcome_http_status", "outcome_upstream_status", "outcome_latency_ms", "prompt_tokens", "completion_tokens",
)  # fmt: skip


@dataclass(slots=True)
class Exported:
    """One exported row: the stored row, its decoded record (None: undecodable) and, for an allowed
    decision, the outcome joined to it and the ``writer:seq`` of the outcomes row that held it."""

    row: ChainRow
    record: dict[str, Any] | None
    outcome: dict[str, Any] | None = None
    outcome_record: str | None = None
    waiting_for: str | None = None  # an allowed decision's request id while its outcome has not been seen


def _decode(row: ChainRow) -> dict[str, Any] | None:
    try:
        record = orjson.loads(row.body)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _is_decision(record: Mapping[str, Any] | None) -> TypeGuard[Mapping[str, Any]]:
    return record is not None and record.get("event", "decision") == "decision" and "decision" in record


def exported(row: ChainRow) -> Exported:
    """A stored row decoded, nothing joined yet."""
    record = _decode(row)
    allowed = _is_decision(record) and record.get("decision") == "allow" and record.get("request_id")
    return Exported(row, record, waiting_for=str(record["request_id"]) if allowed and record else None)


def _match(row: ChainRow, record: Mapping[str, Any], waiting: dict[str, Exported]) -> None:
    for outcome in record.get("outcomes") or ():
        item = waiting.pop(str(outcome.get("request_id")), None) if isinstance(outcome, Mapping) else None
        if item is not None:
            item.outcome, item.outcome_record, item.waiting_for = dict(outcome), f"{row.writer}:{row.seq}", None


def _ready(queue: deque[Exported], waiting: dict[str, Exported], before_ns: int) -> Iterator[Exported]:
    """The queue's head while it is complete, or older than ``before_ns`` (its outcome is not coming)."""
    while queue and (queue[0].waiting_for is None or queue[0].row.time_ns < before_ns):
        item = queue.popleft()
        if item.waiting_for is not None and waiting.get(item.waiting_for) is item:
            del waiting[item.waiting_for]
        yield item


def join_outcomes(rows: Iterable[ChainRow], horizon_ns: int, stop_ns: int | None = None) -> Iterator[Exported]:
    """Rows in time order (decisions, checkpoints and ``outcomes`` rows) out as :class:`Exported`, each
    allowed decision with its outcome; outcomes rows are consumed (an undecodable one comes out as itself).
    No row at or after ``stop_ns`` is a decision: once the stream is there and nothing waits, it stops."""
    queue: deque[Exported] = deque()
    waiting: dict[str, Exported] = {}
    for row in rows:
        yield from _ready(queue, waiting, row.time_ns - horizon_ns)  # first: an outcome past the horizon is late
        if stop_ns is not None and row.time_ns >= stop_ns and not queue:
            return
        item = exported(row)
        if row.kind == "outcomes" and item.record is not None:
            _match(row, item.record, waiting)
        else:
            queue.append(item)
            if item.waiting_for is not None:
                waiting[item.waiting_for] = item
    yield from queue


def _with_outcomes(
    store: AuditStore, rows: Iterable[ChainRow], since_ns: int | None, until_ns: int | None, horizon_ns: int
) -> Iterator[ChainRow]:
    """``rows`` merged in time order with the outcomes rows from ``since_ns`` to ``until_ns`` + horizon."""
    last = None if until_ns is None else until_ns + horizon_ns
    outcomes = store.query(RecordFilter(since_ns=since_ns, until_ns=last, kinds=("outcomes",)))
    return heapq.merge(rows, outcomes, key=lambda row: row.time_ns)  # stable: a decision before a same-time outcome


def export_rows(store: AuditStore, where: RecordFilter, horizon_ns: int = DEFAULT_HORIZON_NS) -> Iterator[Exported]:
    """The decisions (and checkpoints, if asked) ``where`` selects, in time order, each allowed one joined
    with its outcome; outcomes rows are read up to ``where.until_ns`` + ``horizon_ns``."""
    decisions = store.query(replace(where, kinds=("decision", "checkpoint")))
    if where.decision == "deny":  # nothing to join
        return (exported(row) for row in decisions)
    rows = _with_outcomes(store, decisions, where.since_ns, where.until_ns, horizon_ns)
    return join_outcomes(rows, horizon_ns, where.until_ns)


def row_with_outcome(store: AuditStore, row: ChainRow, horizon_ns: int = DEFAULT_HORIZON_NS) -> Exported:
    """One stored row exactly, an allowed decision joined with its outcome (looked for within the horizon)."""
    item = exported(row)
    if item.waiting_for is None:
        return item
    rows = _with_outcomes(store, [row], row.time_ns, row.time_ns + 1, horizon_ns)
    (joined,) = join_outcomes(rows, horizon_ns, row.time_ns + 1)  # read to the end: the cursor is released
    return joined


# -- rendering ---------------------------------------------------------------------------------------------


def iso_time(time_ns: int) -> str:
    """UTC with nanoseconds: ``2026-06-14T09:30:00.123456789Z``."""
    stamp = dt.datetime.fromtimestamp(time_ns // 1_000_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{time_ns % 1_000_000_000:09d}Z"


def _text(value: Any) -> str:
    return UNKNOWN if value is None else str(value)


def _codes(value: Any) -> str:
    return UNKNOWN if value is None else ";".join(str(code) for code in value)


def _yes_no(value: Any) -> str:
    return UNKNOWN if value is None else ("yes" if value else "no")


def _subject_cells(subject: Mapping[str, Any] | None) -> list[str]:
    """``subject_id`` to ``controlled_by``, in column order."""
    known = subject or {}
    return [
        _text(known.get("subject_id")),
        _text(known.get("organization")),
        _codes(known.get("citizenships")),
        _codes(known.get("residencies")),
        _yes_no(known.get("us_person")),
        _text(known.get("kyc")),
        _text(known.get("screening")),
        _text(known.get("controlled_by")),
    ]


def _outcome_cells(outcome: Mapping[str, Any] | None) -> list[Any]:
    """``outcome_http_status`` to ``completion_tokens``, in column order."""
    known = outcome or {}
    tokens = known.get("tokens") or {}
    return [known.get("http_status"), known.get("upstream_status"), known.get("latency_ms"),
            tokens.get("prompt_tokens"), tokens.get("completion_tokens")]  # fmt: skip


_STORED = CSV_COLUMNS[: CSV_COLUMNS.index("hash") + 1]  # the columns named after the record's own fields
_TIME, _ANONYMIZERS, _REASONS, _HASH = (_STORED.index(c) for c in ("time", "anonymizers", "reasons", "hash"))


#: A text cell a spreadsheet would run as a formula starts with one of these (OWASP, "CSV injection").
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _inert(cell: Any) -> Any:
    """A text cell that a spreadsheet would take for a formula, with a ``'`` before it; other cells as they
    are (numbers stay numbers). Client-chosen values (a model name, a key id) reach these cells."""
    return "'" + cell if isinstance(cell, str) and cell.startswith(_FORMULA) else cell


def csv_row(item: Exported) -> list[Any]:
    """A decodable row's cells in :data:`CSV_COLUMNS` order (``None`` is an empty cell): lists ``;``-joined,
    subject attributes ``?`` when not known, outcome cells empty unless an outcome was joined; a text cell
    that starts like a spreadsheet formula gets a ``'`` before it."""
    return [_inert(cell) for cell in _cells(item)]


def _cells(item: Exported) -> list[Any]:
    record = item.record or {}
    cells: list[Any] = [record.get(column) for column in _STORED]
    cells[_TIME] = iso_time(int(record.get("time_ns", item.row.time_ns)))
    cells[_ANONYMIZERS] = ";".join(record.get("anonymizers") or [])
    cells[_REASONS] = ";".join(str(r.get("code")) for r in record.get("reasons") or [])
    cells[_HASH] = item.row.hash
    if _is_decision(record):
        return [*cells, *_subject_cells(record.get("subject")), *_outcome_cells(item.outcome)]
    return [*cells, *[None] * (len(CSV_COLUMNS) - len(cells))]


def jsonl_line(item: Exported, *, outcome: bool = False) -> dict[str, Any]:
    """The stored record with its chain links (``prev``, ``hash``); with ``outcome``, a decision line also
    carries the joined ``outcome`` (its fields and the ``record`` that held it) or null."""
    line = {**(item.record or {}), "prev": item.row.prev, "hash": item.row.hash}
    if outcome and _is_decision(item.record):
        line["outcome"] = None if item.outcome is None else {**item.outcome, "record": item.outcome_record}
    return line
