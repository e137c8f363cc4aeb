"""Identity: accounts, API keys, OIDC/JWT bearer tokens, and the authenticator.

>>> store = AccountStore(":memory:")                              # doctest: +SKIP
>>> account, key = store.add_account("ada", citizenships=["US"])  # doctest: +SKIP
>>> Authenticator(store).authenticate(key.secret).us_person       # doctest: +SKIP
True
"""

from ._account import Account, ApiKeyInfo, Trip
from ._auth import Authenticator
from ._jwt import ALLOWED_ALGORITHMS, DEFAULT_CLAIMS, JwksSource, JwtVerifier
from ._keys import KEY_PREFIX, NewKey, generate_key, hash_key, key_id_of
from ._settings import account_store, authenticator_from_settings
from ._store import AccountChange, AccountStore, Suspension

__all__ = [
    "ALLOWED_ALGORITHMS",
    "DEFAULT_CLAIMS",
    "KEY_PREFIX",
    "Account",
    "AccountChange",
    "AccountStore",
    "ApiKeyInfo",
    "Authenticator",
    "JwksSource",
    "JwtVerifier",
    "NewKey",
    "Suspension",
    "Trip",
    "account_store",
    "authenticator_from_settings",
    "generate_key",
    "hash_key",
    "key_id_of",
]
