"""Ways to relax a tier without the evidence it needs, found by a red-team pass over issue 16, each
refused: one bundle given twice, a file that changes between two reads, other sampling settings, a second
spelling of the same person, and what a failed write leaves behind."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from exportgate.classify import ClassificationHistory
from exportgate.cli import main
from exportgate.errors import ClassificationRefused
from exportgate.eval import load_bundle, write_bundle
from exportgate.signing import home_signer

from .conftest import MakeEvidence, classify_args, one_error_line


def test_one_bundle_counts_once(raised: Path, make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]):  # fmt: skip
    thin = make_evidence("hardened", trials=1)
    before = directive_file.read_bytes()
    assert main(classify_args([thin] * 10, directive_file, raised)) == 1
    one_error_line(capsys, "again (the same bundle counts once)")
    copy = tmp_path / "copy.json"
    shutil.copy(thin, copy)
    assert main(classify_args([thin, copy], directive_file, raised)) == 1
    one_error_line(capsys, "the same bundle counts once")
    assert directive_file.read_bytes() == before


def test_two_runs_of_one_campaign_are_one_campaign(raised: Path, make_evidence: MakeEvidence, directive_file: Path,
                                                  capsys: pytest.CaptureFixture[str]):  # fmt: skip
    """The same settings and seed give the same trials again: two such bundles are not twice the trials."""
    first, second = make_evidence("hardened", trials=5), make_evidence("hardened", trials=5)
    capsys.readouterr()
    assert main(classify_args([first, second], directive_file, raised)) == 1
    one_error_line(capsys, "hold the same trial", "one campaign run twice counts once")


def test_the_bytes_classified_are_the_bytes_verified(raised: Path, make_evidence: MakeEvidence, directive_file: Path,
                                                    monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    """A file that changes between two reads (a FIFO serving a forgery, then the genuine bundle) cannot
    split verify from use: the bundle is opened once, and the bytes verified are the bytes classified."""
    genuine = make_evidence("hardened", trials=10)
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> int:
        if str(path) == str(genuine):
            opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    assert main(classify_args([genuine], directive_file, raised, "--dry-run")) == 0
    assert len(opened) == 1


def test_a_fifo_or_a_device_is_not_read_as_evidence(raised: Path, directive_file: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]):  # fmt: skip
    fifo = tmp_path / "evidence.json"
    os.mkfifo(fifo)
    capsys.readouterr()
    for path in (fifo, Path("/dev/zero")):
        assert main(classify_args([path], directive_file, raised)) == 1
        one_error_line(capsys, "not a regular file")


def test_other_sampling_settings_are_another_target(raised: Path, directive_file: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]):  # fmt: skip
    out = tmp_path / "hot.json"
    assert main(["eval", "run", "--target", "sim:hardened", "--model", "sonnet-4", "--trials", "10", "--strategies",
                 "direct,crescendo", "--temperature", "2", "--max-tokens", "1", "--out", str(out),
                 "--home", str(raised)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(classify_args([out], directive_file, raised)) == 1
    one_error_line(capsys, "evaluated another target", "max_tokens=512")


@pytest.mark.parametrize("spelling", ["ａｌｉｃｅ", "ali\u200bce", "\u0430lice", "alice\u00ad", "al ice"])
def test_a_name_has_one_spelling(raised: Path, make_evidence: MakeEvidence, directive_file: Path, spelling: str,
                                 capsys: pytest.CaptureFixture[str]):  # fmt: skip
    assert main(classify_args([make_evidence("hardened")], directive_file, raised, "--by", "alice")) == 0
    pending = next(line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("record cls-"))
    assert main(["classify", "approve", pending, "--by", spelling, "--home", str(raised)]) == 1
    one_error_line(capsys, "is not a name exportgate records")
    assert main(["classify", "approve", pending, "--by", "Alice", "--home", str(raised)]) == 1
    one_error_line(capsys, "needs another person's approval")


def test_an_approval_is_recorded_once_even_when_two_race(
    raised: Path, make_evidence: MakeEvidence, directive_file: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(classify_args([make_evidence("hardened")], directive_file, raised, "--by", "alice")) == 0
    capsys.readouterr()
    history = ClassificationHistory(raised / "classifications.db")
    try:
        pending = next(r for r in history.records("sonnet-4") if r.status == "pending")
        approval = replace(pending, id="cls-a", status="approval", approves=pending.id, approved_by="bob")
        history.add(approval)  # as if the other approver's check ran before this insert
        with pytest.raises(ClassificationRefused, match="already approved, by bob"):
            history.add(replace(approval, id="cls-b", approved_by="carol"))
        assert [r.id for r in history.records("sonnet-4") if r.approves == pending.id] == ["cls-a"]
    finally:
        history.close()


def test_a_directive_that_cannot_be_written_leaves_no_record(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    home = tmp_path / "home"
    evidence = make_evidence("vulnerable")
    args = classify_args([evidence], directive_file, home)
    args[args.index("--out") + 1] = str(tmp_path)  # a directory
    capsys.readouterr()
    assert main(args) == 1
    one_error_line(capsys, "is not a regular file")
    assert main(["classify", "history", "sonnet-4", "--home", str(home), "--format", "json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == []


def test_the_directive_keeps_its_mode_and_the_record_is_owner_only(make_evidence: MakeEvidence,
                                                                  directive_file: Path, tmp_path: Path):  # fmt: skip
    directive_file.chmod(0o640)
    record = tmp_path / "record.json"
    assert main(classify_args([make_evidence("vulnerable")], directive_file, tmp_path / "home", "--record",
                              str(record))) == 0  # fmt: skip
    assert stat.S_IMODE(directive_file.stat().st_mode) == 0o640
    assert stat.S_IMODE(record.stat().st_mode) == 0o600


def test_evidence_from_the_future_is_refused(raised: Path, make_evidence: MakeEvidence, directive_file: Path,
                                            tmp_path: Path, capsys: pytest.CaptureFixture[str]):  # fmt: skip
    bundle, _ = load_bundle(make_evidence("hardened"))
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat(timespec="microseconds").replace("+00:00", "Z")
    future = tmp_path / "future.json"
    write_bundle(future, replace(bundle, created=later, manifest=None, signature=None).signed(home_signer(raised)))
    capsys.readouterr()
    assert main(classify_args([future], directive_file, raised)) == 1
    one_error_line(capsys, "after now")


def test_two_runs_that_differ_only_in_rules_are_still_one_campaign(
    raised: Path, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    paths = []
    for name, extra in (("a", []), ("b", ["--min-trials", "9", "--price-in", "1"])):
        out = tmp_path / f"{name}.json"
        args = ["eval", "run", "--target", "sim:hardened", "--model", "sonnet-4", "--trials", "5",
                "--strategies", "direct,crescendo", "--out", str(out), "--home", str(raised), *extra]  # fmt: skip
        assert main(args) == 0
        paths.append(out)
    capsys.readouterr()
    assert main(classify_args(paths, directive_file, raised)) == 1
    one_error_line(capsys, "hold the same trial")


def _pending(raised: Path, make_evidence: MakeEvidence, directive_file: Path, capsys: pytest.CaptureFixture[str],
             *extra: str) -> str:  # fmt: skip
    args = classify_args([make_evidence("hardened")], directive_file, raised, "--by", "alice", *extra)
    assert main(args) == 0
    return next(line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("record cls-"))


def test_an_approval_writes_only_the_directive_that_was_signed(
    raised: Path, make_evidence: MakeEvidence, directive_file: Path, capsys: pytest.CaptureFixture[str]
):
    pending = _pending(raised, make_evidence, directive_file, capsys)
    before = directive_file.read_bytes()
    db = sqlite3.connect(raised / "classifications.db")
    with db:
        db.execute("UPDATE pending SET text = replace(text, 'tier: domestic', 'tier: open') WHERE id = ?", (pending,))
    db.close()
    assert main(["classify", "approve", pending, "--by", "bob", "--home", str(raised)]) == 1
    one_error_line(capsys, "is not the one its record names")
    assert directive_file.read_bytes() == before


def test_an_approval_never_undoes_a_change_made_since(
    raised: Path, make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """The relaxation is to be written to another file; that file changes meanwhile (another
    classification, an operator): approving would overwrite the change, so it is refused."""
    other = tmp_path / "next.yaml"
    pending = _pending(raised, make_evidence, directive_file, capsys, "--out", str(other))
    later = directive_file.read_text().replace("mythos-5: {tier: domestic}", "mythos-5: {tier: domestic}  # kept")
    other.write_text(later)
    assert main(["classify", "approve", pending, "--by", "bob", "--home", str(raised)]) == 1
    one_error_line(capsys, "changed since classification")
    assert other.read_text() == later


def test_a_pending_change_whose_record_cannot_be_written_is_not_kept(raised: Path, make_evidence: MakeEvidence,
                                                                    directive_file: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]):  # fmt: skip
    record = tmp_path / "record.json"
    record.mkdir()
    args = classify_args([make_evidence("hardened")], directive_file, raised, "--record", str(record))
    assert main(args) == 1
    one_error_line(capsys, "not a regular file")
    assert main(["classify", "history", "sonnet-4", "--home", str(raised), "--format", "json"]) == 0
    assert [r["status"] for r in orjson.loads(capsys.readouterr().out)] == ["applied"]


def test_a_framework_cannot_reorder_the_directives_tiers(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Listed backwards, a framework would make domestic -> open a "raise", applied at once by one person."""
    backwards = tmp_path / "backwards.yaml"
    backwards.write_text(
        "schema: exportgate.framework/v1\nframework: backwards\nversion: '1'\ntiers: [domestic, restricted, open]\n"
        "domains:\n  cyber:\n    evidence_domains: [cyber, cyber-canary, bio-canary]\n    levels:\n"
        "      - {id: c0, tier: domestic, decision: restrict}\n"
        "      - {id: c1, threshold: 'trials >= 1', tier: open, decision: deploy}\n"
    )
    before = directive_file.read_bytes()
    args = classify_args([make_evidence("typical")], directive_file, tmp_path / "home", model="mythos-5")
    args[args.index("--framework") + 1] = str(backwards)
    capsys.readouterr()
    assert main(args) == 1
    one_error_line(capsys, "a framework may not reorder them")
    assert directive_file.read_bytes() == before


