"""``exportgate accounts add|list|show|suspend|unsuspend`` and ``accounts keys ...``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from exportgate._types import KycLevel
from exportgate.identity import Account, account_store

from ._common import HomeOption, parse_countries, parse_country, parse_kyc, parse_screening, parse_yes_no, settings_for
from ._output import Format, emit_json, table

app = typer.Typer(help="Manage accounts and their API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

NameArg = Annotated[str, typer.Argument(help="Account name.", show_default=False)]


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
    store = account_store(settings_for(home))
    account, key = store.add_account(
        name,
        citizenships=parse_countries(citizenship, "--citizenship"),
        residencies=parse_countries(residence, "--residence"),
        us_person_attested=parse_yes_no(us_person, "--us-person"),
        kyc=parse_kyc(kyc) or KycLevel.NONE,
        screening=parse_screening(screening),
        organization=org,
        controlled_by=parse_country(controlled_by, "--controlled-by") if controlled_by else None,
    )
    typer.echo(
        f"created account {account.name} (us_person {_yes(account.us_person)}, kyc {account.kyc.label})", err=True
    )
    typer.echo(f"API key id {key.key_id}; the key is shown once, store it now:", err=True)
    typer.echo(key.secret)


def _yes(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


@app.command("list")
def list_(output: Annotated[Format, typer.Option("--format")] = Format.text, home: HomeOption = None) -> None:
    """List accounts."""
    accounts = account_store(settings_for(home)).list_accounts()
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
    store = account_store(settings_for(home))
    keys = [{"key_id": k.key_id, "created_at": k.created_at, "revoked_at": k.revoked_at} for k in store.list_keys(name)]
    emit_json({**_account_dict(store.get_account(name)), "keys": keys})


@app.command("suspend")
def suspend(name: NameArg, home: HomeOption = None) -> None:
    """Suspend an account: every request is denied with account_suspended."""
    account_store(settings_for(home)).set_suspended(name, True)
    typer.echo(f"suspended {name}")


@app.command("unsuspend")
def unsuspend(name: NameArg, home: HomeOption = None) -> None:
    """Lift a suspension."""
    account_store(settings_for(home)).set_suspended(name, False)
    typer.echo(f"unsuspended {name}")


@keys_app.command("create")
def keys_create(name: NameArg, home: HomeOption = None) -> None:
    """Create another API key for an account (printed once)."""
    key = account_store(settings_for(home)).create_key(name)
    typer.echo(f"API key id {key.key_id}; the key is shown once, store it now:", err=True)
    typer.echo(key.secret)


@keys_app.command("list")
def keys_list(
    name: Annotated[str | None, typer.Argument(help="Only this account's keys.", show_default=False)] = None,
    home: HomeOption = None,
) -> None:
    """List API keys (ids only; secrets are never stored)."""
    store = account_store(settings_for(home))
    if name is not None:
        store.get_account(name)
    table(
        ["key_id", "account", "created_at", "revoked_at"],
        [[k.key_id, k.account, k.created_at, k.revoked_at] for k in store.list_keys(name)],
    )


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (as listed).")], home: HomeOption = None) -> None:
    """Revoke an API key."""
    info = account_store(settings_for(home)).revoke_key(key_id)
    typer.echo(f"revoked {info.key_id} of {info.account} at {info.revoked_at}")


@app.command("reverify")
def reverify(name: NameArg, home: HomeOption = None) -> None:
    """Hold an account for re-verification: its KYC is 'none' until restore-kyc (what monitor actions do)."""
    account = account_store(settings_for(home)).hold_for_reverification(name)
    typer.echo(f"{account.name}: KYC held at none for re-verification")


@app.command("restore-kyc")
def restore_kyc(name: NameArg, home: HomeOption = None) -> None:
    """End a re-verification hold: the account's KYC level from before it comes back."""
    account = account_store(settings_for(home)).restore_kyc(name)
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
    trip = account_store(settings_for(home)).add_trip(
        name, parse_country(country, "--country"), _date(starts, "--from"), _date(ends, "--until"), note
    )
    typer.echo(f"trip {trip.id}: {trip.account} in {trip.country} from {trip.starts} until {trip.ends}")


@trips_app.command("list")
def trips_list(
    name: Annotated[str | None, typer.Argument(help="Only this account's trips.", show_default=False)] = None,
    home: HomeOption = None,
) -> None:
    """List declared trips."""
    trips = account_store(settings_for(home)).trips(name)
    table(["id", "account", "country", "from", "until", "note"],
          [[t.id, t.account, t.country, t.starts, t.ends, t.note] for t in trips])  # fmt: skip
