"""Ed25519 signing of checkpoints: a key per home directory, generated on first use."""

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

__all__ = ["Signer", "TrustedKeys", "key_id_of", "load_public_key"]

KEY_FILE = "signing-key.pem"


def key_id_of(public: Ed25519PublicKey) -> str:
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
    """The checkpoint signing key of one home directory (``HOME/audit/signing-key.pem``, mode 0600)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id_of(self.public)

    @classmethod
    def load_or_create(cls, directory: str | Path) -> Signer:
        path = Path(directory) / KEY_FILE
        try:
            if path.exists():
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
                if not isinstance(key, Ed25519PrivateKey):
                    raise ConfigError(f"{path} is not an Ed25519 private key")
                return cls(key)
            private_dir(path.parent)
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            return cls(key)
        except FileExistsError:  # another process created it first
            return cls.load_or_create(directory)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load or create the audit signing key {path}: {exc}") from None

    def sign(self, message: str) -> str:
        return base64.b64encode(self._private.sign(message.encode("utf-8"))).decode("ascii")

    def public_pem(self) -> str:
        return public_pem(self.public)


class TrustedKeys:
    """Public keys a verifier accepts checkpoint signatures from, by key id."""

    def __init__(self, keys: list[Ed25519PublicKey] | None = None) -> None:
        self._keys = {key_id_of(k): k for k in keys or []}

    def add(self, key: Ed25519PublicKey) -> None:
        self._keys[key_id_of(key)] = key

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def verify(self, key_id: str, message: str, signature: str) -> bool:
        key = self._keys.get(key_id)
        if key is None:
            return False
        try:
            key.verify(base64.b64decode(signature, validate=True), message.encode("utf-8"))
        except (InvalidSignature, ValueError):
            return False
        return True
