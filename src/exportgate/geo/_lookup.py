"""IP intelligence: country and anonymizer flags for a client address.

Order of sources: a configured country ``.mmdb`` answers first and the
embedded registry data fills in where it has no answer; anonymizer flags are
the union of every source (more evidence of an anonymizer never removes a
flag). Reserved, private, loopback and link-local addresses have no country
and no flags. "No answer" is ``None``, never "not embargoed".
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator
from pathlib import Path
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton

import iptocc

from exportgate._types import GeoInfo
from exportgate.config import Settings

from ._address import RESERVED_V4, RESERVED_V6, network_range, parse_address
from ._embedded import anonymizer_ranges, country_of, embedded_info
from ._mmdb import MmdbDatabase
from ._ranges import RangeTable

__all__ = ["GeoLookup", "geo_from_settings"]

_RESERVED = frozenset({"reserved"})  # a label, never a flag
_NONE: frozenset[str] = frozenset()
_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"


class GeoLookup:
    """Answers :class:`GeoInfo` for an address string. Thread-safe for reads.

    ``embedded``: use the bundled iptocc/iporigin data (default).
    ``country_mmdb`` / ``anonymous_mmdb``: MaxMind-format databases.
    ``memo_size``: distinct addresses remembered (0 disables the memo).
    """

    def __init__(
        self,
        *,
        embedded: bool = True,
        country_mmdb: str | Path | None = None,
        anonymous_mmdb: str | Path | None = None,
        memo_size: int = 65536,
    ) -> None:
        self.embedded = embedded
        self._country_db = MmdbDatabase(country_mmdb) if country_mmdb else None
        self._anon_db = MmdbDatabase(anonymous_mmdb) if anonymous_mmdb else None
        self._tables = {4: RangeTable(self._ranges(4)), 6: RangeTable(self._ranges(6))}
        self._memo: dict[str, GeoInfo] = {}
        self._memo_size = memo_size
        self._infos: dict[tuple[str | None, frozenset[str] | None], GeoInfo] = {}
        self._sourced: dict[tuple[str | None, frozenset[str] | None, str], GeoInfo] = {}
        self._v4 = self._tables[4].columns()
        self._blocks = self._tables[4].blocks16()
        self._reserved = GeoInfo(None, _NONE, "reserved")
        self._flags_known = embedded or self._anon_db is not None
        self._simple = embedded and self._country_db is None and self._anon_db is None
        self._lookup = self._compile_lookup()

    def _ranges(self, version: int) -> Iterator[tuple[int, int, frozenset[str]]]:
        for cidr in RESERVED_V4 if version == 4 else RESERVED_V6:
            _, first, last = network_range(cidr)
            yield first, last, _RESERVED
        if self.embedded:
            yield from anonymizer_ranges(version)

    def lookup(self, ip: str) -> GeoInfo:
        """Country and anonymizer flags for ``ip``; raises InvalidAddressError if malformed."""
        return self._lookup(ip)

    def _compile_lookup(self) -> Callable[[str], GeoInfo]:
        """The per-request lookup as a closure over local names (no attribute loads).

        Hot path: dotted-quad IPv4 on the embedded data, the family picked by
        its separator so well-formed input raises nothing; everything else
        (IPv6, mapped IPv4, .mmdb sources, odd spellings) goes to ``_lookup_other``.
        """
        memo, memo_size = self._memo, self._memo_size
        memo_get, infos_get = memo.get, self._infos.get
        blocks, bisect_v4, remember, other = self._blocks, self._bisect_v4, self._remember, self._lookup_other
        reserved, simple, country_code = self._reserved, self._simple, iptocc.country_code

        def lookup(ip: str) -> GeoInfo:
            info = memo_get(ip)
            if info is not None:
                return info
            packed = None
            if simple and type(ip) is str and ":" not in ip:
                try:
                    packed = inet_pton(AF_INET, ip)
                except (OSError, ValueError):
                    packed = None
            if packed is None:
                info = other(ip)
            else:
                entry = blocks[packed[0] << 8 | packed[1]]
                label: frozenset[str] | None = (
                    bisect_v4(int.from_bytes(packed, "big"), entry) if type(entry) is tuple else entry  # type: ignore[assignment]
                )
                if label is _RESERVED:
                    info = reserved
                else:
                    key = (country_code(ip), label or _NONE)
                    info = infos_get(key) or remember(key)
            if memo_size:
                if len(memo) >= memo_size:
                    memo.clear()
                memo[ip] = info
            return info

        return lookup

    def _lookup_other(self, ip: str) -> GeoInfo:
        try:
            if ":" in ip:  # TypeError for a non-string: the strict path reports it
                packed = inet_pton(AF_INET6, ip)
                if packed[:12] != _V4_MAPPED:
                    return self._answer(6, int.from_bytes(packed, "big"), ip)
                packed = packed[12:]
                ip = inet_ntop(AF_INET, packed)
            else:
                packed = inet_pton(AF_INET, ip)
        except (OSError, TypeError, ValueError):
            return self._answer(*parse_address(ip))
        return self._answer(4, int.from_bytes(packed, "big"), ip)

    def _bisect_v4(self, value: int, bounds: tuple[int, int]) -> frozenset[str] | None:
        starts, ends, labels = self._v4
        index = bisect_right(starts, value, *bounds) - 1
        if index >= bounds[0] and value <= ends[index]:
            return labels[index]
        return None

    def _remember(self, key: tuple[str | None, frozenset[str]]) -> GeoInfo:
        info = self._infos[key] = GeoInfo(key[0] or None, key[1], "embedded")
        return info

    def _answer(self, version: int, value: int, text: str) -> GeoInfo:
        if version == 4 and self._simple:
            entry = self._blocks[value >> 16]
            label = self._bisect_v4(value, entry) if isinstance(entry, tuple) else entry
        else:
            label = self._tables[version].find(value)
        if label is _RESERVED:
            return self._reserved
        if self._simple:
            key = (iptocc.country_code(text), label or _NONE)
            return self._infos.get(key) or self._remember(key)
        country, source = self._country(text)
        flags = self._flags(text, label)
        full = (country, flags, source if self._anon_db is None else f"{source}+{self._anon_db.name}")
        info = self._sourced.get(full)
        if info is None:
            info = self._sourced[full] = GeoInfo(*full)
        return info

    def _country(self, text: str) -> tuple[str | None, str]:
        if self._country_db is not None:
            country = self._country_db.country(text)
            if country is not None or not self.embedded:
                return country, self._country_db.name
        if self.embedded:
            return country_of(text), "embedded"
        return None, "none"

    def _flags(self, text: str, label: frozenset[str] | None) -> frozenset[str] | None:
        if not self._flags_known:
            return None
        flags = label or _NONE
        if self._anon_db is not None:
            extra = self._anon_db.anonymizers(text)
            if extra:
                flags = flags | extra
        return flags

    def info(self) -> dict[str, object]:
        """Where the answers come from: packages, versions, build dates, files."""
        out: dict[str, object] = embedded_info() if self.embedded else {}
        if self._country_db is not None:
            out["country_mmdb"] = self._country_db.info()
        if self._anon_db is not None:
            out["anonymous_mmdb"] = self._anon_db.info()
        return out

    def close(self) -> None:
        for db in (self._country_db, self._anon_db):
            if db is not None:
                db.close()


def geo_from_settings(settings: Settings) -> GeoLookup:
    """Build the lookup the settings describe (bundled data and/or .mmdb files)."""
    return GeoLookup(
        embedded=bool(settings.geo_embedded),
        country_mmdb=settings.geo_country_mmdb,
        anonymous_mmdb=settings.geo_anonymous_mmdb,
    )
