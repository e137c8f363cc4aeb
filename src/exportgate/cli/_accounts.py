"""``exportgate accounts add|list|show|update|suspend|unsuspend|delete|restore``, ``accounts keys ...`` and
``accounts trips ...``. The listing commands only read: they never create a home or a store. Every change
goes through :mod:`exportgate.actions`, so it is an audit record (who: the operator's login name, or
``--by``), exactly as the same change made through the admin API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from exportgate._types import KycLevel
from exportgate.actions import Actions, account_dict, open_actions
from exportgate.errors import ConfigError
from exportgate.identity import AccountStore, account_store
from exportgate.screening import clean_name

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
from ._output import Format, emit_json, table

app = typer.Typer(help="Manage accounts and their API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

NameArg = Annotated[str, typer.Argument(help="Account name.", show_default=False)]


@contextmanager
def _accounts(home: Path | None, database_url: str | None, *, read_only: bool = False,
              create: bool = False) -> Iterator[AccountStore]:  # fmt: skip
    """The home's account store, closed after use. Only ``create`` (accounts add) may make a home; every other
    command needs an existing one, and ``read_only`` ones never write."""
    chosen = settings_for(home, database_url=database_url) if create else state_home(home, database_url=database_url)
    store = account_store(chosen, read_only=read_only)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _acting(home: Path | None, by: str | None, database_url: str | None, *, create: bool = False) -> Iterator[Actions]:
    """Audited actions on the home's store (only ``create``, accounts add, may make a home)."""
    settings = settings_for(home, database_url=database_url) if create else state_home(home, database_url=database_url)
    with open_actions(settings, cli_actor(by)) as actions:
        yield actions
    typer.echo(f"(state: {actions.state.label})", err=True)  # which store: a local home, or the shared one


_account_dict = account_dict
LegalNameOption = Annotated[
    str | None, typer.Option("--legal-name", help="The person's full name, screened against the lists loaded.")
]


def _text(value: str | None, option: str) -> str | None:
    """A name given on the command line: None when not given; refused when empty or too long."""
    if value is None:
        return None
    try:
        return clean_name(value, option)
    except ConfigError as exc:
        raise typer.BadParameter(exc.message, param_hint=option) from None


