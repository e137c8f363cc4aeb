"""``exportgate admin tokens add|list|revoke`` (who may use the admin API, with which role) and ``admin serve``
(the admin API on a port of its own; ``serve --admin-port`` starts it beside the gateway)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from exportgate._asgi import check_listen
from exportgate._asgi import serve as serve_asgi
from exportgate.actions import open_actions
from exportgate.state import AdminTokens, check_role, open_database

from ._common import ByOption, DatabaseUrlOption, HomeOption, NoteOption, cli_actor, settings_for, state_home
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
    db = open_database(state_home(home, database_url=database_url), "state", read_only=True)
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
    with open_actions(state_home(home, database_url=database_url), cli_actor(by)) as act:
        token = act.revoke_token(token_id, note=note)
    typer.echo(f"revoked admin token {token['id']} ({token['name']}) at {token['revoked_at']}")


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [default: admin_host, 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Listen port [default: admin_port].")] = None,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Serve the admin API (/admin/v1/, OpenAPI at /admin/v1/openapi.json) on its own port."""
    from exportgate.admin import check_admin_settings  # noqa: PLC0415 - only for serving

    settings = settings_for(home, database_url=database_url, admin_host=host, admin_port=port)
    if settings.admin_port is None:
        raise typer.BadParameter("give --port (or set EXPORTGATE_ADMIN_PORT)", param_hint="--port")
    check_listen(settings.admin_host, settings.admin_port)
    check_admin_settings(settings)  # a bad setting or a store that is down: one line, here
    for name, value in (("HOME", str(settings.home_path.expanduser().resolve())), ("DATABASE_URL", database_url)):
        if value:
            os.environ["EXPORTGATE_" + name] = value
    serve_asgi("exportgate.admin:create_admin_app", host=settings.admin_host, port=settings.admin_port,
               log_level=settings.log_level)  # fmt: skip
