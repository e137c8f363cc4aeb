"""``exportgate accounts add|list|show|suspend|unsuspend|delete|restore``, ``accounts keys ...`` and
``accounts trips ...``. The listing commands only read: they never create a home or a store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from exportgate._types import KycLevel
from exportgate.identity import Account, AccountStore, account_store

from ._common import (
    HomeOption,
    existing_home,
    parse_countries,
    parse_country,
    parse_kyc,
    parse_screening,
    parse_yes_no,
    settings_for,
)
from ._output import Format, emit_json, table

app = typer.Typer(help="Manage accounts and their API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

NameArg = Annotated[str, typer.Argument(help="Account name.", show_default=False)]


@contextmanager
def _accounts(home: Path | None, *, read_only: bool = False, create: bool = False) -> Iterator[AccountStore]:
    """The home's account store, closed after use. Only ``create`` (accounts add) may make a home; every other
    command needs an existing one, and ``read_only`` ones never write."""
    store = account_store(settings_for(home) if create else existing_home(home), read_only=read_only)
    try:
        yield store
    finally:
        store.close()


def _account_dict(account: Account) -> dict[str, object]:
    return {
        "name": account.name,
        "organization": account.organization,
        "citizenships": list(account.citizenships),
        "residencies": list(account.residencies),
        "us_person": account.us_person,
        "us_person_attested": account.us_person_attested,
        "kyc": account.kyc.label,
        "screening": account.screening.value if account.screening else None,
        "controlled_by": account.controlled_by,
        "suspended": account.suspended,
        "created_at": account.created_at,
        "deleted_at": account.deleted_at,
    }


@app.command("add")
def add(
    name: NameArg,
    citizenship: Annotated[list[str] | None, typer.Option(help="Citizenship (repeat for several).")] = None,
    residence: Annotated[list[str] | None, typer.Option(help="Permanent residency (repeat for several).")] = None,
    us_person: Annotated[str | None, typer.Option("--us-person", help="Attest US-person status: yes|no.")] = None,
    kyc: Annotated[str, typer.Option(help="KYC level: none|basic|verified.")] = "none",
    screening: Annotated[str | None, typer.Option(help="Screening status: clear|hit|pending.")] = None,
    org: Annotated[str | None, typer.Option(help="Organization.")] = None,
    controlled_by: Annotated[
        str | None, typer.Option("--controlled-by", help="Organization's controlling country.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Create an account and print its API key (shown once, stored hashed)."""
    citizenships = parse_countries(citizenship, "--citizenship")  # every value checked before anything is made
    residencies = parse_countries(residence, "--residence")
    attested, level, status = parse_yes_no(us_person, "--us-person"), parse_kyc(kyc), parse_screening(screening)
    controller = parse_country(controlled_by, "--controlled-by") if controlled_by else None
    with _accounts(home, create=True) as store:
        account, key = store.add_account(
            name, citizenships=citizenships, residencies=residencies, us_person_attested=attested,
            kyc=level or KycLevel.NONE, screening=status, organization=org, controlled_by=controller,
        )  # fmt: skip
    typer.echo(
        f"created account {account.name} (us_person {_yes(account.us_person)}, kyc {account.kyc.label})", err=True
    )
    typer.echo(f"API key id {key.key_id}; the key is shown once, store it now:", err=True)
    typer.echo(key.secret)


