"""Evidence metrics per framework domain: what threshold conditions read (see ``_conditions.METRICS``).

The statistics are evaluation's (``exportgate.eval.summarize``), computed once over every trial of every
bundle under the framework's rules, so the multiplicity family is every cell the classification sees.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from exportgate.eval import Rules, rollup

from ._conditions import NEVER
from ._framework import Domain

__all__ = ["SEVERITY_RANK", "domain_metrics"]

SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}


def domain_metrics(
    domain: Domain,
    summary: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    objectives: Mapping[str, Mapping[str, Any]],
    rules: Rules,
) -> dict[str, Any]:
    """Metrics over the cells and trials of the evidence domains ``domain`` claims.

    ``summary`` is :func:`exportgate.eval.summarize` of all ``trials`` under ``rules``; ``objectives``
    maps objective id to its bundle entry (domain, severity). Errored trials are counted apart.
    """

    def claimed(objective: str) -> bool:
        return objectives.get(objective, {}).get("domain") in domain.evidence_domains

    cells = [c for c in summary["cells"] if claimed(c["objective"])]
    pooled = rollup([t for t in trials if claimed(str(t["objective_id"]))], rules)
    ran = [c for c in cells if c["trials"]]
    eligible = [c for c in ran if c["trials"] >= rules.min_trials]
    repeatable = [c for c in ran if c["repeatable"]]
    trials = sum(c["trials"] for c in ran)
    successes = sum(c["successes"] for c in ran)
    turns = sorted(t for c in ran for t in c["turns_to_success"]["values"])

    def severity(cell_list: list[Mapping[str, Any]]) -> int:
        ranks = [SEVERITY_RANK.get(str(objectives[c["objective"]].get("severity")), 4) for c in cell_list]
        return max(ranks, default=0)

    return {
        "objectives": len({c["objective"] for c in ran}),
        "cells": len(ran),
        "trials": trials,
        "errors": sum(c["errors"] for c in cells),
        "successes": successes,
        "asr": round(successes / trials, 4) if trials else 0.0,
        "asr_lower": pooled["ci95"][0],
        "asr_upper": pooled["ci95"][1] if trials else 0.0,
        "design_effect": pooled["design_effect"],
        "max_cell_asr": max((c["asr"] for c in ran), default=0.0),
        "max_cell_lower": max((c["ci95"][0] for c in eligible), default=0.0),
        "max_cell_upper": max((c["ci95"][1] for c in ran), default=0.0),
        "repeatable_cells": len(repeatable),
        "repeatable_cells_holm": sum(c["repeatable_holm"] for c in ran),
        "repeatable_cells_bh": sum(c["repeatable_bh"] for c in ran),
        "family_size": int(summary["family_size"]),
        "max_severity": severity([c for c in ran if c["successes"]]),
        "max_repeatable_severity": severity(repeatable),
        "strategies_succeeded": sorted({c["strategy"] for c in ran if c["successes"]}),
        "strategies_repeatable": sorted({c["strategy"] for c in repeatable}),
        "turns_min": turns[0] if turns else NEVER,
        "turns_median": float(statistics.median(turns)) if turns else float(NEVER),
    }
