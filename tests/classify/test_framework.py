"""Frameworks: the bundled ones load; every kind of invalid file is one FrameworkError with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from exportgate.classify import Condition, ConditionError, bundled_frameworks, load_framework
from exportgate.errors import FrameworkError

HEAD = 'schema: exportgate.framework/v1\nframework: t\nversion: "1"\ntiers: [open, restricted, domestic]\n'
GOOD_LEVELS = """domains:
  cyber:
    levels:
      - {id: floor, tier: open}
      - {id: one, tier: restricted, threshold: "repeatable_cells >= 1"}
"""


def test_bundled_frameworks_load_and_templates_say_structure_only():
    found = bundled_frameworks()
    assert {"default", "preparedness-structure", "frontier-safety-structure"} <= set(found)
    for name, path in found.items():
        framework = load_framework(name)
        assert framework.tiers == ("open", "restricted", "domestic")
        assert framework.structure_only == (name != "default")
        assert "STRUCTURE ONLY" in path.read_text() or name == "default"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (HEAD.replace("framework/v1", "framework/v9") + GOOD_LEVELS, 1, "'schema' must be"),
        (HEAD + "colour: blue\n" + GOOD_LEVELS, 5, "unknown key 'colour'"),
        (HEAD + GOOD_LEVELS.replace("repeatable_cells >= 1", "repeatable_cels >= 1"), 9, "unknown metric"),
        (HEAD + GOOD_LEVELS.replace("repeatable_cells >= 1", "repeatable_cells >="), 9, "does not parse"),
        (HEAD + GOOD_LEVELS.replace("repeatable_cells >= 1", "asr + 1 > 0.5"), 9, "cannot be evaluated"),
        (HEAD + GOOD_LEVELS.replace("repeatable_cells >= 1", "asr"), 9, "not a bool"),
        (HEAD + GOOD_LEVELS.replace("tier: open}", 'tier: open, threshold: "asr > 0.1"}'), 8, "floor"),
        (HEAD + GOOD_LEVELS.replace(', threshold: "repeatable_cells >= 1"', ""), 9, "needs a 'threshold'"),
        (HEAD + GOOD_LEVELS.replace("tier: restricted", "tier: secret"), 9, "not in 'tiers'"),
        (HEAD + GOOD_LEVELS.replace("tier: open}", "tier: domestic}"), 9, "less restrictive tier"),
        (HEAD + GOOD_LEVELS + "  bio:\n    evidence_domains: [cyber]\n    levels:\n      - {id: f, tier: open}\n",
         10, "claimed by both"),
        (HEAD + GOOD_LEVELS.replace("- {id: one", "- {id: floor"), 9, "appears twice"),
        (HEAD + GOOD_LEVELS + "repeatable_threshold: 2\n", 10, "repeatable_threshold"),
        (HEAD + GOOD_LEVELS.replace("tier: restricted,", "tier: restricted, decision: maybe,"), 9, "'decision'"),
        (HEAD + "domains:\n  cyber: [1, 2\n", 7, "invalid YAML"),  # where the parser gave up
        (HEAD + GOOD_LEVELS.replace("repeatable_cells >= 1", "os.system('true')"), 9, "unknown metric(s) os"),
    ],
)  # fmt: skip
def test_invalid_frameworks_name_file_and_line(tmp_path: Path, text: str, line: int, message: str):
    path = tmp_path / "f.yaml"
    path.write_text(text)
    with pytest.raises(FrameworkError) as caught:
        load_framework(path)
    assert caught.value.line == line, caught.value.message
    assert message in caught.value.message and str(path) in str(caught.value)


def test_a_missing_framework_names_the_bundled_ones(tmp_path: Path):
    with pytest.raises(FrameworkError, match="bundled: default"):
        load_framework(tmp_path / "nope.yaml")


def test_conditions_are_cel_not_python():
    condition = Condition.compile('repeatable_cells >= 1 && "crescendo" in strategies_repeatable')
    assert condition.names() == ["repeatable_cells", "strategies_repeatable"]
    metrics = {"repeatable_cells": 2, "strategies_repeatable": ["crescendo"]}
    assert condition.holds(metrics) is True
    assert condition.holds({**metrics, "strategies_repeatable": []}) is False
    for source in ("__import__('os')", "open('/etc/passwd')", "[x for x in range(10)]"):
        with pytest.raises(ConditionError):
            Condition.compile(source)
