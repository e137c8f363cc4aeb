"""The classification: evidence metrics -> a level per framework domain -> the model's control tier.

Pure: given the framework, directive, evidence, the model's earlier records and the time, it returns the
``exportgate.classification/v2`` record (unsigned) or refuses. Fail closed: no assessed domain, a tier
the framework cannot rank, untrusted or weaker evidence for relaxing all refuse; nothing is guessed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from exportgate.errors import ClassificationRefused, ConfigError
from exportgate.eval import summarize
from exportgate.policy import Directive

from ._conditions import ConditionError
from ._evidence import Evidence
from ._framework import Domain, Framework, Level
from ._metrics import domain_metrics
from ._record import SCHEMA, ClassificationRecord
from ._relax import relaxation_basis, shortfalls

__all__ = ["classify"]


def classify(
    *,
    framework: Framework,
    directive: Directive,
    model: str,
    evidence: Sequence[Evidence],
    history: Sequence[ClassificationRecord],
    now: datetime,
    tool_version: str,
    evidence_model: str | None = None,
    by: str | None = None,
) -> ClassificationRecord:
    """``history``: the model's earlier records, oldest first (pending ones included; they are skipped)."""
    canonical = _model(directive, model)
    _check_tiers(framework, directive)
    _check_targets(directive, canonical, evidence, evidence_model)
    objectives = _objectives(evidence)
    trials = [t for e in evidence for t in e.bundle.trials]
    summary = summarize(trials, framework.rules)
    domains = {d.id: _assess(d, framework, summary, trials, objectives) for d in framework.domains}
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
    applied = [r for r in history if r.applies]
    previous = applied[-1] if applied else None
    if change == "relax":
        _check_relaxing(canonical, current, tier, applied, evidence, framework=framework)
    rationale = _rationale(canonical, (current, tier, change), deciding, domains)
    untrusted = [Path(e.path).name for e in evidence if e.signed and not e.trusted]
    if untrusted:
        rationale.append(f"evidence signed by a key this home does not trust: {', '.join(untrusted)}")
    return ClassificationRecord(
        schema=SCHEMA,
        id=f"cls-{uuid.uuid4().hex[:16]}",
        created=now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        model=canonical,
        framework=framework.describe(),
        directive={"id": directive.id, "version": directive.version, "sha256": directive.sha256},
        evidence=tuple(e.describe() for e in evidence),
        domains=domains,
        level=str(assessed[deciding]["level"]),
        deciding_domain=deciding,
        decision=str(assessed[deciding]["decision"]),
        tier=tier,
        previous_tier=current,
        change=change,
        previous_classification=previous.id if previous else None,
        controls=tuple(sorted({c for r in assessed.values() for c in r["controls"]})),
        rationale=tuple(rationale),
        tool={"name": "exportgate", "version": tool_version},
        status="pending" if change == "relax" else "applied",
        by=by,
    )


def _model(directive: Directive, model: str) -> str:
    canonical = directive.resolve_model(model)
    if canonical is None:
        raise ConfigError(f"model {model!r} is not in directive {directive.label}; add it to 'models' first")
    return canonical


def _check_tiers(framework: Framework, directive: Directive) -> None:
    """The framework's tiers exist in the directive, in the directive's order: the directive lists its
    tiers from least to most restrictive, and that order, not a framework's, says what a raise is (a
    framework listing them backwards would make every relaxation a raise, applied at once)."""
    unknown = [t for t in framework.tiers if t not in directive.tiers]
    if unknown:
        raise ConfigError(f"framework {framework.id} maps to tier(s) {', '.join(unknown)} that directive "
                          f"{directive.label} does not define")  # fmt: skip
    order = list(directive.tiers)
    positions = [order.index(t) for t in framework.tiers]
    if positions != sorted(positions):
        raise ClassificationRefused(f"framework {framework.id} orders its tiers {' < '.join(framework.tiers)}, but"
                                    f" directive {directive.label} lists them {' < '.join(order)} (least to most"
                                    " restrictive); a framework may not reorder them")  # fmt: skip


def _check_targets(directive: Directive, model: str, evidence: Sequence[Evidence], stand_in: str | None) -> None:
    for item in evidence:
        name = item.target_model
        if stand_in is not None and name == stand_in:
            continue
        if directive.resolve_model(name) != model:
            hint = f" (name {name} as the model's stand-in if it stands for {model})" if name else ""
            raise ClassificationRefused(f"evidence {item.path} evaluated model {name!r}, not {model}{hint}",
                                        remedy=("evidence_model", name) if name else None)  # fmt: skip


def _objectives(evidence: Sequence[Evidence]) -> dict[str, Mapping[str, Any]]:
    merged: dict[str, Mapping[str, Any]] = {}
    for item in evidence:
        for objective in item.bundle.objectives:
            seen = merged.setdefault(str(objective["id"]), objective)
            if seen["sha256"] != objective["sha256"]:
                raise ClassificationRefused(f"objective {objective['id']} differs between the evidence bundles")
    return merged


def _assess(
    domain: Domain, framework: Framework, summary: dict[str, Any], trials: list[Any], objectives: dict[str, Any]
) -> dict[str, Any]:
    metrics = domain_metrics(domain, summary, trials, objectives, framework.rules)
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
    model: str, current: str, tier: str, applied: Sequence[ClassificationRecord], evidence: Sequence[Evidence],
    *, framework: Framework,
) -> None:  # fmt: skip
    """Only trusted evidence relaxes, only evidence at least as strong as what set the tier, and only under
    the framework (byte for byte: its rules and thresholds) of the model's last applied classification."""
    move = f"cannot relax {model} from {current} to {tier}"
    if applied and applied[-1].framework.get("sha256") != framework.sha256:
        last = applied[-1]
        named = f"{last.framework.get('id')}@{last.framework.get('version')}"
        raise ClassificationRefused(f"{move}: classification {last.id} used framework {named} (sha256"
                                    f" {str(last.framework.get('sha256'))[:12]}), this one another"
                                    f" ({framework.sha256[:12]}); classify under the new framework first (it can"
                                    " only raise or keep the tier), then relax under it")  # fmt: skip
    untrusted = [e for e in evidence if not e.can_relax]
    if untrusted:
        item = untrusted[0]
        why = "is not signed" if not item.signed else f"is signed by key {item.key_id}, which this home does not trust"
        raise ClassificationRefused(f"{move}: evidence {item.path} {why}; only evidence from a trusted signer can"
                                    " relax a tier (exportgate keys trust KEYFILE, or --trust)")  # fmt: skip
    basis = relaxation_basis(applied)
    if basis is None:
        raise ClassificationRefused(f"{move}: no earlier classification of {model} is on record to compare the"
                                    " evidence with")  # fmt: skip
    missing = shortfalls(basis, evidence)
    if missing:
        raise ClassificationRefused(f"{move}: the evidence is weaker than classification {basis.id}'s: "
                                    f"{'; '.join(missing)}")  # fmt: skip


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
