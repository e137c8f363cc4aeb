"""The audit trail: every decision on record, in signed per-writer hash chains.

>>> store = open_store(None, home)                          # doctest: +SKIP
>>> writer = AuditWriter(store, home_signer(home), home=home).start()  # doctest: +SKIP
>>> writer.append(entry_for(decision, subject, context, request_id="r1", time_ns=time.time_ns()))  # doctest: +SKIP
"""

from ._export import (
    CSV_COLUMNS,
    DEFAULT_HORIZON_NS,
    UNKNOWN,
    Exported,
    csv_row,
    export_rows,
    exported,
    iso_time,
    join_outcomes,
    jsonl_line,
    row_with_outcome,
)
from ._record import (
    CHECKPOINT_SCHEMA,
    GENESIS,
    SCHEMA,
    AdminAction,
    AuditEntry,
    ChainRow,
    Outcome,
    OutcomeBatch,
    canonical_json,
    chain_hash,
    entry_for,
    seal_decision,
)
from ._settings import audit_from_settings, audit_store_from_settings
from ._signals import SIGNAL_FIELDS, network_of, parse_signals, signals_text
from ._store import AuditStore, RecordFilter, SignalRow, open_store, store_label, store_url
from ._verify import KINDS, ChainSummary, Head, Problem, VerifyReport, load_heads, verify_store
from ._writer import AuditWriter, Mode

__all__ = [
    "CHECKPOINT_SCHEMA",
    "CSV_COLUMNS",
    "DEFAULT_HORIZON_NS",
    "GENESIS",
    "KINDS",
    "SCHEMA",
    "SIGNAL_FIELDS",
    "UNKNOWN",
    "AdminAction",
    "AuditEntry",
    "AuditStore",
    "AuditWriter",
    "ChainRow",
    "Outcome",
    "OutcomeBatch",
    "ChainSummary",
    "Exported",
    "Head",
    "Mode",
    "Problem",
    "RecordFilter",
    "SignalRow",
    "VerifyReport",
    "audit_from_settings",
    "audit_store_from_settings",
    "canonical_json",
    "chain_hash",
    "csv_row",
    "entry_for",
    "seal_decision",
    "export_rows",
    "exported",
    "iso_time",
    "join_outcomes",
    "jsonl_line",
    "load_heads",
    "network_of",
    "open_store",
    "parse_signals",
    "row_with_outcome",
    "signals_text",
    "store_label",
    "store_url",
    "verify_store",
]
