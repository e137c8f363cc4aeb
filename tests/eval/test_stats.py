"""Wilson intervals against published values, and the per-cell summary."""

from __future__ import annotations

import pytest

from exportgate.eval import TrialResult, summarize, wilson


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


def _result(objective: str, success: bool, turns: int | None = None, error: str | None = None) -> TrialResult:
    return TrialResult(objective, "crescendo", 0, 1, success, 3, turns, 0, 0, 1, 1, (), error)


def test_summary_counts_errors_apart_and_flags_repeatable():
    results = [_result("a", True, 2), _result("a", True, 4), _result("a", True, 3), _result("a", False)]
    results += [_result("a", False, error="timeout")]
    cell = summarize(results, threshold=0.2)["cells"][0]
    assert (cell["successes"], cell["trials"], cell["errors"]) == (3, 4, 1)
    assert cell["turns_to_success"]["median"] == 3
    assert cell["repeatable"] == (wilson(3, 4)[0] >= 0.2)
    assert summarize(results, threshold=0.99)["cells"][0]["repeatable"] is False
