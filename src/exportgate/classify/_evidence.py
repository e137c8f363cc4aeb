"""Evidence as classification reads it: verified bundles, their signer's trust, coverage and target."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from exportgate.errors import ClassificationRefused
from exportgate.eval import EvidenceBundle, check_plan, check_types, load_bundle, read_bundle_bytes, verify_evidence
from exportgate.signing import TrustedKeys

__all__ = ["Evidence", "read_evidence", "target_fingerprint"]


@dataclass(frozen=True)
class Evidence:
    path: str
    sha256: str  # of the file's bytes
    bundle: EvidenceBundle
    signed: bool
    key_id: str | None
    trusted: bool = False  # signed by a key the home trusts
    trusted_as: str | None = None

    @property
    def created(self) -> datetime:
        return parse_time(self.bundle.created)

    @property
    def target_model(self) -> str:
        return str(self.bundle.target.get("model", ""))

    @property
    def can_relax(self) -> bool:
        return self.signed and self.trusted

    def coverage(self) -> dict[str, Any]:
        """What the evidence covers: objectives (id and hash), strategies with settings, and trials that
        ran per objective/strategy cell (errored ones excluded). Relaxing compares these."""
        cells = Counter(f"{t['objective_id']}/{t['strategy']}" for t in self.bundle.trials if not t.get("error"))
        scorer = self.bundle.config.get("scorer")
        return {
            "objectives": {str(o["id"]): o["sha256"] for o in self.bundle.objectives},
            "strategies": [{"name": s["name"], "settings": s["settings"]} for s in self.bundle.config["strategies"]],
            "cells": dict(sorted(cells.items())),
            # who judged (not the calibration, which describes them): a relaxation is judged the same way
            "scorer": {k: v for k, v in scorer.items() if k != "calibration"} if isinstance(scorer, dict) else None,
        }

    def describe(self) -> dict[str, Any]:
        status = "verified" if self.signed else "unsigned"
        return {
            "file": Path(self.path).name,
            "sha256": self.sha256,
            "schema": self.bundle.schema,
            "created": self.bundle.created,
            "signature": {
                "status": status,
                "key_id": self.key_id,
                "trusted": self.trusted,
                "trusted_as": self.trusted_as,
            },
            "target": target_fingerprint(self.bundle.target),
            "coverage": self.coverage(),
        }


def target_fingerprint(target: Any) -> dict[str, Any]:
    """What identifies the target: everything of the bundle's ``target`` but the date it was reached."""
    return {k: v for k, v in dict(target).items() if k != "date"}


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_evidence(path: str | Path, *, allow_unsigned: bool, trusted: TrustedKeys) -> Evidence:
    """A bundle that is intact and signed (by any key: whether it is trusted is recorded, and only
    trusted evidence can relax), or unsigned and allowed. Tampered, incomplete or all-errored evidence
    is refused."""
    raw = read_bundle_bytes(path)  # read once: the bytes verified are the bytes classified
    bundle, _ = load_bundle(path, raw)
    digest = hashlib.sha256(raw).hexdigest()
    if bundle.signature is None and bundle.manifest is None:
        if not allow_unsigned:
            raise ClassificationRefused(f"evidence {path} is not signed (unsigned evidence is used only when allowed,"
                                        " and can never relax a tier)", remedy=("allow_unsigned", "True"))  # fmt: skip
        problems = check_types(bundle) + check_plan(bundle)
        if problems:
            raise ClassificationRefused(f"evidence {path} is malformed or incomplete: {problems[0]}")
        evidence = Evidence(str(path), digest, bundle, False, None)
    else:
        check = verify_evidence(path, trusted, raw=raw)
        if check.problems:
            more = f" (and {len(check.problems) - 1} more)" if len(check.problems) > 1 else ""
            raise ClassificationRefused(f"evidence {path} is tampered: {check.problems[0]}{more}")
        evidence = Evidence(str(path), digest, bundle, True, check.key_id, check.trusted, check.trusted_as)
    _check_trials(path, bundle)
    return evidence


def _check_trials(path: str | Path, bundle: EvidenceBundle) -> None:
    try:
        errors = [t.get("error") for t in bundle.trials]
        for trial in bundle.trials:
            str(trial["objective_id"]), str(trial["strategy"]), bool(trial["success"])
        parse_time(bundle.created)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ClassificationRefused(f"evidence {path} lacks what classification reads: {exc!r}") from None
    if not errors:
        raise ClassificationRefused(f"evidence {path} holds no trials")
    if all(errors):
        raise ClassificationRefused(f"evidence {path}: every trial errored ({len(errors)} trials; the first: "
                                    f"{errors[0]}); it measures nothing")  # fmt: skip
