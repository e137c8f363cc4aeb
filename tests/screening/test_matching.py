"""Matching against real list entries: listed people and entities are found under the variants a compliance
officer expects (transliteration, other scripts, name order, missing middle names, typos, company forms),
and names that are not listed are not flagged. Properties: any text screens without error, scores stay in
[0, 1], a country or a date of birth never makes a match alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exportgate.screening import DEFAULT_THRESHOLD, Query, ScreeningIndex, read_lists, tokens
from exportgate.screening._index import BOOST

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def index() -> ScreeningIndex:
    lists = read_lists([DATA / "sdn.csv", DATA / "alt.csv", DATA / "add.csv"]) + read_lists([DATA / "consolidated.csv"])
    return ScreeningIndex([(one.name, 1, one.entries) for one in lists])


def ids(index: ScreeningIndex, query: Query | str) -> list[str]:
    return [c.id for c in index.screen(query)]


FOUND = [
    # (query, the entry it must find, what kind of variant)
    ("ABU TEIR, Mohammed", "csl:9640", "as listed"),
    ("Mohammed Abu Teir", "csl:9640", "name order"),
    ("Muhammad Abou Tair", "csl:9640", "transliteration (an alias's spelling)"),
    ("Мохаммед Абу Теир", "csl:9640", "Cyrillic script"),
    ("محمد ابو طير", None, "Arabic script: transliterated, but vowels are not written (see docs/screening.md)"),
    ("Elvis Logan Morey", "ofac-sdn:10278", "a middle name missing"),
    ("LOGAN MOREY, Elvis Angus", "ofac-sdn:10278", "as listed"),
    ("Elvis Angus Logan Morrey", "ofac-sdn:10278", "one typo"),
    ("Elvs Angus Logn Morey", "ofac-sdn:10278", "two typos"),
    ("Iran Aircraft Manufacturing Industrial Company LLC", "ofac-sdn:11195", "an added company form"),
    ("Iran Aircraft Manufactring Industries", "ofac-sdn:11195", "an alias with a typo"),
    ("Banco Nacional de Cuba S.A.", "ofac-sdn:306", "an added company form"),
    ("National Bank of Cuba", "ofac-sdn:306", "an alias"),
    ("Daniel Moreno", "ofac-sdn:15102", "name order"),
    ("Gazprombank JSC", "csl:17016", "a company form written another way"),
    ("Naser Abdul Jawad", "csl:9696", "name order"),
    ("Mohammed AbuTeir", "csl:9640", "a particle written onto the name"),
    ("Mohammed Abutair", "csl:9640", "a particle written onto an alias"),
    ("Nasir Abdullah Odeh Abdel Jawad", "csl:9696", "an alias, name order"),
]


@pytest.mark.parametrize(("query", "expected", "kind"), FOUND)
def test_listed_parties_are_found_under_their_variants(index: ScreeningIndex, query: str, expected: str | None,
                                                       kind: str):  # fmt: skip
    found = ids(index, query)
    if expected is None:  # documented limit: shown, not asserted
        return
    assert expected in found, (kind, found)


NOT_LISTED = ["John Smith", "Maria Lopez", "Li Wang", "Priya Sharma", "Olga Ivanova", "Kwame Mensah", "Hans Muller",
              "Mohammed Smith", "Daniel Kowalski", "Elvis Presley", "Banco Santander", "Aircraft Parts Direct",
              "Acme Trading LLC", "Cuba Libre Bar", "Teir Consulting", "Mohammed Ali", "Muhammad Ali", "Ahmed Ali",
              "Trading", "Trading LLC", "Ali Hassan"]  # fmt: skip


@pytest.mark.parametrize("query", NOT_LISTED)
def test_names_that_are_not_listed_are_not_flagged(index: ScreeningIndex, query: str):
    assert ids(index, query) == []


def test_a_candidate_says_which_entry_and_why(index: ScreeningIndex):
    (best, *_) = index.screen(Query("Mohammed Abu Teir", country="PS", dob="1951", type="individual"))
    assert (best.list, best.entry_id, best.primary_name) == ("csl", "9640", "ABU TEIR, Mohammed")
    assert best.programs == ("NS-PLC",) and 0 < best.score <= 1
    assert {q for q, _, _ in best.tokens} == set(tokens("Mohammed Abu Teir"))
    assert "year of birth 1951" in best.agreed
    assert best.as_dict()["id"] == "csl:9640"


def test_date_of_birth_and_type_lower_a_score_that_disagrees(index: ScreeningIndex):
    plain = index.screen(Query("Mohammed Abu Teir"))[0]
    older = index.screen(Query("Mohammed Abu Teir", dob="1990"), threshold=0.5)[0]
    entity = index.screen(Query("Mohammed Abu Teir", type="entity"), threshold=0.5)[0]
    assert older.score < plain.score and any("year of birth 1990" in d for d in older.disagreed)
    assert entity.score < plain.score and any("type entity" in d for d in entity.disagreed)


NAME = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAME, country=st.none() | st.sampled_from(["PS", "IR", "CU", "US", "zz"]),
       dob=st.none() | st.sampled_from(["1951", "1963-07-28", "2001"]),
       kind=st.none() | st.sampled_from(["individual", "entity"]))  # fmt: skip
def test_any_name_screens_and_other_fields_never_make_a_match_alone(index: ScreeningIndex, name: str, country,
                                                                    dob, kind):  # fmt: skip
    found = index.screen(Query(name, country, dob, kind))
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)
    for candidate in found:
        assert 0 <= candidate.score <= 1 and candidate.score >= DEFAULT_THRESHOLD
        assert candidate.name_score >= DEFAULT_THRESHOLD - BOOST  # the name alone came close
        assert candidate.score <= candidate.name_score + BOOST + 1e-9


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_word_order_does_not_change_what_a_listed_name_finds(index: ScreeningIndex, data):
    name, entry = data.draw(st.sampled_from([(n, f"{lst}:{e.entry_id}") for lst, _, e, _ in index.entries[:400]
                                             for n in e.names[:1]]))  # fmt: skip
    words = name.replace(",", " ").split()
    shuffled = " ".join(data.draw(st.permutations(words)))
    assert entry in ids(index, shuffled)
