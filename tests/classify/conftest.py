"""Evidence and directives for classification tests: real campaigns against the in-process simulator."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from exportgate.cli import main
from tests.conftest import EXAMPLE

MakeEvidence = Callable[..., Path]


@pytest.fixture
def make_evidence(tmp_path: Path) -> MakeEvidence:
    """``make_evidence(profile, trials=10, model="sonnet-4", strategies="direct,crescendo", home=None)`` -> a bundle
    signed by ``home``'s key (by default the classifying home's, ``tmp_path / "home"``, so it is trusted there)."""
    count = iter(range(1000))

    def make(
        profile: str,
        trials: int = 10,
        model: str = "sonnet-4",
        strategies: str = "direct,crescendo",
        home: Path | None = None,
    ) -> Path:
        out = tmp_path / f"evidence-{profile}-{next(count)}.json"
        args = ["eval", "run", "--target", f"sim:{profile}", "--model", model, "--trials", str(trials),
                "--strategies", strategies, "--out", str(out), "--home", str(home or tmp_path / "home")]  # fmt: skip
        assert main(args) == 0
        return out

    return make


@pytest.fixture
def directive_file(tmp_path: Path) -> Path:
    path = tmp_path / "directive.yaml"
    shutil.copy(EXAMPLE, path)
    return path


def classify_args(evidence: list[Path], directive: Path, home: Path, *extra: str, model: str = "sonnet-4") -> list[str]:
    return ["classify", *map(str, evidence), "--framework", "default", "--directive", str(directive),
            "--model", model, "--out", str(directive), "--home", str(home), *extra]  # fmt: skip


@pytest.fixture
def raised(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Path:
    """sonnet-4 raised to domestic from 10-trial vulnerable evidence; returns the home."""
    home = tmp_path / "home"
    assert main(classify_args([make_evidence("vulnerable")], directive_file, home)) == 0
    capsys.readouterr()
    return home


def one_error_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err
