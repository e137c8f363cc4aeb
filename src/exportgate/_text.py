"""Text from files shown on a terminal: one rule for every front end and report."""

from __future__ import annotations

import unicodedata

__all__ = ["printable", "store_label"]

_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` safe for a terminal: control and format characters (an escape sequence from a bundle's
    objective id could clear the screen or rewrite what was printed; a bidirectional override or a
    zero-width space could make two names look alike) are written as ``\\u`` and four hex digits;
    with ``one_line``, line breaks and tabs too, so that a name cannot start a line of its own."""
    keep = () if one_line else ("\n", "\t")
    return "".join(f"\\u{ord(c):04x}" if c not in keep and unicodedata.category(c) in _UNSAFE else c for c in text)


def store_label(url: str) -> str:
    """A store URL without credentials: names the store in heads files and messages."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{rest.rsplit('@', 1)[1]}"
    return url
