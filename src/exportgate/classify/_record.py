"""Classification records (``exportgate.classification/v2``): typed, immutable, signed.

A record says what was decided, from which evidence, by whom, under which framework, and what the new
directive is. Its signature is Ed25519 over the RFC 8785 (JCS) canonical JSON of every other field,
by the home's signing key. ``status`` is ``applied`` (the directive was written), ``pending`` (a
relaxation waiting for a second person's approval) or ``approval`` (that approval, naming the pending
record in ``approves``; it is what put the relaxed directive in place). Records of schema v1 (orjson
canonical form, no status) are read as ``applied``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exportgate.audit import canonical_json
from exportgate.eval import Signature
from exportgate.signing import Signer, TrustedKeys, canonical, key_id_of, public_pem

__all__ = ["SCHEMA", "SCHEMA_V1", "STATUSES", "ClassificationRecord", "RecordCheck"]

SCHEMA = "exportgate.classification/v2"
SCHEMA_V1 = "exportgate.classification/v1"
STATUSES = ("applied", "pending", "approval")

Json = Mapping[str, Any]


@dataclass(frozen=True)
class ClassificationRecord:
    schema: str
    id: str
    created: str
    model: str
    framework: Json
    directive: Json  # the directive in force: id, version, sha256 (and the file's path)
    evidence: tuple[Json, ...]
    domains: Json
    level: str
    deciding_domain: str
    decision: str
    tier: str
    previous_tier: str
    change: str  # raise | relax | none
    previous_classification: str | None
    controls: tuple[str, ...]
    rationale: tuple[str, ...]
    tool: Json
    status: str = "applied"
    by: str | None = None  # who ran the classification
    approves: str | None = None  # an approval: the pending record it approves
    approved_by: str | None = None
    new_directive: Json | None = None
    signature: Signature | None = None

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("evidence", "controls", "rationale"):
            data[name] = list(data[name])
        data["signature"] = self.signature.as_dict() if self.signature is not None else None
        return data

    def to_json(self, *, indent: bool = False) -> bytes:
        if indent:
            return orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2) + b"\n"
        return canonical(self.as_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> ClassificationRecord:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> ClassificationRecord:
        if not isinstance(data, dict) or data.get("schema") not in (SCHEMA, SCHEMA_V1):
            raise ValueError(f"not an {SCHEMA} (or v1) classification record")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        values = dict(data)
        for name in ("evidence", "controls", "rationale"):
            values[name] = tuple(values.get(name) or ())
        signature = values.get("signature")
        values["signature"] = Signature.from_dict(signature) if signature is not None else None
        try:
            record = cls(**values)
        except TypeError as exc:
            raise ValueError(f"missing field(s): {exc}") from None
        if record.status not in STATUSES:
            raise ValueError(f"unknown status {record.status!r}")
        return record

    def body(self) -> bytes:
        """The signed bytes: every field but the signature, canonical (JCS for v2)."""
        data = {k: v for k, v in self.as_dict().items() if k != "signature"}
        if self.schema == SCHEMA_V1:  # v1 had none of the approval fields
            v1 = {k: v for k, v in data.items() if k not in ("status", "by", "approves", "approved_by")}
            return canonical_json(v1).encode()
        return canonical(data)

    def signed(self, signer: Signer) -> ClassificationRecord:
        unsigned = replace(self, signature=None)
        value = signer.sign(unsigned.body())
        return replace(unsigned, signature=Signature("Ed25519", signer.key_id, signer.public_pem(), value))

    def check(self, trusted: TrustedKeys) -> RecordCheck:
        """Is the signature intact, and is its key trusted?"""
        if self.signature is None:
            return RecordCheck(False, False, None, "the record is not signed")
        try:
            key = serialization.load_pem_public_key(self.signature.public_key.encode())
            value = base64.b64decode(self.signature.value, validate=True)
        except (ValueError, TypeError):
            return RecordCheck(False, False, None, "the signature or its key is malformed")
        if not isinstance(key, Ed25519PublicKey):
            return RecordCheck(False, False, None, "the signature's key is not Ed25519")
        key_id = key_id_of(key)
        if public_pem(key) != self.signature.public_key:
            return RecordCheck(False, False, key_id, "the signature's public key is not written in its one PEM form")
        try:
            key.verify(value, replace(self, signature=None).body())
        except InvalidSignature:
            return RecordCheck(False, False, key_id, "the signature does not match the record")
        if key_id != self.signature.key_id:
            return RecordCheck(False, False, key_id, f"the signature names key {self.signature.key_id}, not {key_id}")
        known = trusted.key(key_id)
        if known is None or public_pem(known) != self.signature.public_key:  # the whole key, not its id
            return RecordCheck(True, False, key_id, f"signed by key {key_id}, which is not trusted")
        return RecordCheck(True, True, key_id, f"signed by trusted key {key_id} ({trusted.sources[key_id]})")

    @property
    def applies(self) -> bool:
        """Did this record put a directive in place (not a pending relaxation)?"""
        return self.status != "pending"


@dataclass(frozen=True, slots=True)
class RecordCheck:
    intact: bool
    trusted: bool
    key_id: str | None
    message: str

    @property
    def ok(self) -> bool:
        return self.intact and self.trusted

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}
