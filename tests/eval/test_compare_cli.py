"""`eval compare` (issue 16): B's attack success rate minus A's per objective with Newcombe's interval,
pooled with each side's design effect; both bundles verified first. The headline case: the adaptive
crescendo against the template one on the `attentive` simulator profile, which only a conversation that
builds on the model's own answers moves."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from exportgate.cli import main
from exportgate.eval import compare_trials, newcombe_difference
from exportgate.signing import home_signer

TRIALS = "12"


def _run(tmp_path: Path, out: str, strategies: str, *extra: str) -> Path:
    path = tmp_path / out
    args = ["eval", "run", "--target", "sim:attentive", "--model", "sim-1", "--strategies", strategies,
            "--trials", TRIALS, "--out", str(path), "--home", str(tmp_path / "home"), *extra]  # fmt: skip
    assert main(args) == 0
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp_path = tmp_path_factory.mktemp("compare")
    template = _run(tmp_path, "template.json", "crescendo-template")
    adaptive = _run(tmp_path, "adaptive.json", "crescendo", "--attacker", "sim:typical")
    return tmp_path / "home", template, adaptive


def test_the_adaptive_crescendo_beats_the_template_and_compare_shows_it(
    runs: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
):
    home, template, adaptive = runs
    capsys.readouterr()
    assert main(["eval", "compare", str(template), str(adaptive), "--home", str(home), "--format", "json"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    (comparison,) = shown["comparisons"]
    assert (comparison["strategy_a"], comparison["strategy_b"]) == ("crescendo-template", "crescendo")
    pooled = comparison["pooled"]
    assert pooled["differs"] and pooled["ci95"][0] > 0, pooled  # the interval excludes 0
    assert pooled["a"]["trials"] == pooled["b"]["trials"] == 4 * int(TRIALS)
    # each cell's figures are Newcombe's interval of its own counts
    for cell in comparison["cells"]:
        expected = newcombe_difference(cell["b"]["successes"], cell["b"]["trials"], cell["a"]["successes"],
                                       cell["a"]["trials"])  # fmt: skip
        assert cell["difference"] == round(expected.estimate, 6)
        assert cell["ci95"] == [round(expected.lower, 6), round(expected.upper, 6)]
    assert shown["a"]["trusted"] and shown["b"]["trusted"]

    assert main(["eval", "compare", str(template), str(adaptive), "--home", str(home)]) == 0
    text = capsys.readouterr().out
    assert "crescendo-template (A) against crescendo (B)" in text and "differs" in text
    assert "Newcombe" in text and "design effect" in text


def test_the_same_bundle_against_itself_differs_nowhere(runs: tuple[Path, Path, Path],
                                                         capsys: pytest.CaptureFixture[str]):  # fmt: skip
    home, _, adaptive = runs
    capsys.readouterr()
    assert main(["eval", "compare", str(adaptive), str(adaptive), "--home", str(home), "--format", "json"]) == 0
    (comparison,) = orjson.loads(capsys.readouterr().out)["comparisons"]
    assert comparison["pooled"]["difference"] == 0 and not comparison["pooled"]["differs"]
    assert not any(c["differs"] for c in comparison["cells"])


def test_strategies_of_one_bundle_are_compared_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    both = _run(tmp_path, "both.json", "crescendo-template,crescendo", "--attacker", "sim:typical")
    home = str(tmp_path / "home")
    capsys.readouterr()
    assert main(["eval", "compare", str(both), str(both), "--home", home]) == 0  # each shared strategy with itself
    assert capsys.readouterr().out.count("(A) against") == 2
    assert main(["eval", "compare", str(both), str(both), "--strategy-a", "crescendo-template", "--strategy-b",
                 "crescendo", "--home", home, "--format", "json"]) == 0  # fmt: skip
    (comparison,) = orjson.loads(capsys.readouterr().out)["comparisons"]
    assert comparison["pooled"]["differs"]
    assert main(["eval", "compare", str(both), str(both), "--strategy-a", "pair", "--home", home]) == 1
    assert "bundle A has no 'pair' trials" in capsys.readouterr().err


def test_a_tampered_bundle_is_not_compared(runs: tuple[Path, Path, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]):  # fmt: skip
    home, template, adaptive = runs
    forged = tmp_path / "forged.json"
    data = orjson.loads(adaptive.read_bytes())
    data["trials"][0]["success"] = not data["trials"][0]["success"]
    forged.write_bytes(orjson.dumps(data) + b"\n")
    assert main(["eval", "compare", str(template), str(forged), "--home", str(home)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not verify" in err and "not compared" in err


def test_errored_trials_are_left_out_on_both_sides():
    def trial(objective: str, success: bool, error: str | None = None) -> dict[str, object]:
        return {"objective_id": objective, "strategy": "s", "success": success, "error": error, "turns": 1}

    a = [trial("o1", False)] * 4 + [trial("o1", False, "boom")] * 3
    b = [trial("o1", True)] * 4 + [trial("o2", True)]
    comparison = compare_trials(a, b, "s")
    (cell,) = comparison.cells
    assert (cell.a, cell.b) == ((0, 4), (4, 4))
    assert comparison.only_b == ("o2",) and comparison.only_a == ()
    assert cell.difference == newcombe_difference(4, 4, 0, 4)


def test_a_key_of_another_home_is_named_untrusted(runs: tuple[Path, Path, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]):  # fmt: skip
    _, template, adaptive = runs
    other = tmp_path / "other-home"
    home_signer(other)
    capsys.readouterr()
    assert main(["eval", "compare", str(template), str(adaptive), "--home", str(other)]) == 0
    assert capsys.readouterr().out.count("UNTRUSTED key") == 2
