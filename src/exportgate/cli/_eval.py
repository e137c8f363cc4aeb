"""``exportgate eval run|report|calibrate`` and ``exportgate evidence verify``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from exportgate import __version__
from exportgate._files import output_path, private_file
from exportgate.config import resolve_secret
from exportgate.errors import CampaignFailed, ConfigError
from exportgate.eval import (
    Calibration,
    Campaign,
    CampaignStore,
    Pricing,
    RateLimits,
    Rules,
    Scorer,
    Strategy,
    TrialResult,
    build_bundle,
    check_plan,
    check_types,
    compare_trials,
    comparison_text,
    evidence_resource,
    html_report,
    load_bundle,
    load_calibration,
    load_objectives,
    read_bundle_bytes,
    run_campaign,
    scorer_for,
    strategy_named,
    strategy_pairs,
    target_for,
    text_report,
    verify_evidence,
    write_bundle,
    write_transcripts,
)
from exportgate.eval import calibrate as calibrate_scorer
from exportgate.signing import Signer, signer_for, trusted_for

from ._common import HomeOption, settings_for
from ._output import Format, emit_json, fail, say, shown

app = typer.Typer(help="Run red-team evaluation campaigns and report on their evidence.", no_args_is_help=True)
evidence_app = typer.Typer(help="Check evidence bundles.", no_args_is_help=True)

OnTrial = Callable[[TrialResult], None]


def _share(value: float) -> float:
    if not 0 <= value <= 1:  # NaN too
        raise typer.BadParameter(f"{value} is not a share between 0 and 1")
    return value


def _key_reference(value: str | None) -> str | None:
    if value is not None and not value.startswith("$env:"):  # never echo the value: it may be a key
        raise typer.BadParameter("give the key by reference ($env:NAME), never as plain text: a key on the command"
                                 " line is seen in process lists and shell history")  # fmt: skip
    return value


@app.command("run")
def run(
    target: Annotated[str, typer.Option(help="Target base URL, or sim:PROFILE[:SEED] for the in-process simulator.")],
    model: Annotated[str, typer.Option(help="Model name at the target.")],
    api: Annotated[str, typer.Option(help="openai or anthropic.")] = "openai",
    api_key: Annotated[
        str | None, typer.Option(help="Target key by reference: $env:NAME.", callback=_key_reference)
    ] = None,
    system: Annotated[str | None, typer.Option(help="System prompt sent with every conversation.")] = None,
    temperature: Annotated[
        float | None, typer.Option(min=0.0, help="Sampling temperature of every request [default: the provider's].")
    ] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Reply token limit sent with every request.")] = 512,
    objectives: Annotated[Path | None, typer.Option(help="Objectives file [default: the bundled canaries].")] = None,
    domain_map: Annotated[
        Path | None, typer.Option(help="HarmBench/JailbreakBench category -> domain and severity, over the bundled.")
    ] = None,
    strategies: Annotated[str, typer.Option(help="Comma-separated strategies.")] = "direct,crescendo",
    trials: Annotated[int, typer.Option(min=1, help="Independent trials per objective and strategy.")] = 20,
    concurrency: Annotated[int, typer.Option(min=1, help="Trials in flight at once.")] = 16,
    seed: Annotated[int, typer.Option(min=0, max=2**53 - 1, help="Campaign seed (each trial derives its own).")] = 0,
    threshold: Annotated[
        float, typer.Option(help="Repeatable when the CI's lower bound is at least this (0 to 1).", callback=_share)
    ] = 0.2,
    min_trials: Annotated[int, typer.Option(min=1, help="Repeatable only with at least this many trials.")] = 10,
    min_successes: Annotated[int, typer.Option(min=1, help="Repeatable only with at least this many successes.")] = 2,
    max_turns: Annotated[int, typer.Option(min=1, help="Turn limit per crescendo trial.")] = 10,
    max_backtracks: Annotated[int, typer.Option(min=0, help="Backtrack limit per crescendo trial.")] = 3,
    backtracking: Annotated[
        bool, typer.Option("--backtracking/--no-backtracking", help="Crescendo backtracks past refusals.")
    ] = True,
    roleplay_turns: Annotated[int, typer.Option(min=2, help="Turn limit per roleplay trial.")] = 4,
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
    max_error_share: Annotated[
        float, typer.Option(help="Fail, writing no bundle, when more of the trials than this errored.", callback=_share)
    ] = 0.1,
    allow_errors: Annotated[bool, typer.Option(help="Write the bundle however many trials errored.")] = False,
    out: Annotated[Path, typer.Option(help="Evidence bundle to write.")] = Path("evidence.json"),
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint [default: OUT with .checkpoint.db].")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the campaign in the checkpoint.")] = False,
    keep_checkpoint: Annotated[
        bool, typer.Option(help="Keep the checkpoint (it holds the raw transcripts) after the bundle is written.")
    ] = False,
    redact: Annotated[
        bool, typer.Option("--redact/--no-redact", help="Keep only each response's hash and length in the bundle.")
    ] = True,
    home: HomeOption = None,
) -> None:
    """Run objectives x strategies x trials against a target and write a signed evidence bundle."""
    if not out.name or out.is_dir():
        raise typer.BadParameter(f"{str(out)!r} does not name a file", param_hint="--out")
    for path, what in ((out, "the evidence bundle"), (out.with_suffix(".transcripts.jsonl"), "the transcripts"),
                       (checkpoint or out.with_suffix(".checkpoint.db"), "the checkpoint")):  # fmt: skip
        output_path(path, what)
    limits = RateLimits(rpm, tpm)
    pricing = None if price_in is None and price_out is None else Pricing(price_in or 0.0, price_out or 0.0, currency)
    the_target = target_for(target, model, api=api, api_key=resolve_secret(api_key), system=system, limits=limits,
                            temperature=temperature, max_tokens=max_tokens)  # fmt: skip
    settings: dict[str, Any] = {"max_turns": max_turns, "max_backtracks": max_backtracks, "backtracking": backtracking,
                                "roleplay_turns": roleplay_turns}  # fmt: skip
    if attacker:
        settings["attacker"] = target_for(attacker, attacker_model)
    chosen = _strategies(strategies, settings)
    scorer = _scorer(judge, judge_model, judge_combine, load_calibration(calibration) if calibration else None)
    campaign = Campaign(the_target, load_objectives(objectives, domain_map=domain_map), chosen, trials, seed,
                        concurrency, scorer)  # fmt: skip
    signer = signer_for(settings_for(home))  # unlocked now, not after the whole campaign has run
    store = _started(checkpoint or out.with_suffix(".checkpoint.db"), campaign, resume=resume)
    try:
        with _progress(campaign, store, pricing) as advance:
            outcome = run_campaign(campaign, store=store, progress=advance, max_error_share=max_error_share,
                                   allow_errors=allow_errors)  # fmt: skip
    except KeyboardInterrupt:
        # a task the signal caught mid-step is dropped with its KeyboardInterrupt: asyncio would log it as a
        # traceback when the task is collected; the message below is what the operator needs
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        typer.echo("interrupted; finished trials are kept. Continue with the same command and --resume.", err=True)
        raise typer.Exit(130) from None
    except CampaignFailed as exc:
        raise CampaignFailed(f"{exc}; no evidence written (--allow-errors writes it anyway; --resume runs the"
                             " errored trials again)") from None  # fmt: skip
    finally:
        store.close()
    if outcome.errors:
        typer.echo(f"warning: {outcome.errors} of {len(outcome.results)} trials errored; the first: "
                   f"{' '.join(str(outcome.first_error).split())}", err=True)  # fmt: skip
    rules = Rules(threshold, min_trials, min_successes)
    _write_evidence(campaign, list(outcome.results), out, rules, redact, signer, pricing)
    _checkpoint_done(store, out, keep=keep_checkpoint)


def _strategies(names: str, settings: dict[str, Any]) -> list[Strategy]:
    """Each named strategy; ``strategy_named`` passes on only the settings a strategy has."""
    try:
        return [strategy_named(name.strip(), **settings) for name in names.split(",") if name.strip()]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _started(path: Path, campaign: Campaign, *, resume: bool) -> CampaignStore:
    store = CampaignStore(path)
    try:
        store.start(campaign.config(), resume=resume)
    except ConfigError as exc:
        store.close()
        hint = "" if resume else " (--resume continues it; --checkpoint names another file)"
        raise ConfigError(exc.message + hint) from None
    return store


def _checkpoint_done(store: CampaignStore, out: Path, *, keep: bool) -> None:
    transcripts = out.with_suffix(".transcripts.jsonl")
    if keep:
        typer.echo(f"kept the checkpoint {store.path}: it holds the raw transcripts too (owner-only); delete it when"
                   " done")  # fmt: skip
        return
    store.remove()
    typer.echo(f"removed the checkpoint {store.path} (the raw transcripts are kept only in {transcripts})")


@contextlib.contextmanager
def _progress(campaign: Campaign, store: CampaignStore, pricing: Pricing | None) -> Iterator[OnTrial]:
    """A progress bar on a terminal (silent otherwise); a resumed campaign's bar and spend start where the
    last run stopped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn  # noqa: PLC0415

    done = store.done().values()
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

        yield advance


