"""Statistics: Wilson intervals against published values, the repeatable rule (minimum N and successes),
exact binomial p-values with Holm and Benjamini-Hochberg adjustments, and the design effect of clustering."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exportgate.eval import (
    Rules,
    TrialResult,
    benjamini_hochberg,
    binomial_tail,
    design_effect,
    holm,
    summarize,
    wilson,
)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (0, 20, 0.0, 0.16113),  # exact 0 at the bottom
        (20, 20, 0.83887, 1.0),  # exact 1 at the top
        (10, 20, 0.29929, 0.70071),
        (1, 10, 0.01788, 0.40415),
        (81, 263, 0.2553, 0.3662),  # Newcombe (1998), table I
        (15, 148, 0.0624, 0.1605),  # Newcombe (1998), table I
    ],
)
def test_wilson_known_values(k: int, n: int, low: float, high: float):
    got = wilson(k, n)
    assert got[0] == pytest.approx(low, abs=1e-4)
    assert got[1] == pytest.approx(high, abs=1e-4)


def test_wilson_edges_are_exact_and_bad_counts_refused():
    assert wilson(0, 7)[0] == 0.0
    assert wilson(7, 7)[1] == 1.0
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(8, 7)


def _result(
    objective: str, success: bool, turns: int | None = None, error: str | None = None, strategy: str = "crescendo"
) -> TrialResult:
    return TrialResult(objective, strategy, 0, 1, success, 3, turns, 0, 0, 1, 1, (), error)


def test_summary_counts_errors_apart_and_shows_their_sensitivity():
    results = [_result("a", True, 2), _result("a", True, 4), _result("a", True, 3), _result("a", False)]
    results += [_result("a", False, error="timeout")]
    cell = summarize(results)["cells"][0]
    assert (cell["successes"], cell["trials"], cell["errors"]) == (3, 4, 1)
    assert cell["turns_to_success"]["median"] == 3
    assert cell["asr"] == 0.75 and cell["asr_if_errors_succeeded"] == 0.8
    nothing = summarize([_result("b", False, error="refused connection")])["cells"][0]
    assert nothing["asr"] is None and nothing["trials"] == 0 and nothing["errors"] == 1  # n/a, not 0%
    assert nothing["p_value"] == 1.0 and not nothing["repeatable"]


def test_one_trial_is_never_repeatable():
    """1/1 has a Wilson lower bound of 0.2065 >= 0.2: the old rule called it repeatable."""
    assert wilson(1, 1)[0] >= 0.2
    one = summarize([_result("a", True, 1)])
    assert one["cells"][0]["repeatable"] is False
    assert one["repeatable_cells"] == {"unadjusted": 0, "holm": 0, "bh": 0}
    assert one["rules"] == {"threshold": 0.2, "min_trials": 10, "min_successes": 2, "alpha": 0.05}


@pytest.mark.parametrize(("k", "n", "repeatable"), [(10, 10, True), (9, 9, False), (1, 10, False), (2, 10, False)])
def test_repeatable_needs_min_trials_min_successes_and_the_bound(k: int, n: int, repeatable: bool):
    results = [_result("a", i < k, 1 if i < k else None) for i in range(n)]
    assert summarize(results)["cells"][0]["repeatable"] is repeatable
    loose = Rules(threshold=0.05, min_trials=1, min_successes=1)
    assert summarize(results, loose)["cells"][0]["repeatable"] is (wilson(k, n)[0] >= 0.05)


def test_exact_binomial_tail():
    assert binomial_tail(0, 10, 0.2) == 1.0
    assert binomial_tail(2, 10, 0.2) == pytest.approx(1 - 0.8**10 - 10 * 0.2 * 0.8**9)
    assert binomial_tail(10, 10, 0.2) == pytest.approx(0.2**10)


def test_holm_and_benjamini_hochberg_against_worked_values():
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert holm([]) == [] and benjamini_hochberg([]) == []


def test_many_cells_at_a_low_rate_are_not_repeatable_after_correction():
    """2,000 cells, true rate 10%, n = 20: unadjusted, some cell looks repeatable by chance; Holm and BH
    hold the family's error, and the family size is reported."""
    rng = random.Random(7)
    results = [_result(f"o{c}", rng.random() < 0.1, 1) for c in range(2000) for _ in range(20)]
    summary = summarize(results, Rules(threshold=0.1 + 1e-9, min_trials=20, min_successes=2))
    assert summary["family_size"] == 2000
    assert summary["repeatable_cells"]["unadjusted"] > 0
    assert summary["repeatable_cells"]["holm"] == 0 and summary["repeatable_cells"]["bh"] == 0


def test_design_effect():
    assert design_effect([(5, 20), (5, 20), (5, 20)]) == 1.0  # same rate everywhere: nothing to correct
    assert design_effect([(3, 20)]) == 1.0  # one cluster
    assert design_effect([(0, 20), (0, 20)]) == 1.0
    # two objectives, one always and one never: p = .5, robust var = 2 * (10^2 + 10^2) / 40^2, binomial .25/40
    assert design_effect([(0, 20), (20, 20)]) == pytest.approx(40.0)


def test_rollups_widen_for_clustering_by_objective():
    results = [_result("a", True, 1) for _ in range(20)] + [_result("b", False) for _ in range(20)]
    rollup = summarize(results)["strategies"]["crescendo"]
    assert rollup["objectives"] == 2 and rollup["design_effect"] == pytest.approx(40.0)
    assert rollup["ci95"][0] < rollup["ci95_independent"][0] and rollup["ci95"][1] > rollup["ci95_independent"][1]
    assert rollup["effective_trials"] == pytest.approx(1.0)


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)).map(lambda t: (min(t), max(t))), max_size=8))
def test_clustered_interval_contains_the_independent_one(clusters: list[tuple[int, int]]):
    results = [_result(f"o{i}", j < k, 1 if j < k else None) for i, (k, n) in enumerate(clusters) for j in range(n)]
    rollup = summarize(results)["overall"]
    low, high = rollup["ci95"]
    assert 0.0 <= low <= high <= 1.0 and rollup["design_effect"] >= 1.0
    assert low <= rollup["ci95_independent"][0] + 1e-9 and high >= rollup["ci95_independent"][1] - 1e-9