def _yes(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


@app.command("list")
def list_(
    output: Annotated[Format, typer.Option("--format")] = Format.text,
    deleted: Annotated[bool, typer.Option("--deleted", help="Include deleted accounts.")] = False,
    home: HomeOption = None,
) -> None:
    """List accounts."""
    with _accounts(home, read_only=True) as store:
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
def show(name: NameArg, home: HomeOption = None) -> None:
    """Show one account as JSON, with its keys."""
    with _accounts(home, read_only=True) as store:
        account, found = store.get_account(name), store.list_keys(name)
    keys = [{"key_id": k.key_id, "created_at": k.created_at, "revoked_at": k.revoked_at} for k in found]
    emit_json({**_account_dict(account), "keys": keys})


@app.command("suspend")
def suspend(name: NameArg, home: HomeOption = None) -> None:
    """Suspend an account: every request is denied with account_suspended."""
    with _accounts(home) as store:
        store.set_suspended(name, True)
    typer.echo(f"suspended {name}")


@app.command("unsuspend")
def unsuspend(name: NameArg, home: HomeOption = None) -> None:
    """Lift a suspension."""
    with _accounts(home) as store:
        store.set_suspended(name, False)
    typer.echo(f"unsuspended {name}")


@app.command("delete")
def delete(name: NameArg, home: HomeOption = None) -> None:
    """Delete an account: its keys are revoked and it is no longer listed; its audit records are kept, and
    restore brings it back."""
    with _accounts(home) as store:
        account = store.delete_account(name)
    typer.echo(f"deleted {account.name} (its keys are revoked; its audit records are kept)")


@app.command("restore")
def restore(name: NameArg, home: HomeOption = None) -> None:
    """Bring back a deleted account (its old keys stay revoked: create a new one with accounts keys create)."""
    with _accounts(home) as store:
        account = store.restore_account(name)
    still = " (still suspended: exportgate accounts unsuspend " + account.name + ")" if account.suspended else ""
    typer.echo(f"restored {account.name}{still}; create a key with: exportgate accounts keys create {account.name}")


@keys_app.command("create")
def keys_create(name: NameArg, home: HomeOption = None) -> None:
    """Create another API key for an account (printed once)."""
    with _accounts(home) as store:
        key = store.create_key(name)
    typer.echo(f"API key id {key.key_id}; the key is shown once, store it now:", err=True)
    typer.echo(key.secret)


@keys_app.command("list")
def keys_list(
    name: Annotated[str | None, typer.Argument(help="Only this account's keys.", show_default=False)] = None,
    home: HomeOption = None,
) -> None:
    """List API keys (ids only; secrets are never stored)."""
    with _accounts(home, read_only=True) as store:
        if name is not None:
            store.get_account(name)
        keys = store.list_keys(name)
    table(["key_id", "account", "created_at", "revoked_at"], [[k.key_id, k.account, k.created_at, k.revoked_at]
                                                              for k in keys])  # fmt: skip


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (as listed).")], home: HomeOption = None) -> None:
    """Revoke an API key."""
    with _accounts(home) as store:
        info = store.revoke_key(key_id)
    typer.echo(f"revoked {info.key_id} of {info.account} at {info.revoked_at}")


@app.command("reverify")
def reverify(name: NameArg, home: HomeOption = None) -> None:
    """Hold an account for re-verification: its KYC is 'none' until restore-kyc (what monitor actions do)."""
    with _accounts(home) as store:
        account = store.hold_for_reverification(name)
    typer.echo(f"{account.name}: KYC held at none for re-verification")


@app.command("restore-kyc")
def restore_kyc(name: NameArg, home: HomeOption = None) -> None:
    """End a re-verification hold: the account's KYC level from before it comes back."""
    with _accounts(home) as store:
        account = store.restore_kyc(name)
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
    home: HomeOption = None,
) -> None:
    """Declare a trip or a stay abroad."""
    where, first, last = parse_country(country, "--country"), _date(starts, "--from"), _date(ends, "--until")
    with _accounts(home) as store:
        trip = store.add_trip(name, where, first, last, note)
    typer.echo(f"trip {trip.id}: {trip.account} in {trip.country} from {trip.starts} until {trip.ends}")


@trips_app.command("list")
def trips_list(
    name: Annotated[str | None, typer.Argument(help="Only this account's trips.", show_default=False)] = None,
    home: HomeOption = None,
) -> None:
    """List declared trips."""
    with _accounts(home, read_only=True) as store:
        trips = store.trips(name)
    table(["id", "account", "country", "from", "until", "note"],
          [[t.id, t.account, t.country, t.starts, t.ends, t.note] for t in trips])  # fmt: skip
