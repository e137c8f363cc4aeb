"""HarmBench and JailbreakBench behaviour files: rows read intact, categories placed into domains.

Rows are parsed by :mod:`csv` from the file's decoded text exactly as it is (what ``open(newline="")``
gives): line breaks inside quoted fields, CRLF line endings and a UTF-8 byte-order mark all come through
unchanged. Each data set's category column is mapped to an objective domain, a severity and a benign
lead-up topic by ``data/dataset_maps.yaml`` (docs/evaluation.md gives the reasoning for every entry); a
user's map file overrides it category by category. A category with no mapping is refused, never guessed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from exportgate._files import read_input
from exportgate.errors import ConfigError

__all__ = ["SEVERITIES", "Behaviour", "Placement", "load_dataset_maps", "read_behaviours"]

#: Objective severities, lowest first.
SEVERITIES = ("low", "medium", "high", "critical")
MAPS_SCHEMA = "exportgate.dataset-maps/v1"
#: Each data set's name in a map file and the column that holds its category.
DATASETS = {"harmbench": "SemanticCategory", "jailbreakbench": "Category"}

DatasetMaps = Mapping[str, Mapping[str, "Placement"]]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a data-set category lands: the objective's domain and severity, and a lead-up topic."""

    domain: str
    severity: str
    topic: str = ""


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One row of a behaviour file, its text fields exactly as the file holds them."""

    id: str
    goal: str
    context: str
    placement: Placement


def bundled_maps_path() -> Path:
    return Path(str(resources.files("exportgate.eval") / "data" / "dataset_maps.yaml"))


def load_dataset_maps(override: str | Path | None = None) -> dict[str, dict[str, Placement]]:
    """The bundled category maps, with ``override``'s entries in place of (or beside) the bundled ones."""
    maps = _read_maps(bundled_maps_path())
    if override is not None:
        for dataset, entries in _read_maps(Path(override)).items():
            maps[dataset] = {**maps.get(dataset, {}), **entries}
    return maps


def _read_maps(path: Path) -> dict[str, dict[str, Placement]]:
    raw = read_input(path, "the domain map")
    try:
        data = YAML(typ="safe").load(raw)
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    except YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping) or data.get("schema") != MAPS_SCHEMA:
        raise ConfigError(f"{path}: a domain map is a mapping with 'schema: {MAPS_SCHEMA}'")
    unknown = set(data) - {"schema", *DATASETS}
    if unknown:
        raise ConfigError(f"{path}: unknown data set(s) {', '.join(sorted(map(str, unknown)))};"
                          f" known: {', '.join(DATASETS)}")  # fmt: skip
    maps = {}
    for dataset in DATASETS.keys() & data.keys():
        entries = data[dataset]
        if not isinstance(entries, Mapping):
            raise ConfigError(f"{path}: {dataset} must map each category to its domain and severity")
        maps[dataset] = {str(category): _placement(entry, f"{path}: {dataset}.{category}")
                         for category, entry in entries.items()}  # fmt: skip
    return maps


def _placement(entry: Any, where: str) -> Placement:
    if not isinstance(entry, Mapping) or set(entry) - {"domain", "severity", "topic"}:
        raise ConfigError(f"{where}: needs 'domain' and 'severity' (and optionally 'topic'), nothing else")
    domain, severity, topic = entry.get("domain"), entry.get("severity"), entry.get("topic", "")
    if not isinstance(domain, str) or not domain.strip():
        raise ConfigError(f"{where}: 'domain' is required and must be text")
    if severity not in SEVERITIES:
        raise ConfigError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    if not isinstance(topic, str):
        raise ConfigError(f"{where}: 'topic' must be text")
    return Placement(domain, str(severity), topic)


_EXTRA = "\0extra"  # where csv puts the fields of a row longer than the header


def read_behaviours(text: str, where: str, maps: DatasetMaps) -> list[Behaviour]:
    """The rows of a HarmBench (``Behavior``, ``BehaviorID``) or JailbreakBench (``Goal``, ``Behavior``) file."""
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), restkey=_EXTRA)
        rows = list(reader)
        header = list(reader.fieldnames or ())
    except csv.Error as exc:
        raise ConfigError(f"{where}: not a readable CSV file: {exc}") from None
    columns = set(header)
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise ConfigError(f"{where}: column(s) {', '.join(map(repr, repeated))} appear twice in the header")
    for n, row in enumerate(rows, 1):
        if _EXTRA in row or None in row.values():
            raise ConfigError(f"{where}: row {n} has {'more' if _EXTRA in row else 'fewer'} fields than the header")
    harmbench, jailbreakbench = {"Behavior", "BehaviorID"} <= columns, {"Goal", "Behavior"} <= columns
    if harmbench and jailbreakbench:
        raise ConfigError(f"{where}: the header has both HarmBench (BehaviorID) and JailbreakBench (Goal) columns;"
                          " which file is it?")  # fmt: skip
    if {"Behavior", "BehaviorID"} <= columns:
        return [_harmbench(row, f"{where}: row {n}", maps) for n, row in enumerate(rows, 1)]
    if {"Goal", "Behavior"} <= columns:
        return [_jailbreakbench(row, n, f"{where}: row {n}", maps) for n, row in enumerate(rows, 1)]
    raise ConfigError(f"{where}: a CSV must be a HarmBench (Behavior, BehaviorID) or JailbreakBench (Goal, Behavior)"
                      " file")  # fmt: skip


def _harmbench(row: Mapping[str, str | None], where: str, maps: DatasetMaps) -> Behaviour:
    return Behaviour(_text(row, "BehaviorID", where), _text(row, "Behavior", where), row.get("ContextString") or "",
                     _place(maps, "harmbench", row, where))  # fmt: skip


def _jailbreakbench(row: Mapping[str, str | None], number: int, where: str, maps: DatasetMaps) -> Behaviour:
    name = f"jbb-{row.get('Index') or number}-{_text(row, 'Behavior', where)}"
    return Behaviour(name, _text(row, "Goal", where), "", _place(maps, "jailbreakbench", row, where))


def _text(row: Mapping[str, str | None], column: str, where: str) -> str:
    value = row.get(column) or ""
    if not value.strip():
        raise ConfigError(f"{where}: {column} is empty")
    return value


def _place(maps: DatasetMaps, dataset: str, row: Mapping[str, str | None], where: str) -> Placement:
    category = row.get(DATASETS[dataset]) or ""
    try:
        return maps[dataset][category]
    except KeyError:
        raise ConfigError(f"{where}: {dataset} category {category!r} has no domain in the data-set map;"
                          " map it in a domain map file") from None  # fmt: skip
