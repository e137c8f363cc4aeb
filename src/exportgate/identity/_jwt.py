"""OIDC/JWT bearer tokens verified against a JWKS, mapped to a :class:`Subject`.

Only asymmetric algorithms are accepted (RS256, ES256, EdDSA): ``alg: none``
and HMAC algorithms are refused before any key is touched, so a public key
can never be used as an HMAC secret. The key is chosen by ``kid`` and must
be of the type the algorithm needs. ``iss``, ``aud`` and ``exp`` are
required; ``nbf`` and ``iat`` are checked when present.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from jwt.exceptions import InvalidKeyError, PyJWKError, PyJWTError

from exportgate._types import KycLevel, ScreeningStatus, Subject
from exportgate.errors import ConfigError, InvalidTokenError

__all__ = ["ALLOWED_ALGORITHMS", "DEFAULT_CLAIMS", "JwksSource", "JwtVerifier"]

ALLOWED_ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})

#: Subject attribute -> claim name. Override any entry by configuration
#: (namespaced claims such as ``https://example.com/citizenships`` work).
DEFAULT_CLAIMS: Mapping[str, str] = {
    "subject": "sub",
    "citizenships": "citizenships",
    "residencies": "residencies",
    "us_person": "us_person",
    "kyc": "kyc",
    "screening": "screening",
    "controlled_by": "controlled_by",
    "name": "name",
    "organization": "org",
}


class JwksSource:
    """Keys from a JWKS file or ``http(s)`` URL, cached; refreshed on an unknown ``kid``.

    Refreshes are rate-limited (``min_refresh`` seconds) so a flood of tokens
    with made-up key ids cannot turn into a flood of fetches.
    """

    def __init__(
        self,
        location: str,
        *,
        min_refresh: float = 30.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        self.min_refresh = min_refresh
        self.timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str | None, dict[str, Any]] = {}
        self._parsed: dict[tuple[str | None, str], Any] = {}
        self._loaded_at: float | None = None
        self.refresh()

    def _read(self) -> dict[str, Any]:
        try:
            if self.location.startswith(("http://", "https://")):
                with urllib.request.urlopen(self.location, timeout=self.timeout) as response:  # noqa: S310
                    data = json.loads(response.read())
            else:
                data = json.loads(Path(self.location).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load JWKS from {self.location}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ConfigError(f"JWKS at {self.location} has no 'keys' list")
        return data

    def refresh(self) -> None:
        data = self._read()
        keys = {k.get("kid"): k for k in data["keys"] if isinstance(k, dict) and k.get("use", "sig") == "sig"}
        with self._lock:
            self._keys, self._parsed, self._loaded_at = keys, {}, self._clock()

    def key_for(self, kid: str | None, alg: str) -> Any:
        """The verification key for ``kid`` usable with ``alg``; InvalidTokenError otherwise."""
        if kid not in self._keys and self._may_refresh():
            try:
                self.refresh()
            except ConfigError as exc:
                raise InvalidTokenError(f"unknown key id and the key set cannot be refreshed: {exc}") from None
        if kid is None and len(self._keys) == 1:
            kid = next(iter(self._keys))
        jwk = self._keys.get(kid)
        if jwk is None:
            raise InvalidTokenError("token signed with an unknown key")
        cache_key = (kid, alg)
        if cache_key not in self._parsed:
            if jwk.get("alg") not in (None, alg):
                raise InvalidTokenError(f"key {kid!r} is for {jwk.get('alg')}, token says {alg}")
            try:
                self._parsed[cache_key] = jwt.PyJWK(jwk, algorithm=alg).key
            except (PyJWKError, InvalidKeyError, ValueError, TypeError) as exc:
                raise InvalidTokenError(f"key {kid!r} cannot verify {alg}: {exc}") from None
        return self._parsed[cache_key]

    def _may_refresh(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= self.min_refresh


@dataclass
class JwtVerifier:
    """Verifies bearer JWTs and maps their claims to a :class:`Subject`."""

    jwks: JwksSource
    issuer: str
    audience: str
    claims: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CLAIMS))
    leeway: float = 30.0

    def __post_init__(self) -> None:
        unknown = set(self.claims) - set(DEFAULT_CLAIMS)
        if unknown:
            raise ConfigError(f"unknown claim mapping attribute(s): {', '.join(sorted(unknown))}")
        self.claims = {**DEFAULT_CLAIMS, **self.claims}

    def verify(self, token: str) -> tuple[Subject, float]:
        """(subject, expiry as epoch seconds) for a valid token; InvalidTokenError otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise InvalidTokenError("malformed token") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise InvalidTokenError(f"token algorithm {alg!r} is not allowed")
        kid = header.get("kid")
        key = self.jwks.key_for(kid if isinstance(kid, str) else None, alg)
        try:
            payload = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except PyJWTError as exc:
            raise InvalidTokenError(f"token rejected: {exc}") from None
        return self._subject(payload), float(payload["exp"])

    def _claim(self, payload: Mapping[str, Any], attribute: str) -> Any:
        return payload.get(self.claims[attribute])

    def _subject(self, payload: Mapping[str, Any]) -> Subject:
        sub = self._claim(payload, "subject")
        if not isinstance(sub, str) or not sub:
            raise InvalidTokenError("token has no subject")
        return Subject(
            subject_id=f"jwt:{self.issuer}#{sub}",
            citizenships=_codes(self._claim(payload, "citizenships")),
            residencies=_codes(self._claim(payload, "residencies")),
            us_person_attested=_flag(self._claim(payload, "us_person")),
            kyc=_kyc(self._claim(payload, "kyc")),
            screening=_screening(self._claim(payload, "screening")),
            controlled_by=_code(self._claim(payload, "controlled_by")),
            name=_text(self._claim(payload, "name")),
            organization=_text(self._claim(payload, "organization")),
            source="jwt",
        )


# Claim parsers: a malformed value is *unknown* (None), which the decision
# core treats as a missing fact and denies wherever a rule needs it.


def _code(value: Any) -> str | None:
    if isinstance(value, str) and len(value.strip()) == 2 and value.strip().isalpha():
        return value.strip().upper()
    return None


def _codes(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list):
        return None
    codes = [_code(v) for v in value]
    if any(c is None for c in codes):
        return None
    return tuple(sorted({c for c in codes if c is not None}))


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _kyc(value: Any) -> KycLevel | None:
    try:
        return KycLevel.parse(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _screening(value: Any) -> ScreeningStatus | None:
    try:
        return ScreeningStatus(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
