"""The compiled directive: frozen lookup tables built once per load."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from exportgate._types import Decision

from ._models import normalize_model_name
from ._rules import RULES, Check

__all__ = ["Directive", "ModelEntry", "Tier"]

#: Distinct non-canonical spellings remembered per directive (a bounded memo
#: of a pure function; unseen spellings past the bound are normalized anew):
#: at most this many, each at most _SPELLING_MEMO_CHARS long, so the memo
#: never holds more than about 1 MiB whatever names clients send.
_SPELLING_MEMO_SIZE = 4096
_SPELLING_MEMO_CHARS = 256


@dataclass(frozen=True, slots=True)
class Tier:
    """A named set of rules. ``rules`` holds the validated values by rule key;
    ``checks`` is the same, as (check, value) pairs in evaluation order."""

    name: str
    rules: Mapping[str, Any]
    checks: tuple[tuple[Check, Any], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        checks = tuple((check, self.rules[key]) for key, check in RULES.items() if self._active(key))
        object.__setattr__(self, "checks", checks)

    def _active(self, key: str) -> bool:
        value = self.rules.get(key)
        return value is not None and value is not False


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    tier: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Directive:
    """A validated directive. Build it with :func:`exportgate.policy.load_directive`."""

    id: str
    version: str
    tiers: Mapping[str, Tier]
    models: Mapping[str, ModelEntry]
    unknown_models: Literal["deny", "allow"] = "deny"
    effective: str | None = None
    authority: str | None = None
    references: tuple[str, ...] = ()
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    sha256: str = ""
    source: str = "<directive>"
    _names: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _allow: Mapping[str, Decision] = field(init=False, repr=False, compare=False)
    _routes: Mapping[str, tuple[str, tuple[tuple[Check, Any], ...]]] = field(init=False, repr=False, compare=False)
    _spellings: dict[str, str | None] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        names: dict[str, str] = {}
        allow: dict[str, Decision] = {}
        for entry in self.models.values():
            for spelling in (entry.name, *entry.aliases):
                names[normalize_model_name(spelling)] = entry.name
            allow[entry.name] = Decision("allow", entry.name, entry.name, entry.tier, self.id, self.version, ())
        object.__setattr__(self, "tiers", MappingProxyType(dict(self.tiers)))
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))
        object.__setattr__(self, "groups", MappingProxyType(dict(self.groups)))
        object.__setattr__(self, "_names", MappingProxyType(names))
        object.__setattr__(self, "_allow", MappingProxyType(allow))
        routes = {e.name: (e.tier, self.tiers[e.tier].checks) for e in self.models.values()}
        object.__setattr__(self, "_routes", MappingProxyType(routes))

    def resolve_model(self, requested: str) -> str | None:
        """The canonical model for any spelling of a name or alias, else ``None``."""
        found = self._names.get(requested)
        if found is None:
            memo = self._spellings
            if requested in memo:
                return memo[requested]
            found = self._names.get(normalize_model_name(requested))
            if len(memo) < _SPELLING_MEMO_SIZE and len(requested) <= _SPELLING_MEMO_CHARS:
                memo[requested] = found
        return found

    def shadowed_model(self, requested: str) -> str | None:
        """The known model an unknown name extends, e.g. ``fable-5:beta`` -> ``fable-5``.

        Used under ``unknown_models: allow`` so that a suffix cannot smuggle a
        restricted model past its tier. The longest known prefix wins.
        """
        key = normalize_model_name(requested)
        best: str | None = None
        best_len = 0
        for name, canonical in self._names.items():
            if len(key) > len(name) > best_len and key.startswith(name) and not key[len(name)].isalnum():
                best, best_len = canonical, len(name)
        return best

    def route(self, model: str) -> tuple[str, tuple[tuple[Check, Any], ...]]:
        """(tier name, the tier's checks in order) for a canonical model."""
        return self._routes[model]

    def allow_decision(self, model: str) -> Decision:
        """The shared, prebuilt allow decision for a canonical model."""
        return self._allow[model]

    @property
    def label(self) -> str:
        return f"{self.id}@{self.version}"
