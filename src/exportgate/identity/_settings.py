"""Building identity objects from :class:`~exportgate.config.Settings`."""

from __future__ import annotations

from exportgate.config import Settings
from exportgate.errors import ConfigError
from exportgate.state import open_database

from ._auth import Authenticator
from ._jwt import JwksSource, JwtVerifier
from ._store import AccountStore

__all__ = ["account_store", "authenticator_from_settings"]


def account_store(settings: Settings, *, read_only: bool = False) -> AccountStore:
    """The account store of the settings' state database (``read_only``: an existing one, never created)."""
    return AccountStore(open_database(settings, "state", read_only=read_only))


def authenticator_from_settings(settings: Settings, store: AccountStore | None = None) -> Authenticator:
    """An authenticator over the home's account store, with JWT support if configured."""
    verifier = None
    if settings.jwks:
        if not settings.jwt_issuer or not settings.jwt_audience:
            raise ConfigError("jwks is set: jwt_issuer and jwt_audience are required too")
        verifier = JwtVerifier(
            JwksSource(settings.jwks),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            claims=settings.jwt_claims,
            leeway=settings.jwt_leeway,
        )
    return Authenticator(store or account_store(settings), verifier, key_ttl=settings.key_cache_ttl)
