"""Identity: accounts, API keys, OIDC/JWT bearer tokens, and the authenticator.

>>> store = AccountStore(":memory:")                              # doctest: +SKIP
>>> account, key = store.add_account("ada", citizenships=["US"])  # doctest: +SKIP
>>> Authenticator(store).authenticate(key.secret).us_person       # doctest: +SKIP
True
"""

from exportgate.config import Settings
from exportgate.errors import ConfigError

from ._account import Account, ApiKeyInfo
from ._auth import Authenticator
from ._jwt import ALLOWED_ALGORITHMS, DEFAULT_CLAIMS, JwksSource, JwtVerifier
from ._keys import KEY_PREFIX, NewKey, generate_key, hash_key, key_id_of
from ._store import AccountStore

__all__ = [
    "ALLOWED_ALGORITHMS",
    "DEFAULT_CLAIMS",
    "KEY_PREFIX",
    "Account",
    "AccountStore",
    "ApiKeyInfo",
    "Authenticator",
    "JwksSource",
    "JwtVerifier",
    "NewKey",
    "generate_key",
    "hash_key",
    "key_id_of",
]


def account_store(settings: Settings) -> AccountStore:
    """The account store in the settings' home directory."""
    return AccountStore(settings.home_path / "accounts.db")


def authenticator_from_settings(settings: Settings, store: AccountStore | None = None) -> Authenticator:
    """An authenticator over the home's account store, with JWT support if configured."""
    verifier = None
    if settings.jwks:
        if not settings.jwt_issuer or not settings.jwt_audience:
            raise ConfigError("jwks is set: jwt_issuer and jwt_audience are required too")
        verifier = JwtVerifier(
            JwksSource(settings.jwks), issuer=settings.jwt_issuer, audience=settings.jwt_audience,
            claims=settings.jwt_claims, leeway=settings.jwt_leeway,
        )
    return Authenticator(store or account_store(settings), verifier, key_ttl=settings.key_cache_ttl)


__all__ += ["account_store", "authenticator_from_settings"]
