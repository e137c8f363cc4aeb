"""The admin API (``/admin/v1/``): accounts, keys, alerts, directives, decisions and the audit record,
behind admin tokens with roles; every action an audit record. Served by ``exportgate serve --admin-port P``
(its own process and port, off the public one) or ``exportgate admin serve``.

>>> app = create_admin_app()    # doctest: +SKIP  (granian's factory target: settings from EXPORTGATE_*)
"""

from __future__ import annotations

from contextlib import ExitStack

from exportgate.audit import audit_from_settings, open_store
from exportgate.config import Settings
from exportgate.monitor import AlertStore
from exportgate.screening import ScreeningStore
from exportgate.signing import signer_for, trusted_for
from exportgate.state import open_database

from ._app import AdminApp, AdminParts
from ._openapi import openapi
from ._routes import ROUTES, Route

__all__ = [
    "ROUTES",
    "AdminApp",
    "AdminParts",
    "Route",
    "admin_parts_from_settings",
    "check_admin_settings",
    "create_admin_app",
    "openapi",
]


def admin_parts_from_settings(settings: Settings) -> AdminParts:
    """The state, the alerts, the audit record to read, and a writer of this process's own for the actions."""
    with ExitStack() as stack:
        state = open_database(settings, "state")
        stack.callback(state.close)
        alerts = AlertStore(open_database(settings, "alerts"))
        stack.callback(alerts.close)
        records = open_store(settings.audit_url, settings.home_path, read_only=False)
        stack.callback(records.close)
        writer = audit_from_settings(settings)
        stack.pop_all()
    return AdminParts(state, alerts, writer, records, trusted_for(settings),
                      screening=ScreeningStore(state, threshold=settings.screening_threshold))  # fmt: skip


def check_admin_settings(settings: Settings) -> None:
    """Open and close what the admin API needs (nothing is written): a bad setting fails here, not later."""
    signer_for(settings)
    for component in ("state", "alerts"):
        open_database(settings, component).close()
    open_store(settings.audit_url, settings.home_path).close()


def create_admin_app() -> AdminApp:
    """The admin API, configured from ``EXPORTGATE_*`` (what ``serve --admin-port`` runs)."""
    return AdminApp(admin_parts_from_settings(Settings()))
