"""Evidence bundles: a campaign's results, redacted, hashed, signed, and checkable by anyone.

Format ``exportgate.evidence/v2`` (docs/evidence-format.md; JSON Schema ``data/evidence-v2.schema.json``):
one line of RFC 8785 (JCS) canonical JSON and a newline. ``manifest`` holds the SHA-256 of the JCS bytes
of every other section; ``signature`` is Ed25519 over the JCS bytes of the manifest, with the signer's
public key and key id (the first 16 hex digits of the SHA-256 of the raw key). Replies are redacted by
default (SHA-256 and length kept) and so is the objective's goal text where a user turn repeats it; raw
transcripts go to a separate JSONL file (mode 0600) whose hash the ``transcripts`` section holds.

:func:`verify_evidence` refuses any change (to a section, the manifest, the signature, a single byte),
recomputes every statistic from the trials, checks that the plan (objectives x strategies x trials) is
complete, says whether the signer is trusted, and whether the transcripts were checked. Bundles of
schema v1 (orjson-sorted canonical form) still verify; v2 is what is written.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exportgate._files import output_path, read_input
from exportgate.audit import canonical_json
from exportgate.errors import ConfigError
from exportgate.signing import Signer, TrustedKeys, canonical, key_id_of, public_pem

from ._objectives import Objective
from ._records import TrialResult
from ._scoring import scoring_statistics
from ._stats import Rules, summarize, wilson
from ._usage import Pricing, usage

__all__ = [
    "SCHEMA",
    "SCHEMA_V1",
    "EvidenceBundle",
    "EvidenceCheck",
    "Signature",
    "build_bundle",
    "bundle_statistics",
    "check_plan",
    "check_types",
    "read_bundle_bytes",
    "evidence_resource",
    "load_bundle",
    "verify_evidence",
    "write_bundle",
    "write_transcripts",
]

SCHEMA = "exportgate.evidence/v2"
SCHEMA_V1 = "exportgate.evidence/v1"
SECTIONS = ("schema", "tool", "created", "config", "target", "objectives", "trials", "statistics", "transcripts")
GOAL_MARK = "[goal of objective {}]"

Json = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Signature:
    algorithm: str
    key_id: str
    public_key: str  # PEM (SubjectPublicKeyInfo)
    value: str  # base64 of the Ed25519 signature over the canonical manifest

    def as_dict(self) -> dict[str, str]:
        return {"algorithm": self.algorithm, "key_id": self.key_id, "public_key": self.public_key, "value": self.value}

    @classmethod
    def from_dict(cls, data: Any) -> Signature:
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in cls.__slots__):
            raise ValueError("the signature needs algorithm, key_id, public_key and value, as strings")
        return cls(data["algorithm"], data["key_id"], data["public_key"], data["value"])


@dataclass(frozen=True, slots=True)
class EvidenceBundle:
    """One evidence bundle. Sections are JSON values (their shape is the JSON Schema's); the bundle is
    immutable: :meth:`signed` returns a new one."""

    schema: str
    tool: Json
    created: str
    config: Json
    target: Json
    objectives: tuple[Json, ...]
    trials: tuple[Json, ...]
    statistics: Json
    transcripts: Json
    manifest: Mapping[str, str] | None = None
    signature: Signature | None = None

    def sections(self) -> dict[str, Any]:
        return {name: _plain(getattr(self, name)) for name in SECTIONS}

    def as_dict(self) -> dict[str, Any]:
        data = self.sections()
        if self.manifest is not None:
            data["manifest"] = dict(self.manifest)
        if self.signature is not None:
            data["signature"] = self.signature.as_dict()
        return data

    def to_json(self) -> bytes:
        """The bundle's bytes: canonical JSON (JCS for v2) and a newline."""
        return self._canonical(self.as_dict()) + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> EvidenceBundle:
        """Parse a bundle (v1 or v2); raises :class:`ValueError` saying what is wrong."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("schema") not in (SCHEMA, SCHEMA_V1):
            raise ValueError(f"not an {SCHEMA} (or v1) bundle")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvidenceBundle:
        missing = [name for name in SECTIONS if name not in data]
        if missing:
            raise ValueError(f"section(s) {', '.join(missing)} missing")
        extra = sorted(set(data) - {*SECTIONS, "manifest", "signature"})
        if extra:
            raise ValueError(f"section(s) {', '.join(extra)} are not part of the format")
        kinds = {"tool": dict, "config": dict, "target": dict, "objectives": list, "trials": list,
                 "statistics": dict, "transcripts": dict, "created": str}  # fmt: skip
        wrong = [name for name, kind in kinds.items() if not isinstance(data[name], kind)]
        if wrong or not all(isinstance(t, dict) for t in [*data["objectives"], *data["trials"]]):
            raise ValueError(f"section(s) of the wrong type: {', '.join(wrong) or 'objectives or trials'}")
        manifest = data.get("manifest")
        if manifest is not None and not (
            isinstance(manifest, dict) and all(isinstance(v, str) for v in manifest.values())
        ):
            raise ValueError("the manifest must map sections to hashes")
        signature = data.get("signature")
        return cls(
            schema=str(data["schema"]), tool=data["tool"], created=data["created"], config=data["config"],
            target=data["target"], objectives=tuple(data["objectives"]), trials=tuple(data["trials"]),
            statistics=data["statistics"], transcripts=data["transcripts"], manifest=manifest,
            signature=Signature.from_dict(signature) if signature is not None else None,
        )  # fmt: skip

    def section_hashes(self) -> dict[str, str]:
        return {name: hashlib.sha256(self._canonical(value)).hexdigest() for name, value in self.sections().items()}

    def signed(self, signer: Signer) -> EvidenceBundle:
        manifest = self.section_hashes()
        value = signer.sign(self._canonical(manifest))
        return replace(
            self, manifest=manifest, signature=Signature("Ed25519", signer.key_id, signer.public_pem(), value)
        )

    @property
    def key_id(self) -> str | None:
        return self.signature.key_id if self.signature is not None else None

    def _canonical(self, value: Any) -> bytes:
        return canonical(value) if self.schema == SCHEMA else canonical_json(value).encode()

    # what readers of the bundle want, without knowing its sections' keys

    def rules(self) -> Rules:
        """The repeatable rules the statistics were computed under (v1: its threshold, no minimums)."""
        if self.schema == SCHEMA_V1:
            return Rules(float(self.statistics.get("threshold", 0.2)), 1, 1)
        return Rules.from_dict(self.config["rules"])

    def domains(self) -> dict[str, str]:
        return {str(o["id"]): str(o.get("domain", "unknown")) for o in self.objectives}


def evidence_resource(name: str) -> str:
    """A file shipped for auditors: ``evidence-v2.schema.json`` (the JSON Schema) or ``verify_evidence.py``
    (the standalone verifier); docs/ publishes the same files."""
    if name not in ("evidence-v2.schema.json", "verify_evidence.py"):
        raise ValueError(f"no shipped evidence resource {name!r}")
    return (resources.files("exportgate.eval") / "data" / name).read_text(encoding="utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def bundle_statistics(bundle: EvidenceBundle) -> dict[str, Any]:
    """Every statistic of a v2 bundle, recomputed from its trials and configuration."""
    stats = summarize(bundle.trials, bundle.rules(), bundle.domains())
    pricing = bundle.config.get("pricing")
    stats["usage"] = usage(bundle.trials, Pricing(**pricing) if pricing else None)
    scorer = bundle.config.get("scorer")
    calibration = scorer.get("calibration") if isinstance(scorer, Mapping) else None
    stats["scoring"] = scoring_statistics(bundle.trials, calibration)
    return stats


def _redacted(result: TrialResult, goals: Mapping[str, str], redact: bool) -> dict[str, Any]:
    """A trial as the bundle holds it: replies reduced to hash and length, the goal text in user turns
    replaced by a mark naming the objective (the objectives section lists only the goal's hash)."""
    data = result.as_dict()
    goal = goals.get(result.objective_id, "")
    messages = []
    for role, text in result.transcript:
        if redact and role == "assistant":
            messages.append({"role": role, "sha256": hashlib.sha256(text.encode()).hexdigest(), "length": len(text)})
        elif redact and goal and goal in text:
            messages.append({"role": role, "text": text.replace(goal, GOAL_MARK.format(result.objective_id))})
        else:
            messages.append({"role": role, "text": text})
    data["transcript"] = messages
    return data


def _objective_entry(objective: Objective) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": objective.id, "domain": objective.domain, "severity": objective.severity,
                             "sha256": objective.sha256()}  # fmt: skip
    for name in ("source", "source_sha256"):
        value = getattr(objective, name, None)
        if value:
            entry[name] = value
    return entry


def build_bundle(
    *,
    config: Mapping[str, Any],
    target: Mapping[str, Any],
    objectives: Sequence[Objective],
    results: Sequence[TrialResult],
    version: str,
    rules: Rules | None = None,
    redact: bool = True,
    transcripts_sha256: str | None = None,
    transcripts_file: str | None = None,
    pricing: Pricing | None = None,
    created: datetime | None = None,
) -> EvidenceBundle:
    """An unsigned v2 bundle (:meth:`EvidenceBundle.signed` signs it); statistics come from the trials."""
    rules = rules or Rules()
    full_config = {**config, "rules": rules.as_dict(), "pricing": pricing.config() if pricing else None}
    goals = {o.id: o.goal for o in objectives}
    moment = (created or datetime.now(UTC)).astimezone(UTC)
    bundle = EvidenceBundle(
        schema=SCHEMA,
        tool={"name": "exportgate", "version": version},
        created=moment.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        config=full_config,
        target=dict(target),
        objectives=tuple(_objective_entry(o) for o in objectives),
        trials=tuple(_redacted(r, goals, redact) for r in results),
        statistics={},
        transcripts={"redacted": redact, "file": transcripts_file, "sha256": transcripts_sha256},
    )
    return replace(bundle, statistics=bundle_statistics(bundle))


def write_transcripts(path: Path, results: Sequence[TrialResult]) -> str:
    """Raw transcripts, one trial a line, owner-only; returns the file's SHA-256."""
    output_path(path, "transcripts")
    data = b"".join(canonical(r.as_dict()) + b"\n" for r in results)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def write_bundle(path: Path, bundle: EvidenceBundle) -> None:
    """Write atomically: a reader sees the old bundle or the whole new one."""
    output_path(path, "evidence bundle")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(bundle.to_json())
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


#: The largest bundle read (a 100,000-trial campaign with transcripts is well under it).
MAX_BUNDLE_BYTES = 1 << 30


def read_bundle_bytes(path: str | Path) -> bytes:
    """A bundle file's bytes, read once (verify and use the same bytes: a file can change between two
    reads), at most :data:`MAX_BUNDLE_BYTES`, from a regular file only."""
    return read_input(path, "evidence bundle", MAX_BUNDLE_BYTES)


def load_bundle(path: str | Path, raw: bytes | None = None) -> tuple[EvidenceBundle, bytes]:
    """The bundle in ``path`` (or in ``raw``, the bytes already read from it) and its bytes."""
    raw = read_bundle_bytes(path) if raw is None else raw
    try:
        return EvidenceBundle.from_json(raw), raw
    except ValueError as exc:
        raise ConfigError(f"{path} is not an evidence bundle: {exc}") from None


@dataclass(frozen=True, slots=True)
class EvidenceCheck:
    """What :func:`verify_evidence` found. ``problems`` are tampering or inconsistency; an untrusted
    signer is not a problem of the file but is not ``ok`` either."""

    path: str
    schema: str | None
    problems: tuple[str, ...]
    key_id: str | None = None
    trusted: bool = False
    trusted_as: str | None = None  # where the trusted key came from
    transcripts: str = "none recorded"
    notes: tuple[str, ...] = field(default=())

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def ok(self) -> bool:
        return self.intact and self.trusted

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "schema": self.schema, "intact": self.intact, "trusted": self.trusted,
                "ok": self.ok, "key_id": self.key_id, "trusted_as": self.trusted_as,
                "transcripts": self.transcripts, "problems": list(self.problems),
                "notes": list(self.notes)}  # fmt: skip


