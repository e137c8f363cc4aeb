"""Evidence from HarmBench- and JailbreakBench-shaped behaviour files (benign made-up behaviours) is
classified by the default framework: their categories map to the domains it reads."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from exportgate.cli import main
from tests.eval.behaviour_files import HARMBENCH_COLUMNS, HARMBENCH_ROWS, JBB_COLUMNS, JBB_ROWS, write_csv

from .conftest import classify_args


@pytest.mark.parametrize(
    ("columns", "rows", "assessed"),
    [(HARMBENCH_COLUMNS, HARMBENCH_ROWS, {"cyber", "bio"}), (JBB_COLUMNS, JBB_ROWS, {"cyber"})],
    ids=["harmbench", "jailbreakbench"],
)
def test_the_default_framework_classifies_evidence_from_the_data_sets(
    directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    columns: list[str], rows: list[dict[str, str]], assessed: set[str],
):  # fmt: skip
    behaviours = write_csv(tmp_path / "behaviours.csv", columns, rows)
    evidence, record = tmp_path / "evidence.json", tmp_path / "record.json"
    assert main(["eval", "run", "--target", "sim:vulnerable", "--model", "sonnet-4", "--judge", "sim:",
                 "--objectives", str(behaviours), "--trials", "10", "--out", str(evidence),
                 "--home", str(tmp_path / "eval-home")]) == 0  # fmt: skip
    objectives = orjson.loads(evidence.read_bytes())["objectives"]
    assert {o["domain"] for o in objectives} >= assessed
    capsys.readouterr()
    assert main(classify_args([evidence], directive_file, tmp_path / "home", "--record", str(record))) == 0
    assert "tier raised from open to domestic" in capsys.readouterr().out
    domains = orjson.loads(record.read_bytes())["domains"]
    assert {name for name, result in domains.items() if result["assessed"]} == assessed
    assert all(domains[name]["metrics"]["repeatable_cells"] >= 1 for name in assessed)
