"""Ways to relax a tier without the evidence it needs, found by a red-team pass over issue 16, each
refused: one bundle given twice, a file that changes between two reads, other sampling settings, a second
spelling of the same person, and what a failed write leaves behind."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from exportgate.classify import ClassificationHistory
from exportgate.cli import main
from exportgate.errors import ClassificationRefused
from exportgate.eval import load_bundle, write_bundle
from exportgate.signing import canonical, home_signer

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
    one_error_line(capsys, "are one campaign (the same settings and seed)")


def test_the_bytes_classified_are_the_bytes_verified(raised: Path, make_evidence: MakeEvidence, directive_file: Path,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]):  # fmt: skip
    """A FIFO serves a forged bundle to the first read and a genuine one to the second: read once, the
    forgery is what is verified, and refused."""
    genuine = make_evidence("hardened", trials=10)
    data = orjson.loads(genuine.read_bytes())
    data["created"] = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")  # edited
    forged = canonical(data) + b"\n"
    assert forged != genuine.read_bytes()
    fifo = tmp_path / "evidence.json"
    os.mkfifo(fifo)

    def serve() -> None:
        for payload in (forged, genuine.read_bytes()):
            try:
                with fifo.open("wb") as handle:
                    handle.write(payload)
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=serve, daemon=True)
    writer.start()
    before = directive_file.read_bytes()
    capsys.readouterr()
    assert main(classify_args([fifo], directive_file, raised)) == 1
    one_error_line(capsys, "is tampered")
    assert directive_file.read_bytes() == before
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # let the writer's second open finish
    os.close(fd)
    writer.join(timeout=5)


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
    one_error_line(capsys, "is a directory")
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
