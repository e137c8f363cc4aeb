"""Risk frameworks (``exportgate.framework/v1``): domains, ordered levels with alert and threshold
conditions, and for each level the control tier it maps to.

Evaluation order, written down next to the rules: within a domain, levels are tried from the highest
down; the first whose ``threshold`` holds is the domain's level (the first level, the floor, has no
threshold and applies when none holds). ``alert`` conditions of levels above the one found are reported
as early warnings and change nothing. Across domains the most restrictive tier (by ``tiers``) wins.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from exportgate._yaml import line_of, load_yaml
from exportgate.errors import FrameworkError
from exportgate.eval import Rules

from ._conditions import Condition, ConditionError

__all__ = ["SCHEMA", "Domain", "Framework", "Level", "bundled_frameworks", "load_framework"]

SCHEMA = "exportgate.framework/v1"
DECISIONS = ("deploy", "restrict", "halt")
TOP_KEYS = ("schema", "framework", "version", "description", "structure_only", "source", "repeatable_threshold",
            "repeatable_min_trials", "repeatable_min_successes", "alpha", "tiers", "domains")  # fmt: skip
DOMAIN_KEYS = ("description", "evidence_domains", "levels")
LEVEL_KEYS = ("id", "name", "definition", "alert", "threshold", "tier", "decision", "controls")


@dataclass(frozen=True)
class Level:
    id: str
    name: str
    tier: str
    decision: str
    controls: tuple[str, ...]
    threshold: Condition | None
    alert: Condition | None
    definition: str = ""


@dataclass(frozen=True)
class Domain:
    id: str
    description: str
    evidence_domains: frozenset[str]
    levels: tuple[Level, ...]  # lowest first; levels[0] is the floor


@dataclass(frozen=True)
class Framework:
    id: str
    version: str
    description: str
    structure_only: bool
    repeatable_threshold: float
    tiers: tuple[str, ...]  # least to most restrictive
    domains: tuple[Domain, ...]
    sha256: str
    source: str
    repeatable_min_trials: int = 10
    repeatable_min_successes: int = 2
    alpha: float = 0.05

    @property
    def rules(self) -> Rules:
        """What makes a cell repeatable under this framework (the evidence's own rules do not matter here)."""
        return Rules(self.repeatable_threshold, self.repeatable_min_trials, self.repeatable_min_successes, self.alpha)

    def rank(self, tier: str) -> int | None:
        return self.tiers.index(tier) if tier in self.tiers else None

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "sha256": self.sha256, "structure_only": self.structure_only,
                "rules": self.rules.as_dict()}  # fmt: skip


def bundled_frameworks() -> dict[str, Path]:
    """The frameworks that ship with exportgate, by name: ``default`` and the structure-only templates."""
    root = Path(str(resources.files(__package__ or "exportgate.classify").joinpath("data")))
    found = {"default": root / "default.yaml"}
    found.update({p.stem: p for p in sorted((root / "templates").glob("*.yaml"))})
    return found