def verify_evidence(
    path: str | Path,
    trusted: TrustedKeys | None = None,
    *,
    require_transcripts: bool = False,
    raw: bytes | None = None,
) -> EvidenceCheck:
    """Check a bundle file completely (see the module docstring): ``raw``, when given, is the bytes read
    from ``path`` once, and what is checked. Raises :class:`ConfigError` only when the file cannot be
    read at all."""
    raw = read_bundle_bytes(path) if raw is None else raw
    try:
        bundle = EvidenceBundle.from_json(raw)
        canonical_form = raw == bundle.to_json()
    except (ValueError, TypeError) as exc:
        return EvidenceCheck(str(path), None, (f"the file is not a readable bundle (changed or damaged): {exc}",))
    problems: list[str] = []
    if not canonical_form:
        problems.append("the file is not in canonical form: it was edited after signing")
    problems += _check_manifest(bundle)
    key_id, signature_problems = _check_signature(bundle)
    problems += signature_problems
    problems += check_types(bundle)
    problems += check_plan(bundle)
    problems += _check_statistics(bundle)
    transcripts, transcript_problems = _check_transcripts(Path(path), bundle, require_transcripts)
    problems += transcript_problems
    trust = trusted or TrustedKeys()
    is_trusted = key_id is not None and not signature_problems and _same_key(trust, key_id, bundle.signature)
    notes = () if bundle.schema == SCHEMA else (f"schema {bundle.schema}: read for compatibility",)
    return EvidenceCheck(str(path), bundle.schema, tuple(problems), key_id, is_trusted,
                         trust.sources.get(key_id) if is_trusted and key_id else None, transcripts, notes)  # fmt: skip


