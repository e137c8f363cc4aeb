"""JWT/OIDC bearer verification: algorithms, claims, key rotation, adversarial tokens."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from exportgate._types import KycLevel, ScreeningStatus
from exportgate.errors import ConfigError, InvalidTokenError
from exportgate.identity import Authenticator, JwksSource, JwtVerifier

ISS, AUD = "https://idp.example.test", "exportgate"


@pytest.fixture(scope="module")
def keys():
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "ed": ed25519.Ed25519PrivateKey.generate(),
        "rsa2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }


def jwk(kid: str, key, algorithm) -> dict:
    data = json.loads(algorithm.to_jwk(key.public_key()))
    data["kid"] = kid
    return data


def jwks_of(keys, *names: str) -> dict:
    algs = {"rsa": RSAAlgorithm, "rsa2": RSAAlgorithm, "ec": ECAlgorithm, "ed": OKPAlgorithm}
    return {"keys": [jwk(name, keys[name], algs[name]) for name in names]}


@pytest.fixture
def jwks_file(tmp_path: Path, keys) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks_of(keys, "rsa", "ec", "ed")))
    return path


@pytest.fixture
def verifier(jwks_file) -> JwtVerifier:
    return JwtVerifier(JwksSource(str(jwks_file)), issuer=ISS, audience=AUD)


def claims(**extra) -> dict:
    now = int(time.time())
    base = {
        "iss": ISS,
        "aud": AUD,
        "sub": "u-1",
        "iat": now,
        "exp": now + 600,
        "citizenships": ["US"],
        "residencies": [],
        "kyc": "verified",
        "screening": "clear",
        "controlled_by": "us",
        "org": "Lab",
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def sign(keys, name: str, alg: str, payload: dict, kid: str | None = None) -> str:
    return jwt.encode(payload, keys[name], algorithm=alg, headers={"kid": kid or name})


@pytest.mark.parametrize(("name", "alg"), [("rsa", "RS256"), ("ec", "ES256"), ("ed", "EdDSA")])
def test_valid_tokens_map_to_a_subject(verifier, keys, name, alg):
    subject, exp = verifier.verify(sign(keys, name, alg, claims()))
    assert subject.subject_id == f"jwt:{ISS}#u-1" and subject.source == "jwt"
    assert subject.citizenships == ("US",) and subject.us_person is True
    assert subject.kyc is KycLevel.VERIFIED and subject.screening is ScreeningStatus.CLEAR
    assert subject.controlled_by == "US" and subject.organization == "Lab"
    assert exp > time.time()


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused(verifier):
    token = f"{_b64({'alg': 'none', 'kid': 'rsa'})}.{_b64(claims())}."
    with pytest.raises(InvalidTokenError, match="'none' is not allowed"):
        verifier.verify(token)


def test_hs256_signed_with_the_public_key_is_refused(verifier, keys):
    pem = (
        keys["rsa"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = _b64({"alg": "HS256", "kid": "rsa", "typ": "JWT"})
    body = _b64(claims())
    import hashlib
    import hmac

    sig = base64.urlsafe_b64encode(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()).rstrip(b"=")
    with pytest.raises(InvalidTokenError, match="'HS256' is not allowed"):
        verifier.verify(f"{header}.{body}.{sig.decode()}")


@pytest.mark.parametrize(
    ("payload", "match"),
    [  # made when the test runs, not when it is collected: a long run must not expire them
        (lambda: claims(exp=int(time.time()) - 3600), "expired"),
        (lambda: claims(aud="someone-else"), "(?i)audience"),
        (lambda: claims(iss="https://evil.example"), "(?i)issuer"),
        (lambda: claims(nbf=int(time.time()) + 3600), "not yet valid"),
        (lambda: claims(exp=None), "exp"),
        (lambda: claims(aud=None), "aud"),
        (lambda: claims(iss=None), "iss"),
        (lambda: claims(sub=None), "no subject"),
    ],
)
def test_bad_claims_are_refused(verifier, keys, payload, match):
    with pytest.raises(InvalidTokenError, match=match):
        verifier.verify(sign(keys, "rsa", "RS256", payload()))


def test_signature_from_another_key_or_tampered_payload_is_refused(verifier, keys):
    with pytest.raises(InvalidTokenError):
        verifier.verify(sign(keys, "rsa2", "RS256", claims(), kid="rsa"))
    header, _, sig = sign(keys, "rsa", "RS256", claims()).split(".")
    with pytest.raises(InvalidTokenError):
        verifier.verify(f"{header}.{_b64(claims(citizenships=['US'], sub='admin'))}.{sig}")


def test_algorithm_must_fit_the_key(verifier, keys):
    with pytest.raises(InvalidTokenError):
        verifier.verify(sign(keys, "ec", "ES256", claims(), kid="rsa"))
    with pytest.raises(InvalidTokenError):
        verifier.verify(sign(keys, "rsa", "RS256", claims(), kid="ec"))


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "a.b", "..", "e30.e30.e30", "\u00e9.\u00e9.\u00e9", "x" * 10000, "eyJhbGciOiJSUzI1NiJ9..sig"],
)
def test_malformed_tokens_are_refused(verifier, token):
    with pytest.raises(InvalidTokenError):
        verifier.verify(token)


def test_unknown_kid_is_refused_without_a_refresh_storm(verifier, keys):
    with pytest.raises(InvalidTokenError, match="unknown key"):
        verifier.verify(sign(keys, "rsa2", "RS256", claims()))


def test_claim_mapping_and_malformed_claims(jwks_file, keys):
    mapped = JwtVerifier(
        JwksSource(str(jwks_file)),
        issuer=ISS,
        audience=AUD,
        claims={"citizenships": "https://x.test/nationality", "kyc": "assurance"},
    )
    payload = claims(citizenships=None, kyc=None, **{"https://x.test/nationality": "DE FR", "assurance": "basic"})
    subject, _ = mapped.verify(sign(keys, "rsa", "RS256", payload))
    assert subject.citizenships == ("DE", "FR") and subject.kyc is KycLevel.BASIC
    odd = claims(citizenships=["US", "China"], kyc="gold", screening=7, controlled_by="USA", residencies=None)
    subject, _ = mapped.verify(sign(keys, "rsa", "RS256", {**odd, "https://x.test/nationality": ["US", "China"]}))
    assert subject.citizenships is None and subject.kyc is None and subject.screening is None
    assert subject.controlled_by is None and subject.residencies is None and subject.us_person is None
    with pytest.raises(ConfigError, match="unknown claim mapping"):
        JwtVerifier(JwksSource(str(jwks_file)), issuer=ISS, audience=AUD, claims={"shoe_size": "x"})


def test_bad_jwks_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError):
        JwksSource(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text('{"nokeys": []}')
    with pytest.raises(ConfigError, match="no 'keys'"):
        JwksSource(str(tmp_path / "bad.json"))


class _JwksServer:
    def __init__(self, document: dict) -> None:
        self.document = document
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_jwks_url_is_refreshed_on_unknown_kid_but_rate_limited(keys):
    server = _JwksServer(jwks_of(keys, "rsa"))
    try:
        now = [0.0]
        source = JwksSource(server.url, min_refresh=30.0, clock=lambda: now[0])
        verifier = JwtVerifier(source, issuer=ISS, audience=AUD)
        assert verifier.verify(sign(keys, "rsa", "RS256", claims()))[0].citizenships == ("US",)
        server.document = jwks_of(keys, "rsa", "rsa2")  # the IdP rotates in a new key
        with pytest.raises(InvalidTokenError):  # too soon to refetch
            verifier.verify(sign(keys, "rsa2", "RS256", claims()))
        assert server.hits == 1
        now[0] = 31.0
        assert verifier.verify(sign(keys, "rsa2", "RS256", claims()))[0].subject_id.endswith("#u-1")
        assert server.hits == 2
        for _ in range(5):  # made-up kids do not cause a fetch each
            with pytest.raises(InvalidTokenError):
                verifier.verify(sign(keys, "rsa2", "RS256", claims(), kid="made-up"))
        assert server.hits == 2
    finally:
        server.close()


def test_authenticator_caches_jwt_until_its_expiry_at_most(verifier, keys, store):
    now = time.time()
    auth = Authenticator(store, verifier, jwt_ttl=3600, clock=lambda: now)
    exp = int(now) + 60
    token = sign(keys, "ec", "ES256", claims(exp=exp))
    assert auth.authenticate(token).citizenships == ("US",)
    ((digest, (_, expires)),) = auth._cache.items()
    assert expires == exp and len(digest) == 32 and token.encode() not in digest
    short = Authenticator(store, verifier, jwt_ttl=10, clock=lambda: now)
    short.authenticate(token)
    assert next(iter(short._cache.values()))[1] == now + 10


def test_authenticator_from_settings(jwks_file, keys, tmp_path: Path):
    from exportgate.config import Settings
    from exportgate.identity import authenticator_from_settings

    settings = Settings(
        {
            "home": str(tmp_path / "home"),
            "jwks": str(jwks_file),
            "jwt_issuer": ISS,
            "jwt_audience": AUD,
            "jwt_claims": {"kyc": "assurance"},
        },
        env={},
    )
    auth = authenticator_from_settings(settings)
    subject = auth.authenticate(sign(keys, "ed", "EdDSA", claims(kyc=None, assurance="basic")))
    assert subject.kyc is KycLevel.BASIC
    assert (tmp_path / "home" / "accounts.db").exists()
    with pytest.raises(ConfigError, match="jwt_issuer and jwt_audience"):
        authenticator_from_settings(Settings({"home": str(tmp_path), "jwks": str(jwks_file)}, env={}))
    no_jwt = authenticator_from_settings(Settings({"home": str(tmp_path / "h2")}, env={}))
    with pytest.raises(InvalidTokenError, match="invalid credentials"):  # names nothing of what is accepted
        no_jwt.authenticate(sign(keys, "ed", "EdDSA", claims()))
