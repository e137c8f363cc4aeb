"""Building the audit trail from :class:`~exportgate.config.Settings`."""

from __future__ import annotations

from exportgate.config import Settings
from exportgate.signing import signer_for

from ._store import AuditStore, open_store
from ._writer import AuditWriter

__all__ = ["audit_from_settings", "audit_store_from_settings"]


def audit_store_from_settings(settings: Settings, *, durable: bool = True) -> AuditStore:
    return open_store(settings.audit_url, settings.home_path, durable=durable)


def audit_from_settings(settings: Settings) -> AuditWriter:
    """A started writer on the configured store, signing with the home's key."""
    mode = settings.audit_mode
    store = audit_store_from_settings(settings, durable=mode == "strict")
    signer = signer_for(settings)
    writer = AuditWriter(
        store,
        signer,
        mode=mode,
        home=settings.home_path,
        checkpoint_every=settings.audit_checkpoint_every,
        checkpoint_seconds=settings.audit_checkpoint_seconds,
    )
    return writer.start()
