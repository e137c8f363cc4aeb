"""Decision records as the detectors read them: one small tuple per audit record.

The rows come from the audit store's ordinary query (the same SQL on SQLite and PostgreSQL: a time range
on the indexed ``time_ns`` column, decision rows only, in time order); the few fields detectors need are
read from each record's canonical JSON body.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from functools import lru_cache
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
    """The /24 (IPv4) or /48 (IPv6) network of an address as the gateway recorded it (already normalized)."""
    if not ip:
        return None
    if ip.count(".") == 3 and ":" not in ip:  # the common case, without ipaddress's cost
        return ip[: ip.rindex(".")] + ".0/24"
    return _network_slow(ip)


@lru_cache(maxsize=65536)
def _network_slow(ip: str) -> str | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


_NO_HOMES: frozenset[str] = frozenset()


@lru_cache(maxsize=4096)
def _homes(places: tuple[str, ...]) -> frozenset[str]:
    return frozenset(places)


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
    loads = orjson.loads
    for writer, seq, written_ns, body in store.bodies(RecordFilter(since_ns, until_ns, decisions_only=True)):
        time_ns = written_ns
        if time_scale != 1.0:
            base = written_ns if base is None else base
            time_ns = base + int((written_ns - base) * time_scale)
        yield _event(f"{writer}:{seq}", time_ns, loads(body))
