"""``exportgate classify``: evidence -> control tier -> a new directive; ``classify history``, frameworks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exportgate import __version__
from exportgate.audit import load_public_key
from exportgate.classify import HISTORY, METRICS, ClassificationHistory, bundled_frameworks, load_framework
from exportgate.classify import run_classification as classify_evidence

from ._common import DefaultCommandGroup, HomeOption, existing_home, settings_for
from ._output import Format, emit_json, table

__all__ = ["app"]


app = typer.Typer(
    cls=DefaultCommandGroup,
    no_args_is_help=True,
    help="Turn evaluation evidence into a control tier and a new directive (exportgate classify EVIDENCE... "
    "--framework F --directive CURRENT --model M --out NEW).",
)


@app.command("run")
def run(
    evidence: Annotated[list[Path], typer.Argument(help="Evidence bundles (exportgate eval run --out).")],
    framework: Annotated[str, typer.Option(help="Framework file, or a bundled one: default or a template name.")],
    directive: Annotated[Path, typer.Option(help="The directive in force.")],
    model: Annotated[str, typer.Option(help="The model to classify (a name or alias in the directive).")],
    out: Annotated[Path, typer.Option(help="Where to write the new directive (may be the same file).")],
    record: Annotated[Path | None, typer.Option(help="Also write the classification record (JSON) here.")] = None,
    allow_unsigned: Annotated[bool, typer.Option(help="Accept unsigned evidence (it can never relax).")] = False,
    trusted_key: Annotated[
        list[Path] | None, typer.Option(help="Accept evidence signed by this key only (PEM; repeatable).")
    ] = None,
    evidence_model: Annotated[
        str | None, typer.Option(help="The name the evidence's target used for the model, if not a directive name.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Classify and show the result; write and record nothing.")] = False,
    output: Annotated[Format, typer.Option("--format", help="text or json (the record).")] = Format.text,
    home: HomeOption = None,
) -> None:
    """Classify MODEL from evidence under a framework and write the directive with its new tier."""
    outcome = classify_evidence(
        evidence=evidence, framework=framework, directive=directive, model=model, out=out,
        home=settings_for(home).home_path, tool_version=__version__, allow_unsigned=allow_unsigned,
        trusted=[load_public_key(k) for k in trusted_key or []], evidence_model=evidence_model,
        record_path=record, dry_run=dry_run,
    )  # fmt: skip
    result = outcome.record
    if output is Format.json:
        emit_json(result)
        return
    for line in result["rationale"]:
        typer.echo(line)
    if result["controls"]:
        typer.echo(f"controls required: {'; '.join(result['controls'])}")
    if not outcome.written:
        typer.echo("dry run: nothing written or recorded")
    else:
        typer.echo(f"record {result['id']} signed by key {result['signature']['key_id']}, kept in the history")
        new = result["new_directive"]
        typer.echo(f"wrote {out} ({'version ' + new['version'] if result['change'] != 'none' else 'unchanged'})")
    if outcome.diff:
        typer.echo(outcome.diff.rstrip("\n"))


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
        emit_json(records)
        return
    if not records:
        typer.echo(f"no classifications of {model}")
        return
    rows = [
        (r["created"][:19] + "Z", r["id"], r["change"], f"{r['previous_tier']} -> {r['tier']}", r["level"],
         f"{r['framework']['id']}@{r['framework']['version']}", r["new_directive"]["version"], len(r["evidence"]))
        for r in records
    ]  # fmt: skip
    table(("created", "id", "change", "tier", "level", "framework", "directive", "evidence"), rows)


@app.command("framework")
def framework_check(
    framework: Annotated[str, typer.Argument(help="Framework file, or a bundled name.")],
) -> None:
    """Validate a framework and show its domains, levels and conditions."""
    loaded = load_framework(framework)
    label = " (STRUCTURE ONLY: placeholder thresholds)" if loaded.structure_only else ""
    typer.echo(f"{loaded.id} {loaded.version}: valid{label}; tiers {' < '.join(loaded.tiers)}")
    for domain in loaded.domains:
        typer.echo(f"{domain.id} (evidence domains: {', '.join(sorted(domain.evidence_domains))})")
        for level in domain.levels:
            condition = level.threshold.source if level.threshold else "floor"
            alert = f"; alert: {level.alert.source}" if level.alert else ""
            typer.echo(f"  {level.id} -> {level.tier} ({level.decision}): {condition}{alert}")


@app.command("frameworks")
def frameworks() -> None:
    """List the bundled frameworks and the metrics conditions may use."""
    for name, path in bundled_frameworks().items():
        loaded = load_framework(path)
        typer.echo(f"{name:<28} {loaded.description.split('. ')[0].rstrip('.')}")
    typer.echo("\nmetrics:")
    for name, (kind, meaning) in METRICS.items():
        typer.echo(f"  {name:<24} {kind:<7} {meaning}")
