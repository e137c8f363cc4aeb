"""One classification end to end: read and check everything, classify, sign the record, rewrite the
directive, keep the record in the history, and only then put the new directive in place."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exportgate.audit import Signer, canonical_json
from exportgate.errors import ConfigError
from exportgate.policy import load_directive

from ._classify import classify
from ._evidence import read_evidence
from ._framework import load_framework
from ._history import ClassificationHistory
from ._rewrite import directive_diff, rewrite_directive

__all__ = ["Outcome", "run_classification", "sign_record"]

HISTORY = "classifications.db"


@dataclass(frozen=True)
class Outcome:
    record: dict[str, Any]
    diff: str  # unified diff of the directive ("" when the tier is unchanged)
    written: bool  # False for a dry run


def sign_record(record: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """The record with an Ed25519 signature over its canonical JSON (everything but the signature)."""
    body = {k: v for k, v in record.items() if k != "signature"}
    signature = {"algorithm": "Ed25519", "key_id": signer.key_id, "public_key": signer.public_pem(),
                 "value": signer.sign(canonical_json(body))}  # fmt: skip
    return {**body, "signature": signature}


def run_classification(
    *,
    evidence: Sequence[str | Path],
    framework: str | Path,
    directive: str | Path,
    model: str,
    out: str | Path,
    home: Path,
    tool_version: str,
    allow_unsigned: bool = False,
    trusted: Sequence[Ed25519PublicKey] = (),
    evidence_model: str | None = None,
    record_path: str | Path | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> Outcome:
    if not evidence:
        raise ConfigError("give at least one evidence bundle")
    the_framework = load_framework(framework)
    current = load_directive(directive)
    text = _read_text(directive)
    bundles = [read_evidence(p, allow_unsigned=allow_unsigned, trusted=trusted) for p in evidence]
    history = ClassificationHistory(home / HISTORY)
    try:
        canonical = current.resolve_model(model) or model
        moment = now or datetime.now(UTC)
        record = classify(framework=the_framework, directive=current, model=model, evidence=bundles,
                          previous=history.latest(canonical), now=moment, tool_version=tool_version,
                          evidence_model=evidence_model)  # fmt: skip
        new_text, new_version, diff = text, current.version, ""
        if record["change"] != "none":
            new_text, rewritten = rewrite_directive(text, current, record["model"], record["tier"], moment)
            new_version, diff = rewritten.version, directive_diff(text, new_text, str(directive), str(out))
        record["new_directive"] = {"file": Path(out).name, "version": new_version,
                                   "sha256": hashlib.sha256(new_text.encode()).hexdigest()}  # fmt: skip
        record = sign_record(record, Signer.load_or_create(home / "classify"))
        if dry_run:
            return Outcome(record, diff, written=False)
        _commit(record, new_text, Path(out), Path(record_path) if record_path else None, history)
    finally:
        history.close()
    return Outcome(record, diff, written=True)


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read directive {path}: {exc}") from None


def _commit(
    record: dict[str, Any], text: str, out: Path, record_path: Path | None, history: ClassificationHistory
) -> None:
    """Directive to a temporary file, record into the history, then the directive into place: a record
    is never lost, and a directive never appears without its record."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        history.add(record)
        if record_path is not None:
            record_path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")
        os.replace(tmp, out)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
