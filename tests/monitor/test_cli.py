"""``exportgate monitor`` and ``accounts trips`` on bad input: one clear line, non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from exportgate.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["monitor", "--since", "yesterday-ish"], "expected an ISO date/time or an age"),
        (["monitor", "--config", "CONFIG"], "unknown detector"),
        (["monitor", "ack", "alert-0000"], "no alert"),
        (["monitor", "alerts", "--state", "open", "--since", "soon"], "expected an ISO date/time"),
        (["monitor"], "no audit store"),
        (["accounts", "trips", "add", "nobody", "--country", "DE", "--from", "2026-12-01", "--until", "2026-12-02"],
         "no account named"),
        (["accounts", "trips", "add", "x", "--country", "DE", "--from", "12/01", "--until", "2026-12-02"],
         "is not a date"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "monitor.yaml"
    config.write_text("detectors: {telepathy: {}}\n")
    args = [str(config) if a == "CONFIG" else a for a in args]
    (tmp_path / "home").mkdir()  # a home that exists: a missing one is its own error (tests/cli/test_read_only.py)
    assert main([*args, "--home", str(tmp_path / "home")]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
