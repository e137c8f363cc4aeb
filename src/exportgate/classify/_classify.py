"""The classification: evidence metrics -> a level per framework domain -> the model's control tier.

Pure: given the framework, directive, evidence, the previous record and the time, it returns the
``exportgate.classification/v1`` record (unsigned) or refuses. Fail closed: no assessed domain, a tier
the framework cannot rank, or weaker evidence for relaxing all refuse; nothing is guessed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from exportgate.errors import ClassificationRefused, ConfigError
from exportgate.policy import Directive

from ._conditions import ConditionError
from ._evidence import Evidence
from ._framework import Domain, Framework, Level
from ._metrics import domain_metrics
from ._relax import shortfalls

__all__ = ["SCHEMA", "classify"]

SCHEMA = "exportgate.classification/v1"


def classify(
    *,
    framework: Framework,
    directive: Directive,
    model: str,
    evidence: Sequence[Evidence],
    previous: dict[str, Any] | None,
    now: datetime,
    tool_version: str,
    evidence_model: str | None = None,
) -> dict[str, Any]:
    canonical = _model(directive, model)
    _check_tiers(framework, directive)
    _check_targets(directive, canonical, evidence, evidence_model)
    objectives = _objectives(evidence)
    trials = [t for e in evidence for t in e.bundle["trials"]]
    domains = {d.id: _assess(d, framework, trials, objectives) for d in framework.domains}
    assessed = {name: result for name, result in domains.items() if result["assessed"]}
    if not assessed:
        covered = sorted(e for d in framework.domains for e in d.evidence_domains)
        raise ClassificationRefused(
            f"the evidence has no trials in any domain the framework covers ({', '.join(covered)})"
        )
    current = directive.models[canonical].tier
    current_rank = framework.rank(current)
    if current_rank is None:
        raise ClassificationRefused(f"{canonical} is in tier {current!r}, which framework {framework.id} does not rank"
                                    f" ({', '.join(framework.tiers)})")  # fmt: skip
    deciding = max(assessed, key=lambda name: framework.rank(assessed[name]["tier"]) or 0)
    tier = assessed[deciding]["tier"]
    rank = framework.rank(tier) or 0
    change = "raise" if rank > current_rank else "relax" if rank < current_rank else "none"
    if change == "relax":
        _check_relaxing(canonical, current, tier, previous, evidence)
    return {
        "schema": SCHEMA,
        "id": f"cls-{uuid.uuid4().hex[:16]}",
        "created": now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "model": canonical,
        "framework": framework.describe(),
        "directive": {"id": directive.id, "version": directive.version, "sha256": directive.sha256},
        "evidence": [e.describe() for e in evidence],
        "domains": domains,
        "level": assessed[deciding]["level"],
        "deciding_domain": deciding,
        "decision": assessed[deciding]["decision"],
        "tier": tier,
        "previous_tier": current,
        "change": change,
        "previous_classification": previous["id"] if previous else None,
        "controls": sorted({c for r in assessed.values() for c in r["controls"]}),
        "rationale": _rationale(canonical, (current, tier, change), deciding, domains),
        "tool": {"name": "exportgate", "version": tool_version},
    }


def _model(directive: Directive, model: str) -> str:
    canonical = directive.resolve_model(model)
    if canonical is None:
        raise ConfigError(f"model {model!r} is not in directive {directive.label}; add it to 'models' first")
    return canonical


def _check_tiers(framework: Framework, directive: Directive) -> None:
    unknown = [t for t in framework.tiers if t not in directive.tiers]
    if unknown:
        raise ConfigError(f"framework {framework.id} maps to tier(s) {', '.join(unknown)} that directive "
                          f"{directive.label} does not define")  # fmt: skip


def _check_targets(directive: Directive, model: str, evidence: Sequence[Evidence], stand_in: str | None) -> None:
    for item in evidence:
        name = item.target_model
        if stand_in is not None and name == stand_in:
            continue
        if directive.resolve_model(name) != model:
            hint = f"; pass --evidence-model {name} if it stands for {model}" if name else ""
            raise ClassificationRefused(f"evidence {item.path} evaluated model {name!r}, not {model}{hint}")


def _objectives(evidence: Sequence[Evidence]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for item in evidence:
        for objective in item.bundle["objectives"]:
            seen = merged.setdefault(objective["id"], objective)
            if seen["sha256"] != objective["sha256"]:
                raise ClassificationRefused(f"objective {objective['id']} differs between the evidence bundles")
    return merged


def _assess(domain: Domain, framework: Framework, trials: list[Any], objectives: dict[str, Any]) -> dict[str, Any]:
    metrics = domain_metrics(domain, trials, objectives, framework.repeatable_threshold)
    if metrics["trials"] == 0:
        return {"assessed": False, "metrics": metrics, "level": None, "tier": None, "decision": None,
                "controls": [], "crossed": [], "alerts": []}  # fmt: skip
    try:
        found = next((lv for lv in reversed(domain.levels[1:]) if lv.threshold and lv.threshold.holds(metrics)),
                     domain.levels[0])  # fmt: skip
        above = domain.levels[domain.levels.index(found) + 1 :]
        alerts = [_because(lv, "alert", metrics) for lv in above if lv.alert and lv.alert.holds(metrics)]
    except ConditionError as exc:
        raise ClassificationRefused(f"framework {framework.source}, domain {domain.id}: {exc}") from None
    return {
        "assessed": True, "metrics": metrics, "level": found.id, "tier": found.tier, "decision": found.decision,
        "controls": list(found.controls),
        "crossed": [_because(found, "threshold", metrics)] if found.threshold else [],
        "alerts": alerts,
    }  # fmt: skip


def _because(level: Level, kind: str, metrics: dict[str, Any]) -> dict[str, Any]:
    condition = level.threshold if kind == "threshold" else level.alert
    assert condition is not None
    return {"level": level.id, kind: condition.source, "values": {n: metrics[n] for n in condition.names()}}


def _check_relaxing(
    model: str, current: str, tier: str, previous: dict[str, Any] | None, evidence: Sequence[Evidence]
) -> None:
    if previous is None:
        raise ClassificationRefused(f"cannot relax {model} from {current} to {tier}: no earlier classification of"
                                    f" {model} is on record to compare the evidence with")  # fmt: skip
    missing = shortfalls(previous, evidence)
    if missing:
        raise ClassificationRefused(f"cannot relax {model} from {current} to {tier}: the evidence is weaker than"
                                    f" classification {previous['id']}'s: {'; '.join(missing)}")  # fmt: skip


def _rationale(model: str, move: tuple[str, str, str], deciding: str, domains: dict[str, Any]) -> list[str]:
    current, tier, change = move
    verb = {"raise": "raised", "relax": "relaxed", "none": "kept"}[change]
    lines = [f"{model}: tier {verb} {'at' if change == 'none' else f'from {current} to'} {tier}, decided by domain"
             f" {deciding} (level {domains[deciding]['level']})"]  # fmt: skip
    for name, result in domains.items():
        if not result["assessed"]:
            lines.append(f"{name}: not assessed (no trials of its objectives in the evidence)")
            continue
        m = result["metrics"]
        summary = f"{m['successes']}/{m['trials']} successes, {m['repeatable_cells']} repeatable cell(s)"
        if not result["crossed"]:
            lines.append(f"{name}: level {result['level']} (no threshold crossed; {summary})")
        for crossed in result["crossed"]:
            lines.append(f"{name}: threshold of {crossed['level']} crossed: {crossed['threshold']} with "
                         f"{_values(crossed['values'])} ({summary})")  # fmt: skip
        for alert in result["alerts"]:
            lines.append(f"{name}: alert of {alert['level']}: {alert['alert']} with {_values(alert['values'])}")
    return lines


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in values.items())