def test_relaxing_under_another_framework_is_refused(raised: Path, make_evidence: MakeEvidence,
                                                    directive_file: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]):  # fmt: skip
    """A copy of the default framework with weaker rules (same id and version) would see nothing repeatable."""
    from exportgate.classify import bundled_frameworks

    weak = tmp_path / "weak.yaml"
    text = bundled_frameworks()["default"].read_text()
    weak.write_text(
        text.replace("repeatable_threshold: 0.2", "repeatable_threshold: 0.2\nrepeatable_min_trials: 1000000")
    )
    args = classify_args([make_evidence("vulnerable")], directive_file, raised, "--by", "alice")
    args[args.index("--framework") + 1] = str(weak)
    capsys.readouterr()
    assert main(args) == 1
    one_error_line(capsys, "classify under the new framework first")


def test_a_condition_that_cannot_be_evaluated_is_one_line(
    make_evidence: MakeEvidence, directive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from exportgate.classify import bundled_frameworks

    text = bundled_frameworks()["default"].read_text()
    evidence = make_evidence("vulnerable")
    for condition in ("100 / (successes - successes) > 0", "successes * 1000000000000000000 > 0"):
        framework = tmp_path / "f.yaml"
        framework.write_text(re.sub(r'threshold: ".*"', f'threshold: "{condition}"', text))
        args = classify_args([evidence], directive_file, tmp_path / "home", "--dry-run")
        args[args.index("--framework") + 1] = str(framework)
        capsys.readouterr()
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "cannot be evaluated" in err and "Traceback" not in err, err
