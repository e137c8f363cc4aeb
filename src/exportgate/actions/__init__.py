"""Audited actions on the system of record: the one code path behind the CLI and the admin API.

>>> with open_actions(settings, Actor("ops", "officer", "cli")) as act:   # doctest: +SKIP
...     act.suspend("ada", note="directive 2026-17")
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from exportgate.audit import AuditWriter, audit_from_settings
from exportgate.config import Settings
from exportgate.errors import StoreError
from exportgate.monitor import AlertStore
from exportgate.state import open_database

from ._actions import NEEDS, Actions, Actor, ListsLoaded, account_dict

__all__ = ["NEEDS", "Actions", "Actor", "ListsLoaded", "account_dict", "open_actions"]

log = logging.getLogger("exportgate.actions")


@contextmanager
def open_actions(settings: Settings, actor: Actor, *, alerts: bool = False) -> Iterator[Actions]:
    """Actions on the settings' state database, recorded by an audit writer of their own (its chain is
    opened and closed with a signed checkpoint around the actions)."""
    with ExitStack() as stack:
        state = open_database(settings, "state")
        stack.callback(state.close)
        alert_store = None
        if alerts:
            alert_store = AlertStore(open_database(settings, "alerts"))
            stack.callback(alert_store.close)
        writer = audit_from_settings(settings)
        stack.callback(writer.store.close)
        stack.callback(_close, writer)  # first: its final checkpoint, then the store
        yield Actions(state, writer, actor, alerts=alert_store, screening_threshold=settings.screening_threshold)


def _close(writer: AuditWriter) -> None:
    """Close the writer; records it could not write are in its unwritten file (named in the log), not lost,
    and the actions they record stand: their answers (a key shown once) must still reach the caller."""
    try:
        writer.close()
    except StoreError as exc:
        log.error("%s", exc)
