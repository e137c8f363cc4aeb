"""``exportgate admin tokens add|list|revoke``: who may use the admin API, with which role."""

from __future__ import annotations

from typing import Annotated

import typer

from exportgate.actions import open_actions
from exportgate.state import AdminTokens, check_role, open_database

from ._common import ByOption, DatabaseUrlOption, HomeOption, NoteOption, cli_actor, existing_home, settings_for
from ._output import Format, emit_json, table

app = typer.Typer(help="The admin API: its tokens and roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="Admin tokens (viewer reads; officer acts on accounts and alerts; admin also "
                         "publishes directives and manages tokens).", no_args_is_help=True)  # fmt: skip
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Who or what holds the token (kept in every record it makes).")],
    role: Annotated[str, typer.Option(help="viewer, officer or admin.")],
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Make an admin token; it is printed once (stored hashed)."""
    check_role(role)
    with open_actions(settings_for(home, database_url=database_url), cli_actor(by)) as act:
        made = act.add_token(name, role, note=note)
    typer.echo(f"admin token {made.token.id} ({made.token.name}, {made.token.role}); shown once, store it now:",
               err=True)  # fmt: skip
    typer.echo(made.secret)


@tokens_app.command("list")
def list_(
    output: Annotated[Format, typer.Option("--format")] = Format.text,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """List admin tokens (never their secrets)."""
    db = open_database(existing_home(home, database_url=database_url), "state", read_only=True)
    try:
        tokens = AdminTokens(db).list()
    finally:
        db.close()
    if output is Format.json:
        emit_json([t.as_dict() for t in tokens])
        return
    table(["id", "name", "role", "created_at", "created_by", "revoked_at"],
          [[t.id, t.name, t.role, t.created_at, t.created_by, t.revoked_at] for t in tokens])  # fmt: skip


@tokens_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="Token id (as listed).")],
    note: NoteOption = None,
    by: ByOption = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Revoke an admin token (refused on its next use, on every replica)."""
    with open_actions(existing_home(home, database_url=database_url), cli_actor(by)) as act:
        token = act.revoke_token(token_id, note=note)
    typer.echo(f"revoked admin token {token['id']} ({token['name']}) at {token['revoked_at']}")