@app.command("add")
def add(
    name: NameArg,
    citizenship: Annotated[list[str] | None, typer.Option(help="Citizenship (repeat for several).")] = None,
    residence: Annotated[list[str] | None, typer.Option(help="Permanent residency (repeat for several).")] = None,
    us_person: Annotated[str | None, typer.Option("--us-person", help="Attest US-person status: yes|no.")] = None,
    kyc: Annotated[str, typer.Option(help="KYC level: none|basic|verified.")] = "none",
    screening: Annotated[str | None, typer.Option(help="Screening status: clear|hit|pending.")] = None,
    org: Annotated[str | None, typer.Option(help="Organization (screened as an entity).")] = None,
    legal_name: LegalNameOption = None,
    controlled_by: Annotated[
        str | None, typer.Option("--controlled-by", help="Organization's controlling country.")
    ] = None,
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Create an account and print its API key (shown once, stored hashed)."""
    citizenships = parse_countries(citizenship, "--citizenship")  # every value checked before anything is made
    residencies = parse_countries(residence, "--residence")
    attested, level, status = parse_yes_no(us_person, "--us-person"), parse_kyc(kyc), parse_screening(screening)
    controller = parse_country(controlled_by, "--controlled-by") if controlled_by else None
    with _acting(home, by, database_url, create=True) as act:
        account, key = act.create_account(
            name, citizenships=citizenships, residencies=residencies, us_person_attested=attested,
            kyc=level or KycLevel.NONE, screening=status, organization=org, controlled_by=controller, note=note,
            legal_name=_text(legal_name, "--legal-name"),
        )  # fmt: skip
    screened = f", screening {account.screening.value}" if account.screening else ""
    typer.echo(
        f"created account {account.name} (us_person {_yes(account.us_person)}, kyc {account.kyc.label}{screened})",
        err=True,
    )
    typer.echo(f"API key id {key.key_id}; the key is shown once, store it now:", err=True)
    typer.echo(key.secret)


def _yes(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


@app.command("list")
def list_(
    output: Annotated[Format, typer.Option("--format")] = Format.text,
    deleted: Annotated[bool, typer.Option("--deleted", help="Include deleted accounts.")] = False,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """List accounts."""
    with _accounts(home, database_url, read_only=True) as store:
        accounts = store.list_accounts(deleted=deleted)
    if output is Format.json:
        emit_json([_account_dict(a) for a in accounts])
        return
    table(
        ["name", "org", "citizenships", "residencies", "us_person", "kyc", "screening", "suspended"],
        [
            [
                a.name,
                a.organization,
                a.citizenships,
                a.residencies,
                _yes(a.us_person),
                a.kyc.label,
                a.screening.value if a.screening else None,
                a.suspended,
            ]
            for a in accounts
        ],
    )


@app.command("show")
def show(
    name: NameArg,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Show one account as JSON, with its keys."""
    with _accounts(home, database_url, read_only=True) as store:
        account, found = store.get_account(name), store.list_keys(name)
    keys = [{"key_id": k.key_id, "created_at": k.created_at, "revoked_at": k.revoked_at} for k in found]
    emit_json({**_account_dict(account), "keys": keys})


@app.command("update")
def update(
    name: NameArg,
    citizenship: Annotated[list[str] | None, typer.Option(help="Citizenships (replace the list; repeat).")] = None,
    residence: Annotated[list[str] | None, typer.Option(help="Permanent residencies (replace the list).")] = None,
    us_person: Annotated[str | None, typer.Option("--us-person", help="Attest US-person status: yes|no.")] = None,
    kyc: Annotated[str | None, typer.Option(help="KYC level: none|basic|verified.")] = None,
    screening: Annotated[str | None, typer.Option(help="Screening status: clear|hit|pending.")] = None,
    org: Annotated[str | None, typer.Option(help="Organization (screened as an entity).")] = None,
    legal_name: LegalNameOption = None,
    controlled_by: Annotated[str | None, typer.Option("--controlled-by", help="Controlling country.")] = None,
    expected_revision: Annotated[
        int | None, typer.Option("--expected-revision", help="Refuse (409) if the account is no longer at it.")
    ] = None,
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Change an account's attributes (only those given); effective on every replica at once."""
    changes: dict[str, object] = {}
    if citizenship is not None:
        changes["citizenships"] = parse_countries(citizenship, "--citizenship")
    if residence is not None:
        changes["residencies"] = parse_countries(residence, "--residence")
    if us_person is not None:
        changes["us_person_attested"] = parse_yes_no(us_person, "--us-person")
    controller = parse_country(controlled_by, "--controlled-by") if controlled_by else None
    given = {"kyc": parse_kyc(kyc), "screening": parse_screening(screening), "organization": org,
             "controlled_by": controller, "legal_name": _text(legal_name, "--legal-name")}  # fmt: skip
    changes.update({column: value for column, value in given.items() if value is not None})
    if not changes:
        raise typer.BadParameter("give at least one attribute to change", param_hint="NAME")
    with _acting(home, by, database_url) as act:
        account = act.update_account(name, changes, expected_revision=expected_revision, note=note)
    screened = f", screening {account.screening.value}" if account.screening else ""
    typer.echo(f"updated {account.name} (revision {account.revision}{screened})")


@app.command("suspend")
def suspend(
    name: Annotated[str, typer.Argument(help="Account name, or a JWT subject as records name it (jwt:ISS#SUB).")],
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Suspend an account or a JWT subject: every request is denied with account_suspended, on every replica."""
    with _acting(home, by, database_url) as act:
        act.suspend(name, note=note)
    typer.echo(f"suspended {name}")


@app.command("unsuspend")
def unsuspend(
    name: Annotated[str, typer.Argument(help="Account name, or a JWT subject (jwt:ISS#SUB).")],
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Lift a suspension."""
    with _acting(home, by, database_url) as act:
        act.unsuspend(name, note=note)
    typer.echo(f"unsuspended {name}")


@app.command("delete")
def delete(
    name: NameArg,
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Delete an account: its keys are revoked and it is no longer listed; its audit records are kept, and
    restore brings it back."""
    with _acting(home, by, database_url) as act:
        account = act.delete_account(name, note=note)
    typer.echo(f"deleted {account.name} (its keys are revoked; its audit records are kept)")


@app.command("restore")
def restore(
    name: NameArg,
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Bring back a deleted account (its old keys stay revoked: create a new one with accounts keys create)."""
    with _acting(home, by, database_url) as act:
        account = act.restore_account(name, note=note)
    still = " (still suspended: exportgate accounts unsuspend " + account.name + ")" if account.suspended else ""
    typer.echo(f"restored {account.name}{still}; create a key with: exportgate accounts keys create {account.name}")


@keys_app.command("create")
def keys_create(
    name: NameArg,
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Create another API key for an account (printed once)."""
    with _acting(home, by, database_url) as act:
        key = act.issue_key(name, note=note)
    typer.echo(f"API key id {key.key_id}; the key is shown once, store it now:", err=True)
    typer.echo(key.secret)


@keys_app.command("list")
def keys_list(
    name: Annotated[str | None, typer.Argument(help="Only this account's keys.", show_default=False)] = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """List API keys (ids only; secrets are never stored)."""
    with _accounts(home, database_url, read_only=True) as store:
        if name is not None:
            store.get_account(name)
        keys = store.list_keys(name)
    table(["key_id", "account", "created_at", "revoked_at"], [[k.key_id, k.account, k.created_at, k.revoked_at]
                                                              for k in keys])  # fmt: skip


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Key id (as listed).")],
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Revoke an API key (on every replica at once)."""
    with _acting(home, by, database_url) as act:
        info = act.revoke_key(key_id, note=note)
    typer.echo(f"revoked {info.key_id} of {info.account} at {info.revoked_at}")


@app.command("reverify")
def reverify(
    name: NameArg,
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Hold an account for re-verification: its KYC is 'none' until restore-kyc (what monitor actions do)."""
    with _acting(home, by, database_url) as act:
        account = act.reverify(name, note=note)
    typer.echo(f"{account.name}: KYC held at none for re-verification")


@app.command("restore-kyc")
def restore_kyc(
    name: NameArg,
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """End a re-verification hold: the account's KYC level from before it comes back."""
    with _acting(home, by, database_url) as act:
        account = act.restore_kyc(name, note=note)
    typer.echo(f"{account.name}: KYC {account.kyc.label}")


trips_app = typer.Typer(help="Declared stays abroad (the monitor does not flag them).", no_args_is_help=True)
app.add_typer(trips_app, name="trips")


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


@trips_app.command("add")
def trips_add(
    name: NameArg,
    country: Annotated[str, typer.Option(help="Where the account will be (ISO 3166-1 alpha-2).")],
    starts: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD, UTC).")],
    ends: Annotated[str, typer.Option("--until", help="Last day (YYYY-MM-DD, UTC), inclusive.")],
    note: Annotated[str | None, typer.Option(help="Why (kept with the trip).")] = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Declare a trip or a stay abroad."""
    where, first, last = parse_country(country, "--country"), _date(starts, "--from"), _date(ends, "--until")
    with _acting(home, by, database_url) as act:
        trip = act.add_trip(name, where, first, last, note)
    typer.echo(f"trip {trip.id}: {trip.account} in {trip.country} from {trip.starts} until {trip.ends}")


@trips_app.command("list")
def trips_list(
    name: Annotated[str | None, typer.Argument(help="Only this account's trips.", show_default=False)] = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """List declared trips."""
    with _accounts(home, database_url, read_only=True) as store:
        trips = store.trips(name)
    table(["id", "account", "country", "from", "until", "note"],
          [[t.id, t.account, t.country, t.starts, t.ends, t.note] for t in trips])  # fmt: skip
