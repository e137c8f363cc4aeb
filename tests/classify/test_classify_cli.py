"""``exportgate classify``: raising, relaxing with stronger evidence, and every refusal as one line, exit 1."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from exportgate.audit import Signer, canonical_json
from exportgate.cli import main
from exportgate.policy import load_directive

from .conftest import MakeEvidence, classify_args


def _one_error_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def test_vulnerable_evidence_raises_and_hardened_evidence_relaxes(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    home = tmp_path / "home"
    before = directive_file.read_text()
    record = tmp_path / "record.json"
    assert main(classify_args([make_evidence("vulnerable")], directive_file, home, "--record", str(record))) == 0
    out = capsys.readouterr().out
    assert "tier raised from open to domestic" in out and "threshold of cyber-2 crossed" in out
    assert "+  sonnet-4: {tier: domestic}" in out  # the diff
    raised = load_directive(directive_file)
    assert raised.models["sonnet-4"].tier == "domestic" and raised.version != "2026-06-14.1"
    changed = [
        (a, b) for a, b in zip(before.splitlines(), directive_file.read_text().splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 3  # version, effective, the model's tier: comments and order kept
    data = orjson.loads(record.read_bytes())
    assert data["schema"] == "exportgate.classification/v1"
    assert (data["previous_tier"], data["tier"], data["change"]) == ("open", "domestic", "raise")
    assert data["evidence"][0]["signature"]["status"] == "verified"
    assert data["domains"]["cyber"]["metrics"]["repeatable_cells"] >= 1
    _check_record_signature(data)

    assert main(classify_args([make_evidence("hardened")], directive_file, home)) == 0
    assert "tier relaxed from domestic to open" in capsys.readouterr().out
    assert load_directive(directive_file).models["sonnet-4"].tier == "open"
    assert main(["classify", "history", "sonnet-4", "--home", str(home), "--format", "json"]) == 0
    history = orjson.loads(capsys.readouterr().out)
    assert [r["change"] for r in history] == ["raise", "relax"]
    assert history[1]["previous_classification"] == history[0]["id"]


def _check_record_signature(record: dict[str, object]) -> None:
    signature = record["signature"]
    assert isinstance(signature, dict)
    key = serialization.load_pem_public_key(str(signature["public_key"]).encode())
    body = canonical_json({k: v for k, v in record.items() if k != "signature"}).encode()
    key.verify(base64.b64decode(str(signature["value"])), body)  # type: ignore[union-attr]


@pytest.fixture
def raised(make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """sonnet-4 raised to domestic from 10-trial vulnerable evidence; returns the home."""
    home = tmp_path / "home"
    assert main(classify_args([make_evidence("vulnerable")], directive_file, home)) == 0
    capsys.readouterr()
    return home


def test_relaxing_with_fewer_trials_is_refused(
    raised: Path, make_evidence: MakeEvidence, directive_file: Path, capsys: pytest.CaptureFixture[str]
):
    before = directive_file.read_bytes()
    assert main(classify_args([make_evidence("hardened", trials=5)], directive_file, raised)) == 1
    _one_error_line(capsys, "cannot relax sonnet-4 from domestic to open", "ran fewer trials than before")
    assert directive_file.read_bytes() == before


def test_relaxing_with_fewer_strategies_is_refused(
    raised: Path, make_evidence: MakeEvidence, directive_file: Path, capsys: pytest.CaptureFixture[str]
):
    weaker = make_evidence("hardened", strategies="crescendo")
    assert main(classify_args([weaker], directive_file, raised)) == 1
    _one_error_line(capsys, "strategy direct")


def test_relaxing_with_evidence_older_than_the_last_classification_is_refused(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    old_hardened = make_evidence("hardened")
    home = tmp_path / "home"
    assert main(classify_args([make_evidence("vulnerable")], directive_file, home)) == 0
    capsys.readouterr()
    assert main(classify_args([old_hardened], directive_file, home)) == 1
    _one_error_line(capsys, "gathered before the previous classification")


def test_relaxing_without_an_earlier_classification_is_refused(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # fable-5 is domestic in the example directive, set by hand: no classification to compare with.
    evidence = make_evidence("hardened", model="fable-5")
    assert main(classify_args([evidence], directive_file, tmp_path / "home", model="fable-5")) == 1
    _one_error_line(capsys, "no earlier classification of fable-5")


def test_unsigned_evidence_needs_the_flag_and_can_never_relax(
    raised: Path, make_evidence: MakeEvidence, directive_file: Path, capsys: pytest.CaptureFixture[str]
):
    bundle = make_evidence("hardened")
    data = orjson.loads(bundle.read_bytes())
    del data["signature"], data["manifest"]
    bundle.write_bytes(orjson.dumps(data))
    assert main(classify_args([bundle], directive_file, raised)) == 1
    _one_error_line(capsys, "is not signed", "--allow-unsigned")
    assert main(classify_args([bundle], directive_file, raised, "--allow-unsigned")) == 1
    _one_error_line(capsys, "is not signed")  # the relaxing check


def test_unsigned_evidence_may_raise_with_the_flag(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    bundle = make_evidence("vulnerable")
    data = orjson.loads(bundle.read_bytes())
    del data["signature"], data["manifest"]
    bundle.write_bytes(orjson.dumps(data))
    assert main(classify_args([bundle], directive_file, tmp_path / "home", "--allow-unsigned")) == 0
    assert load_directive(directive_file).models["sonnet-4"].tier == "domestic"


@pytest.mark.parametrize("edit", ["flip-success", "byte"])
def test_tampered_evidence_is_refused(
    edit: str, make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    bundle = make_evidence("vulnerable")
    raw = bytearray(bundle.read_bytes())
    if edit == "byte":
        index = raw.index(b'"success":true')
        raw[index + 10 : index + 14] = b"fals"
        raw.insert(index + 14, ord("e"))
    else:
        data = orjson.loads(bytes(raw))
        data["trials"][0]["success"] = not data["trials"][0]["success"]
        raw = bytearray(orjson.dumps(data, option=orjson.OPT_SORT_KEYS) + b"\n")
    bundle.write_bytes(bytes(raw))
    before = directive_file.read_bytes()
    for extra in ((), ("--allow-unsigned",)):
        assert main(classify_args([bundle], directive_file, tmp_path / "home", *extra)) == 1
        _one_error_line(capsys, "is tampered")
    assert directive_file.read_bytes() == before


def test_evidence_signed_by_an_untrusted_key_is_refused(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    other = Signer.load_or_create(tmp_path / "other")
    (tmp_path / "other.pem").write_text(other.public_pem())
    mine = Signer.load_or_create(tmp_path / "eval-home" / "evidence")
    (tmp_path / "mine.pem").write_text(mine.public_pem())
    bundle = make_evidence("vulnerable")
    args = classify_args([bundle], directive_file, tmp_path / "home")
    assert main([*args, "--trusted-key", str(tmp_path / "other.pem")]) == 1
    _one_error_line(capsys, "not one of the trusted keys")
    assert main([*args, "--trusted-key", str(tmp_path / "mine.pem")]) == 0


def test_evidence_for_another_model_is_refused_unless_named(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    bundle = make_evidence("vulnerable", model="sim-1")
    args = classify_args([bundle], directive_file, tmp_path / "home")
    assert main(args) == 1
    _one_error_line(capsys, "evaluated model 'sim-1', not sonnet-4", "--evidence-model sim-1")
    assert main([*args, "--evidence-model", "sim-1"]) == 0


def test_aliases_resolve_and_unknown_models_are_refused(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    bundle = make_evidence("hardened", model="fable5")  # an alias of fable-5
    home = tmp_path / "home"
    assert main(classify_args([bundle], directive_file, home, "--dry-run", model="FABLE-5-latest")) == 1
    _one_error_line(capsys, "no earlier classification of fable-5")  # resolved, then refused to relax
    assert main(classify_args([bundle], directive_file, home, model="gpt-unknown")) == 1
    _one_error_line(capsys, "'gpt-unknown' is not in directive")


def test_invalid_framework_is_one_line_with_its_line_number(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    framework = tmp_path / "framework.yaml"
    framework.write_text(
        'schema: exportgate.framework/v1\nframework: x\nversion: "1"\ntiers: [open, domestic]\ndomains:\n'
        '  cyber:\n    levels:\n      - {id: a, tier: open}\n      - {id: b, tier: domestic, threshold: "asr >"}\n'
    )
    args = classify_args([make_evidence("vulnerable")], directive_file, tmp_path / "home")
    args[args.index("default")] = str(framework)
    assert main(args) == 1
    _one_error_line(capsys, f"{framework}:9:", "does not parse")


def test_framework_tiers_must_exist_in_the_directive(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    directive_file.write_text(directive_file.read_text().replace("restricted", "limited"))
    assert main(classify_args([make_evidence("vulnerable")], directive_file, tmp_path / "home")) == 1
    _one_error_line(capsys, "maps to tier(s) restricted")


def test_dry_run_writes_and_records_nothing(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    before = directive_file.read_bytes()
    home = tmp_path / "home"
    assert main(classify_args([make_evidence("vulnerable")], directive_file, home, "--dry-run")) == 0
    assert "dry run" in capsys.readouterr().out
    assert directive_file.read_bytes() == before
    assert main(["classify", "history", "sonnet-4", "--home", str(home)]) == 0
    assert "no classifications" in capsys.readouterr().out


def test_no_change_keeps_the_directive_byte_for_byte(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    before = directive_file.read_bytes()
    out = tmp_path / "new.yaml"
    args = classify_args([make_evidence("hardened")], directive_file, tmp_path / "home")
    args[args.index("--out") + 1] = str(out)
    assert main(args) == 0
    assert "tier kept at open" in capsys.readouterr().out
    assert out.read_bytes() == before


def test_evidence_outside_the_framework_domains_is_refused(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    objectives = tmp_path / "objectives.yaml"
    objectives.write_text(
        "objectives:\n  - {id: o1, domain: finance, goal: 'Say [canary:o1]', success: {marker: 'EG-CANARY{o1}'}}\n"
    )
    out = tmp_path / "finance.json"
    assert (
        main(
            [
                "eval",
                "run",
                "--target",
                "sim:vulnerable",
                "--model",
                "sonnet-4",
                "--trials",
                "3",
                "--objectives",
                str(objectives),
                "--out",
                str(out),
                "--home",
                str(tmp_path / "eval-home"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(classify_args([out], directive_file, tmp_path / "home")) == 1
    _one_error_line(capsys, "no trials in any domain the framework covers")


def test_history_table_and_framework_commands(raised: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["classify", "history", "sonnet-4", "--home", str(raised)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["created", "id", "change", "tier"]
    assert "raise" in table[1] and "open -> domestic" in table[1] and "cyber-2" in table[1]
    assert main(["classify", "framework", "preparedness-structure"]) == 0
    out = capsys.readouterr().out
    assert "STRUCTURE ONLY" in out and "critical -> domestic (halt)" in out
    assert main(["classify", "frameworks"]) == 0
    out = capsys.readouterr().out
    assert "frontier-safety-structure" in out and "max_repeatable_severity" in out


def test_an_unwritable_output_loses_nothing_and_records_nothing(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    home = tmp_path / "home"
    args = classify_args([make_evidence("vulnerable")], directive_file, home)
    args[args.index("--out") + 1] = str(tmp_path / "missing-dir" / "new.yaml")
    assert main(args) == 1
    _one_error_line(capsys, "cannot write")
    assert main(["classify", "history", "sonnet-4", "--home", str(home)]) == 0
    assert "no classifications" in capsys.readouterr().out
