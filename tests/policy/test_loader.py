"""Directive loading and validation: every error names file:line and the reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from exportgate._types import KycLevel
from exportgate.errors import DirectiveError
from exportgate.policy import builtin_groups, load_directive, parse_directive
from tests.conftest import EXAMPLE, ROOT

HEADER = 'directive: test\nversion: "1"\n'


def parse(body: str):
    return parse_directive(HEADER + textwrap.dedent(body), source="d.yaml")


def error_of(body: str) -> DirectiveError:
    with pytest.raises(DirectiveError) as info:
        parse(body)
    return info.value


def test_example_directive_compiles(directive):
    assert directive.id == "frontier-ai-access"
    assert directive.version == "2026-06-14.1"
    assert directive.effective == "2026-06-14T00:00:00Z"
    assert directive.references == ("15 CFR 734.13",)
    assert directive.unknown_models == "deny"
    assert set(directive.tiers) == {"open", "restricted", "domestic"}
    assert directive.tiers["open"].checks == ()
    restricted = directive.tiers["restricted"].rules
    assert "CN" in restricted["deny_citizenship"] and "MO" in restricted["deny_citizenship"]
    assert "CU" in restricted["deny_location"] and "US" not in restricted["deny_location"]
    assert restricted["require_kyc"] is KycLevel.BASIC
    assert restricted["deny_anonymizers"] == frozenset({"tor", "vpn", "hosting"})
    assert directive.groups["five-eyes"] == frozenset({"US", "GB", "CA", "AU", "NZ"})
    assert len(directive.sha256) == 64


def test_bundled_example_matches_examples_file():
    bundled = ROOT / "src" / "exportgate" / "policy" / "data" / "example_directive.yaml"
    assert bundled.read_text() == EXAMPLE.read_text()


def test_checks_follow_rule_order(directive):
    names = [check.__name__ for check, _ in directive.tiers["domestic"].checks]
    assert names == ["require_us_person", "allow_location", "deny_anonymizers", "require_kyc"]


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ("tiers:\n  t: {deny_location: [ZZ]}\nmodels: {m: {tier: t}}\n", 4, "unknown country code 'ZZ'"),
        ("tiers:\n  t:\n    deny_location: [US, ear:Z:9]\nmodels: {m: {tier: t}}\n", 5, "unknown group 'ear:Z:9'"),
        ("tiers:\n  t: {}\nmodels:\n  m: {tier: nope}\n", 6, "unknown tier 'nope'"),
        ("tiers:\n  t: {deny_citizenshp: [US]}\nmodels: {m: {tier: t}}\n", 4, "unknown key 'deny_citizenshp'"),
        ("tiers:\n  t: {require_kyc: gold}\nmodels: {m: {tier: t}}\n", 4, "unknown KYC level 'gold'"),
        ("tiers:\n  t: {require_us_person: 'yes'}\nmodels: {m: {tier: t}}\n", 4, "must be true or false"),
        ("tiers:\n  t: {deny_anonymizers: [proxy]}\nmodels: {m: {tier: t}}\n", 4, "deny_anonymizers"),
        ("tiers:\n  t: {deny_location: [1]}\nmodels: {m: {tier: t}}\n", 4, "got 1 (quote it)"),
        ("tiers:\n  t: {}\nmodels:\n  m: {tier: t}\n  M: {tier: t}\n", 7, "duplicates 'm' on line 6"),
        ("tiers:\n  t: {}\nmodels:\n  m: {tier: t, aliases: [x]}\n  x: {tier: t}\n", 7, "duplicates 'm'"),
        ("tiers:\n  t: {}\nmodels:\n  m: {tier: t, colour: red}\n", 6, "unknown key 'colour'"),
        ("unknown_models: maybe\ntiers: {t: {}}\nmodels: {m: {tier: t}}\n", 3, "deny or allow"),
        ("tiers: {}\nmodels: {}\n", 3, "at least one tier"),
        ("colour: red\ntiers: {t: {}}\nmodels: {m: t}\n", 3, "unknown key 'colour' in directive"),
        ("groups:\n  a: [b]\n  b: [a]\ntiers: {t: {}}\nmodels: {m: t}\n", 4, "group cycle: a -> b -> a"),
        ("groups:\n  a: [nowhere]\ntiers: {t: {}}\nmodels: {m: t}\n", 4, "unknown group 'nowhere'"),
        ("groups:\n  US: [CA]\ntiers: {t: {}}\nmodels: {m: t}\n", 4, "not a country code"),
        ("effective: someday\ntiers: {t: {}}\nmodels: {m: t}\n", 3, "ISO 8601"),
    ],
)
def test_invalid_directives_name_line_and_reason(body, line, fragment):
    error = error_of(body)
    assert error.file == "d.yaml"
    assert error.line == line, str(error)
    assert fragment in str(error)
    assert str(error).startswith(f"d.yaml:{line}: ")


def test_version_must_be_a_string():
    with pytest.raises(DirectiveError, match=r"d.yaml:2: 'version' must be a non-empty string \(quote it\)"):
        parse_directive("directive: x\nversion: 1.0\ntiers: {t: {}}\nmodels: {m: t}\n", source="d.yaml")


def test_duplicate_yaml_keys_are_refused_with_line():
    with pytest.raises(DirectiveError, match=r"d.yaml:5: invalid YAML: .*duplicate key"):
        parse("tiers: {t: {}}\nmodels: {m: t}\nmodels: {n: t}\n")


def test_all_problems_are_collected_in_line_order():
    error = error_of("tiers:\n  t: {deny_location: [ZZ]}\nmodels:\n  m: {tier: nope}\n")
    lines = [line for line, _ in error.problems]  # type: ignore[attr-defined]
    assert lines == sorted(lines) and len(lines) == 2


def test_unreadable_and_non_utf8_files(tmp_path: Path):
    with pytest.raises(DirectiveError, match="cannot read directive"):
        load_directive(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"directive: caf\xe9\n")
    with pytest.raises(DirectiveError, match="not UTF-8"):
        load_directive(bad)
    with pytest.raises(DirectiveError, match="a YAML mapping"):
        parse_directive("- a\n- b\n")


def test_norway_is_a_country_not_false():
    d = parse("tiers:\n  t: {deny_location: [NO, 'NO']}\nmodels: {m: t}\n")
    assert d.tiers["t"].rules["deny_location"] == frozenset({"NO"})


def test_lowercase_codes_are_accepted_and_normalized():
    d = parse("tiers:\n  t: {deny_location: [cn]}\nmodels: {m: t}\n")
    assert "CN" in d.tiers["t"].rules["deny_location"]


def test_directive_groups_nest_and_override_builtins():
    d = parse(
        """
        groups:
          ear:E:2: [CU, VE]
          embargoed: [ear:E:1, ear:E:2]
          wider: [embargoed, RU]
        tiers:
          t: {deny_location: [wider]}
        models: {m: t}
        """
    )
    assert d.tiers["t"].rules["deny_location"] == frozenset({"IR", "KP", "SY", "CU", "VE", "RU"})


def test_kyc_none_and_false_rules_are_inactive():
    d = parse("tiers:\n  t: {require_kyc: none, require_us_person: false, deny_anonymizers: false}\nmodels: {m: t}\n")
    assert d.tiers["t"].checks == ()


def test_model_shorthand_and_aliases_are_normalized():
    d = parse("tiers: {t: {}}\nmodels:\n  Vendor-Model: {tier: t, aliases: ['  VM-Latest ']}\n")
    assert d.resolve_model("vendor-model") == "Vendor-Model"
    assert d.resolve_model("acme/vm-latest") == "Vendor-Model"


# The table of docs/export-controls.md, transcribed independently of the data file.
FACTS = {
    "ear:D:1": "AM AZ BY MM KH CN GE IQ KZ KP KG LA LY MO MD MN NI RU TJ TM UZ VE VN YE",
    "ear:D:2": "BY CU IR IQ IL KP LY PK RU VE",
    "ear:D:3": "AF AM AZ BH BY MM CN CU EG GE IR IQ IL JO KZ KP KW KG LB LY MO MD MN OM PK QA RU SA SY TW TJ TM UZ"
    " VE VN YE",
    "ear:D:4": "BH BY CN EG IR IQ IL JO KP KW LB LY MO OM PK QA RU SA SY VE YE",
    "ear:D:5": "AF BY MM CF CN CD CU ER HT IR IQ KP LB LY NI RU SO SS SD SY VE ZW",
    "ear:A:5": "AR AU AT BE BG CA HR CZ DK EE FI FR DE GR HU IS IN IE IT JP KR LV LT LU NL NZ NO PL PT RO SK SI ES SE"
    " CH TR GB",
    "ear:A:6": "AL CY IL MT MX SG ZA TW",
    "diffusion:tier1": "US AU BE CA DK FI FR DE IE IT JP NL NZ NO KR ES SE TW GB",
}


class TestBuiltinGroups:
    def test_facts_file_memberships(self):
        groups = builtin_groups()
        assert "MO" not in groups["ear:D:5"].members
        assert "MO" in groups["ear:D:5+macau"].members
        assert groups["ear:D:5"].members < groups["ear:D:5+macau"].members
        assert groups["diffusion:tier3"].members == groups["ear:D:5+macau"].members
        assert groups["ear:E:1"].members == frozenset({"IR", "KP", "SY"})
        assert groups["ear:E:2"].members == frozenset({"CU"})
        assert "KH" not in groups["ear:D:5"].members  # left D:5 on 2026-02-03
        assert "AE" not in groups["ear:A:5"].members  # "verify" in the facts file
        for name, codes in FACTS.items():
            assert groups[name].members == frozenset(codes.split()), name

    def test_every_group_has_provenance_and_valid_codes(self):
        from exportgate.policy import country_codes

        for group in builtin_groups().values():
            assert group.source and group.as_of and group.title
            assert group.members <= country_codes(), group.name

    def test_spec_builtin_names_exist(self):
        names = {"ear:A:5", "ear:A:6", "ear:E:1", "ear:E:2", "diffusion:tier1", "diffusion:tier3"}
        names |= {f"ear:D:{n}" for n in range(1, 6)}
        assert names <= set(builtin_groups())
