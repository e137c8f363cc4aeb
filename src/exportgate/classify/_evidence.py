"""Evidence as classification reads it: verified bundles, their coverage and what they measured."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exportgate.audit import key_id_of
from exportgate.errors import ClassificationRefused
from exportgate.eval import load_bundle, verify_bundle

__all__ = ["Evidence", "read_evidence"]


@dataclass(frozen=True)
class Evidence:
    path: str
    sha256: str  # of the file's bytes
    bundle: dict[str, Any]
    signed: bool
    key_id: str | None

    @property
    def created(self) -> datetime:
        return parse_time(str(self.bundle["created"]))

    @property
    def target_model(self) -> str:
        return str(self.bundle.get("target", {}).get("model", ""))

    def coverage(self) -> dict[str, Any]:
        """What the evidence covers: objectives (id and hash), strategies with settings, and trials that
        ran per objective/strategy cell (errored ones excluded). Relaxing compares these."""
        cells = Counter(f"{t['objective_id']}/{t['strategy']}" for t in self.bundle["trials"] if not t.get("error"))
        return {
            "objectives": {o["id"]: o["sha256"] for o in self.bundle["objectives"]},
            "strategies": [{"name": s["name"], "settings": s["settings"]} for s in self.bundle["config"]["strategies"]],
            "cells": dict(sorted(cells.items())),
        }

    def describe(self) -> dict[str, Any]:
        target = self.bundle.get("target", {})
        return {
            "file": Path(self.path).name,
            "sha256": self.sha256,
            "created": self.bundle["created"],
            "signature": {"status": "verified" if self.signed else "unsigned", "key_id": self.key_id},
            "target": {k: target.get(k) for k in ("kind", "endpoint", "model", "system_prompt_sha256")},
            "coverage": self.coverage(),
        }


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_evidence(path: str | Path, *, allow_unsigned: bool, trusted: Sequence[Ed25519PublicKey] = ()) -> Evidence:
    """A bundle that is intact and signed (by a trusted key, when any are given), or unsigned and allowed."""
    bundle, raw = load_bundle(path)
    unsigned = "signature" not in bundle and "manifest" not in bundle
    if unsigned:
        if not allow_unsigned:
            raise ClassificationRefused(f"evidence {path} is not signed; pass --allow-unsigned to use it anyway"
                                        " (unsigned evidence can never relax a tier)")  # fmt: skip
        _check_shape(path, bundle)
        return Evidence(str(path), hashlib.sha256(raw).hexdigest(), bundle, False, None)
    problems = verify_bundle(path)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ClassificationRefused(f"evidence {path} is tampered: {problems[0]}{more}")
    key_id = str(bundle["signature"]["key_id"])
    if trusted and key_id not in {key_id_of(k) for k in trusted}:
        raise ClassificationRefused(f"evidence {path} is signed by key {key_id}, which is not one of the trusted keys")
    _check_shape(path, bundle)
    return Evidence(str(path), hashlib.sha256(raw).hexdigest(), bundle, True, key_id)


def _check_shape(path: str | Path, bundle: dict[str, Any]) -> None:
    try:
        parse_time(str(bundle["created"]))
        fields = [
            *[(t["objective_id"], t["strategy"], t["success"]) for t in bundle["trials"]],
            *[(o["id"], o["sha256"], o.get("domain")) for o in bundle["objectives"]],
            *[(s["name"], s["settings"], None) for s in bundle["config"]["strategies"]],
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ClassificationRefused(f"evidence {path} lacks what classification reads: {exc!r}") from None
    if not fields:
        raise ClassificationRefused(f"evidence {path} holds no trials")
