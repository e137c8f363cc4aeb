"""HarmBench and JailbreakBench behaviour files: every field loads byte-for-byte as Python's csv module
reads the file with ``newline=""`` (CRLF files, line breaks inside quoted fields, a byte-order mark), the
source file's name and SHA-256 are recorded, and categories map to documented domains and severities.

The fixtures imitate the data sets' file structure with benign made-up behaviours (canary tags only)."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exportgate.classify import load_framework
from exportgate.errors import ConfigError
from exportgate.eval import Objective, load_objectives

from .behaviour_files import (
    HARMBENCH_CATEGORIES,
    HARMBENCH_COLUMNS,
    HARMBENCH_ROWS,
    JBB_CATEGORIES,
    JBB_COLUMNS,
    JBB_ROWS,
    write_csv,
)


def read_with_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def test_harmbench_fields_load_byte_for_byte_with_their_source(tmp_path: Path):
    path = write_csv(tmp_path / "harmbench_behaviors_text_all.csv", HARMBENCH_COLUMNS, HARMBENCH_ROWS)
    assert b"\r\n" in path.read_bytes() and path.read_bytes().startswith(b"\xef\xbb\xbf")
    loaded = load_objectives(path)
    assert len(loaded) == len(read_with_csv(path))
    for objective, row in zip(loaded, read_with_csv(path), strict=True):
        assert (objective.id, objective.goal, objective.context) == (row["BehaviorID"], row["Behavior"],
                                                                     row["ContextString"])  # fmt: skip
        assert (objective.source, objective.source_sha256) == (path.name, hashlib.sha256(path.read_bytes()).hexdigest())
    contextual = loaded[1]
    assert contextual.context == HARMBENCH_ROWS[1]["ContextString"]  # the line breaks inside quotes are kept
    assert contextual.request == f"{contextual.context}\n\n---\n\n{contextual.goal}"  # HarmBench's layout
    assert loaded[0].request == loaded[0].goal


def test_jailbreakbench_fields_load_byte_for_byte(tmp_path: Path):
    path = write_csv(tmp_path / "harmful-behaviors.csv", JBB_COLUMNS, JBB_ROWS)
    loaded = load_objectives(path)
    for objective, row in zip(loaded, read_with_csv(path), strict=True):
        assert (objective.id, objective.goal, objective.context) == (f"jbb-{row['Index']}-{row['Behavior']}",
                                                                     row["Goal"], "")  # fmt: skip
    assert loaded[1].goal == 'Spell the word "hello",\r\nthen stop'


_FIELD = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
_PIECES = ["\r\n", "\n", "\r", '"', ",", " ", "a", "é", "\u2028"]
_LINE_BREAKY = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)
_ROWS = st.lists(st.tuples(_FIELD.filter(str.strip), st.one_of(_FIELD, _LINE_BREAKY), _LINE_BREAKY), min_size=1,
                 max_size=5)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(rows=_ROWS, bom=st.booleans())
def test_any_field_text_survives_loading(tmp_path_factory: pytest.TempPathFactory, rows, bom):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("hb") / "behaviours.csv"
    records = [{"Behavior": goal + extra, "FunctionalCategory": "contextual", "SemanticCategory": "harmful",
                "Tags": "", "ContextString": context, "BehaviorID": f"made_up_{n}"}
               for n, (goal, context, extra) in enumerate(rows)]  # fmt: skip
    write_csv(path, HARMBENCH_COLUMNS, records, bom=bom)
    loaded = load_objectives(path)
    expected = read_with_csv(path)
    assert [(o.goal, o.context) for o in loaded] == [(r["Behavior"], r["ContextString"]) for r in expected]
    assert [(o.goal, o.context) for o in loaded] == [(r["Behavior"], r["ContextString"]) for r in records]


def test_jsonl_goals_may_hold_unicode_line_separators(tmp_path: Path):
    path = tmp_path / "o.jsonl"
    path.write_text('{"id": "a", "goal": "one\u2028two\u0085three", "context": "c", "success": {"marker": "m"}}\r\n')
    (objective,) = load_objectives(path)
    assert (objective.goal, objective.context) == ("one\u2028two\u0085three", "c")


def test_every_data_set_category_has_a_domain_and_a_severity(tmp_path: Path):
    hb = write_csv(tmp_path / "hb.csv", HARMBENCH_COLUMNS, [
        {**HARMBENCH_ROWS[0], "SemanticCategory": c, "BehaviorID": f"b{n}"} for n, c in enumerate(HARMBENCH_CATEGORIES)
    ])  # fmt: skip
    jbb = write_csv(tmp_path / "jbb.csv", JBB_COLUMNS, [
        {**JBB_ROWS[0], "Category": c, "Index": str(n)} for n, c in enumerate(JBB_CATEGORIES)
    ])  # fmt: skip
    placed = {o.id: (o.domain, o.severity) for o in [*load_objectives(hb), *load_objectives(jbb)]}
    assert placed["b0"] == ("bio", "critical")  # chemical_biological
    assert placed["b5"] == ("cyber", "high")  # cybercrime_intrusion
    assert placed["jbb-1-Placeholder token"] == ("cyber", "high")  # Malware/Hacking
    assert all(o.topic for o in [*load_objectives(hb), *load_objectives(jbb)])
    default = {e for d in load_framework("default").domains for e in d.evidence_domains}
    assert {"cyber", "bio"} <= default  # the export-relevant categories land where the default framework reads


def test_a_domain_map_overrides_entries_and_unmapped_categories_are_refused(tmp_path: Path):
    hb = write_csv(tmp_path / "hb.csv", HARMBENCH_COLUMNS, [{**HARMBENCH_ROWS[0], "SemanticCategory": "harmful"}])
    overrides = tmp_path / "map.yaml"
    overrides.write_text("schema: exportgate.dataset-maps/v1\nharmbench:\n  harmful: {domain: cyber, severity: low}\n"
                         "  made_up: {domain: bio, severity: high}\n")  # fmt: skip
    (objective,) = load_objectives(hb, domain_map=overrides)
    assert (objective.domain, objective.severity, objective.topic) == ("cyber", "low", "")
    jbb = write_csv(tmp_path / "jbb.csv", JBB_COLUMNS, [JBB_ROWS[0]])
    assert load_objectives(jbb, domain_map=overrides)[0].domain == "cyber"  # the bundled JBB entries still apply
    unmapped = write_csv(tmp_path / "new.csv", HARMBENCH_COLUMNS, [{**HARMBENCH_ROWS[0], "SemanticCategory": "novel"}])
    with pytest.raises(ConfigError, match=r"row 1: harmbench category 'novel' has no domain"):
        load_objectives(unmapped)
    assert load_objectives(write_csv(tmp_path / "m.csv", HARMBENCH_COLUMNS, [
        {**HARMBENCH_ROWS[0], "SemanticCategory": "made_up"}]), domain_map=overrides)[0].domain == "bio"  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("harmbench: {}\n", "schema"),
        ("schema: exportgate.dataset-maps/v1\nharmbnech: {}\n", "unknown data set"),
        ("schema: exportgate.dataset-maps/v1\nharmbench: {harmful: {domain: x, severity: severe}}\n", "severity"),
        ("schema: exportgate.dataset-maps/v1\nharmbench: {harmful: {severity: low}}\n", "'domain' is required"),
        ("schema: exportgate.dataset-maps/v1\nharmbench: {harmful: {domain: x, severity: low, tier: y}}\n", "nothing"),
        ("schema: [\n", "not valid YAML"),
    ],
)
def test_bad_domain_maps_are_refused(tmp_path: Path, content: str, message: str):
    hb = write_csv(tmp_path / "hb.csv", HARMBENCH_COLUMNS, [HARMBENCH_ROWS[0]])
    (tmp_path / "map.yaml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_objectives(hb, domain_map=tmp_path / "map.yaml")


def test_a_domain_map_is_refused_for_a_non_csv_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="applies to HarmBench and JailbreakBench"):
        load_objectives(None, domain_map=tmp_path / "map.yaml")


def test_bad_behaviour_files_are_one_clear_error(tmp_path: Path):
    for rows, message in (([{**HARMBENCH_ROWS[0], "Behavior": " "}], "row 1: Behavior is empty"),
                          ([{**HARMBENCH_ROWS[0], "BehaviorID": ""}], "row 1: BehaviorID is empty")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            load_objectives(write_csv(tmp_path / "bad.csv", HARMBENCH_COLUMNS, rows))
    (tmp_path / "latin1.csv").write_bytes("Behavior,BehaviorID\ncaf\xe9,x\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_objectives(tmp_path / "latin1.csv")
    (tmp_path / "huge.csv").write_bytes(b'Behavior,BehaviorID\n"' + b"a" * 200_000 + b'",x\n')
    with pytest.raises(ConfigError, match="not a readable CSV file: field larger than field limit"):
        load_objectives(tmp_path / "huge.csv")


def test_context_is_part_of_the_objective_hash_only_when_present():
    base = load_objectives()[0]
    assert "context" not in base.as_dict()  # objectives without a context keep the hashes they always had
    with_context = Objective(base.id, base.domain, base.severity, base.goal, base.criteria, base.topic, "notes")
    assert with_context.sha256() != base.sha256()
    moved = Objective(base.id, base.domain, base.severity, base.goal, base.criteria, base.topic, source="other.yaml")
    assert moved.sha256() == base.sha256()  # provenance is not identity


def test_the_documented_maps_are_the_shipped_ones():
    from exportgate.eval._datasets import load_dataset_maps
    from tests.conftest import ROOT

    rows = re.findall(r"^\| (HarmBench|JailbreakBench) `([^`]+)` \| `([^`]+)` \| (\w+) \|",
                      (ROOT / "docs" / "evaluation.md").read_text(), re.MULTILINE)  # fmt: skip
    documented = {(d.lower(), c): (domain, severity) for d, c, domain, severity in rows}
    shipped = {(d, c): (p.domain, p.severity) for d, entries in load_dataset_maps().items() for c, p in entries.items()}
    assert documented == shipped
    assert {c for d, c in shipped if d == "harmbench"} == set(HARMBENCH_CATEGORIES)
    assert {c for d, c in shipped if d == "jailbreakbench"} == set(JBB_CATEGORIES)
