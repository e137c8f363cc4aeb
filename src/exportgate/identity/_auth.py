"""Bearer credentials (API key or JWT) -> Subject, with a warm cache.

A verified credential is cached under the SHA-256 of the token (never the
token itself): API keys for ``key_ttl`` seconds, JWTs until the earlier of
their expiry and ``jwt_ttl``. Failures are not cached. The whole cache is
dropped whenever the state database's revision moves (any committed write,
by any process or, with PostgreSQL, any replica: a suspension, a revocation,
a KYC hold), so such a change takes effect on the next request. A JWT subject
suspended in the store (``accounts suspend jwt:<issuer>#<sub>``) is decided
as suspended however valid its token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable

from exportgate._types import Subject
from exportgate.errors import AuthenticationError, InvalidTokenError

from ._jwt import JwtVerifier
from ._keys import KEY_PREFIX
from ._store import AccountStore

__all__ = ["Authenticator"]


class Authenticator:
    def __init__(
        self,
        store: AccountStore,
        jwt_verifier: JwtVerifier | None = None,
        *,
        key_ttl: float = 5.0,
        jwt_ttl: float = 300.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.jwt_verifier = jwt_verifier
        self.key_ttl = key_ttl
        self.jwt_ttl = jwt_ttl
        self.max_entries = max_entries
        self._clock = clock
        self._cache: dict[bytes, tuple[Subject, float]] = {}
        self._revision = store.revision.current()

    def authenticate(self, token: str) -> Subject:
        """The subject for a bearer token; AuthenticationError (401) otherwise."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        revision = self.store.revision.current()
        if revision != self._revision:
            self._cache.clear()
            self._revision = revision
        cached = self._cache.get(digest)
        now = self._clock()
        if cached is not None and cached[1] > now:
            return cached[0]
        subject, expires = self._verify(token, now)
        if len(self._cache) >= self.max_entries:
            self._evict(now)
        self._cache[digest] = (subject, expires)
        return subject

    def _verify(self, token: str, now: float) -> tuple[Subject, float]:
        if not token:
            raise AuthenticationError("missing credentials")
        if token.startswith(KEY_PREFIX):
            return self.store.subject_for_key(token), now + self.key_ttl
        if self.jwt_verifier is None:
            raise InvalidTokenError("invalid credentials")  # says nothing of what this gateway accepts
        subject, exp = self.jwt_verifier.verify(token)
        if self.store.subject_suspended(subject.subject_id):
            subject = dataclasses.replace(subject, suspended=True)
        return subject, min(exp, now + self.jwt_ttl)

    def _evict(self, now: float) -> None:
        live = {k: v for k, v in self._cache.items() if v[1] > now}
        self._cache = live if len(live) < self.max_entries // 2 else {}

    def invalidate(self) -> None:
        """Forget every cached credential (after a suspension or revocation here)."""
        self._cache.clear()
