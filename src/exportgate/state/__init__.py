"""The system of record for everything mutable that replicas share.

>>> db = open_database(Settings({"database_url": "postgresql://db/exportgate"}), "state")  # doctest: +SKIP
>>> DirectiveStore(db).active()                                                        # doctest: +SKIP

One :class:`Database` interface over SQLite (``HOME/accounts.db`` and ``HOME/alerts.db``: one host, no
setup) and PostgreSQL (``database_url``: any number of replicas). Every committed change moves the
database's revision; on PostgreSQL it is pushed to every listening replica with ``LISTEN/NOTIFY`` and
confirmed by a revision poll, and a replica that cannot confirm it is current for ``state_max_staleness``
seconds is *stale* (the gateway answers 503). Schemas are numbered migrations (:data:`STATE`,
:data:`ALERTS`); on PostgreSQL they are applied by ``exportgate db upgrade`` only, and a replica refuses
a schema it does not know.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from exportgate.config import Settings
from exportgate.errors import ConfigError

from ._db import CHANNEL, Cursor, Database, Migrations, PostgresDatabase, SqliteDatabase, Transaction, database_at
from ._directives import DirectiveStore, PublishedDirective
from ._revision import Revision
from ._schema import ALERTS, STATE
from ._tokens import ROLES, AdminToken, AdminTokens, NewAdminToken, check_role

__all__ = [
    "ALERTS",
    "CHANNEL",
    "ROLES",
    "STATE",
    "AdminToken",
    "AdminTokens",
    "Component",
    "Cursor",
    "Database",
    "DirectiveStore",
    "Migrations",
    "NewAdminToken",
    "PostgresDatabase",
    "PublishedDirective",
    "Revision",
    "SqliteDatabase",
    "Transaction",
    "check_role",
    "database_at",
    "database_url",
    "open_database",
    "sqlite_path",
]

Component = Literal["state", "alerts"]
_FILES: dict[str, str] = {"state": "accounts.db", "alerts": "alerts.db"}
_SCHEMAS = {"state": STATE, "alerts": ALERTS}


def database_url(settings: Settings) -> str | None:
    """The PostgreSQL URL of the shared state, or None for SQLite in HOME; anything else is a ConfigError."""
    url = settings.database_url
    if not url:
        return None
    if not str(url).startswith(("postgresql://", "postgres://")):
        raise ConfigError("database_url must be a postgresql:// URL (unset: SQLite files in HOME)")
    return str(url)


def sqlite_path(settings: Settings, component: Component) -> Path:
    return settings.home_path / _FILES[component]


def open_database(settings: Settings, component: Component, *, read_only: bool = False,
                  upgrade: bool | None = None) -> Database:  # fmt: skip
    """The database holding ``component``, its schema checked. ``upgrade`` (default: SQLite yes,
    PostgreSQL no) applies missing migrations; ``read_only`` never creates or changes anything."""
    url = database_url(settings)
    db: Database
    if url is None:
        db = SqliteDatabase(sqlite_path(settings, component), read_only=read_only)
        upgrade = True if upgrade is None else upgrade
    else:
        db = PostgresDatabase(url, read_only=read_only, max_staleness=settings.state_max_staleness)
        upgrade = bool(upgrade)
    try:
        db.migrate(_SCHEMAS[component], upgrade=upgrade and not read_only)
    except BaseException:
        db.close()
        raise
    return db