def _write_evidence(
    campaign: Campaign,
    results: list[TrialResult],
    out: Path,
    rules: Rules,
    redact: bool,
    signer: Signer,
    pricing: Pricing | None,
) -> None:
    transcripts = out.with_suffix(".transcripts.jsonl")
    digest = write_transcripts(transcripts, results)
    bundle = build_bundle(
        config=campaign.config(), target=campaign.target.fingerprint(), objectives=campaign.objectives,
        results=results, rules=rules, version=__version__, redact=redact,
        transcripts_sha256=digest, transcripts_file=transcripts.name, pricing=pricing,
    )  # fmt: skip
    problems = check_types(bundle) + check_plan(bundle)  # never sign what a verifier would refuse
    if problems:
        raise ConfigError(f"the campaign's results cannot be evidence: {problems[0]} (is the checkpoint damaged?)")
    bundle = bundle.signed(signer)
    write_bundle(out, bundle)
    say(text_report(bundle))
    typer.echo(f"\nwrote {out} (signed) and {transcripts} (raw transcripts, owner-only)")


TrustOption = Annotated[
    list[Path] | None,
    typer.Option("--trust", help="Also trust this signer's public key (PEM; repeat). The home's keys are trusted."),
]


@app.command("report")
def report(
    evidence: Annotated[Path, typer.Argument(help="Evidence bundle.")],
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML page.")] = None,
    trust: TrustOption = None,
    home: HomeOption = None,
) -> None:
    """Summarise an evidence bundle: attack success per cell with 95% intervals, errors, roll-ups.

    The bundle is verified first; a bundle that does not verify is still shown, under a warning, and the
    exit status is 1.
    """
    raw = read_bundle_bytes(evidence)  # read once: what is verified is what is shown
    check = verify_evidence(evidence, trusted_for(settings_for(home), trust or []), raw=raw)
    bundle, _ = load_bundle(evidence, raw)
    say(text_report(bundle, check))
    if html is not None:
        with private_file(output_path(html, "the report"), "w") as page:  # replies' hashes, who ran what
            page.write(html_report(bundle, check))
        typer.echo(f"wrote {html}")
    if not check.intact:
        fail(f"{evidence} does not verify: {check.problems[0]} (the report above is of an altered bundle)")


