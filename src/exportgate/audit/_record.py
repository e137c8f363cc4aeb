"""The audit record (``exportgate.audit/v1``), its canonical encoding and chain hash.

Canonical JSON (the bytes that are hashed and stored): UTF-8, object keys
sorted by code point, no insignificant whitespace, no NaN or infinities;
strings as JSON strings with non-ASCII characters kept as UTF-8; integers
exact (``time_ns`` exceeds 2**53: read it with a big-integer-safe parser);
floats only for ``latency_ms``, rounded to 3 decimals, shortest round-trip
form. For these value types this is RFC 8785 (JCS) output.

Chain hash of a stored row (see docs/audit.md)::

    sha256( prev "\\n" writer "\\n" kind "\\n" time_ns "\\n" request_id "\\n"
            account "\\n" model "\\n" decision "\\n" body [ "\\n" signals ] )

where ``prev`` is the hex hash of the writer's previous row (64 zeros for the
first), absent values are empty strings, and ``body`` is the canonical JSON.
``signals`` (see ``_signals``) is appended only when the row has one: decision
rows written since schema 2; older rows and checkpoints hash as before. Canonical
JSON holds no raw newline, so the two forms cannot be confused.
The index columns are inside the hash, so editing a column is as visible as
editing the body; the sequence number is not (it orders rows; the ``prev``
links fix the order, so swapping sequence numbers shows as reordering).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, TypeAlias

import orjson

from exportgate._memo import ByIdentity
from exportgate._types import Decision, RequestContext, Subject
from exportgate.errors import UnrecordableError

from ._signals import context_signals, decision_signals, joined_signals, signals_text, subject_signals

__all__ = [
    "CHECKPOINT_SCHEMA",
    "AdminAction",
    "GENESIS",
    "SCHEMA",
    "AuditEntry",
    "ChainRow",
    "Outcome",
    "OutcomeBatch",
    "SealedRecord",
    "canonical_json",
    "chain_hash",
    "checkpoint_message",
    "entry_for",
    "row_hash",
    "seal_decision",
]

SCHEMA = "exportgate.audit/v1"
CHECKPOINT_SCHEMA = "exportgate.checkpoint/v1"
GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """The canonical encoding of a record (see module docstring); evidence bundles use it too."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


class SealedRecord(NamedTuple):
    """A record encoded by its caller, before it is queued: everything but the writer id and the sequence
    number, which only the writer thread knows. Encoding in the caller means a value that cannot be
    recorded (a lone UTF-16 surrogate, a NUL in an indexed column) fails *that* request before anything
    is forwarded, and can never reach, let alone stop, the writer thread.

    The body's keys are sorted and ``seq`` and ``writer`` fall where they fall: ``head`` is every key
    before ``seq`` (without the closing brace), ``tail`` every key between ``seq`` and ``writer`` (without
    braces), and :meth:`body` puts the two in between."""

    event: str
    time_ns: int
    request_id: str | None
    account: str | None
    model: str | None
    decision: str | None
    head: str
    tail: str
    signals: str | None

    def body(self, seq: int, writer_json: str) -> str:
        """The canonical JSON body at ``seq``; ``writer_json`` is the writer id as a JSON string."""
        return f'{self.head},"seq":{seq},{self.tail},"writer":{writer_json}}}'


def milliseconds(value: float) -> float:
    """A latency rounded to 3 decimals (microseconds): ``round(v * 1000) / 1000``, whose shortest form is
    those decimals; ``round(v, 3)``, ten times slower, only outside the range where that is exact."""
    scaled = float(value) * 1000
    if -1e15 < scaled < 1e15:
        return round(scaled) / 1000
    return round(float(value), 3)


def _seal(head: dict[str, Any], tail: dict[str, Any], columns: tuple[str | None, ...]) -> tuple[str, str]:
    """Canonical JSON of a record without ``seq`` and ``writer``: the keys before ``seq`` (``head``) and
    between ``seq`` and ``writer`` (``tail``), see :class:`SealedRecord`;
    :class:`~exportgate.errors.UnrecordableError` for a value that cannot be stored."""
    try:
        encoded = canonical_json(head)[:-1], canonical_json(tail)[1:-1]
    except TypeError as exc:  # orjson.JSONEncodeError: a lone surrogate, a non-string key, an int past 64 bits
        raise UnrecordableError(f"the request carries a value that cannot be recorded ({exc})") from None
    for value in columns:  # indexed columns are stored as they are: PostgreSQL TEXT refuses NUL
        if value is not None and "\x00" in value:
            raise UnrecordableError("the request carries a value that cannot be recorded (a NUL character)")
    if not encoded[1]:
        raise ValueError("a record needs at least one field after 'seq'")
    return encoded


