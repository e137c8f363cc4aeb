"""Model-name normalization: one spelling per model, whatever the client sends."""

from __future__ import annotations

import unicodedata

__all__ = ["normalize_model_name"]


def normalize_model_name(name: str) -> str:
    """Canonical lookup key for a requested model name.

    Applies, in order: Unicode NFKC (full-width and compatibility forms fold
    to ASCII), removal of invisible format characters (zero-width spaces,
    joiners, bidi marks), trimming, case folding, and removal of any provider
    prefix up to the last ``/`` (``vendor/fable-5`` -> ``fable-5``).
    """
    if not name.isascii():
        name = unicodedata.normalize("NFKC", name)
        name = "".join(ch for ch in name if unicodedata.category(ch) != "Cf")
    name = name.strip().casefold()
    if "/" in name:
        name = name.rsplit("/", 1)[1].strip()
    return name
