"""ISO 3166-1 alpha-2 codes and the built-in country groups."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import pycountry
from ruamel.yaml import YAML

__all__ = ["BuiltinGroup", "builtin_groups", "country_codes", "is_country_code"]

#: Codes in common use that ISO 3166-1 has not assigned (user-assigned range).
_EXTRA_CODES = frozenset({"XK"})  # Kosovo, as used by the EU and CLDR


@functools.cache
def country_codes() -> frozenset[str]:
    """Every ISO 3166-1 alpha-2 code known to pycountry, plus ``XK``."""
    return frozenset(c.alpha_2 for c in pycountry.countries) | _EXTRA_CODES


def is_country_code(value: str) -> bool:
    return value in country_codes()


@dataclass(frozen=True, slots=True)
class BuiltinGroup:
    """A shipped country group with its provenance."""

    name: str
    title: str
    source: str
    as_of: str
    members: frozenset[str]
    verify: bool = False
    note: str = ""


@functools.cache
def builtin_groups() -> dict[str, BuiltinGroup]:
    """Load ``data/country_groups.yaml`` once, resolving ``includes``."""
    text = resources.files(__package__).joinpath("data/country_groups.yaml").read_text("utf-8")
    raw = YAML(typ="safe").load(text)["groups"]
    resolved: dict[str, frozenset[str]] = {}

    def members_of(name: str) -> frozenset[str]:
        if name not in resolved:
            entry = raw[name]
            found = set(entry.get("members", []))
            for included in entry.get("includes", []):
                found |= members_of(included)
            resolved[name] = frozenset(found)
        return resolved[name]

    return {
        name: BuiltinGroup(
            name=name,
            title=entry["title"],
            source=entry["source"],
            as_of=str(entry["as_of"]),
            members=members_of(name),
            verify=bool(entry.get("verify", False)),
            note=" ".join(str(entry.get("note", "")).split()),
        )
        for name, entry in raw.items()
    }
