"""Ed25519 signing keys: one per home (``_home``), optionally encrypted with a passphrase, and the set of
public keys a verifier trusts."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from exportgate._files import private_dir
from exportgate.errors import ConfigError

__all__ = ["KEY_FILE", "Signer", "TrustedKeys", "key_id_of", "load_public_key", "public_pem"]

KEY_FILE = "signing-key.pem"


def key_id_of(public: Ed25519PublicKey) -> str:
    """A key's id: the first 16 hex digits of the SHA-256 of its raw 32 bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read public key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key")
    return key


class Signer:
    """An Ed25519 private key kept in ``DIRECTORY/signing-key.pem`` (mode 0600; encrypted with
    ``passphrase`` when one is given)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id_of(self.public)

    @classmethod
    def load_or_create(cls, directory: str | Path, passphrase: str | None = None) -> Signer:
        path = Path(directory) / KEY_FILE
        try:
            if path.exists():
                return cls(_read_private(path, passphrase))
            private_dir(path.parent)
            key = Ed25519PrivateKey.generate()
            encryption: serialization.KeySerializationEncryption = (
                serialization.BestAvailableEncryption(passphrase.encode())
                if passphrase
                else serialization.NoEncryption()
            )
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            return cls(key)
        except FileExistsError:  # another process created it first
            return cls.load_or_create(directory, passphrase)
        except OSError as exc:
            raise ConfigError(f"cannot load or create the signing key {path}: {exc}") from None

    def sign(self, message: str | bytes) -> str:
        data = message.encode("utf-8") if isinstance(message, str) else message
        return base64.b64encode(self._private.sign(data)).decode("ascii")

    def public_pem(self) -> str:
        return public_pem(self.public)


def _read_private(path: Path, passphrase: str | None) -> Ed25519PrivateKey:
    data = path.read_bytes()
    encrypted = b"ENCRYPTED" in data
    if encrypted and not passphrase:
        raise ConfigError(f"the signing key {path} is encrypted: set signing_key_passphrase ($env:NAME)")
    try:
        key = serialization.load_pem_private_key(
            data, password=passphrase.encode() if encrypted and passphrase else None
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return key


class TrustedKeys:
    """Public keys a verifier accepts signatures from, by key id, each with where it came from."""

    def __init__(self, keys: list[Ed25519PublicKey] | None = None) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        self.sources: dict[str, str] = {}
        for key in keys or []:
            self.add(key)

    def add(self, key: Ed25519PublicKey, source: str = "given") -> None:
        key_id = key_id_of(key)
        self._keys[key_id] = key
        self.sources.setdefault(key_id, source)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def ids(self) -> list[str]:
        return sorted(self._keys)

    def key(self, key_id: str) -> Ed25519PublicKey | None:
        return self._keys.get(key_id)

    def verify(self, key_id: str, message: str | bytes, signature: str) -> bool:
        key = self._keys.get(key_id)
        if key is None:
            return False
        data = message.encode("utf-8") if isinstance(message, str) else message
        try:
            key.verify(base64.b64decode(signature, validate=True), data)
        except (InvalidSignature, ValueError):
            return False
        return True
