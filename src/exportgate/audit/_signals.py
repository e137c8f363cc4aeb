"""The ``signals`` column: a decision record's facts that monitoring reads, as one short string.

A decision row stores its full record as canonical JSON (``body``); reading a field back means parsing
it, which costs more than everything a detector does with it. So the writer also stores, next to the
body, the few facts monitoring needs, joined with the ASCII unit separator::

    "s1" US key_id US country US network US anonymizers US tier US reason codes US residencies US citizenships

(``US`` = ``\\x1f``; list fields are comma-joined; an absent value is empty; a record with a value that
holds a separator gets no signals rather than an altered value). ``network`` is the client
address's /24 (IPv4) or /48 (IPv6). The column is inside the row's chain hash (see ``_record``), so it
is as tamper-evident as the body it is derived from; rows written before it existed have ``NULL`` there
and readers fall back to the body.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

__all__ = [
    "SIGNALS_VERSION",
    "SIGNAL_FIELDS",
    "context_signals",
    "decision_signals",
    "joined_signals",
    "network_of",
    "parse_signals",
    "signals_text",
    "subject_signals",
]

SIGNALS_VERSION = "s1"
SIGNAL_FIELDS = (
    "key_id", "country", "network", "anonymizers", "tier", "reasons", "residencies", "citizenships",
)  # fmt: skip
_SEP = "\x1f"


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


def _many(values: Iterable[Any] | None) -> str:
    """Comma-joined; a ``_SEP`` in an item is caught by the caller's separator count."""
    if not values:
        return ""
    items = [str(v) for v in values]
    text = ",".join(items)
    return text if text.count(",") == len(items) - 1 else _SEP  # an item with a comma: unrepresentable


def signals_text(
    *,
    key_id: str | None,
    country: str | None,
    client_ip: str | None,
    anonymizers: Iterable[str] | None,
    tier: str | None,
    reasons: Iterable[Mapping[str, Any]],
    subject: Mapping[str, Any] | None,
) -> str | None:
    """The column's value for a decision record with these fields; ``None`` when a value contains a
    separator (nothing the gateway writes does), so no two different records can read alike."""
    subject = subject or {}
    return joined_signals(
        key_id or "",
        context_signals(country, client_ip, anonymizers),
        decision_signals(tier, [r.get("code") or "" for r in reasons]),
        subject_signals(subject.get("residencies"), subject.get("citizenships")),
    )


# The column in four segments, each a function of one thing the gateway knows per request: the key, the
# request's place (country, network, anonymizers), the decision (tier, reasons) and the subject
# (residencies, citizenships). The gateway computes each once per key, place, decision and subject.


def context_signals(country: str | None, client_ip: str | None, anonymizers: Iterable[str] | None) -> str:
    return _SEP.join((country or "", network_of(client_ip) or "", _many(anonymizers)))


def decision_signals(tier: str | None, codes: Iterable[str]) -> str:
    return _SEP.join((tier or "", _many(codes)))


def subject_signals(residencies: Iterable[str] | None, citizenships: Iterable[str] | None) -> str:
    return _SEP.join((_many(residencies), _many(citizenships)))


def joined_signals(key_id: str, context: str, decision: str, subject: str) -> str | None:
    """The segments joined; ``None`` unless each field holds no separator (the count says so: a segment
    never has fewer separators than it joins, and a field with one adds more)."""
    text = _SEP.join((SIGNALS_VERSION, key_id, context, decision, subject))
    return text if text.count(_SEP) == len(SIGNAL_FIELDS) else None


def parse_signals(text: str) -> list[str] | None:
    """The fields in :data:`SIGNAL_FIELDS` order (lists still comma-joined, absent values empty), or
    ``None`` for a value this version does not know (readers then use the body)."""
    fields = text.split(_SEP)
    if fields[0] != SIGNALS_VERSION or len(fields) != len(SIGNAL_FIELDS) + 1:
        return None
    return fields[1:]
