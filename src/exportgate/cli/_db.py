"""``exportgate db upgrade|status``: the schema of the shared state (and of the audit record there)."""

from __future__ import annotations

import typer

from exportgate._text import store_label
from exportgate.audit import audit_store_from_settings
from exportgate.state import ALERTS, STATE, database_url, open_database, sqlite_path

from ._common import DatabaseUrlOption, HomeOption, settings_for, state_home
from ._output import emit_json

app = typer.Typer(help="The state database: schema upgrades and status.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(database_url_: DatabaseUrlOption = None, home: HomeOption = None) -> None:
    """Apply every migration this exportgate knows (state, alerts, audit); safe to run again, and while
    replicas serve (one upgrader at a time, each step in a transaction)."""
    settings = settings_for(home, database_url=database_url_)
    url = database_url(settings)
    for component in ("state", "alerts"):
        open_database(settings, component, upgrade=True).close()
    audit_store_from_settings(settings).close()  # the audit tables migrate on open
    where = store_label(url) if url else str(settings.home_path)
    typer.echo(f"schema up to date in {where}: state {len(STATE.postgresql if url else STATE.sqlite)}, "
               f"alerts {len(ALERTS.postgresql if url else ALERTS.sqlite)}")  # fmt: skip


@app.command("status")
def status(database_url_: DatabaseUrlOption = None, home: HomeOption = None) -> None:
    """Print each component's schema version in the database and the one this exportgate needs (read-only);
    exit 1 when a component cannot be read or is not at the version needed."""
    settings = state_home(home, database_url=database_url_)
    url = database_url(settings)
    report: dict[str, object] = {"backend": "postgresql" if url else "sqlite"}
    for migrations in (STATE, ALERTS):
        steps = migrations.postgresql if url else migrations.sqlite
        if url is None and not sqlite_path(settings, migrations.component).exists():  # type: ignore[arg-type]
            report[migrations.component] = {"needed": len(steps), "version": None, "note": "made on first use"}
            continue
        try:
            db = open_database(settings, migrations.component, read_only=True)  # type: ignore[arg-type]
        except Exception as exc:
            report[migrations.component] = {"needed": len(steps), "error": str(exc)}
            continue
        try:
            version = db.version(migrations.component)
            entry: dict[str, object] = {"needed": len(steps), "version": version}
            if version != len(steps):
                entry["error"] = "not at the version needed: run exportgate db upgrade"
            report[migrations.component] = entry
        finally:
            db.close()
    emit_json(report)
    if any(isinstance(v, dict) and "error" in v for v in report.values()):
        raise typer.Exit(1)
