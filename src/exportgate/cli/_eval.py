"""``exportgate eval run|report|calibrate`` and ``exportgate evidence verify``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from exportgate import __version__
from exportgate.audit import Signer, load_public_key
from exportgate.config import resolve_secret
from exportgate.errors import ConfigError
from exportgate.eval import (
    Calibration,
    Campaign,
    CampaignStore,
    Pricing,
    RateLimits,
    Scorer,
    TrialResult,
    build_bundle,
    html_report,
    load_bundle,
    load_calibration,
    load_objectives,
    scorer_for,
    sign_bundle,
    strategy_named,
    target_for,
    text_report,
    verify_bundle,
    write_bundle,
    write_transcripts,
)
from exportgate.eval import calibrate as calibrate_scorer

from ._common import HomeOption, settings_for

app = typer.Typer(help="Run red-team evaluation campaigns and report on their evidence.", no_args_is_help=True)
evidence_app = typer.Typer(help="Check evidence bundles.", no_args_is_help=True)


@app.command("run")
def run(
    target: Annotated[str, typer.Option(help="Target base URL, or sim:PROFILE[:SEED] for the in-process simulator.")],
    model: Annotated[str, typer.Option(help="Model name at the target.")],
    api: Annotated[str, typer.Option(help="openai or anthropic.")] = "openai",
    api_key: Annotated[str | None, typer.Option(help="Target key by reference: $env:NAME.")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt sent with every conversation.")] = None,
    objectives: Annotated[Path | None, typer.Option(help="Objectives file [default: the bundled canaries].")] = None,
    strategies: Annotated[str, typer.Option(help="Comma-separated strategies.")] = "direct,crescendo",
    trials: Annotated[int, typer.Option(min=1, help="Independent trials per objective and strategy.")] = 20,
    concurrency: Annotated[int, typer.Option(min=1, help="Trials in flight at once.")] = 16,
    seed: Annotated[int, typer.Option(help="Campaign seed (each trial derives its own).")] = 0,
    threshold: Annotated[float, typer.Option(help="Repeatable when the CI's lower bound is at least this.")] = 0.2,
    max_turns: Annotated[int, typer.Option(min=1, help="Turn limit per crescendo trial.")] = 10,
    max_backtracks: Annotated[int, typer.Option(min=0, help="Backtrack limit per crescendo trial.")] = 3,
    backtracking: Annotated[
        bool, typer.Option("--backtracking/--no-backtracking", help="Crescendo backtracks past refusals.")
    ] = True,
    judge: Annotated[list[str] | None, typer.Option(help="Judge base URL (OpenAI-compatible) or sim:; repeat.")] = None,
    judge_model: Annotated[list[str] | None, typer.Option(help="Judge model: one for all, or one per --judge.")] = None,
    judge_combine: Annotated[str, typer.Option(help="Judges' scores combined: majority or mean.")] = "majority",
    calibration: Annotated[Path | None, typer.Option(help="The judges' `eval calibrate --out` file.")] = None,
    attacker: Annotated[str | None, typer.Option(help="Crescendo and PAIR attacker base URL or sim:.")] = None,
    attacker_model: Annotated[str, typer.Option(help="Attacker model.")] = "attacker",
    rpm: Annotated[float | None, typer.Option(help="Target requests per minute.")] = None,
    tpm: Annotated[float | None, typer.Option(help="Target tokens per minute.")] = None,
    price_in: Annotated[float | None, typer.Option(help="Target price per 1M prompt tokens (enables cost).")] = None,
    price_out: Annotated[float | None, typer.Option(help="Target price per 1M completion tokens.")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 currency of the prices.")] = "USD",
    out: Annotated[Path, typer.Option(help="Evidence bundle to write.")] = Path("evidence.json"),
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint [default: OUT with .checkpoint.db].")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the campaign in the checkpoint.")] = False,
    redact: Annotated[
        bool, typer.Option("--redact/--no-redact", help="Keep only each response's hash and length in the bundle.")
    ] = True,
    home: HomeOption = None,
) -> None:
    """Run objectives x strategies x trials against a target and write a signed evidence bundle."""
    if not out.name or out.is_dir():
        raise typer.BadParameter(f"{str(out)!r} does not name a file", param_hint="--out")
    limits = RateLimits(rpm, tpm)
    pricing = None if price_in is None and price_out is None else Pricing(price_in or 0.0, price_out or 0.0, currency)
    the_target = target_for(target, model, api=api, api_key=resolve_secret(api_key), system=system, limits=limits)
    settings: dict[str, Any] = {
        "max_turns": max_turns,
        "max_backtracks": max_backtracks,
        "backtracking": backtracking,
    }
    if attacker:
        settings["attacker"] = target_for(attacker, attacker_model)
    try:
        chosen = [strategy_named(name.strip(), **settings) for name in strategies.split(",") if name.strip()]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    scorer = _scorer(judge, judge_model, judge_combine, load_calibration(calibration) if calibration else None)
    campaign = Campaign(the_target, load_objectives(objectives), chosen, trials, seed, concurrency, scorer)
    store = CampaignStore(checkpoint or out.with_suffix(".checkpoint.db"))
    store.start(campaign.config(), resume=resume)
    try:
        results = asyncio.run(_run_with_progress(campaign, store, pricing))
    except KeyboardInterrupt:
        store.close()
        typer.echo("interrupted; finished trials are kept. Continue with the same command and --resume.", err=True)
        raise typer.Exit(130) from None
    store.close()
    _write_evidence(campaign, results, out, threshold, redact, settings_for(home).home_path, pricing)


async def _run_with_progress(campaign: Campaign, store: CampaignStore, pricing: Pricing | None) -> list[TrialResult]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn  # noqa: PLC0415

    done = store.done().values()  # a resumed campaign's bar and spend start where the last run stopped
    totals = {
        "prompt": sum(r.prompt_tokens for r in done),
        "completion": sum(r.completion_tokens for r in done),
        "successes": sum(r.success for r in done),
    }
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not sys.stderr.isatty(), console=None, transient=False) as bar:
        task = bar.add_task("trials", total=len(campaign.plan()), completed=len(done))

        def advance(result: TrialResult) -> None:
            totals["prompt"] += result.prompt_tokens
            totals["completion"] += result.completion_tokens
            totals["successes"] += result.success
            label = f"trials ({totals['successes']} successful, {totals['prompt'] + totals['completion']:,} tokens"
            if pricing is not None:
                label += f", {pricing.currency} {pricing.cost(totals['prompt'], totals['completion']):.4f}"
            bar.update(task, advance=1, description=label + ")")

        try:
            return await campaign.run(store, advance)
        finally:
            await campaign.target.close()


def _write_evidence(
    campaign: Campaign,
    results: list[TrialResult],
    out: Path,
    threshold: float,
    redact: bool,
    home: Path,
    pricing: Pricing | None,
) -> None:
    transcripts = out.with_suffix(".transcripts.jsonl")
    digest = write_transcripts(transcripts, results)
    bundle = build_bundle(
        config=campaign.config(), target=campaign.target.fingerprint(), objectives=campaign.objectives,
        results=results, threshold=threshold, version=__version__, redact=redact,
        transcripts_sha256=digest, transcripts_file=transcripts.name, pricing=pricing,
    )  # fmt: skip
    write_bundle(out, sign_bundle(bundle, Signer.load_or_create(home / "evidence")))
    typer.echo(text_report(bundle))
    typer.echo(f"\nwrote {out} (signed) and {transcripts} (raw transcripts, owner-only)")


@app.command("report")
def report(
    evidence: Annotated[Path, typer.Argument(help="Evidence bundle.")],
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML page.")] = None,
) -> None:
    """Summarise an evidence bundle: attack success per objective and strategy, with 95% intervals."""
    bundle, _ = load_bundle(evidence)
    typer.echo(text_report(bundle))
    if html is not None:
        html.write_text(html_report(bundle), encoding="utf-8")
        typer.echo(f"wrote {html}")


def _scorer(judges: list[str] | None, models: list[str] | None, combine: str, linked: Calibration | None) -> Scorer:
    if combine not in ("majority", "mean"):
        raise typer.BadParameter(f"{combine!r}: choose majority or mean", param_hint="--judge-combine")
    if models and len(models) not in (1, len(judges or ())):
        raise typer.BadParameter("give one for all judges, or one per --judge", param_hint="--judge-model")
    if linked is not None and not judges:
        raise typer.BadParameter("a calibration needs the --judge it was made for", param_hint="--calibration")
    return scorer_for(judges or (), models or ("judge",), combine, linked)


@app.command("calibrate")
def calibrate(
    judge: Annotated[list[str], typer.Option(help="Judge base URL (OpenAI-compatible) or sim:; repeatable.")],
    labels: Annotated[Path, typer.Option(help="JSONL: goal, response, label (true/false), optional rubric.")],
    judge_model: Annotated[list[str] | None, typer.Option(help="Judge model: one for all, or one per --judge.")] = None,
    judge_combine: Annotated[str, typer.Option(help="Judges' scores combined: majority or mean.")] = "majority",
    out: Annotated[Path | None, typer.Option(help="Also write the figures here, for `eval run --calibration`.")] = None,
) -> None:
    """Agreement of judges with a labeled set: accuracy, Cohen's kappa, sensitivity, specificity, precision."""
    if out is not None and (not out.name or out.is_dir()):
        raise typer.BadParameter(f"{str(out)!r} does not name a file", param_hint="--out")
    scorer = _scorer(judge, judge_model, judge_combine, None)

    async def go() -> Calibration:
        try:
            return await calibrate_scorer(scorer, labels)
        finally:
            for one in scorer.judges:
                await one.target.close()

    record = orjson.dumps(asyncio.run(go()).as_dict(), option=orjson.OPT_INDENT_2).decode()
    if out is not None:
        out.write_text(record + "\n", encoding="utf-8")
    typer.echo(record)


@evidence_app.command("verify")
def verify(
    evidence: Annotated[Path, typer.Argument(help="Evidence bundle.")],
    public_key: Annotated[Path | None, typer.Option(help="Require this signer's public key (PEM).")] = None,
) -> None:
    """Check an evidence bundle's manifest hashes and signature; exit 1 on any change."""
    problems = verify_bundle(evidence, load_public_key(public_key) if public_key else None)
    if problems:
        for problem in problems:
            typer.echo(f"TAMPERED: {problem}", err=True)
        raise typer.Exit(1)
    bundle, _ = load_bundle(evidence)
    typer.echo(f"intact: {evidence} signed by key {bundle['signature']['key_id']}")