def _scorer(judges: list[str] | None, models: list[str] | None, combine: str, linked: Calibration | None) -> Scorer:
    if combine not in ("majority", "mean"):
        raise typer.BadParameter(f"{combine!r}: choose majority or mean", param_hint="--judge-combine")
    if models and len(models) not in (1, len(judges or ())):
        raise typer.BadParameter("give one for all judges, or one per --judge", param_hint="--judge-model")
    if linked is not None and not judges:
        raise typer.BadParameter("a calibration needs the --judge it was made for", param_hint="--calibration")
    return scorer_for(judges or (), models or ("judge",), combine, linked)


@app.command("compare")
def compare(
    a: Annotated[Path, typer.Argument(help="Evidence bundle A (e.g. before the safeguard).")],
    b: Annotated[Path, typer.Argument(help="Evidence bundle B (e.g. after it); may be A itself.")],
    strategy_a: Annotated[str | None, typer.Option(help="A's strategy [default: each strategy both ran].")] = None,
    strategy_b: Annotated[str | None, typer.Option(help="B's strategy [default: --strategy-a].")] = None,
    trust: TrustOption = None,
    output: Annotated[Format, typer.Option("--format", help="text or json.")] = Format.text,
    home: HomeOption = None,
) -> None:
    """B's attack success rate minus A's per objective, with Newcombe's 95% interval, and pooled.

    Both bundles are verified first; one that does not verify is refused (exit 1)."""
    trusted = trusted_for(settings_for(home), trust or [])
    bundles = []
    for path in (a, b):
        raw = read_bundle_bytes(path)  # read once: what is verified is what is compared
        check = verify_evidence(path, trusted, raw=raw)
        if not check.intact:
            fail(f"{path} does not verify: {check.problems[0]}; not compared")
        bundle, _ = load_bundle(path, raw)
        bundles.append((path, bundle, check))
    (_, first, _), (_, second, _) = bundles
    pairs = strategy_pairs(first.trials, second.trials, strategy_a, strategy_b)
    comparisons = [compare_trials(first.trials, second.trials, x, y) for x, y in pairs]
    if output is Format.json:
        emit_json({"a": _described(*bundles[0]), "b": _described(*bundles[1]),
                   "comparisons": [c.as_dict() for c in comparisons]})  # fmt: skip
        return
    for name, (path, bundle, check) in zip("AB", bundles, strict=True):
        say(f"{name}: {path}  {bundle.created}  {_trust_word(check)}  target {bundle.target.get('model')}")
    for comparison in comparisons:
        say(comparison_text(comparison))


