"""Signing: one Ed25519 identity per home, the keys a verifier trusts, and RFC 8785 canonical JSON.

Used alike by the audit trail (checkpoints), evaluation (evidence bundles) and classification (records),
so a regulator pins one key per home (``exportgate keys show``).
"""

from ._home import (
    KEYS_DIR,
    PUBLIC_FILE,
    home_public_key,
    home_signer,
    passphrase_of,
    rotate_signer,
    signer_for,
    trust_key,
    trusted_for,
    trusted_keys,
)
from ._jcs import canonical, canonical_text, es_number
from ._keys import KEY_FILE, Signer, TrustedKeys, key_id_of, load_public_key, public_pem

__all__ = [
    "KEYS_DIR",
    "KEY_FILE",
    "PUBLIC_FILE",
    "Signer",
    "TrustedKeys",
    "canonical",
    "canonical_text",
    "es_number",
    "home_public_key",
    "home_signer",
    "key_id_of",
    "load_public_key",
    "passphrase_of",
    "public_pem",
    "rotate_signer",
    "signer_for",
    "trust_key",
    "trusted_for",
    "trusted_keys",
]
