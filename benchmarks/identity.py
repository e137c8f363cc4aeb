"""Benchmark: bearer token check (docs/performance.md: warm cache median <= 5 us).

Warm: the token was verified before and sits in the authenticator's cache
(keyed by its SHA-256). Cold: a full verification, for scale: an API key
looked up in SQLite, and a JWT signature check per algorithm.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import conclude, per_call, show
from exportgate.identity import AccountStore, Authenticator, JwksSource, JwtVerifier

TARGETS = {"warm_median_us": 5.0}
ISS, AUD = "https://idp.bench.test", "exportgate"


def jwt_setup(tmp: Path) -> tuple[JwtVerifier, dict[str, str]]:
    keys = {
        "RS256": (rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
        "ES256": (ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
        "EdDSA": (ed25519.Ed25519PrivateKey.generate(), OKPAlgorithm),
    }
    jwks = {"keys": [{**json.loads(alg.to_jwk(key.public_key())), "kid": name} for name, (key, alg) in keys.items()]}
    (tmp / "jwks.json").write_text(json.dumps(jwks))
    now = int(time.time())
    claims = {
        "iss": ISS,
        "aud": AUD,
        "sub": "u",
        "exp": now + 3600,
        "citizenships": ["US"],
        "residencies": [],
        "kyc": "verified",
    }
    tokens = {name: jwt.encode(claims, key, algorithm=name, headers={"kid": name}) for name, (key, _) in keys.items()}
    return JwtVerifier(JwksSource(str(tmp / "jwks.json")), issuer=ISS, audience=AUD), tokens


def main() -> int:
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        store = AccountStore(tmp / "accounts.db")
        _, key = store.add_account("bench", citizenships=["US"])
        verifier, tokens = jwt_setup(tmp)
        auth = Authenticator(store, verifier, key_ttl=3600)
        print("bearer check (microseconds per call)")
        auth.authenticate(key.secret)
        results["warm: API key"] = per_call(lambda: auth.authenticate(key.secret))
        for name, token in tokens.items():
            auth.authenticate(token)
            results[f"warm: JWT {name}"] = per_call(lambda token=token: auth.authenticate(token))
        results["cold: API key (SQLite lookup + hash)"] = per_call(
            lambda: store.subject_for_key(key.secret), calls=20_000, warmup=500
        )
        for name, token in tokens.items():
            results[f"cold: JWT {name} signature + claims"] = per_call(
                lambda token=token: verifier.verify(token), calls=3_000, warmup=100
            )
        store.close()
    for name, figures in results.items():
        show(name, figures)
    worst = max(r["median_us"] for k, r in results.items() if k.startswith("warm"))
    conclude(
        "identity",
        results,
        TARGETS,
        {"worst_warm_median_us": worst},
        worst <= TARGETS["warm_median_us"],
        "warm median <= 5 us",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
