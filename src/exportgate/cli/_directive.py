"""``exportgate directive check|explain``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exportgate._types import Decision, GeoInfo, RequestContext, Subject
from exportgate.errors import DirectiveError
from exportgate.geo import GeoLookup
from exportgate.policy import Directive, decide, load_directive

from ._common import parse_countries, parse_country, parse_kyc, parse_screening, parse_yes_no
from ._output import Format, emit_json, fail, table

app = typer.Typer(help="Check directives and explain their decisions.", no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="Directive file (YAML).", show_default=False)]


def _load(path: Path) -> Directive:
    try:
        return load_directive(path)
    except DirectiveError as exc:
        more = [
            f"{exc.file}:{line}: {message}" if line else f"{exc.file}: {message}"
            for line, message in getattr(exc, "problems", [])[1:]
        ]
        fail(str(exc), more=more)
        raise  # unreachable: fail() exits


@app.command("check")
def check(file: FileArg) -> None:
    """Validate a directive; print every problem as file:line: message (exit 1)."""
    directive = _load(file)
    typer.echo(
        f"ok: {directive.id} version {directive.version}: {len(directive.tiers)} tiers, "
        f"{len(directive.models)} models, unknown models {directive.unknown_models}, sha256 {directive.sha256[:16]}"
    )


@app.command("explain")
def explain(
    file: FileArg,
    model: Annotated[str, typer.Option("--model", "-m", help="Requested model name.")],
    citizenship: Annotated[list[str] | None, typer.Option(help="Citizenship (repeat for several).")] = None,
    residence: Annotated[list[str] | None, typer.Option(help="Permanent residency (repeat for several).")] = None,
    us_person: Annotated[str | None, typer.Option("--us-person", help="Attested US-person status: yes|no.")] = None,
    kyc: Annotated[str | None, typer.Option(help="KYC level: none|basic|verified (unknown when omitted).")] = None,
    controlled_by: Annotated[
        str | None, typer.Option("--controlled-by", help="Organization's controlling country.")
    ] = None,
    screening: Annotated[str | None, typer.Option(help="Screening status: clear|hit|pending.")] = None,
    suspended: Annotated[bool, typer.Option("--suspended", help="Treat the account as suspended.")] = False,
    ip: Annotated[
        str | None, typer.Option(help="Client IP address (country and anonymizer flags are looked up).")
    ] = None,
    country: Annotated[str | None, typer.Option(help="Client country, instead of --ip.")] = None,
    output: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.text,
) -> None:
    """Decide one hypothetical request and print every reason."""
    directive = _load(file)
    subject = Subject(
        subject_id="explain",
        citizenships=tuple(parse_countries(citizenship, "--citizenship")) if citizenship else None,
        residencies=tuple(parse_countries(residence, "--residence")),
        us_person_attested=parse_yes_no(us_person, "--us-person"),
        kyc=parse_kyc(kyc),
        screening=parse_screening(screening),
        controlled_by=parse_country(controlled_by, "--controlled-by") if controlled_by else None,
        suspended=suspended,
    )
    geo = _geo(ip, country)
    decision = decide(subject, RequestContext.from_geo(ip, geo), model, directive)
    if output is Format.json:
        emit_json({**decision.as_dict(), "subject": subject.snapshot(), "client": _client(ip, geo)})
    else:
        _print(decision, subject, ip, geo)


def _geo(ip: str | None, country: str | None) -> GeoInfo:
    if ip and country:
        raise typer.BadParameter("give --ip or --country, not both", param_hint="--country")
    if country:
        return GeoInfo(parse_country(country, "--country"), frozenset(), "given")
    if ip:
        return GeoLookup(memo_size=0).lookup(ip)
    return GeoInfo(None, None, "none")


def _client(ip: str | None, geo: GeoInfo) -> dict[str, object]:
    flags = sorted(geo.anonymizers) if geo.anonymizers is not None else None
    return {"ip": ip, "country": geo.country, "anonymizers": flags, "source": geo.source}


def _print(decision: Decision, subject: Subject, ip: str | None, geo: GeoInfo) -> None:
    tier = f"tier {decision.tier}" if decision.tier else "no tier"
    model = decision.model or decision.requested_model
    typer.echo(
        f"{decision.decision.upper()}  {model} ({tier}) under {decision.directive_id} {decision.directive_version}"
    )
    snap = subject.snapshot()
    shown = {k: v for k, v in snap.items() if k not in ("subject_id", "organization", "suspended")}
    people = ", ".join(f"{k} {_show(v)}" for k, v in shown.items())
    typer.echo(f"  subject: {people}{', SUSPENDED' if subject.suspended else ''}")
    flags = "unknown" if geo.anonymizers is None else (",".join(sorted(geo.anonymizers)) or "none")
    typer.echo(f"  client:  {ip or '-'} -> country {geo.country or 'unknown'}, anonymizers {flags} ({geo.source})")
    if decision.reasons:
        typer.echo("  reasons:")
        table(
            ["    code", "rule", "value"], [[f"    {r.code.value}", r.rule, _show(r.value)] for r in decision.reasons]
        )


def _show(value: object) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "none"
    return str(value)
