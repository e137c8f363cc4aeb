"""One classification end to end: read and check everything, classify, sign the record, rewrite the
directive, keep the record in the history, and only then put the new directive in place.

A relaxation is not applied by the person who ran it: it is kept as a *pending* record with the
directive it would write, and :func:`approve` (by someone else, named) applies it, after checking that
the directive in force is still the one classified.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import stat
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from exportgate._files import output_path, private_file, read_input
from exportgate.errors import ClassificationRefused, ConfigError, ExportgateError, NotFoundError
from exportgate.policy import load_directive
from exportgate.signing import Signer, TrustedKeys, canonical

from ._classify import classify
from ._evidence import Evidence, read_evidence, target_fingerprint
from ._framework import load_framework
from ._history import ClassificationHistory, PendingChange
from ._record import ClassificationRecord
from ._rewrite import directive_diff, rewrite_directive

__all__ = ["CLOCK_SKEW", "HISTORY", "NAME", "Outcome", "approve", "person", "run_classification", "who"]

HISTORY = "classifications.db"


@dataclass(frozen=True)
class Outcome:
    record: ClassificationRecord
    diff: str  # unified diff of the directive ("" when the tier is unchanged)
    written: bool  # the directive was written (False for a dry run and for a pending relaxation)
    path: Path | None = None  # where, when written


def who(name: str | None) -> str:
    """The person named (checked and normalised by :func:`person`), or the operating-system user running
    the command."""
    chosen = (name or "").strip()
    if chosen:
        return person(chosen)
    try:
        return person(getpass.getuser())
    except (OSError, KeyError, ConfigError):
        return "unknown"


def run_classification(
    *,
    evidence: Sequence[str | Path],
    framework: str | Path,
    directive: str | Path,
    model: str,
    out: str | Path,
    home: Path,
    signer: Signer | None,
    trusted: TrustedKeys,
    tool_version: str,
    allow_unsigned: bool = False,
    evidence_model: str | None = None,
    record_path: str | Path | None = None,
    dry_run: bool = False,
    by: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    if not evidence:
        raise ConfigError("give at least one evidence bundle")
    if not dry_run:  # where it will write, checked before anything is read or recorded
        output_path(out, "the directive")
        if record_path is not None:
            output_path(record_path, "the record")
    the_framework = load_framework(framework)
    current = load_directive(directive)
    text = _read_text(directive)
    bundles = [read_evidence(p, allow_unsigned=allow_unsigned, trusted=trusted) for p in evidence]
    _distinct(bundles, now)
    history = ClassificationHistory(home / HISTORY, read_only=dry_run)
    try:
        resolved = current.resolve_model(model) or model
        moment = now or datetime.now(UTC)
        record = classify(framework=the_framework, directive=current, model=model, evidence=bundles,
                          history=history.records(resolved), now=moment, tool_version=tool_version,
                          evidence_model=evidence_model, by=who(by))  # fmt: skip
        new_text, new_version, diff = text, current.version, ""
        if record.change != "none":
            new_text, rewritten = rewrite_directive(text, current, record.model, record.tier, moment)
            new_version, diff = rewritten.version, directive_diff(text, new_text, str(directive), str(out))
        record = replace(
            record,
            directive={**record.directive, "file": Path(directive).name},
            new_directive={
                "file": Path(out).name,
                "version": new_version,
                "sha256": hashlib.sha256(new_text.encode()).hexdigest(),
            },
        )
        if dry_run:  # shown, not signed: a dry run makes no key and records nothing
            return Outcome(record, diff, written=False)
        if signer is None:
            raise ConfigError("a classification that is recorded must be signed: give a signer")
        record = record.signed(signer)
        if record.status == "pending":
            history.add(record, (new_text, str(Path(out).resolve()), str(Path(directive).resolve())))
            try:
                _write_record(record, record_path)
            except ConfigError as exc:
                history.remove(record.id)  # a pending change nobody was told of is not kept either
                raise ConfigError(f"{exc.message}; nothing was recorded") from None
            return Outcome(record, diff, written=False)
        _commit(record, new_text, Path(out), Path(record_path) if record_path else None, history)
    finally:
        history.close()
    return Outcome(record, diff, written=True, path=Path(out))


def approve(
    record_id: str, *, by: str, home: Path, signer: Signer, trusted: TrustedKeys,
    record_path: str | Path | None = None, now: datetime | None = None,
) -> Outcome:  # fmt: skip
    """Apply a pending relaxation: by someone other than who ran it, while the directive it was classified
    against is still in force. The approval is its own signed record (``status: approval``)."""
    if not by.strip():
        raise ConfigError("name the approver", remedy=("by", "NAME"))
    approver = person(by)
    history = ClassificationHistory(home / HISTORY)
    try:
        pending = history.pending(record_id)
        if pending is None:
            known = history.get(record_id)
            if known is None:
                raise NotFoundError(f"no classification {record_id} in {history.path}")
            raise ClassificationRefused(f"classification {record_id} is not a pending relaxation ({known.status})")
        done = history.approval_of(record_id)
        if done is not None:
            raise ClassificationRefused(f"classification {record_id} was already approved, by {done.approved_by}"
                                        f" (record {done.id})")  # fmt: skip
        record = pending.record
        if _same_person(approver, record.by):
            raise ClassificationRefused(f"{record.by} ran classification {record_id}; a relaxation needs another"
                                        f" person's approval, not {approver}'s")  # fmt: skip
        _check_pending(pending, trusted)
        _check_unchanged(record, pending.directive)
        latest = [r for r in history.records(record.model) if r.applies]
        if latest and latest[-1].created > record.created:
            raise ClassificationRefused(f"{record.model} was classified again ({latest[-1].id}) after"
                                        f" {record_id}; classify anew")  # fmt: skip
        moment = (now or datetime.now(UTC)).isoformat(timespec="microseconds").replace("+00:00", "Z")
        approval = replace(record, id=f"cls-{uuid.uuid4().hex[:16]}", created=moment, status="approval", by=approver,
                           approves=record.id, approved_by=approver, signature=None).signed(signer)  # fmt: skip
        _commit(approval, pending.text, Path(pending.out), Path(record_path) if record_path else None, history)
    finally:
        history.close()
    return Outcome(approval, "", written=True, path=Path(pending.out))


#: Evidence dated this far after the clock is refused (clocks drift; evidence from the future does not).
CLOCK_SKEW = timedelta(minutes=5)


def _distinct(bundles: Sequence[Evidence], now: datetime | None) -> None:
    """Each trial counts once. The same bundle twice (by content, under any name) is refused, and so are
    two bundles that share a trial: the same target, objective, strategy and trial seed, as two runs of
    one campaign do, whatever else (rules, prices) differs between them. Evidence dated after now is
    refused."""
    seen: dict[str, str] = {}
    trials: dict[tuple[str, str, str, str], str] = {}
    moment = now or datetime.now(UTC)
    for item in bundles:
        if item.sha256 in seen:
            raise ClassificationRefused(f"evidence {item.path} is {seen[item.sha256]} again (the same bundle counts"
                                        " once)")  # fmt: skip
        seen[item.sha256] = item.path
        target = {k: v for k, v in target_fingerprint(item.bundle.target).items() if k != "served_models"}
        where = hashlib.sha256(canonical(target)).hexdigest()
        for trial in item.bundle.trials:
            key = (where, str(trial.get("objective_id")), str(trial.get("strategy")), str(trial.get("seed")))
            if key in trials and trials[key] != item.path:
                raise ClassificationRefused(f"evidence {item.path} and {trials[key]} hold the same trial (target,"
                                            f" {key[1]}/{key[2]}, seed {key[3]}): one campaign run twice counts"
                                            " once")  # fmt: skip
            trials[key] = item.path
        if item.created > moment + CLOCK_SKEW:
            raise ClassificationRefused(f"evidence {item.path} is dated {item.bundle.created}, after now")


#: Names of people (``by``): ASCII user names or e-mail addresses, compared without case, so that no two
#: spellings (full-width letters, look-alike scripts, invisible characters) name one person twice.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")


def person(name: str) -> str:
    """A ``by`` name checked and normalised (stripped, lower case); refused unless it is a :data:`NAME`."""
    cleaned = name.strip()
    if not NAME.fullmatch(cleaned):
        raise ConfigError(f"{cleaned[:80]!r} is not a name exportgate records: use an ASCII user name or e-mail"
                          " address (letters, digits, . _ @ + -), so that one person has one spelling")  # fmt: skip
    return cleaned.lower()


def _same_person(a: str, b: str | None) -> bool:
    return b is not None and person(a) == b.strip().lower()


def _check_pending(pending: PendingChange, trusted: TrustedKeys) -> None:
    """The pending change is what was signed: its record verifies by a trusted key, the directive text
    kept with it is the one the record names (SHA-256), and so are the files; and the file it would
    replace holds the directive classified against (or does not exist yet), so an approval never undoes
    a change made since."""
    record = pending.record
    check = record.check(trusted)
    if not check.ok:
        raise ClassificationRefused(f"pending classification {record.id} does not verify: {check.message}")
    planned = record.new_directive or {}
    if hashlib.sha256(pending.text.encode()).hexdigest() != planned.get("sha256"):
        raise ClassificationRefused(f"the directive kept with {record.id} is not the one its record names; not applied")
    if Path(pending.out).name != planned.get("file") or Path(pending.directive).name != record.directive.get("file"):
        raise ClassificationRefused(f"the files kept with {record.id} are not the ones its record names; not applied")
    out = Path(pending.out)
    if out.exists() and out.resolve() != Path(pending.directive).resolve():
        try:
            current = hashlib.sha256(read_input(out, "the directive")).hexdigest()
        except ConfigError as exc:
            raise ClassificationRefused(f"cannot read {out}: {exc.message}") from None
        if current not in (record.directive.get("sha256"), planned.get("sha256")):
            raise ClassificationRefused(f"{out} changed since classification {record.id}; classify anew")


def _check_unchanged(record: ClassificationRecord, directive: str) -> None:
    try:
        current = load_directive(directive)
    except ExportgateError as exc:
        raise ClassificationRefused(f"cannot read the directive {directive} the relaxation was classified against:"
                                    f" {exc}") from None  # fmt: skip
    if current.sha256 != record.directive.get("sha256"):
        was = record.directive.get("version")
        raise ClassificationRefused(f"the directive {directive} changed since classification {record.id} (version"
                                    f" {current.version}, not {was}); classify anew")  # fmt: skip


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read directive {path}: {exc}") from None


def _write_record(record: ClassificationRecord, path: str | Path | None) -> None:
    if path is None:
        return
    try:
        with private_file(Path(path), "wb") as handle:  # it names who ran and approved: owner-only
            handle.write(record.to_json(indent=True))
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def _commit(
    record: ClassificationRecord, text: str, out: Path, record_path: Path | None, history: ClassificationHistory
) -> None:
    """Directive to a temporary file, record into the history, then the directive into place: a record
    is never lost, and a directive never appears without its record."""
    if out.is_dir():
        raise ConfigError(f"cannot write {out}: it is a directory")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        if out.exists():
            os.chmod(tmp, stat.S_IMODE(out.stat().st_mode))  # the directive keeps its permissions
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
    history.add(record)
    try:
        _write_record(record, record_path)
        os.replace(tmp, out)
    except (OSError, ConfigError) as exc:
        history.remove(record.id)  # not in force: not on record either
        message = exc.message if isinstance(exc, ConfigError) else f"cannot write {out}: {exc.strerror or exc}"
        raise ConfigError(f"{message}; nothing was recorded") from None
    finally:
        tmp.unlink(missing_ok=True)
