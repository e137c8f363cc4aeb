"""Load and validate a directive (docs/directives.md) into a compiled :class:`Directive`.

Every key is checked; unknown keys are errors (a misspelt rule must never
silently open a tier). Problems are collected with their line numbers and
raised together as one :class:`DirectiveError` naming the first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from exportgate._types import ANONYMIZER_KINDS, KycLevel
from exportgate._yaml import line_of, load_yaml
from exportgate.errors import DirectiveError

from ._countries import builtin_groups, is_country_code
from ._directive import Directive, ModelEntry, Tier
from ._models import normalize_model_name
from ._rules import COUNTRY_SET_RULES, RULE_ORDER, MemberSet

__all__ = ["load_directive", "parse_directive"]

TOP_KEYS = (
    "directive",
    "version",
    "effective",
    "authority",
    "references",
    "description",
    "unknown_models",
    "groups",
    "tiers",
    "models",
)
MODEL_KEYS = ("tier", "aliases", "description")
_BOOL_RULES = frozenset({"require_us_person", "require_screening_clear"})


def load_directive(path: str | Path) -> Directive:
    """Read, validate and compile a directive file."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DirectiveError(f"cannot read directive: {exc.strerror or exc}", file=source) from None
    return parse_directive(data, source=source)


def parse_directive(text: str | bytes, *, source: str = "<directive>") -> Directive:
    """Validate and compile directive YAML given as text."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    doc = load_yaml(raw, source)
    return _Validator(source).run(doc, hashlib.sha256(raw).hexdigest())


class _Validator:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[tuple[int | None, str]] = []
        self.group_defs: dict[str, tuple[Any, int | None]] = {}
        self.groups: dict[str, frozenset[str]] = {}

    def fail(self, line: int | None, message: str) -> None:
        self.problems.append((line, message))

    def run(self, doc: Any, sha256: str) -> Directive:
        if not isinstance(doc, dict):
            raise DirectiveError("a directive is a YAML mapping", file=self.source, line=line_of(doc))
        self._check_keys(doc, TOP_KEYS, "directive")
        header = self._header(doc)
        self._load_groups(doc.get("groups"), line_of(doc, "groups"))
        tiers = self._tiers(doc)
        models = self._models(doc, tiers)
        if self.problems:
            self.problems.sort(key=lambda p: (p[0] is None, p[0] or 0))
            line, message = self.problems[0]
            error = DirectiveError(message, file=self.source, line=line)
            error.problems = list(self.problems)  # type: ignore[attr-defined]
            raise error
        return Directive(tiers=tiers, models=models, groups=self.groups, sha256=sha256, source=self.source, **header)

    # -- header ------------------------------------------------------------

    def _check_keys(self, mapping: dict[Any, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.fail(
                    line_of(mapping, key), f"unknown key {key!r} in {where} (expected one of: {', '.join(allowed)})"
                )

    def _header(self, doc: dict[Any, Any]) -> dict[str, Any]:
        header: dict[str, Any] = {}
        for key, attr in (("directive", "id"), ("version", "version")):
            value = doc.get(key)
            if not isinstance(value, str) or not value.strip():
                hint = " (quote it)" if value is not None else ""
                self.fail(line_of(doc, key, 1), f"'{key}' must be a non-empty string{hint}")
            else:
                header[attr] = value.strip()
        header["effective"] = self._effective(doc)
        if "authority" in doc:
            header["authority"] = self._string(doc, "authority")
        header["references"] = tuple(self._string_list(doc, "references"))
        unknown = doc.get("unknown_models", "deny")
        if unknown not in ("deny", "allow"):
            self.fail(line_of(doc, "unknown_models"), f"'unknown_models' must be deny or allow, not {unknown!r}")
        else:
            header["unknown_models"] = unknown
        return header

    def _string(self, mapping: dict[Any, Any], key: str) -> str | None:
        value = mapping.get(key)
        if not isinstance(value, str):
            self.fail(line_of(mapping, key), f"'{key}' must be a string")
            return None
        return value

    def _string_list(self, mapping: dict[Any, Any], key: str) -> list[str]:
        value = mapping.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(line_of(mapping, key), f"'{key}' must be a list of strings")
            return []
        return list(value)

    def _effective(self, doc: dict[Any, Any]) -> str | None:
        value = doc.get("effective")
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                dt.datetime.fromisoformat(value)
                return value
            except ValueError:
                pass
        self.fail(line_of(doc, "effective"), f"'effective' must be an ISO 8601 date or time, not {value!r}")
        return None

    # -- groups ------------------------------------------------------------

    def _load_groups(self, groups: Any, line: int | None) -> None:
        if groups is None:
            return
        if not isinstance(groups, dict):
            self.fail(line, "'groups' must map group names to lists of countries")
            return
        for name, members in groups.items():
            name_line = line_of(groups, name, line)
            if not isinstance(name, str) or is_country_code(str(name)):
                self.fail(name_line, f"group name {name!r} must be a string that is not a country code")
            elif not isinstance(members, list):
                self.fail(name_line, f"group {name!r} must be a list of country codes or group names")
            else:
                self.group_defs[name] = (members, name_line)
        for name in self.group_defs:
            self._resolve_group(name, ())

    def _resolve_group(self, name: str, stack: tuple[str, ...]) -> frozenset[str] | None:
        if name in self.groups:
            return self.groups[name]
        if name not in self.group_defs:
            builtin = builtin_groups().get(name)
            return builtin.members if builtin is not None else None
        members, line = self.group_defs[name]
        if name in stack:
            cycle = " -> ".join((*stack[stack.index(name) :], name))
            self.fail(line, f"group cycle: {cycle}")
            return frozenset()
        resolved = frozenset(self._countries(members, line, f"group {name!r}", (*stack, name)))
        self.groups[name] = resolved
        return resolved

    def _countries(self, entries: Any, line: int | None, where: str, stack: tuple[str, ...] = ()) -> Iterator[str]:
        if not isinstance(entries, list):
            self.fail(line, f"{where} must be a list of country codes or group names")
            return
        for index, entry in enumerate(entries):
            entry_line = line_of(entries, index, line)
            yield from self._country_entry(entry, entry_line, where, stack)

    def _country_entry(self, entry: Any, line: int | None, where: str, stack: tuple[str, ...]) -> Iterator[str]:
        if not isinstance(entry, str):
            self.fail(line, f"{where}: expected a country code or group name, got {entry!r} (quote it)")
            return
        if entry in self.group_defs or entry in builtin_groups():
            members = self._resolve_group(entry, stack)
            yield from members or ()
        elif len(entry) == 2 and entry.isalpha():
            code = entry.upper()
            if is_country_code(code):
                yield code
            else:
                self.fail(line, f"{where}: unknown country code {entry!r} (ISO 3166-1 alpha-2 expected)")
        else:
            self.fail(line, f"{where}: unknown group {entry!r}")

    # -- tiers -------------------------------------------------------------

    def _tiers(self, doc: dict[Any, Any]) -> dict[str, Tier]:
        tiers_node = doc.get("tiers")
        if not isinstance(tiers_node, dict) or not tiers_node:
            self.fail(line_of(doc, "tiers", 1), "'tiers' must map tier names to rules (at least one tier)")
            return {}
        tiers: dict[str, Tier] = {}
        for name, rules in tiers_node.items():
            line = line_of(tiers_node, name)
            if not isinstance(name, str) or not name.strip():
                self.fail(line, f"tier name {name!r} must be a string")
                continue
            spec = {} if rules is None else rules
            if not isinstance(spec, dict):
                self.fail(line, f"tier {name!r} must be a mapping of rules ({{}} for none)")
                continue
            tiers[name] = Tier(name=name, rules=self._rules(name, spec, line))
        return tiers

    def _rules(self, tier: str, rules: dict[Any, Any], tier_line: int | None) -> dict[str, Any]:
        self._check_keys(rules, RULE_ORDER, f"tier {tier!r}")
        compiled: dict[str, Any] = {}
        for key, value in rules.items():
            if key not in RULE_ORDER:
                continue
            line = line_of(rules, key, tier_line)
            where = f"tier {tier!r}: {key}"
            if key in COUNTRY_SET_RULES:
                compiled[key] = MemberSet(frozenset(self._countries(value, line, where)))
            elif key in _BOOL_RULES:
                compiled[key] = self._bool(value, line, where)
            elif key == "deny_anonymizers":
                compiled[key] = self._anonymizers(value, line, where)
            elif key == "require_kyc":
                compiled[key] = self._kyc(value, line, where)
        return compiled

    def _bool(self, value: Any, line: int | None, where: str) -> bool:
        if not isinstance(value, bool):
            self.fail(line, f"{where} must be true or false, not {value!r}")
            return True
        return value

    def _anonymizers(self, value: Any, line: int | None, where: str) -> MemberSet | None:
        if value is False:
            return None
        if value is True:
            return MemberSet(ANONYMIZER_KINDS)
        if isinstance(value, list) and value and all(v in ANONYMIZER_KINDS for v in value):
            return MemberSet(frozenset(value))
        self.fail(line, f"{where} must be true, false or a list of: {', '.join(sorted(ANONYMIZER_KINDS))}")
        return MemberSet(ANONYMIZER_KINDS)

    def _kyc(self, value: Any, line: int | None, where: str) -> KycLevel | None:
        if not isinstance(value, str):
            self.fail(line, f"{where} must be one of none, basic, verified")
            return KycLevel.VERIFIED
        try:
            level = KycLevel.parse(value)
        except ValueError as exc:
            self.fail(line, f"{where}: {exc}")
            return KycLevel.VERIFIED
        return level if level > KycLevel.NONE else None

    # -- models ------------------------------------------------------------

    def _models(self, doc: dict[Any, Any], tiers: dict[str, Tier]) -> dict[str, ModelEntry]:
        node = doc.get("models")
        if not isinstance(node, dict):
            self.fail(line_of(doc, "models", 1), "'models' must map model names to {tier: ...}")
            return {}
        seen: dict[str, tuple[str, int | None]] = {}
        models: dict[str, ModelEntry] = {}
        for name, spec in node.items():
            line = line_of(node, name)
            entry = self._model(name, spec, line, tiers)
            if entry is None:
                continue
            aliases_node = spec.get("aliases") if isinstance(spec, dict) else None
            for index, spelling in enumerate((entry.name, *entry.aliases)):
                spelling_line = line if index == 0 else line_of(aliases_node, index - 1, line)
                self._claim_name(spelling, entry.name, spelling_line, seen)
            models[entry.name] = entry
        return models

    def _model(self, name: Any, spec: Any, line: int | None, tiers: dict[str, Tier]) -> ModelEntry | None:
        if not isinstance(name, str) or not normalize_model_name(name):
            self.fail(line, f"model name {name!r} must be a non-empty string")
            return None
        if isinstance(spec, str):
            spec = {"tier": spec}
        if not isinstance(spec, dict):
            self.fail(line, f"model {name!r} must be a mapping with a 'tier'")
            return None
        self._check_keys(spec, MODEL_KEYS, f"model {name!r}")
        tier = spec.get("tier")
        if not isinstance(tier, str):
            self.fail(line, f"model {name!r} needs a 'tier'")
            return None
        if tier not in tiers:
            self.fail(line_of(spec, "tier", line), f"model {name!r}: unknown tier {tier!r}")
            return None
        aliases = spec.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            self.fail(line_of(spec, "aliases", line), f"model {name!r}: 'aliases' must be a list of names")
            aliases = []
        return ModelEntry(name=name.strip(), tier=tier, aliases=tuple(a.strip() for a in aliases))

    def _claim_name(self, spelling: str, model: str, line: int | None, seen: dict[str, tuple[str, int | None]]) -> None:
        key = normalize_model_name(spelling)
        if key in seen:
            other, other_line = seen[key]
            where = f" on line {other_line}" if other_line else ""
            self.fail(line, f"model name {spelling!r} duplicates {other!r}{where}")
        else:
            seen[key] = (model, line)
