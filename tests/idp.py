"""A test identity provider: an EC key, its JWKS file, and tokens with any claims (real ES256 JWTs)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ISSUER, AUDIENCE = "https://idp.example.test", "exportgate"


class TestIdp:
    __test__ = False  # not a test class

    def __init__(self, directory: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        public = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        public["kid"] = "k1"
        self.jwks = directory / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": [public]}))

    def settings(self) -> dict[str, str]:
        """The settings (as EXPORTGATE_* environment values) that make a gateway trust this provider."""
        return {"EXPORTGATE_JWKS": str(self.jwks), "EXPORTGATE_JWT_ISSUER": ISSUER,
                "EXPORTGATE_JWT_AUDIENCE": AUDIENCE}  # fmt: skip

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-1", "iat": now, "exp": now + 600,
                   "citizenships": ["US"], "residencies": [], "kyc": "verified", **claims}  # fmt: skip
        return jwt.encode(payload, self.key, algorithm="ES256", headers={"kid": "k1"})
