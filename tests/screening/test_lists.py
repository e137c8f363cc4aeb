"""Reading the published lists from real excerpts (tests/screening/data/README.md names their sources), and
refusing a malformed file whole with file:line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exportgate.errors import ScreeningListError
from exportgate.screening import ListEntry, read_lists

DATA = Path(__file__).parent / "data"
SDN_TRIO = [DATA / "sdn.csv", DATA / "alt.csv", DATA / "add.csv"]


def entries(*paths: Path) -> dict[str, ListEntry]:
    (one,) = read_lists(list(paths))
    return {e.entry_id: e for e in one.entries}


def test_the_sdn_csv_trio_joins_aliases_addresses_and_reads_the_remarks():
    (sdn,) = read_lists(SDN_TRIO)
    assert (sdn.name, sdn.kind, len(sdn.entries)) == ("ofac-sdn", "ofac-sdn", 755)
    by_id = {e.entry_id: e for e in sdn.entries}
    iran = by_id["11195"]  # ent_num as published
    assert iran.name == "IRAN AIRCRAFT MANUFACTURING INDUSTRIAL COMPANY"
    assert "IRAN AIRCRAFT MANUFACTURING INDUSTRIES" in iran.names and "HESA TRADE CENTER" in iran.names
    assert iran.programs == ("NPWMD", "IFSR") and iran.type == "entity"  # "NPWMD] [IFSR" in the file
    assert "IR" in iran.countries and any("Esfahan" in a for a in iran.addresses)
    person = by_id["10278"]
    assert person.type == "individual" and person.dates_of_birth == ("28 Jul 1963",)
    assert any(i.startswith("Passport P0017003") for i in person.ids)
    assert [f.name for f in sdn.files] == ["sdn.csv", "alt.csv", "add.csv"]


def test_the_sdn_xml_says_what_the_csv_says_for_the_same_entries():
    xml = entries(DATA / "sdn.xml")
    csv = entries(*SDN_TRIO)
    assert len(xml) == 40
    for entry_id, entry in xml.items():
        other = csv[entry_id]
        assert (entry.names, entry.type, entry.programs, entry.countries, entry.dates_of_birth) == (
            other.names, other.type, other.programs, other.countries, other.dates_of_birth)  # fmt: skip


def test_the_consolidated_screening_list_csv_and_json():
    csl = entries(DATA / "consolidated.csv")
    assert len(csl) == 115
    teir = csl["9640"]
    assert teir.names[0] == "ABU TEIR, Mohammed" and "ABOU TAYR, Mohammad Mahmoud" in teir.names
    assert teir.source.startswith("Palestinian Legislative Council") and teir.dates_of_birth == ("1951",)
    bis = [e for e in csl.values() if e.name == "Gunther Migeotte"]
    assert len(bis) == 5 and len({e.entry_id for e in bis}) == 5  # no number on the list: stable ids of their own
    with_ids = entries(DATA / "consolidated_id.csv")
    from_json = entries(DATA / "consolidated.json")
    assert set(with_ids) == set(from_json) and len(from_json) == 13
    for entry_id, entry in from_json.items():
        assert (entry.names, entry.type, entry.programs, entry.source, entry.dates_of_birth) == (
            with_ids[entry_id].names, with_ids[entry_id].type, with_ids[entry_id].programs,
            with_ids[entry_id].source, with_ids[entry_id].dates_of_birth)  # fmt: skip
    assert from_json["52291"].nationalities == ("KP",) == with_ids["52291"].nationalities


def test_an_internal_list(tmp_path: Path):
    path = tmp_path / "ours.csv"
    path.write_text("id,name,type,aliases,countries,dates_of_birth,programs,remarks\n"
                    "X-1,Example Trading Partner,entity,ETP;E.T.P. Holding,DE;FR,,former customer,\n"
                    "X-2,Jane Example,individual,,GB,1970-01-01,,\n", encoding="utf-8")  # fmt: skip
    (one,) = read_lists([path], internal_name="ours")
    assert (one.name, one.kind) == ("ours", "internal")
    first = one.entries[0]
    assert first.names == ("Example Trading Partner", "ETP", "E.T.P. Holding") and first.countries == ("DE", "FR")
    assert one.entries[1].dates_of_birth == ("1970-01-01",)


BAD = [
    ("sdn.csv", '36,"AEROCARIBBEAN AIRLINES",-0- ,"CUBA"\n', "sdn.csv:1: expected 12 fields"),
    ("sdn.csv", '36,"A",-0- ,"CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n'
                'x7,"B",-0- ,"CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n', "ent_num"),
    ("c.csv", "source,entity_number,type,programs,name\nDPL,,,,\n", "c.csv:2: an entry without a name"),
    ("c.csv", "source,entity_number,type,programs,name\nDPL,,,,X,extra\n", "c.csv:2: expected 5 fields"),
    ("c.json", '{"results": [{"name": "A"}, {"name": 7}]}', "entry 2"),
    ("c.json", '{"results": [', "c.json:1: not JSON"),
    ("s.xml", "<sdnList><sdnEntry><uid>1</uid>", "not well-formed XML"),
    ("s.xml", '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
              "<sdnList><sdnEntry><uid>1</uid><lastName>&b;</lastName></sdnEntry></sdnList>", "refused"),
    ("i.csv", "id,name,colour\n1,A,red\n", "i.csv:1: unknown column"),
    ("i.csv", "id,name\n1,A\n1,B\n", "i.csv:3: id '1' appears twice"),
    ("i.csv", "id,name,type\n1,A,ship\n", "i.csv:2: type 'ship'"),
    ("e.csv", "", "e.csv:1: empty file"),
    ("c.csv", "source,entity_number,type,programs,name\n", "no entries"),  # would clear everyone
    ("c.json", '{"results": []}', "no entries"),
    ("c.json", '{"results": [{"name": "A", "name": "B"}]}', "duplicate key"),
    ("c.json", '{"results": [{"name": "A", "entity_number": NaN}]}', "NaN is not JSON"),
    ("c.json", "[" * 100_000, "not JSON"),
    ("c.json", '{"results": [{"name": "A", "entity_number": ' + "9" * 5000 + "}]}", "not JSON this version reads"),
    ("c.json", r'{"results": [{"name": "Evil \ud800 Corp"}]}', "a NUL or a lone surrogate"),
    ("i.csv", 'id,name\n1,"unterminated\n', "not readable as CSV"),
    ("i.csv", "id,name\n1,ok\n2,\u00e9\n", None),  # UTF-8 is fine (None: it loads)
    ("z.bin", "\x00\x01 not a list", "z.bin:1: not a list this version reads"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD)
def test_a_malformed_file_is_refused_whole_naming_file_and_line(tmp_path: Path, name: str, content: str,
                                                               message: str | None):  # fmt: skip
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    if message is None:
        assert read_lists([path])
        return
    with pytest.raises(ScreeningListError) as caught:
        read_lists([path])
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path))


def test_files_that_do_not_make_one_list_are_refused(tmp_path: Path):
    with pytest.raises(ScreeningListError, match=r"need the sdn\.csv"):
        read_lists([DATA / "alt.csv"])
    with pytest.raises(ScreeningListError, match="second file for the list 'csl'"):
        read_lists([DATA / "consolidated.csv", DATA / "consolidated.json"])
    with pytest.raises(ScreeningListError, match="CSV and XML forms are the same list"):
        read_lists([DATA / "sdn.xml", *SDN_TRIO])
    with pytest.raises(ScreeningListError, match="cannot read"):
        read_lists([tmp_path / "missing.csv"])
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for special in (Path("/dev/zero"), fifo, tmp_path):  # never read: one would not end, one would block
        with pytest.raises(ScreeningListError, match="not a regular file"):
            read_lists([special])
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"id,name\n1,ok\n2,\x81\x8d\x8f\x90\x9d\n")  # not UTF-8, not Windows-1252
    with pytest.raises(ScreeningListError, match=r"bad\.csv:3: not UTF-8"):
        read_lists([bad])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=400) | st.text(max_size=400).map(lambda t: t.encode("utf-8")))
def test_any_bytes_are_a_list_or_one_clear_refusal(tmp_path: Path, content: bytes):
    path = tmp_path / "any.csv"
    path.write_bytes(content)
    try:
        lists = read_lists([path])
    except ScreeningListError as exc:
        assert str(exc).startswith(str(path))
    else:
        assert all(e.names and all(n.strip() for n in e.names) for one in lists for e in one.entries)
