"""``exportgate directive check|explain`` (a file) and ``publish|history|show|diff|rollback`` (the versions
published in the shared state, which every gateway on it enforces)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from exportgate._files import read_input
from exportgate._types import Decision, GeoInfo, RequestContext, Subject
from exportgate.actions import open_actions
from exportgate.errors import DirectiveError
from exportgate.geo import GeoLookup
from exportgate.policy import Directive, decide, load_directive
from exportgate.state import DirectiveStore, PublishedDirective, open_database

from ._common import (
    ByOption,
    DatabaseUrlOption,
    HomeOption,
    NoteOption,
    cli_actor,
    parse_countries,
    parse_country,
    parse_kyc,
    parse_screening,
    parse_yes_no,
    settings_for,
    state_home,
)
from ._output import Format, emit_json, fail, table

app = typer.Typer(help="Check, explain and publish directives.", no_args_is_help=True)

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


# -- published directives (the shared state: every replica enforces the newest) ---------------------------

VersionArg = Annotated[int, typer.Argument(min=1, help="Published version number (as in directive history).")]
MAX_DIRECTIVE_BYTES = 4 << 20


@contextmanager
def _published(home: Path | None, database_url: str | None) -> Iterator[DirectiveStore]:
    db = open_database(state_home(home, database_url=database_url), "state", read_only=True)
    try:
        yield DirectiveStore(db)
    finally:
        db.close()


def _published_line(p: PublishedDirective) -> str:
    rollback = f", rollback of v{p.rollback_of}" if p.rollback_of else ""
    return f"v{p.version}: {p.directive_id} version {p.directive_version}, sha256 {p.sha256[:16]}{rollback}"


@app.command("publish")
def publish(
    file: FileArg,
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Validate a directive and publish it: every gateway on this state enforces it within a second. One that
    does not validate changes nothing anywhere."""
    data = read_input(file, "directive", MAX_DIRECTIVE_BYTES)
    _load(file)  # every problem, file:line, before anything is opened
    with open_actions(settings_for(home, database_url=database_url), cli_actor(by)) as act:
        published = act.publish_directive(data, note=note, source=str(file))
    typer.echo(f"published {_published_line(published)}")


@app.command("history")
def history(
    output: Annotated[Format, typer.Option("--format")] = Format.text,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Every published version, oldest first; the last one is in force."""
    with _published(home, database_url) as store:
        versions = store.history()
    if output is Format.json:
        emit_json([v.as_dict() for v in versions])
        return
    table(["version", "directive", "directive_version", "sha256", "published_by", "published_at", "note"],
          [[v.version, v.directive_id, v.directive_version, v.sha256[:16], v.published_by, v.published_at,
            v.note if not v.rollback_of else f"{v.note or ''} (rollback of v{v.rollback_of})".strip()]
           for v in versions])  # fmt: skip


@app.command("show")
def show(
    version: Annotated[int | None, typer.Argument(min=1, help="Version [default: the one in force].")] = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Print a published version's YAML exactly as published (its sha256 is of these bytes)."""
    with _published(home, database_url) as store:
        found = store.active() if version is None else store.get(version)
    if found is None:
        fail("no directive has been published here (exportgate directive publish FILE)")
        return
    typer.echo(found.content or "", nl=False)


@app.command("diff")
def diff(v1: VersionArg, v2: VersionArg, database_url: DatabaseUrlOption = None, home: HomeOption = None) -> None:
    """A unified diff of two published versions."""
    with _published(home, database_url) as store:
        old, new = store.get(v1).content or "", store.get(v2).content or ""
    typer.echo("".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                            f"v{v1}", f"v{v2}")), nl=False)  # fmt: skip


@app.command("rollback")
def rollback(
    version: VersionArg,
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Put an earlier version back in force (published again as a new version, so history shows it)."""
    with open_actions(state_home(home, database_url=database_url), cli_actor(by)) as act:
        published = act.rollback_directive(version, note=note)
    typer.echo(f"published {_published_line(published)}")
