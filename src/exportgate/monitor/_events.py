"""Decision records as the detectors read them: one small tuple per audit record.

The rows come from the audit store's narrow monitoring read (the same SQL on SQLite and PostgreSQL: a
time range on the indexed ``time_ns`` column, decision rows only, in time order). The few fields
detectors need are in each row's ``signals`` column; rows written before it existed are read from
their canonical JSON body instead, with the same result.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from exportgate.audit import AuditStore, RecordFilter, network_of, parse_signals

__all__ = ["Event", "network_of", "read_events"]

LEGAL_DENIALS = frozenset({"location_denied", "location_not_allowed", "location_unknown", "anonymizer_denied"})


class Event(NamedTuple):
    record: str  # "writer:seq", the audit record's id
    time_ns: int
    account: str | None
    key_id: str | None
    network: str | None  # /24 (IPv4) or /48 (IPv6) of the client address
    country: str | None
    anonymizers: tuple[str, ...]
    model: str | None
    tier: str | None
    allowed: bool
    location_denied: bool  # denied by a location or anonymizer rule (what routing elsewhere would get around)
    homes: tuple[str, ...]  # where the subject declared it lives: its residencies, else its citizenships (sorted)


_NO_HOMES: tuple[str, ...] = ()


@lru_cache(maxsize=4096)
def _homes(places: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(set(places)))


def _event(record: str, time_ns: int, body: dict[str, Any]) -> Event:
    subject = body.get("subject")
    homes = _NO_HOMES
    if subject:
        homes = _homes(tuple(subject.get("residencies") or subject.get("citizenships") or ()))
    reasons = body.get("reasons")
    located = any(r.get("code") in LEGAL_DENIALS for r in reasons or ())
    anonymizers = body.get("anonymizers")
    return Event(
        record, time_ns, body.get("account"), body.get("key_id"), network_of(body.get("client_ip")),
        body.get("country"), tuple(anonymizers) if anonymizers else (), body.get("model"), body.get("tier"),
        body.get("decision") == "allow", located, homes,
    )  # fmt: skip


@lru_cache(maxsize=4096)
def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split(",")) if text else ()


@lru_cache(maxsize=1024)
def _located(codes: str) -> bool:
    return any(code in LEGAL_DENIALS for code in codes.split(","))


@lru_cache(maxsize=65536)
def _facts(signals: str) -> tuple[Any, ...] | None:
    """key_id, network, country, anonymizers, tier, location_denied, homes from a ``signals`` value (an
    account sends most requests from one place, so most rows repeat one of few values)."""
    fields = parse_signals(signals)
    if fields is None:
        return None
    key_id, country, network, anonymizers, tier, reasons, residencies, citizenships = fields
    return (key_id or None, network or None, country or None, _split(anonymizers), tier or None,
            bool(reasons) and _located(reasons), _homes(_split(residencies) or _split(citizenships)))  # fmt: skip


def read_events(
    store: AuditStore,
    since_ns: int | None = None,
    until_ns: int | None = None,
    *,
    time_scale: float = 1.0,
    base_ns: int | None = None,
) -> Iterator[Event]:
    """Decision records in time order. ``time_scale`` stretches time from ``base_ns`` (default: the first
    record read) on, so a synthetic run compressed into seconds is read as the hours it stands for; 1.0
    in real use."""
    base = base_ns
    loads, make = orjson.loads, tuple.__new__  # Event's own __new__ is a Python-level wrapper around this
    for record, written_ns, account, model, decision, signals, body in store.signal_rows(
        RecordFilter(since_ns, until_ns, decisions_only=True)
    ):
        time_ns = written_ns
        if time_scale != 1.0:
            base = written_ns if base is None else base
            time_ns = base + int((written_ns - base) * time_scale)
        facts = _facts(signals) if signals is not None else None
        if facts is not None:
            key_id, network, country, anonymizers, tier, located, homes = facts
            yield make(Event, (record, time_ns, account, key_id, network, country, anonymizers, model,
                               tier, decision == "allow", located, homes))  # fmt: skip
        elif body is not None:
            yield _event(record, time_ns, loads(body))
