"""``exportgate screening load|lists|review|clear|confirm`` and ``exportgate screen NAME`` (docs/screening.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from exportgate.actions import open_actions
from exportgate.errors import ConfigError
from exportgate.identity import AccountStore
from exportgate.screening import Candidate, Query, ScreeningStore
from exportgate.state import open_database

from ._common import (
    ByOption,
    DatabaseUrlOption,
    HomeOption,
    NoteOption,
    cli_actor,
    settings_for,
    state_home,
)
from ._output import Format, emit_json, say, table

app = typer.Typer(help="Denied-party screening: load lists, review potential matches.", no_args_is_help=True)
FormatOption = Annotated[Format, typer.Option("--format", help="text or json.")]
CandidateOption = Annotated[str, typer.Option("--candidate", help="The candidate: list:entry (or its entry id).")]


@contextmanager
def _store(home: Path | None, database_url: str | None) -> Iterator[tuple[ScreeningStore, AccountStore]]:
    settings = state_home(home, database_url=database_url)
    db = open_database(settings, "state", read_only=True)
    try:
        yield ScreeningStore(db, threshold=settings.screening_threshold), AccountStore(db)
    finally:
        db.close()


@app.command("load")
def load(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="List files: the CSL (CSV or JSON), OFAC's sdn.csv with "
            "alt.csv and add.csv, or sdn.xml, or an internal list (CSV).",
            show_default=False,
        ),
    ],
    list_name: Annotated[
        str | None, typer.Option("--list", help="Name of an internal list [default: internal].")
    ] = None,
    note: NoteOption = None,
    by: ByOption = None,
    output: FormatOption = Format.text,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Load restricted-party lists as new versions (the same files again change nothing) and screen every
    account against the lists in force. A malformed file refuses the whole load, naming file:line."""
    if list_name is not None and (not list_name.strip() or list_name in ("csl", "ofac-sdn")):
        raise ConfigError("--list names an internal list: not empty, and not csl or ofac-sdn")
    with open_actions(settings_for(home, database_url=database_url), cli_actor(by)) as act:
        done = act.load_lists([str(f) for f in files], list_name=list_name, note=note)
    if output is Format.json:
        emit_json(done.as_dict())
        return
    for loaded, stored in done.lists:
        what = "loaded" if stored else "unchanged (these files are in force)"
        say(f"{loaded.name} v{loaded.version}: {what}: {loaded.entries} entries, {loaded.names} names, "
            f"sha256 {loaded.sha256[:16]}")  # fmt: skip
    if done.ignored:
        say(f"{done.ignored} alias or address rows name no entry of the files and were set aside")
    say(f"screened {done.screened} accounts; {len(done.changed)} changed status")
    for change in done.changed:
        before = change.before.screening.value if change.before.screening else "-"
        after = change.after.screening.value if change.after.screening else "-"
        say(f"  {change.after.name}: {before} -> {after}")


@app.command("lists")
def lists(output: FormatOption = Format.text, database_url: DatabaseUrlOption = None, home: HomeOption = None) -> None:
    """The lists in force: version, files and their sha256, entries, who loaded them and when."""
    with _store(home, database_url) as (store, _):
        loaded = store.lists()
    if output is Format.json:
        emit_json([x.as_dict() for x in loaded])
        return
    if not loaded:
        say("no list loaded (exportgate screening load FILE...)")
        return
    table(["list", "version", "entries", "names", "sha256", "files", "loaded_at", "loaded_by"],
          [[x.name, x.version, x.entries, x.names, x.sha256[:16], [str(f["name"]) for f in x.files], x.loaded_at,
            x.loaded_by] for x in loaded])  # fmt: skip


def _candidate_line(c: Candidate) -> str:
    why = ", ".join(f"{q}~{e} {s:.2f}" for q, e, s in c.tokens)
    more = "; ".join((*c.agreed, *(f"not {d}" if not d.startswith("not") else d for d in c.disagreed)))
    return (f"{c.id}  {c.score:.3f}  {c.matched_name!r} ({c.type or 'type unknown'}; {', '.join(c.programs) or '-'}; "
            f"{c.source}) tokens: {why}{'; ' + more if more else ''}")  # fmt: skip


