"""Decision records as the detectors read them: one small tuple per audit record.

The rows come from the audit store's ordinary query (the same SQL on SQLite and PostgreSQL: a time range
on the indexed ``time_ns`` column, decision rows only, in time order); the few fields detectors need are
read from each record's canonical JSON body.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any, NamedTuple

import orjson

from exportgate.audit import AuditStore, RecordFilter

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
    homes: frozenset[str]  # where the subject declared it lives: its residencies, else its citizenships


def network_of(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _event(record: str, time_ns: int, body: dict[str, Any]) -> Event:
    subject = body.get("subject") or {}
    homes = frozenset(subject.get("residencies") or subject.get("citizenships") or ())
    codes = {r.get("code") for r in body.get("reasons") or ()}
    return Event(
        record,
        time_ns,
        body.get("account"),
        body.get("key_id"),
        network_of(body.get("client_ip")),
        body.get("country"),
        tuple(body.get("anonymizers") or ()),
        body.get("model"),
        body.get("tier"),
        body.get("decision") == "allow",
        bool(codes & LEGAL_DENIALS),
        homes,
    )


def read_events(
    store: AuditStore, since_ns: int | None = None, until_ns: int | None = None, *, time_scale: float = 1.0
) -> Iterator[Event]:
    """Decision records in time order. ``time_scale`` stretches time from the first record on (a synthetic
    run compressed into seconds is read as the hours it stands for); 1.0 in real use."""
    base: int | None = None
    for row in store.query(RecordFilter(since_ns=since_ns, until_ns=until_ns, decisions_only=True)):
        time_ns = row.time_ns
        if time_scale != 1.0:
            base = time_ns if base is None else base
            time_ns = base + int((time_ns - base) * time_scale)
        yield _event(f"{row.writer}:{row.seq}", time_ns, orjson.loads(row.body))
