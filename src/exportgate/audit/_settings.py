"""Building the audit trail from :class:`~exportgate.config.Settings`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from exportgate.config import Settings

from ._signing import Signer, TrustedKeys, load_public_key
from ._store import AuditStore, open_store
from ._writer import AuditWriter

__all__ = ["audit_from_settings", "audit_store_from_settings", "trusted_keys"]


def audit_store_from_settings(settings: Settings, *, durable: bool = True) -> AuditStore:
    return open_store(settings.audit_url, settings.home_path, durable=durable)


def audit_from_settings(settings: Settings) -> AuditWriter:
    """A started writer on the configured store, signing with the home's key."""
    mode = settings.audit_mode
    store = audit_store_from_settings(settings, durable=mode == "strict")
    signer = Signer.load_or_create(settings.home_path / "audit")
    writer = AuditWriter(
        store,
        signer,
        mode=mode,
        home=settings.home_path,
        checkpoint_every=settings.audit_checkpoint_every,
        checkpoint_seconds=settings.audit_checkpoint_seconds,
    )
    return writer.start()


def trusted_keys(home: Path, extra: Iterable[str | Path] = ()) -> TrustedKeys:
    """The home's own signing key (if any), ``HOME/audit/trusted/*.pem``, and ``extra`` key files."""
    keys = TrustedKeys()
    audit_dir = home / "audit"
    if (audit_dir / "signing-key.pem").exists():
        keys.add(Signer.load_or_create(audit_dir).public)
    for path in [*sorted((audit_dir / "trusted").glob("*.pem")), *map(Path, extra)]:
        keys.add(load_public_key(path))
    return keys