def _writer_json(writer: str) -> str:
    return orjson.dumps(writer).decode("utf-8")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One decision as the caller knows it; the writer adds writer, seq and the chain."""

    request_id: str
    decision: str
    time_ns: int
    account: str | None = None
    key_id: str | None = None
    subject: Mapping[str, Any] | None = None
    client_ip: str | None = None
    country: str | None = None
    anonymizers: tuple[str, ...] | None = None
    requested_model: str | None = None
    model: str | None = None
    tier: str | None = None
    directive_id: str | None = None
    directive_version: str | None = None
    directive_sha256: str | None = None
    reasons: tuple[Mapping[str, Any], ...] = ()
    http_status: int | None = None
    upstream_status: int | None = None
    latency_ms: float | None = None
    tokens: Mapping[str, int] | None = None
    #: Written before the request is forwarded; what followed is in an ``outcomes`` row (OutcomeBatch).
    event: ClassVar[str] = "decision"
    #: A request waits on this record: refused at once while the store is down (see AuditWriter).
    gates: ClassVar[bool] = True

    def seal(self) -> SealedRecord:
        """Encode the record for the writer (see :class:`SealedRecord`); UnrecordableError if it cannot be."""
        columns = (self.request_id, self.account, self.model, self.decision)
        head, tail = _seal(*self._halves(), columns)
        signals = self.signals()  # its parts are in the body, so they encode; a NUL would be stored raw
        if signals is not None and "\x00" in signals:
            signals = None  # readers fall back to the body
        return SealedRecord(self.event, self.time_ns, *columns, head, tail, signals)

    def body(self, writer: str, seq: int) -> str:
        """The record's canonical JSON at a place in a writer's chain."""
        return self.seal().body(seq, _writer_json(writer))

    def fields(self) -> dict[str, Any]:
        """Every field of the body except ``seq`` and ``writer``."""
        head, tail = self._halves()
        return {**head, **tail}

    def _halves(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The fields whose keys sort before ``seq``, and those between ``seq`` and ``writer``: built
        apart, so sealing never splits a dict (a test checks they make the whole body)."""
        latency = None if self.latency_ms is None else milliseconds(self.latency_ms)
        head = {
            "schema": SCHEMA, "event": self.event, "request_id": self.request_id, "account": self.account,
            "key_id": self.key_id, "client_ip": self.client_ip, "country": self.country,
            "anonymizers": list(self.anonymizers) if self.anonymizers is not None else None,
            "requested_model": self.requested_model, "model": self.model, "directive_id": self.directive_id,
            "directive_version": self.directive_version, "directive_sha256": self.directive_sha256,
            "decision": self.decision, "reasons": [dict(r) for r in self.reasons], "http_status": self.http_status,
            "latency_ms": latency,
        }  # fmt: skip
        tail = {
            "time_ns": self.time_ns, "subject": dict(self.subject) if self.subject is not None else None,
            "tier": self.tier, "upstream_status": self.upstream_status,
            "tokens": dict(self.tokens) if self.tokens is not None else None,
        }  # fmt: skip
        return head, tail

    def signals(self) -> str | None:
        """The row's ``signals`` column: the facts monitoring reads without parsing the body."""
        return signals_text(
            key_id=self.key_id, country=self.country, client_ip=self.client_ip, anonymizers=self.anonymizers,
            tier=self.tier, reasons=self.reasons, subject=self.subject,
        )  # fmt: skip


class Outcome(NamedTuple):
    """What happened to one allowed request after its decision record: statuses, latency, tokens. (A
    NamedTuple, not a frozen dataclass: one is made per request, and a frozen dataclass's ``__init__``
    sets every field through ``object.__setattr__``, four times the cost.)"""

    request_id: str
    http_status: int
    upstream_status: int | None = None
    latency_ms: float | None = None
    tokens: Mapping[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "http_status": self.http_status,
            "upstream_status": self.upstream_status,
            "latency_ms": None if self.latency_ms is None else milliseconds(self.latency_ms),
            "tokens": dict(self.tokens) if self.tokens is not None else None,
        }


