"""One signing identity per home, and the keys it trusts.

``HOME/keys/signing-key.pem`` signs everything the home produces: audit checkpoints, evidence bundles,
classification records (one key to pin, rotate and export: ``exportgate keys show|export``). Its public
half is kept beside it (``signing-key.pub.pem``), so verifying never needs the passphrase. A home from
before keeps its audit key as its identity; the evidence and classification keys it had are retired:
their public halves become trusted keys (``HOME/keys/trusted/``), so what they signed still verifies,
and the private halves are deleted.

Trusted, for every verifier of this home: its own key, every ``*.pem`` in ``HOME/keys/trusted/``, the
``trusted_keys`` setting's files, and keys given on the command line (``--trust``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exportgate._files import private_dir, private_file
from exportgate.config import Settings, resolve_secret
from exportgate.errors import ConfigError

from ._keys import KEY_FILE, Signer, TrustedKeys, key_id_of, load_public_key, public_pem

__all__ = [
    "KEYS_DIR",
    "PUBLIC_FILE",
    "home_public_key",
    "home_signer",
    "passphrase_of",
    "rotate_signer",
    "signer_for",
    "trust_key",
    "trusted_for",
    "trusted_keys",
]

KEYS_DIR = "keys"
PUBLIC_FILE = "signing-key.pub.pem"
_RETIRED = ("evidence", "classify")  # where earlier versions kept separate keys


def home_signer(home: Path, passphrase: str | None = None) -> Signer:
    """The home's signing identity, created (or adopted from an earlier version's audit key) when missing."""
    keys = home / KEYS_DIR
    if not (keys / KEY_FILE).exists():
        _adopt_earlier(home, keys)
    signer = Signer.load_or_create(keys, passphrase)
    if not (keys / PUBLIC_FILE).exists():
        _write(keys / PUBLIC_FILE, signer.public_pem())
    return signer


def _adopt_earlier(home: Path, keys: Path) -> None:
    private_dir(keys)
    earlier = home / "audit" / KEY_FILE
    if earlier.exists():
        os.replace(earlier, keys / KEY_FILE)  # the audit key becomes the identity: its chains still verify
    for name in _RETIRED:
        retired = home / name / KEY_FILE
        if retired.exists():
            old = Signer.load_or_create(retired.parent)
            _write(keys / "trusted" / f"retired-{name}-{old.key_id}.pem", old.public_pem())
            retired.unlink()


def _write(path: Path, text: str) -> None:
    private_dir(path.parent)
    with private_file(path) as handle:
        handle.write(text)


def trust_key(home: Path, path: str | Path) -> str:
    """Copy a public key into ``HOME/keys/trusted/`` (named by its id); returns the key id."""
    key = load_public_key(path)
    key_id = key_id_of(key)
    _write(home / KEYS_DIR / "trusted" / f"{key_id}.pem", public_pem(key))
    return key_id


def trusted_keys(home: Path, extra: Iterable[str | Path] = ()) -> TrustedKeys:
    """The keys a verifier of this home accepts (see the module docstring). Reads only: a home without an
    identity yet trusts what it is given, and nothing is created."""
    keys = TrustedKeys()
    own = home_public_key(home)
    if own is not None:
        keys.add(own, "this home's signing key")
    for directory in (home / KEYS_DIR / "trusted", home / "audit" / "trusted"):
        for path in sorted(directory.glob("*.pem")):
            keys.add(load_public_key(path), str(path))
    for given in extra:
        keys.add(load_public_key(given), str(given))
    return keys


def rotate_signer(home: Path, passphrase: str | None = None) -> tuple[str | None, Signer]:
    """Retire the home's key (its public half stays trusted, as ``retired-ID.pem``; the private half is
    deleted) and make a new one. Returns (the retired key's id, the new signer)."""
    keys = home / KEYS_DIR
    old = home_public_key(home)
    retired = None
    if old is not None and (keys / KEY_FILE).exists():
        home_signer(home, passphrase)  # only who can unlock the key may retire it (its passphrase, if any)
    if old is not None:
        retired = key_id_of(old)
        _write(keys / "trusted" / f"retired-{retired}.pem", public_pem(old))
        for path in (keys / KEY_FILE, keys / PUBLIC_FILE, home / "audit" / KEY_FILE):
            path.unlink(missing_ok=True)
    return retired, home_signer(home, passphrase)


def home_public_key(home: Path) -> Ed25519PublicKey | None:
    """The public half of the home's identity, or None when it has none yet. Reads only."""
    public = home / KEYS_DIR / PUBLIC_FILE
    if public.exists():
        return load_public_key(public)
    earlier = home / "audit" / KEY_FILE  # a home from before, not yet opened for writing
    if earlier.exists():
        return Signer.load_or_create(earlier.parent).public
    return None


def passphrase_of(settings: Settings) -> str | None:
    """The ``signing_key_passphrase`` setting, resolved (it must be ``$env:NAME``)."""
    reference = settings.signing_key_passphrase
    if reference is not None and not str(reference).startswith("$env:"):
        raise ConfigError("signing_key_passphrase must be a reference, $env:NAME, never the passphrase itself")
    passphrase = resolve_secret(reference)
    if reference is not None and not passphrase:
        raise ConfigError(f"signing_key_passphrase names {reference}, which is empty: a key would not be encrypted")
    return passphrase


def signer_for(settings: Settings) -> Signer:
    """The home's identity, unlocked with the ``signing_key_passphrase`` setting."""
    return home_signer(settings.home_path, passphrase_of(settings))


def trusted_for(settings: Settings, extra: Iterable[str | Path] = ()) -> TrustedKeys:
    """:func:`trusted_keys` of the settings' home, with the ``trusted_keys`` setting's files and ``extra``."""
    return trusted_keys(settings.home_path, [*settings.trusted_keys, *extra])
