"""``exportgate classify``: evidence -> control tier -> a new directive; ``classify history``, frameworks."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from exportgate import __version__
from exportgate._files import read_input
from exportgate.actions import open_actions
from exportgate.classify import (
    HISTORY,
    METRICS,
    ClassificationHistory,
    ClassificationRecord,
    Outcome,
    approve,
    bundled_frameworks,
    load_framework,
)
from exportgate.classify import run_classification as classify_evidence
from exportgate.config import Settings
from exportgate.errors import ConfigError, NotFoundError
from exportgate.signing import signer_for, trusted_for

from ._common import DefaultCommandGroup, HomeOption, cli_actor, existing_home, settings_for
from ._output import Format, emit_json, say, shown, table

__all__ = ["app"]


app = typer.Typer(
    cls=DefaultCommandGroup,
    no_args_is_help=True,
    help="Turn evaluation evidence into a control tier and a new directive (exportgate classify EVIDENCE... "
    "--framework F --directive CURRENT --model M --out NEW).",
)


TrustOption = Annotated[
    list[Path] | None,
    typer.Option("--trust", help="Also trust this signer's public key (PEM; repeat). The home's keys are trusted."),
]
ByOption = Annotated[str | None, typer.Option("--by", help="Who runs this (recorded) [default: the OS user].")]


@app.command("run")
def run(
    evidence: Annotated[list[Path], typer.Argument(help="Evidence bundles (exportgate eval run --out).")],
    framework: Annotated[str, typer.Option(help="Framework file, or a bundled one: default or a template name.")],
    directive: Annotated[Path, typer.Option(help="The directive in force.")],
    model: Annotated[str, typer.Option(help="The model to classify (a name or alias in the directive).")],
    out: Annotated[Path, typer.Option(help="Where to write the new directive (may be the same file).")],
    record: Annotated[Path | None, typer.Option(help="Also write the classification record (JSON) here.")] = None,
    allow_unsigned: Annotated[bool, typer.Option(help="Accept unsigned evidence (it can never relax).")] = False,
    trust: TrustOption = None,
    trusted_key: Annotated[list[Path] | None, typer.Option("--trusted-key", hidden=True)] = None,
    evidence_model: Annotated[
        str | None, typer.Option(help="The name the evidence's target used for the model, if not a directive name.")
    ] = None,
    by: ByOption = None,
    dry_run: Annotated[bool, typer.Option(help="Classify and show the result; write and record nothing.")] = False,
    publish: Annotated[
        bool, typer.Option(help="Also publish the new directive to the state: every gateway on it enforces it.")
    ] = False,
    output: Annotated[Format, typer.Option("--format", help="text or json (the record).")] = Format.text,
    home: HomeOption = None,
) -> None:
    """Classify MODEL from evidence under a framework and write the directive with its new tier.

    Raising (or keeping) a tier is applied at once. Relaxing needs evidence from a trusted signer and is
    kept pending until someone else approves it: exportgate classify approve ID --by NAME.
    """
    settings = settings_for(home)
    outcome = classify_evidence(
        evidence=evidence, framework=framework, directive=directive, model=model, out=out,
        home=settings.home_path, signer=None if dry_run else signer_for(settings),
        trusted=trusted_for(settings, [*(trust or []), *(trusted_key or [])]), tool_version=__version__,
        allow_unsigned=allow_unsigned, evidence_model=evidence_model, record_path=record, dry_run=dry_run, by=by,
    )  # fmt: skip
    _print_outcome(outcome, out, output, dry_run=dry_run)
    if publish and not dry_run:
        _publish(settings, outcome, by)


def _publish(settings: Settings, outcome: Outcome, by: str | None) -> None:
    """Publish what a classification applied (a pending relaxation publishes nothing until approved)."""
    result = outcome.record
    if not outcome.written or outcome.path is None or result.change == "none":
        typer.echo("nothing published (no change applied)", err=True)
        return
    with open_actions(settings, cli_actor(by)) as act:
        published = act.publish_directive(read_input(outcome.path, "directive"), source=str(outcome.path),
                                          note=f"classification {result.id}: {result.change}")  # fmt: skip
    typer.echo(f"published v{published.version} ({published.directive_id} {published.directive_version}): every "
               "gateway on this state enforces it")  # fmt: skip


def _print_outcome(outcome: Outcome, out: Path, output: Format, *, dry_run: bool = False) -> None:
    result = outcome.record
    if output is Format.json:
        emit_json(result.as_dict())
        return
    for line in result.rationale:
        say(shown(line, one_line=True))
    if result.controls:
        say(shown(f"controls required: {'; '.join(result.controls)}", one_line=True))
    key = result.signature.key_id if result.signature else "none"
    if dry_run:
        pending = (
            ": a relaxation, which would wait PENDING another person's approval" if result.status == "pending" else ""
        )
        typer.echo(f"dry run{pending}; nothing written or recorded")
    elif result.status == "pending":
        typer.echo(f"record {result.id} signed by key {key}: a PENDING relaxation, not applied. Someone other than"
                   f" {result.by} applies it with: exportgate classify approve {result.id} --by NAME")  # fmt: skip
    else:
        what = f"approval of {result.approves} by {result.approved_by}" if result.approves else "record"
        typer.echo(f"{what} {result.id} signed by key {key}, kept in the history")
        new = result.new_directive or {}
        typer.echo(f"wrote {out} ({'version ' + str(new.get('version')) if result.change != 'none' else 'unchanged'})")
    if outcome.diff:
        typer.echo(outcome.diff.rstrip("\n"))


@app.command("approve")
def approve_command(
    record_id: Annotated[str, typer.Argument(metavar="ID", help="The pending classification's id.")],
    by: Annotated[str, typer.Option("--by", help="Who approves (must not be who ran the classification).")],
    record: Annotated[Path | None, typer.Option(help="Also write the approval record (JSON) here.")] = None,
    publish: Annotated[bool, typer.Option(help="Also publish the approved directive to the state.")] = False,
    output: Annotated[Format, typer.Option("--format", help="text or json (the record).")] = Format.text,
    home: HomeOption = None,
) -> None:
    """Apply a pending relaxation: writes the directive it was classified to, and a signed approval record."""
    settings = existing_home(home)
    outcome = approve(record_id, by=by, home=settings.home_path, signer=signer_for(settings),
                      trusted=trusted_for(settings), record_path=record)  # fmt: skip
    out = Path(str((outcome.record.new_directive or {}).get("file", "?")))
    _print_outcome(outcome, out, output)
    if publish:
        _publish(settings, outcome, by)


@app.command("show")
def show(
    record_id: Annotated[str, typer.Argument(metavar="ID", help="A classification's id.")],
    home: HomeOption = None,
) -> None:
    """Print one classification record (JSON)."""
    history = ClassificationHistory(existing_home(home).home_path / HISTORY, read_only=True)
    try:
        found = history.get(record_id)
    finally:
        history.close()
    if found is None:
        raise NotFoundError(f"no classification {record_id} in {history.path}")
    typer.echo(found.to_json(indent=True).decode(), nl=False)


@app.command("verify")
def verify(
    record_file: Annotated[Path, typer.Argument(metavar="RECORD", help="A classification record (JSON file).")],
    trust: TrustOption = None,
    output: Annotated[Format, typer.Option("--format", help="text or json.")] = Format.text,
    home: HomeOption = None,
) -> None:
    """Check a classification record's signature and its signer's trust. Exit 0 verified, 1 not."""
    try:
        the_record = ClassificationRecord.from_json(record_file.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {record_file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{record_file} is not a classification record: {exc}") from None
    check = the_record.check(trusted_for(settings_for(home), trust or []))
    if output is Format.json:
        emit_json({"id": the_record.id, **check.as_dict()})
    elif check.ok:
        typer.echo(f"verified: {the_record.id} ({the_record.status}, {the_record.change} to {the_record.tier}) "
                   f"{check.message}")  # fmt: skip
    else:
        typer.echo(f"{'UNTRUSTED' if check.intact else 'TAMPERED'}: {the_record.id}: {check.message}", err=True)
    raise typer.Exit(0 if check.ok else 1)


@app.command("history")
def history(
    model: Annotated[str, typer.Argument(help="Model name as classified (canonical).")],
    output: Annotated[Format, typer.Option("--format", help="text or json.")] = Format.text,
    home: HomeOption = None,
) -> None:
    """List the classifications of MODEL, oldest first."""
    store = ClassificationHistory(existing_home(home).home_path / HISTORY, read_only=True)
    try:
        records = store.records(model)
    finally:
        store.close()
    if output is Format.json:
        emit_json([r.as_dict() for r in records])
        return
    if not records:
        typer.echo(f"no classifications of {model}")
        return
    rows = [
        (r.created[:19] + "Z", r.id, r.status if not r.approves else f"approves {r.approves}", r.change,
         f"{r.previous_tier} -> {r.tier}", r.level, f"{r.framework['id']}@{r.framework['version']}",
         str((r.new_directive or {}).get("version", "")), r.by or "", len(r.evidence))
        for r in records
    ]  # fmt: skip
    table(("created", "id", "status", "change", "tier", "level", "framework", "directive", "by", "evidence"), rows)


@app.command("framework")
def framework_check(
    framework: Annotated[str, typer.Argument(help="Framework file, or a bundled name.")],
) -> None:
    """Validate a framework and show its domains, levels and conditions."""
    loaded = load_framework(framework)
    label = " (STRUCTURE ONLY: placeholder thresholds)" if loaded.structure_only else ""
    line = partial(shown, one_line=True)
    say(line(f"{loaded.id} {loaded.version}: valid{label}; tiers {' < '.join(loaded.tiers)}; sha256 {loaded.sha256}"))
    rules = loaded.rules
    typer.echo(f"rules: a cell is repeatable with at least {rules.min_trials} trials and {rules.min_successes}"
               f" successes and a Wilson lower bound of at least {rules.threshold:g}; alpha"
               f" {rules.alpha:g}")  # fmt: skip
    for domain in loaded.domains:
        say(line(f"{domain.id} (evidence domains: {', '.join(sorted(domain.evidence_domains))})"))
        for level in domain.levels:
            condition = level.threshold.source if level.threshold else "floor"
            alert = f"; alert: {level.alert.source}" if level.alert else ""
            say("  " + line(f"{level.id} -> {level.tier} ({level.decision}): {condition}{alert}"))


@app.command("frameworks")
def frameworks() -> None:
    """List the bundled frameworks and the metrics conditions may use."""
    for name, path in bundled_frameworks().items():
        loaded = load_framework(path)
        typer.echo(f"{name:<28} {loaded.description.split('. ')[0].rstrip('.')}")
    typer.echo("\nmetrics:")
    for name, (kind, meaning) in METRICS.items():
        typer.echo(f"  {name:<24} {kind:<7} {meaning}")