@dataclass(frozen=True, slots=True)
class OutcomeBatch:
    """Several requests' outcomes in one chained row (event ``outcomes``): the decisions are written one
    by one before forwarding; what followed is batched, so a request costs one record, not two."""

    time_ns: int
    outcomes: tuple[Outcome, ...]
    event: ClassVar[str] = "outcomes"
    #: Nothing waits on outcomes: kept and retried while the store is down.
    gates: ClassVar[bool] = False
    #: The indexed columns a decision row fills; an outcomes row has none.
    request_id: ClassVar[None] = None
    account: ClassVar[None] = None
    model: ClassVar[None] = None
    decision: ClassVar[None] = None

    def seal(self) -> SealedRecord:
        outcomes = [o.as_dict() for o in self.outcomes]
        head, tail = _seal({"schema": SCHEMA, "event": self.event, "outcomes": outcomes}, {"time_ns": self.time_ns}, ())
        return SealedRecord(self.event, self.time_ns, None, None, None, None, head, tail, None)

    def body(self, writer: str, seq: int) -> str:
        return self.seal().body(seq, _writer_json(writer))


@dataclass(frozen=True, slots=True)
class AdminAction:
    """An action on the system of record (event ``admin``): who did it (``actor``, with ``role``), through
    which door (``via``: cli, api, monitor), what (``action``) to what (``target``), the state before and
    after, and the note given. Its ``account`` column names the account acted on, if any, so a regulator
    finds who suspended or restored whom by the same index as that account's decisions."""

    time_ns: int
    actor: str
    role: str
    via: str
    action: str
    target: str
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    note: str | None = None
    account: str | None = None
    request_id: str | None = None
    event: ClassVar[str] = "admin"
    gates: ClassVar[bool] = True
    model: ClassVar[None] = None
    decision: ClassVar[None] = None

    def seal(self) -> SealedRecord:
        head = {
            "schema": SCHEMA, "event": self.event, "action": self.action, "actor": self.actor,
            "after": None if self.after is None else dict(self.after), "account": self.account,
            "before": None if self.before is None else dict(self.before), "note": self.note,
            "request_id": self.request_id, "role": self.role, "target": self.target,
        }  # fmt: skip
        columns = (self.request_id, self.account, None, None)
        encoded = _seal(head, {"time_ns": self.time_ns, "via": self.via}, columns)
        return SealedRecord(self.event, self.time_ns, *columns, *encoded, None)

    def body(self, writer: str, seq: int) -> str:
        return self.seal().body(seq, _writer_json(writer))


def entry_for(
    decision: Decision,
    subject: Subject | None,
    context: RequestContext,
    *,
    request_id: str,
    time_ns: int,
    directive_sha256: str | None = None,
    http_status: int | None = None,
    upstream_status: int | None = None,
    latency_ms: float | None = None,
    tokens: Mapping[str, int] | None = None,
) -> AuditEntry:
    """The audit entry for a decision, with the subject attributes the decision used."""
    flags = tuple(sorted(context.anonymizers)) if context.anonymizers is not None else None
    return AuditEntry(
        request_id=request_id,
        decision=decision.decision,
        time_ns=time_ns,
        account=subject.account if subject is not None else None,
        key_id=subject.key_id if subject is not None else None,
        subject=subject.snapshot() if subject is not None else None,
        client_ip=context.ip,
        country=context.country,
        anonymizers=flags,
        requested_model=decision.requested_model,
        model=decision.model,
        tier=decision.tier,
        directive_id=decision.directive_id,
        directive_version=decision.directive_version,
        directive_sha256=directive_sha256,
        reasons=tuple(r.as_dict() for r in decision.reasons),
        http_status=http_status,
        upstream_status=upstream_status,
        latency_ms=latency_ms,
        tokens=tokens,
    )


def seal_decision(
    decision: Decision,
    subject: Subject | None,
    context: RequestContext,
    *,
    request_id: str,
    time_ns: int,
    directive_sha256: str | None = None,
    http_status: int | None = None,
) -> SealedRecord:
    """``entry_for(...).seal()``, the same record to the byte, without building the entry: what the
    gateway does for every request. The parts that come from the subject, the decision and the request's
    place are encoded once per subject, decision and place (a test holds the two paths equal, and
    :class:`~exportgate.errors.UnrecordableError` where the other raises it)."""
    account, key_id, subject_json, subject_tail = _subject_part(subject)
    verdict, model, decision_json, tier_json, decision_tail = _decision_part(decision)
    place_json, place_tail = _place_part(context)
    if "\x00" in request_id:
        raise UnrecordableError("the request carries a value that cannot be recorded (a NUL character)")
    head = (
        f'{{"account":{account[1]},{place_json},"decision":{decision_json[0]},"directive_id":{decision_json[1]},'
        f'"directive_sha256":{_json(directive_sha256)},"directive_version":{decision_json[5]},"event":"decision",'
        f'"http_status":{"null" if http_status is None else int(http_status)},"key_id":{key_id[1]},'
        f'"latency_ms":null,"model":{decision_json[2]},"reasons":{decision_json[3]},'
        f'"request_id":{_json(request_id)},"requested_model":{decision_json[4]},"schema":"{SCHEMA}"'
    )
    tail = f'"subject":{subject_json},"tier":{tier_json},"time_ns":{int(time_ns)},"tokens":null,"upstream_status":null'
    signals = joined_signals(key_id[0] or "", place_tail, decision_tail, subject_tail)
    if signals is not None and "\x00" in signals:
        signals = None
    return SealedRecord("decision", time_ns, request_id, account[0], model, verdict, head, tail, signals)


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError as exc:
        raise UnrecordableError(f"the request carries a value that cannot be recorded ({exc})") from None