def _same_key(trust: TrustedKeys, key_id: str, signature: Signature | None) -> bool:
    """Trusted: the trusted key with this id is, byte for byte, the key that signed (not an id collision)."""
    known = trust.key(key_id)
    return known is not None and signature is not None and public_pem(known) == signature.public_key


def check_types(bundle: EvidenceBundle) -> list[str]:
    """What the statistics and the plan read has the type and range the format gives it (a string
    "false" is not a failure, a negative token count is not a count, a rule of 0 trials is no rule)."""
    if bundle.schema != SCHEMA:
        return []
    problems: list[str] = []
    try:
        Rules.from_dict(bundle.config["rules"])
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(f"config.rules is not a valid rule set: {exc}")
    config = bundle.config
    if not _count(config.get("trials"), 1):
        problems.append("config.trials is not a whole number of at least 1")
    for section, key in (("objectives", "id"), ("strategies", "name")):
        names = [item.get(key) if isinstance(item, Mapping) else None for item in config.get(section) or ()]
        if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            problems.append(f"config.{section} must list distinct {key}s")
    if not _utc_time(bundle.created):
        problems.append("created is not a UTC time (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)")
    for entries, fields in (
        (bundle.objectives, ("id", "domain", "severity")),
        (config.get("objectives") or (), ("id",)),
    ):
        if not all(_objective_entry_ok(o, fields) for o in entries):
            problems.append(f"an objective entry lacks a text {', '.join(fields)} or a SHA-256")
            break
    for n, trial in enumerate(bundle.trials):
        wrong = _trial_problem(trial)
        if wrong:
            problems.append(f"trial {n}: {wrong}")
            break
    return problems