def _trust_word(check: Any) -> str:
    return f"verified, {'trusted' if check.trusted else 'UNTRUSTED'} key {check.key_id}"


def _described(path: Path, bundle: Any, check: Any) -> dict[str, Any]:
    return {"file": str(path), "created": bundle.created, "key_id": check.key_id, "trusted": check.trusted,
            "target": bundle.target}  # fmt: skip


@app.command("calibrate")
def calibrate(
    judge: Annotated[list[str], typer.Option(help="Judge base URL (OpenAI-compatible) or sim:; repeatable.")],
    labels: Annotated[Path, typer.Option(help="JSONL: goal, response, label (true/false), optional rubric.")],
    judge_model: Annotated[list[str] | None, typer.Option(help="Judge model: one for all, or one per --judge.")] = None,
    judge_combine: Annotated[str, typer.Option(help="Judges' scores combined: majority or mean.")] = "majority",
    out: Annotated[Path | None, typer.Option(help="Also write the figures here, for `eval run --calibration`.")] = None,
) -> None:
    """Agreement of judges with a labeled set: accuracy, Cohen's kappa, sensitivity, specificity, precision."""
    if out is not None:
        output_path(out, "the calibration")
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
    trust: TrustOption = None,
    public_key: Annotated[list[Path] | None, typer.Option("--public-key", hidden=True)] = None,
    require_transcripts: Annotated[
        bool, typer.Option(help="Fail unless the raw transcripts file is present and matches.")
    ] = False,
    output: Annotated[Format, typer.Option("--format", help="text or json.")] = Format.text,
    home: HomeOption = None,
) -> None:
    """Check a bundle: every byte and hash, the signature, a trusted signer, the plan, every statistic
    recomputed from the trials, and the transcripts when present. Exit 0 verified, 1 not."""
    trusted = trusted_for(settings_for(home), [*(trust or []), *(public_key or [])])
    check = verify_evidence(evidence, trusted, require_transcripts=require_transcripts)
    if output is Format.json:
        emit_json(check.as_dict())
    else:
        for problem in check.problems:
            say(f"TAMPERED: {shown(problem, one_line=True)}")
    if check.problems:
        more = f" (and {len(check.problems) - 1} more)" if len(check.problems) > 1 else ""
        fail(f"{evidence} does not verify: {check.problems[0]}{more}")
    if not check.trusted:
        fail(f"UNTRUSTED: {evidence} is intact but signed by key {check.key_id}, which this home does not trust;"
             " if you know that key, pass --trust KEYFILE or add it with: exportgate keys trust KEYFILE")  # fmt: skip
    if output is Format.json:
        return
    for note in check.notes:
        typer.echo(f"note: {note}")
    typer.echo(
        f"verified: {evidence} signed by trusted key {check.key_id} ({check.trusted_as}); plan complete;"
        f" statistics recomputed from the trials; transcripts {check.transcripts}"
    )


@evidence_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of evidence bundles (exportgate.evidence/v2)."""
    typer.echo(evidence_resource("evidence-v2.schema.json"), nl=False)


@evidence_app.command("script")
def script(
    out: Annotated[Path | None, typer.Option("--out", help="Write the script here instead of printing it.")] = None,
) -> None:
    """Print the standalone verifier: Python's standard library and openssl, nothing else (see its help)."""
    text = evidence_resource("verify_evidence.py")
    if out is None:
        typer.echo(text, nl=False)
        return
    output_path(out, "the script").write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}; run: python3 {out} BUNDLE --key SIGNER.pub.pem", err=True)
