"""API keys: 256-bit random secrets with a recognizable prefix, stored hashed.

Format: ``egk_<key id: 12 hex>_<secret: 43 url-safe base64 chars>``. The key
id is not secret (it names the key in lists, logs and the audit record); the
store keeps only the SHA-256 of the whole key. A plain hash suffices because
the secret has 256 bits of entropy: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

__all__ = ["KEY_PREFIX", "NewKey", "generate_key", "hash_key", "key_id_of", "matches"]

KEY_PREFIX = "egk_"
_SHAPE = re.compile(r"egk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")


class NewKey(NamedTuple):
    key_id: str
    secret: str  # the whole key: shown once, never stored
    hash: str


def generate_key() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key_id, secret, hash_key(secret))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(token: str) -> str | None:
    """The key id of a well-formed exportgate API key, else ``None``."""
    match = _SHAPE.fullmatch(token)
    return match.group(1) if match else None


def matches(token: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(hash_key(token), stored_hash)