def load_framework(name_or_path: str | Path) -> Framework:
    """Read and validate a framework file, or a bundled one by name (``default``, a template's name)."""
    path = Path(name_or_path)
    if not path.exists() and str(name_or_path) in bundled_frameworks():
        path = bundled_frameworks()[str(name_or_path)]
    source = str(name_or_path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        names = ", ".join(bundled_frameworks())
        raise FrameworkError(f"cannot read framework: {exc.strerror or exc} (bundled: {names})", file=source) from None
    doc = load_yaml(raw, source, FrameworkError)
    return _Validator(source).run(doc, hashlib.sha256(raw).hexdigest())


class _Validator:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[tuple[int | None, str]] = []

    def fail(self, line: int | None, message: str) -> None:
        self.problems.append((line, message))

    def run(self, doc: Any, sha256: str) -> Framework:
        if not isinstance(doc, dict):
            raise FrameworkError("a framework is a YAML mapping", file=self.source, line=line_of(doc))
        self._keys(doc, TOP_KEYS, "the framework")
        if doc.get("schema") != SCHEMA:
            self.fail(line_of(doc, "schema", 1), f"'schema' must be {SCHEMA!r}")
        tiers = self._tiers(doc)
        domains = self._domains(doc, tiers)
        threshold = doc.get("repeatable_threshold", 0.2)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
            self.fail(line_of(doc, "repeatable_threshold"), "'repeatable_threshold' must be a number in (0, 1]")
        alpha = doc.get("alpha", 0.05)
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
            self.fail(line_of(doc, "alpha"), "'alpha' must be a number in (0, 1)")
        minimums = {}
        for key, default in (("repeatable_min_trials", 10), ("repeatable_min_successes", 2)):
            value = doc.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000_000:
                self.fail(line_of(doc, key), f"'{key}' must be a whole number from 1 to 1,000,000,000")
            minimums[key] = value
        if self.problems:
            self.problems.sort(key=lambda p: (p[0] is None, p[0] or 0))
            line, message = self.problems[0]
            raise FrameworkError(message, file=self.source, line=line)
        return Framework(
            id=self._text(doc, "framework"), version=self._text(doc, "version"),
            description=str(doc.get("description", "")).strip(), structure_only=doc.get("structure_only") is True,
            repeatable_threshold=float(threshold), tiers=tiers, domains=domains, sha256=sha256, source=self.source,
            repeatable_min_trials=minimums["repeatable_min_trials"],
            repeatable_min_successes=minimums["repeatable_min_successes"], alpha=float(alpha),
        )  # fmt: skip

    def _keys(self, mapping: dict[Any, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.fail(line_of(mapping, key), f"unknown key {key!r} in {where} (expected: {', '.join(allowed)})")

    def _text(self, mapping: dict[Any, Any], key: str, required: bool = True) -> str:
        value = mapping.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if required:
            self.fail(line_of(mapping, key, line_of(mapping)), f"'{key}' must be a non-empty string (quote it)")
        return ""

    def _strings(self, mapping: dict[Any, Any], key: str) -> list[str]:
        value = mapping.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(line_of(mapping, key, line_of(mapping)), f"'{key}' must be a list of strings")
            return []
        return [v.strip() for v in value]

    def _tiers(self, doc: dict[Any, Any]) -> tuple[str, ...]:
        tiers = self._strings(doc, "tiers")
        if not tiers and "tiers" in doc:
            self.fail(line_of(doc, "tiers"), "'tiers' must list the directive's tiers, least restrictive first")
        elif "tiers" not in doc:
            self.fail(1, "'tiers' is missing: list the directive's tiers, least restrictive first")
        if len(set(tiers)) != len(tiers):
            self.fail(line_of(doc, "tiers"), "'tiers' lists a tier twice")
        return tuple(tiers)

    def _domains(self, doc: dict[Any, Any], tiers: tuple[str, ...]) -> tuple[Domain, ...]:
        domains = doc.get("domains")
        if not isinstance(domains, dict) or not domains:
            self.fail(line_of(doc, "domains", 1), "'domains' must map each domain to its levels")
            return ()
        claimed: dict[str, str] = {}
        result = []
        for name, body in domains.items():
            line = line_of(domains, name)
            if not isinstance(body, dict):
                self.fail(line, f"domain {name!r} must be a mapping")
                continue
            self._keys(body, DOMAIN_KEYS, f"domain {name!r}")
            evidence = self._strings(body, "evidence_domains") or [str(name)]
            for item in evidence:
                if item in claimed:
                    self.fail(line, f"evidence domain {item!r} is claimed by both {claimed[item]!r} and {name!r}")
                claimed[item] = str(name)
            levels = self._levels(body, str(name), tiers)
            result.append(Domain(str(name), str(body.get("description", "")).strip(), frozenset(evidence), levels))
        return tuple(result)

    def _levels(self, body: dict[Any, Any], domain: str, tiers: tuple[str, ...]) -> tuple[Level, ...]:
        items = body.get("levels")
        if not isinstance(items, list) or not items:
            self.fail(line_of(body, "levels", line_of(body)), f"domain {domain!r} needs 'levels', lowest first")
            return ()
        levels: list[Level] = []
        for index, item in enumerate(items):
            line = line_of(items, index)
            if not isinstance(item, dict):
                self.fail(line, f"each level of {domain!r} must be a mapping")
                continue
            level = self._level(item, domain, index == 0, tiers)
            if level is None:
                continue
            if any(level.id == other.id for other in levels):
                self.fail(line, f"level {level.id!r} appears twice in {domain!r}")
            if (
                levels
                and level.tier in tiers
                and levels[-1].tier in tiers
                and tiers.index(level.tier) < tiers.index(levels[-1].tier)
            ):
                self.fail(line_of(item, "tier", line), f"level {level.id!r} maps to a less restrictive tier than the "
                          f"level below it ({level.tier!r} < {levels[-1].tier!r})")  # fmt: skip
            levels.append(level)
        return tuple(levels)

    def _level(self, item: dict[Any, Any], domain: str, floor: bool, tiers: tuple[str, ...]) -> Level | None:
        self._keys(item, LEVEL_KEYS, f"a level of {domain!r}")
        level_id = self._text(item, "id")
        tier = self._text(item, "tier")
        if tier and tier not in tiers:
            self.fail(line_of(item, "tier"), f"level {level_id!r}: tier {tier!r} is not in 'tiers'")
        decision = item.get("decision", "deploy" if floor else "restrict")
        if decision not in DECISIONS:
            self.fail(line_of(item, "decision"), f"level {level_id!r}: 'decision' is one of {', '.join(DECISIONS)}")
        threshold, alert = self._condition(item, "threshold"), self._condition(item, "alert")
        if floor and threshold is not None:
            self.fail(line_of(item, "threshold"), f"the first level of {domain!r} is the floor: it has no threshold")
        if not floor and threshold is None and "threshold" not in item:
            self.fail(line_of(item), f"level {level_id!r} of {domain!r} needs a 'threshold'")
        if not level_id or not tier:
            return None
        controls = tuple(self._strings(item, "controls"))
        name, definition = str(item.get("name", level_id)), str(item.get("definition", "")).strip()
        return Level(level_id, name, tier, str(decision), controls, threshold, alert, definition)

    def _condition(self, item: dict[Any, Any], key: str) -> Condition | None:
        if key not in item:
            return None
        line = line_of(item, key)
        source = item[key]
        if not isinstance(source, str) or not source.strip():
            self.fail(line, f"'{key}' must be a CEL condition (a string)")
            return None
        try:
            return Condition.compile(source.strip(), line)
        except ConditionError as exc:
            self.fail(line, f"'{key}': {exc}")
            return None