def _column(value: str | None) -> tuple[str | None, str]:
    """An indexed column's value and its JSON; a NUL cannot be stored there."""
    if value is not None and "\x00" in value:
        raise UnrecordableError("the request carries a value that cannot be recorded (a NUL character)")
    return value, _json(value)


_SubjectPart: TypeAlias = "tuple[tuple[str | None, str], tuple[str | None, str], str, str]"
_DecisionPart: TypeAlias = "tuple[str, str | None, tuple[str, str, str, str, str, str], str, str]"


def _encode_subject(subject: Subject | None) -> _SubjectPart:
    snapshot = subject.snapshot() if subject is not None else None
    return (
        _column(subject.account if subject is not None else None),
        (key_id := subject.key_id if subject is not None else None, _json(key_id)),  # not indexed: a NUL is escaped
        _canonical(snapshot),
        subject_signals(*((subject.residencies, subject.citizenships) if subject is not None else (None, None))),
    )


def _encode_decision(decision: Decision) -> _DecisionPart:
    reasons = [r.as_dict() for r in decision.reasons]
    model = _column(decision.model)
    verdict = _column(decision.decision)
    return (
        str(verdict[0]),
        model[0],
        (
            verdict[1],
            _json(decision.directive_id),
            model[1],
            _canonical(reasons),
            _json(decision.requested_model),
            _json(decision.directive_version),
        ),
        _json(decision.tier),
        decision_signals(decision.tier, [str(r.get("code") or "") for r in reasons]),
    )


#: Encoded once per subject, decision and request context object (see ``exportgate._memo``; the gateway
#: keeps one context per client address).
_subject_part = ByIdentity(_encode_subject)
_decision_part = ByIdentity(_encode_decision)


def _encode_place(context: RequestContext) -> tuple[str, str]:
    flags = sorted(context.anonymizers) if context.anonymizers is not None else None
    return (
        f'"anonymizers":{_json(flags)},"client_ip":{_json(context.ip)},"country":{_json(context.country)}',
        context_signals(context.country, context.ip, flags),
    )


_place_part = ByIdentity(_encode_place)


def _canonical(value: Any) -> str:
    try:
        return canonical_json(value)
    except TypeError as exc:
        raise UnrecordableError(f"the request carries a value that cannot be recorded ({exc})") from None


class ChainRow(NamedTuple):
    """One stored row: a decision record or a signed checkpoint."""

    writer: str
    seq: int
    kind: str  # "decision" | "checkpoint"
    time_ns: int
    request_id: str | None
    account: str | None
    model: str | None
    decision: str | None
    prev: str
    hash: str
    body: str
    signals: str | None = None  # decision rows since schema 2 (see ``_signals``)


def chain_hash(  # noqa: PLR0917 - the hashed columns, in their fixed order
    prev: str,
    writer: str,
    kind: str,
    time_ns: int,
    request_id: str | None,
    account: str | None,
    model: str | None,
    decision: str | None,
    body: str,
    signals: str | None = None,
) -> str:
    message = "\n".join(
        (prev, writer, kind, str(time_ns), request_id or "", account or "", model or "", decision or "", body)
    )
    if signals is not None:
        message += "\n" + signals
    return hashlib.sha256(message.encode("utf-8", "surrogatepass")).hexdigest()


def row_hash(row: ChainRow) -> str:
    """Recompute a stored row's hash from its columns and body."""
    return chain_hash(
        row.prev,
        row.writer,
        row.kind,
        row.time_ns,
        row.request_id,
        row.account,
        row.model,
        row.decision,
        row.body,
        row.signals,
    )


def checkpoint_message(writer: str, covers_seq: int, head: str, time_ns: int, final: bool) -> str:
    """The text a checkpoint signs: the chain head it vouches for, and so every row before it."""
    return f"{CHECKPOINT_SCHEMA}\n{writer}\n{covers_seq}\n{head}\n{time_ns}\n{'final' if final else 'open'}"
