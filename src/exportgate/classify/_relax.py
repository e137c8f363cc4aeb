"""Relaxing a tier needs stronger evidence than raising it: evidence from a trusted signer, gathered
after the classification that set the tier (its *basis*: the last that raised it, else the last
applied), of the same target (kind, endpoint, model and sampling settings; a changed system prompt or
simulator profile is the safeguard being measured), covering at least the same objectives (same text),
strategies (settings at least as demanding) and trials per cell. :func:`shortfalls` says what is
missing, in words."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ._evidence import Evidence, parse_time, target_fingerprint
from ._record import ClassificationRecord

__all__ = ["IDENTITY", "relaxation_basis", "shortfalls", "target_identity"]

#: What makes two evaluations "the same target" for relaxing: the target's kind, endpoint and model, and
#: its sampling settings (kept under the target's ``sampling``; older bundles kept them at the top).
IDENTITY = ("kind", "endpoint", "model", "temperature", "max_tokens", "top_p")
_SAMPLING = ("temperature", "max_tokens", "top_p")


def target_identity(target: Any) -> dict[str, Any]:
    """The :data:`IDENTITY` of a target fingerprint; a setting not recorded is None (and so differs from
    any recorded value)."""
    fingerprint = dict(target or {})
    sampling = fingerprint.get("sampling")
    sampling = dict(sampling) if isinstance(sampling, dict) else {}
    identity = {k: fingerprint.get(k) for k in IDENTITY if k not in _SAMPLING}
    identity.update({k: sampling.get(k, fingerprint.get(k)) for k in _SAMPLING})
    return identity


def relaxation_basis(applied: Sequence[ClassificationRecord]) -> ClassificationRecord | None:
    """The record relaxation is measured against: the last that raised the tier, else the last applied."""
    raised = [r for r in applied if r.change == "raise"]
    return raised[-1] if raised else applied[-1] if applied else None


def shortfalls(basis: ClassificationRecord, evidence: Sequence[Evidence]) -> list[str]:
    """Everything the new evidence lacks compared with ``basis`` (a classification record)."""
    missing: list[str] = []
    since = parse_time(basis.created)
    missing += [f"{e.path} was gathered before classification {basis.id} ({basis.created})"
                for e in evidence if e.created <= since]  # fmt: skip
    missing += [f"{e.path} is not signed by a trusted key" for e in evidence if not e.can_relax]
    missing += _other_targets(basis, evidence)
    judged = [e["coverage"]["scorer"] for e in basis.evidence if e["coverage"].get("scorer") is not None]
    missing += [f"{e.path} was scored by other judges than the evidence of classification {basis.id}"
                for e in evidence if judged and e.coverage()["scorer"] not in judged]  # fmt: skip
    old, new = _pooled([e["coverage"] for e in basis.evidence]), _pooled([e.coverage() for e in evidence])
    for objective, digest in sorted(old["objectives"].items()):
        if objective not in new["objectives"]:
            missing.append(f"objective {objective} is not covered")
        elif new["objectives"][objective] != digest:
            missing.append(f"objective {objective} differs from the one evaluated before")
    for strategy in old["strategies"]:
        if not any(_at_least(candidate, strategy) for candidate in new["strategies"]):
            missing.append(f"strategy {strategy['name']} ({_settings(strategy['settings'])}) is not covered")
    short = [f"{cell} {new['cells'].get(cell, 0)} < {trials}"
             for cell, trials in sorted(old["cells"].items()) if new["cells"].get(cell, 0) < trials]  # fmt: skip
    if short:
        more = f" and {len(short) - 3} more" if len(short) > 3 else ""
        listed = ", ".join(short[:3])
        missing.append(f"{len(short)} objective/strategy cell(s) ran fewer trials than before ({listed}{more})")
    return missing


def _pooled(coverages: Sequence[dict[str, Any]]) -> dict[str, Any]:
    objectives: dict[str, str] = {}
    strategies: list[dict[str, Any]] = []
    cells: Counter[str] = Counter()
    for coverage in coverages:
        objectives.update(coverage["objectives"])
        strategies += coverage["strategies"]
        cells.update(coverage["cells"])
    return {"objectives": objectives, "strategies": strategies, "cells": cells}


def _at_least(candidate: dict[str, Any], required: dict[str, Any]) -> bool:
    """Same strategy, every setting equal, or for numbers (turn and backtrack limits) at least as large."""
    if candidate["name"] != required["name"]:
        return False
    have = candidate["settings"]
    for key, value in required["settings"].items():
        if key not in have:
            return False
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and isinstance(have[key], int | float) and not isinstance(have[key], bool):
            if have[key] < value:
                return False
        elif have[key] != value:
            return False
    return True


def _settings(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(settings.items())) or "none"


def _other_targets(basis: ClassificationRecord, evidence: Sequence[Evidence]) -> list[str]:
    before = [target_identity(e.get("target")) for e in basis.evidence]
    missing = []
    for item in evidence:
        now = target_identity(target_fingerprint(item.bundle.target))
        if now not in before:
            shown = ", ".join(f"{k}={v}" for k, v in before[0].items()) if before else "none recorded"
            missing.append(f"{item.path} evaluated another target than classification {basis.id} ({shown})")
    return missing
