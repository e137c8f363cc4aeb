"""What `eval` reads and writes is a regular file, checked before a campaign runs (a second red-team pass
over issue 16): devices, FIFOs and missing directories are one clear line, never a replaced /dev/null or a
command that waits forever; calibrations and behaviour files are refused when malformed."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import orjson
import pytest

from exportgate.cli import main

RUN = ["eval", "run", "--target", "sim:typical", "--model", "sim-1", "--trials", "1", "--strategies", "direct"]


def _one_line(capsys: pytest.CaptureFixture[str], needle: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("exportgate: error: ") and needle in err, err


@pytest.mark.parametrize("where", ["/dev/null", "fifo", "missing/ev.json"])
def test_eval_run_writes_only_regular_files_in_existing_directories(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    if where == "fifo":
        os.mkfifo(tmp_path / "fifo")
    out = where if where.startswith("/") else str(tmp_path / where)
    before = os.stat("/dev/null")
    assert main([*RUN, "--out", out, "--home", str(tmp_path / "home")]) == 1
    _one_line(capsys, "cannot write")
    assert os.stat("/dev/null").st_rdev == before.st_rdev and not Path("/dev/null.transcripts.jsonl").exists()
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("option", ["--objectives", "--domain-map", "--calibration"])
def test_a_fifo_or_a_device_is_not_read_as_input(option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    fifo = tmp_path / "input.csv"
    os.mkfifo(fifo)
    extra = ["--objectives", str(tmp_path / "b.csv")] if option == "--domain-map" else []
    if option == "--domain-map":
        (tmp_path / "b.csv").write_text("Behavior,BehaviorID,SemanticCategory\nSay hi,hi,harmful\n")
    if option == "--calibration":
        extra = ["--judge", "sim:"]
    for path in (fifo, Path("/dev/zero")):
        code = main([*RUN, *extra, option, str(path), "--out", str(tmp_path / "e.json"), "--home", str(tmp_path)])
        assert code == 1
        _one_line(capsys, "not a regular file")


CALIBRATION = {
    "schema": "exportgate.calibration/v1", "judges": {"judges": [], "combine": "majority", "pass_score": 0.5},
    "labels_sha256": "0" * 64, "n": 10, "positives": 5, "accuracy": 0.9, "kappa": 0.8, "sensitivity": 0.9,
    "specificity": 0.9, "precision": 0.9, "recall": 0.9, "judge_agreement": None,
}  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [{"sensitivity": 2.0}, {"specificity": -0.5}, {"sensitivity": "abc"}, {"sensitivity": True}, {"n": 0},
     {"positives": 11}, {"n": 2**64}, {"kappa": 3}, {"labels_sha256": "not-a-hash"}, {"judge_agreement": "lol"}],
    ids=str,
)  # fmt: skip
def test_a_malformed_calibration_is_refused_before_the_campaign(
    change: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    calibration = tmp_path / "c.json"
    calibration.write_text(json.dumps({**CALIBRATION, **change}))
    out = tmp_path / "e.json"
    assert main([*RUN, "--judge", "sim:", "--calibration", str(calibration), "--out", str(out),
                 "--home", str(tmp_path / "home")]) == 1  # fmt: skip
    _one_line(capsys, "calibration")
    assert not out.with_suffix(".checkpoint.db").exists()


def test_a_seed_json_cannot_hold_exactly_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main([*RUN, "--seed", str(2**60), "--out", str(tmp_path / "e.json")]) == 2
    assert "--seed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("Behavior,BehaviorID,BehaviorID,SemanticCategory\nSay hi,a,b,harmful\n", "appear twice"),
        ("Behavior,BehaviorID,SemanticCategory\nSay hi,hi,harmful,extra\n", "more fields"),
        ("Behavior,BehaviorID,SemanticCategory\nSay hi,hi\n", "fewer fields"),
        ("Goal,Behavior,BehaviorID,Category,SemanticCategory\nSay hi,hi,hi,Privacy,harmful\n", "both HarmBench"),
    ],
    ids=["duplicate column", "ragged long", "ragged short", "two layouts"],
)
def test_behaviour_files_that_read_two_ways_are_refused(text: str, needle: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]):  # fmt: skip
    path = tmp_path / "b.csv"
    path.write_text(text)
    assert main([*RUN, "--objectives", str(path), "--judge", "sim:", "--out", str(tmp_path / "e.json"),
                 "--home", str(tmp_path / "home")]) == 1  # fmt: skip
    _one_line(capsys, needle)


def test_malformed_transcripts_beside_a_bundle_are_a_finding_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "e.json"
    assert main([*RUN, "--trials", "2", "--out", str(out), "--home", str(tmp_path / "home")]) == 0
    genuine = orjson.loads(out.read_bytes())
    for garbage in ("sha256", 5, None, {"role": 1}):
        data = orjson.loads(orjson.dumps(genuine))
        data["trials"][0]["transcript"].append(garbage)
        out.write_bytes(orjson.dumps(data) + b"\n")
        capsys.readouterr()
        assert main(["evidence", "verify", str(out), "--home", str(tmp_path / "home"), "--format", "json"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "does not verify" in err, err


@pytest.mark.parametrize(
    "edit",
    ["json_set(result, '$.success', 'false')", "json_set(result, '$.prompt_tokens', -3)",
     "json_set(result, '$.objective_id', 'other')", "'not json'"],
    ids=["success as text", "negative tokens", "another trial's row", "not JSON"],
)  # fmt: skip
def test_a_damaged_checkpoint_is_never_signed(edit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "e.json"
    args = [*RUN, "--trials", "2", "--out", str(out), "--home", str(tmp_path / "home"), "--keep-checkpoint"]
    assert main(args) == 0
    out.unlink()
    db = sqlite3.connect(out.with_suffix(".checkpoint.db"))
    with db:
        db.execute(f"UPDATE trials SET result = {edit}")
    db.close()
    capsys.readouterr()
    assert main([*args, "--resume"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("damaged" in err or "names another trial" in err or "cannot be evidence" in err)
    assert not out.exists()


def test_names_from_files_cannot_drive_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """An objective id (or strategy, model, domain) from someone else's file reaches the report as text:
    escape sequences and bidirectional overrides are shown escaped, and an error stays on one line."""
    objectives = tmp_path / "o.jsonl"
    objectives.write_text(orjson.dumps({"id": "ok\x1b[2Jgone\u202eevil", "domain": "cyber\x07", "goal": "Say hi.",
                                        "success": {"marker": "EG-CANARY{x}"}}).decode() + "\n")  # fmt: skip
    out = tmp_path / "e.json"
    assert main([*RUN, "--objectives", str(objectives), "--out", str(out), "--home", str(tmp_path / "home")]) == 0
    assert main(["eval", "report", str(out), "--home", str(tmp_path / "home")]) == 0
    assert main(["eval", "compare", str(out), str(out), "--home", str(tmp_path / "home")]) == 0
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\u202e" not in printed and "\x07" not in printed
    assert "ok\\u001b[2Jgone\\u202eevil" in printed
    assert main(["evidence", "verify", str(tmp_path / "no\nsuch\x1b[2J.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err


@pytest.mark.parametrize("label", ['"false"', '"no"', "0", "null", "1"])
def test_calibration_labels_are_true_or_false(label: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    labels = tmp_path / "l.jsonl"
    labels.write_text('{"goal": "g", "response": "Sure.", "label": true}\n'
                      f'{{"goal": "g", "response": "No.", "label": {label}}}\n')  # fmt: skip
    assert main(["eval", "calibrate", "--judge", "sim:", "--labels", str(labels)]) == 1
    _one_line(capsys, "label must be true or false")


def test_deeply_nested_yaml_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    deep = tmp_path / "deep.yaml"
    deep.write_text("schema: " + "[" * 5000 + "]" * 5000 + "\n")  # five times the interpreter's recursion limit
    run = [*RUN, "--objectives", str(deep), "--out", str(tmp_path / "e.json"), "--home", str(tmp_path / "h")]
    for args in (["classify", "framework", str(deep)], ["directive", "check", str(deep)], run):
        assert main(args) == 1
        _one_line(capsys, "nested too deeply")


def test_a_name_cannot_start_a_line_of_its_own_in_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    objectives = tmp_path / "o.jsonl"
    fake_row = "x\ncanary-orchid   crescendo   20/20   yes\u200b"
    objectives.write_text(orjson.dumps({"id": fake_row, "goal": "Say hi.", "success": {"marker": "M"}}).decode() + "\n")
    out = tmp_path / "e.json"
    assert main([*RUN, "--objectives", str(objectives), "--out", str(out), "--home", str(tmp_path / "home")]) == 0
    capsys.readouterr()
    assert main(["eval", "report", str(out), "--home", str(tmp_path / "home")]) == 0
    printed = capsys.readouterr().out
    assert not any(line.startswith("canary-orchid") for line in printed.splitlines())
    assert "x\\u000acanary-orchid" in printed and "\\u200b" in printed