_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _utc_time(text: Any) -> bool:
    if not isinstance(text, str) or not _UTC.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _objective_entry_ok(entry: Any, fields: Sequence[str]) -> bool:
    return (isinstance(entry, Mapping) and all(isinstance(entry.get(k), str) for k in fields)
            and isinstance(entry.get("sha256"), str) and _SHA256.fullmatch(entry["sha256"]) is not None)  # fmt: skip


def _message_ok(message: Any) -> bool:
    """A transcript message as a bundle holds it: a role and its text, or a redacted reply's hash and length."""
    if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
        return False
    if "text" in message:
        return set(message) == {"role", "text"} and isinstance(message["text"], str)
    return (set(message) == {"role", "sha256", "length"} and isinstance(message["sha256"], str)
            and _SHA256.fullmatch(message["sha256"]) is not None and _count(message["length"]))  # fmt: skip


def _count(value: Any, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _trial_problem(trial: Any) -> str | None:
    if not isinstance(trial, Mapping):
        return "not an object"
    for key in ("objective_id", "strategy"):
        if not isinstance(trial.get(key), str):
            return f"{key} is not text"
    if not isinstance(trial.get("success"), bool):
        return "success is not true or false"
    if trial.get("error") is not None and not isinstance(trial.get("error"), str):
        return "error is neither null nor text"
    for key in ("trial", "seed", "turns", "prompt_tokens", "completion_tokens"):
        if not _count(trial.get(key)):
            return f"{key} is not a whole number of at least 0"
    found = trial.get("turns_to_success")
    if found is not None and not _count(found, 1):
        return "turns_to_success is neither null nor a whole number of at least 1"
    transcript = trial.get("transcript")
    if not isinstance(transcript, list | tuple) or not all(_message_ok(m) for m in transcript):
        return "its transcript holds a message that is neither role and text nor role, sha256 and length"
    return None


def _check_manifest(bundle: EvidenceBundle) -> list[str]:
    if bundle.manifest is None or bundle.signature is None:
        return ["the bundle has no manifest or signature"]
    problems = []
    hashes = bundle.section_hashes()
    for name in SECTIONS:
        if bundle.manifest.get(name) != hashes[name]:
            problems.append(f"section {name!r} does not match its manifest hash")
    problems += [
        f"the manifest names {name!r}, which is not a section" for name in sorted(set(bundle.manifest) - set(SECTIONS))
    ]
    return problems


def _check_signature(bundle: EvidenceBundle) -> tuple[str | None, list[str]]:
    signature = bundle.signature
    if signature is None or bundle.manifest is None:
        return None, []
    try:
        key = serialization.load_pem_public_key(signature.public_key.encode())
        value = base64.b64decode(signature.value, validate=True)
    except (ValueError, TypeError):
        return None, ["the signature or its public key is malformed"]
    if not isinstance(key, Ed25519PublicKey) or signature.algorithm != "Ed25519":
        return None, ["the signature is not an Ed25519 signature"]
    key_id = key_id_of(key)
    problems = []
    if public_pem(key) != signature.public_key:
        problems.append("the signature's public key is not written in its one PEM form")
    if signature.key_id != key_id:
        problems.append(f"the signature names key {signature.key_id}, but its public key is {key_id}")
    try:
        key.verify(value, bundle._canonical(dict(bundle.manifest)))
    except InvalidSignature:
        problems.append("the signature does not match the manifest")
    return key_id, problems


def check_plan(bundle: EvidenceBundle) -> list[str]:
    """The trials are exactly the plan: every configured objective x strategy x trial index once."""
    try:
        objectives = [str(o["id"]) for o in bundle.config["objectives"]]
        strategies = [str(s["name"]) for s in bundle.config["strategies"]]
        count = int(bundle.config["trials"])
        listed = {str(o["id"]): o.get("sha256") for o in bundle.objectives}
        configured = {str(o["id"]): o.get("sha256") for o in bundle.config["objectives"]}
        keys = Counter((str(t["objective_id"]), str(t["strategy"]), int(t["trial"])) for t in bundle.trials)
    except (KeyError, TypeError, ValueError) as exc:
        return [f"the plan cannot be read from the bundle: {exc!r}"]
    problems = []
    if listed != configured:
        problems.append("the objectives section does not match the configured objectives")
    plan = {(o, s, i) for o in objectives for s in strategies for i in range(count)}
    missing, extra = plan - set(keys), set(keys) - plan
    repeated = [key for key, n in keys.items() if n > 1]
    for label, found in (("missing from", missing), ("not in", extra), ("repeated in", repeated)):
        if found:
            first = "/".join(map(str, sorted(found)[0]))
            problems.append(f"{len(found)} trial(s) {label} the plan ({len(objectives)} objectives x "
                            f"{len(strategies)} strategies x {count} trials), first {first}")  # fmt: skip
    return problems


def _check_statistics(bundle: EvidenceBundle) -> list[str]:
    try:
        expected = bundle_statistics(bundle) if bundle.schema == SCHEMA else _v1_statistics(bundle)
        stored = bundle.statistics if bundle.schema == SCHEMA else _v1_stored(bundle)
    except (KeyError, TypeError, ValueError) as exc:
        return [f"the statistics cannot be recomputed from the trials: {exc!r}"]
    if _same_json(stored, expected):
        return []
    return [f"the statistics disagree with the trials: {_first_difference(stored, expected)}"]


def _same_json(a: Any, b: Any) -> bool:
    """Equal as JSON text (true is not 1, 1 is not "1"): their canonical bytes are the same."""
    try:
        return canonical(a) == canonical(b)
    except (ValueError, TypeError):
        return False


def _first_difference(stored: Any, expected: Any, where: str = "statistics") -> str:
    if isinstance(stored, Mapping) and isinstance(expected, Mapping):
        for key in sorted(set(stored) | set(expected)):
            if key not in expected:
                return f"{where}.{key} is not derived from the trials"
            if key not in stored:
                return f"{where}.{key} is missing"
            if not _same_json(stored[key], expected[key]):
                return _first_difference(stored[key], expected[key], f"{where}.{key}")
    if isinstance(stored, list) and isinstance(expected, list) and len(stored) == len(expected):
        for n, (a, b) in enumerate(zip(stored, expected, strict=True)):
            if not _same_json(a, b):
                label = f"{where}[{n}]"
                if isinstance(b, Mapping) and "objective" in b:
                    label = f"{where}[{b['objective']}/{b['strategy']}]"
                return _first_difference(a, b, label)
    return f"{where} is {_short(stored)}, the trials give {_short(expected)}"


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."


def _v1_statistics(bundle: EvidenceBundle) -> dict[str, Any]:
    """What a v1 bundle's cells must say: counts, rate (4 decimals), Wilson interval, repeatable."""
    threshold = float(bundle.statistics["threshold"])
    groups: dict[tuple[str, str], list[Json]] = {}
    for trial in bundle.trials:
        groups.setdefault((str(trial["objective_id"]), str(trial["strategy"])), []).append(trial)
    cells = []
    for (objective, strategy), rows in sorted(groups.items()):
        ran = [r for r in rows if not r.get("error")]
        k, n = sum(bool(r["success"]) for r in ran), len(ran)
        low, high = wilson(k, n)
        cells.append({"objective": objective, "strategy": strategy, "trials": n, "successes": k,
                      "errors": len(rows) - n, "asr": round(k / n, 4) if n else 0.0,
                      "ci95": [round(low, 4), round(high, 4)], "repeatable": low >= threshold})  # fmt: skip
    return {"cells": cells}


def _v1_stored(bundle: EvidenceBundle) -> dict[str, Any]:
    keys = ("objective", "strategy", "trials", "successes", "errors", "asr", "ci95", "repeatable")
    return {"cells": [{k: c[k] for k in keys} for c in bundle.statistics["cells"]]}


def _check_transcripts(bundle_path: Path, bundle: EvidenceBundle, required: bool) -> tuple[str, list[str]]:
    """('checked' | 'not checked: ...' | 'none recorded', problems). Missing transcripts are not tampering
    (they are kept apart on purpose), unless ``required``."""
    name = bundle.transcripts.get("file")
    if not name:
        status = "none recorded"
        return status, [f"transcripts are required, but {status}"] if required else []
    file = bundle_path.with_name(Path(str(name)).name)
    try:
        data = read_input(file, "transcripts", MAX_BUNDLE_BYTES)
    except ConfigError as exc:
        status = f"not checked: {exc.message}"
        return status, [f"transcripts are required, but {status}"] if required else []
    if hashlib.sha256(data).hexdigest() != bundle.transcripts.get("sha256"):
        return "checked", [f"the transcripts file {file.name} does not match its hash"]
    try:
        return "checked", _check_replies(data, bundle, file.name)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return "checked", [f"the transcripts file {file.name} or the bundle's transcripts are malformed: {exc!r}"[:300]]


def _check_replies(data: bytes, bundle: EvidenceBundle, name: str) -> list[str]:
    """Each redacted reply's hash and length match the raw transcript's."""
    try:
        raw = {(str(t["objective_id"]), str(t["strategy"]), int(t["trial"])): t["transcript"]
               for t in map(orjson.loads, data.splitlines())}  # fmt: skip
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return [f"the transcripts file {name} is not one trial per line"]
    for trial in bundle.trials:
        messages = raw.get((str(trial["objective_id"]), str(trial["strategy"]), int(trial["trial"])))
        shown = trial.get("transcript", [])
        if messages is None or len(messages) != len(shown):
            return [f"the transcripts file {name} lacks trial {trial['objective_id']}/{trial['strategy']}"
                    f"/{trial['trial']} as the bundle shows it"]  # fmt: skip
        for (role, text), message in zip(messages, shown, strict=True):
            if "sha256" in message and (
                message["sha256"] != hashlib.sha256(str(text).encode()).hexdigest()
                or message.get("length") != len(text)
                or message.get("role") != role
            ):
                return [f"a reply of trial {trial['objective_id']}/{trial['strategy']}/{trial['trial']} differs"
                        f" from the transcripts file {name}"]  # fmt: skip
    return []
