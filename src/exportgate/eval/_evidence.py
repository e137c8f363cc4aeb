"""Evidence bundles (``exportgate.evidence/v1``): a campaign's results, redacted, hashed and signed.

The bundle is one line of canonical JSON (sorted keys, no whitespace). ``manifest`` holds the SHA-256 of
the canonical encoding of every other section; ``signature`` is Ed25519 over the canonical manifest, with
the signer's public key and key id. Responses are redacted by default (SHA-256 and length kept); raw
transcripts go to a separate JSONL file created with mode 0600, whose hash the manifest also holds.
:func:`verify_bundle` refuses any change: to a section, to the manifest, to the signature, or to a single
byte of the file (a non-canonical file is refused too).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exportgate.audit import Signer, canonical_json, key_id_of
from exportgate.errors import ConfigError

from ._objectives import Objective
from ._records import TrialResult
from ._stats import by_domain, summarize
from ._usage import Pricing, usage

__all__ = ["SCHEMA", "build_bundle", "load_bundle", "verify_bundle", "write_bundle"]

SCHEMA = "exportgate.evidence/v1"
SECTIONS = ("schema", "tool", "created", "config", "target", "objectives", "trials", "statistics", "transcripts")


def _canonical(value: Any) -> bytes:
    return canonical_json(value).encode()


def _sha(value: Any) -> str:
    return hashlib.sha256(_canonical(value)).hexdigest()


def _trial(result: TrialResult, redact: bool) -> dict[str, Any]:
    """A trial as the bundle holds it: every message a mapping, replies reduced to hash and length."""
    data = result.as_dict()
    data["transcript"] = [
        {"role": role, "sha256": hashlib.sha256(text.encode()).hexdigest(), "length": len(text)}
        if redact and role == "assistant" else {"role": role, "text": text}
        for role, text in result.transcript
    ]  # fmt: skip
    return data


def build_bundle(
    *,
    config: dict[str, Any],
    target: dict[str, Any],
    objectives: Sequence[Objective],
    results: Sequence[TrialResult],
    threshold: float,
    version: str,
    redact: bool = True,
    transcripts_sha256: str | None = None,
    transcripts_file: str | None = None,
    pricing: Pricing | None = None,
) -> dict[str, Any]:
    domains = {o.id: o.domain for o in objectives}
    statistics = summarize(results, threshold)
    statistics["domains"] = by_domain(results, domains, threshold)
    statistics["usage"] = usage(results, pricing)
    return {
        "schema": SCHEMA,
        "tool": {"name": "exportgate", "version": version},
        "created": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "config": config,
        "target": target,
        "objectives": [
            {"id": o.id, "domain": o.domain, "severity": o.severity, "sha256": o.sha256()} for o in objectives
        ],
        "trials": [_trial(r, redact) for r in results],
        "statistics": statistics,
        "transcripts": {"redacted": redact, "file": transcripts_file, "sha256": transcripts_sha256},
    }


def sign_bundle(bundle: dict[str, Any], signer: Signer) -> dict[str, Any]:
    manifest = {name: _sha(bundle[name]) for name in SECTIONS}
    signed = dict(bundle, manifest=manifest)
    signed["signature"] = {
        "algorithm": "Ed25519",
        "key_id": signer.key_id,
        "public_key": signer.public_pem(),
        "value": signer.sign(_canonical(manifest).decode()),
    }
    return signed


def write_transcripts(path: Path, results: Sequence[TrialResult]) -> str:
    """Raw transcripts, one trial a line, owner-only; returns the file's SHA-256."""
    data = b"".join(_canonical(r.as_dict()) + b"\n" for r in results)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def write_bundle(path: Path, bundle: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(_canonical(bundle) + b"\n")
    os.replace(tmp, path)


def load_bundle(path: str | Path) -> tuple[dict[str, Any], bytes]:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read evidence bundle {path}: {exc.strerror or exc}") from None
    try:
        bundle = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from None
    if not isinstance(bundle, dict) or bundle.get("schema") != SCHEMA:
        raise ConfigError(f"{path} is not an {SCHEMA} bundle")
    return bundle, raw


def verify_bundle(path: str | Path, public_key: Ed25519PublicKey | None = None) -> list[str]:
    """Every problem found (empty: intact and signed by the embedded, or the given, key)."""
    try:
        bundle, raw = load_bundle(path)
    except ConfigError as exc:
        if "cannot read" in exc.message:
            raise
        return [f"the file is no longer a readable bundle (changed or damaged): {exc.message}"]
    problems = []
    if raw != _canonical(bundle) + b"\n":
        problems.append("the file is not in canonical form: it was edited after signing")
    manifest, signature = bundle.get("manifest"), bundle.get("signature")
    if not isinstance(manifest, dict) or not isinstance(signature, dict):
        return [*problems, "the bundle has no manifest or signature"]
    for name in SECTIONS:
        if name not in bundle:
            problems.append(f"section {name!r} is missing")
        elif manifest.get(name) != _sha(bundle[name]):
            problems.append(f"section {name!r} does not match its manifest hash")
    extra = set(bundle) - {*SECTIONS, "manifest", "signature"}
    problems += [f"section {name!r} is not covered by the manifest" for name in sorted(extra)]
    problems += _check_signature(manifest, signature, public_key)
    problems += _check_transcripts(Path(path), bundle.get("transcripts"))
    return problems


def _check_signature(manifest: dict[str, Any], signature: dict[str, Any], pinned: Ed25519PublicKey | None) -> list[str]:
    try:
        embedded = serialization.load_pem_public_key(str(signature.get("public_key", "")).encode())
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
    except (ValueError, TypeError):
        return ["the signature or its public key is malformed"]
    if not isinstance(embedded, Ed25519PublicKey):
        return ["the signature's key is not an Ed25519 key"]
    key = pinned or embedded
    problems = []
    if pinned is not None and key_id_of(pinned) != key_id_of(embedded):
        problems.append("the bundle was signed by a different key than the one given")
    try:
        key.verify(value, _canonical(manifest))
    except InvalidSignature:
        problems.append("the signature does not match the manifest")
    return problems


def _check_transcripts(bundle_path: Path, transcripts: Any) -> list[str]:
    if not isinstance(transcripts, dict) or not transcripts.get("file"):
        return []
    file = bundle_path.with_name(str(transcripts["file"]))
    if not file.exists():
        return []  # transcripts are kept apart on purpose: their absence is not tampering
    if hashlib.sha256(file.read_bytes()).hexdigest() != transcripts.get("sha256"):
        return [f"the transcripts file {file.name} does not match its hash"]
    return []