@app.command("review")
def review(output: FormatOption = Format.text, database_url: DatabaseUrlOption = None, home: HomeOption = None) -> None:
    """The review queue: every account whose screening is pending, with its open candidates."""
    with _store(home, database_url) as (store, accounts):
        names = {a.id: a for a in accounts.list_accounts()}
        queue = [(names[i], r) for i, r in store.queue() if i in names]
    if output is Format.json:
        emit_json([{"account": a.name, "legal_name": a.legal_name, "organization": a.organization, **r.as_dict()}
                   for a, r in queue])  # fmt: skip
        return
    if not queue:
        say("no account waits for review")
        return
    for account, result in queue:
        say(f"{account.name} (name {account.legal_name or '-'}, organization {account.organization or '-'}), "
            f"screened {result.screened_at} against {result.lists}:")  # fmt: skip
        for candidate in result.candidates:
            say(f"  {_candidate_line(candidate)}")


def _review(decision: str, account: str, candidate: str, reason: str | None, by: str | None,
            database_url: str | None, home: Path | None) -> None:  # fmt: skip
    with open_actions(state_home(home, database_url=database_url), cli_actor(by)) as act:
        after = act.review_screening(account, candidate, decision, reason=reason)
    say(f"{account}: {candidate} {'cleared' if decision == 'clear' else 'confirmed'}; screening now "
        f"{after.screening.value if after.screening else '-'}")  # fmt: skip


@app.command("clear")
def clear(
    account: Annotated[str, typer.Argument(help="Account name.", show_default=False)],
    candidate: CandidateOption,
    reason: Annotated[str, typer.Option("--reason", help="Why it is not a match (kept in the record).")],
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Record a false positive: the candidate is not raised again for this account's names until its entry
    changes. The account is screened again at once; the review is an audit record."""
    _review("clear", account, candidate, reason, by, database_url, home)


@app.command("confirm")
def confirm(
    account: Annotated[str, typer.Argument(help="Account name.", show_default=False)],
    candidate: CandidateOption,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (kept in the record).")] = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Confirm a match: the account is a hit and every gateway denies it screening_hit on its next request."""
    _review("confirm", account, candidate, reason, by, database_url, home)


def screen(
    name: Annotated[str, typer.Argument(help="The name to screen.", show_default=False)],
    country: Annotated[str | None, typer.Option("--country", help="A country the party is tied to (ISO code).")] = None,
    dob: Annotated[str | None, typer.Option("--dob", help="Date or year of birth: YYYY or YYYY-MM-DD.")] = None,
    kind: Annotated[str | None, typer.Option("--type", help="individual or entity.")] = None,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", min=0.01, max=1.0, help="Lowest score shown [default: screening_threshold]."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="At most this many candidates.")] = 10,
    output: FormatOption = Format.text,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Screen a name against the lists in force: ranked candidates with list, entry id, the name or alias
    that matched, a score in [0, 1] and why. Exit 0 whether or not anything matched."""
    try:
        query = Query.checked(name, country=country, dob=dob, type=kind)
    except ConfigError as exc:  # named as the options are: --dob, --country, --type
        raise ConfigError(f"--{exc.message}" if not exc.message.startswith("name") else exc.message) from None
    with _store(home, database_url) as (store, _):
        screened = store.screen(query, threshold=threshold, limit=limit)
    if output is Format.json:
        emit_json(screened.as_dict())
        return
    if not screened.lists:
        say("no list loaded (exportgate screening load FILE...): nothing to screen against")
        return
    if not screened.candidates:
        say(f"no candidate at or above {screened.threshold} in {', '.join(screened.lists)}")
    for candidate in screened.candidates:
        say(_candidate_line(candidate))
