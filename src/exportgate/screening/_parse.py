"""Readers for the published lists (docs/screening.md, Lists).

- the Consolidated Screening List (trade.gov), CSV and JSON;
- OFAC's SDN list: the legacy CSV trio ``sdn.csv`` + ``alt.csv`` + ``add.csv`` (joined on ``ent_num``,
  nulls written ``-0-``) and ``sdn.xml``;
- an organization's own deny list: a CSV with the header ``id,name`` and optionally ``type``,
  ``aliases``, ``countries``, ``dates_of_birth``, ``programs``, ``remarks`` (lists separated by ``;``).

A file is recognized by its content. Anything malformed refuses the whole load with ``file:line``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from exportgate.errors import ScreeningListError

from ._entry import ListEntry, country_code, entity_type

__all__ = ["LIST_KINDS", "MAX_FILE_BYTES", "ParsedList", "SourceFile", "read_lists"]

MAX_FILE_BYTES = 512 * 1024 * 1024
#: list name -> what it is; ``screening load --list`` names an internal list otherwise.
LIST_KINDS = {"csl": "Consolidated Screening List (trade.gov)", "ofac-sdn": "OFAC SDN list (Treasury)",
              "internal": "an internal deny list"}  # fmt: skip

_CSL_COLUMNS = ("source", "entity_number", "type", "programs", "name", "title", "addresses",
                "federal_register_notice", "start_date", "end_date", "standard_order", "license_requirement",
                "license_policy", "call_sign", "vessel_type", "gross_tonnage", "gross_registered_tonnage",
                "vessel_flag", "vessel_owner", "remarks", "source_list_url", "alt_names", "citizenships",
                "dates_of_birth", "nationalities", "places_of_birth", "source_information_url", "ids")  # fmt: skip
_INTERNAL_COLUMNS = ("id", "name", "type", "aliases", "countries", "dates_of_birth", "programs", "remarks")
_NULL = "-0-"


@dataclass(frozen=True)
class SourceFile:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ParsedList:
    """One list read from one or more files: its name, the files (name, sha256), the entries, and how many
    rows were set aside (an alias or address naming no entry of the file)."""

    name: str
    kind: str
    files: tuple[SourceFile, ...]
    entries: tuple[ListEntry, ...]
    ignored: int = 0
    published: str | None = None

    @property
    def sha256(self) -> str:
        """Of the files' sha256s in name order: the same files loaded again are the same list."""
        text = "\n".join(f"{f.sha256}" for f in sorted(self.files, key=lambda f: f.sha256))
        return hashlib.sha256(text.encode()).hexdigest()


def _read(path: str) -> bytes:
    """A regular file's bytes, at most MAX_FILE_BYTES (a FIFO, a device or a directory is refused before
    it is read: /dev/zero would never end)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise _fail(path, None, "not a regular file")
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _fail(path, None, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise _fail(path, None, f"larger than {MAX_FILE_BYTES // 2**20} MiB")
    return data


def _fail(path: str, line: int | None, message: str) -> ScreeningListError:
    return ScreeningListError(message, file=path, line=line)


def _text(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="strict") if _cp1252(data) else _raise_encoding(path, data)


def _cp1252(data: bytes) -> bool:
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


def _raise_encoding(path: str, data: bytes) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(path, data[: exc.start].count(b"\n") + 1, "not UTF-8 or Windows-1252 text") from None
    raise _fail(path, None, "not UTF-8 or Windows-1252 text")


def _split(value: str | None, sep: str = ";") -> tuple[str, ...]:
    if not value or value.strip() == _NULL:
        return ()
    return tuple(dict.fromkeys(p.strip() for p in value.split(sep) if p.strip() and p.strip() != _NULL))


def _codes(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in (country_code(v) for v in values) if c))


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return None if not value or value == _NULL else value


def _kind(path: str, data: bytes) -> str:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"{", b"[")):
        return "csl-json"
    if head.startswith(b"<"):
        return "sdn-xml"
    first = (head.decode("utf-8", "replace").splitlines() or [""])[0].strip().lower()
    try:
        columns = [c.strip().strip('"') for c in next(csv.reader([first]), [])]
    except csv.Error:
        columns = []
    if columns[:3] == ["_id", "source", "entity_number"] or columns[:2] == ["source", "entity_number"]:
        return "csl-csv"
    if columns[:2] == ["id", "name"]:
        return "internal-csv"
    if columns and columns[0].isdigit():
        if len(columns) not in (12, 5, 6):
            raise _fail(path, 1, f"expected 12 fields (sdn.csv), 5 (alt.csv) or 6 (add.csv), found {len(columns)}")
        return {12: "sdn-csv", 5: "alt-csv", 6: "add-csv"}[len(columns)]
    raise _fail(path, 1, "not a list this version reads: expected the CSL (CSV with a header from source,"
                         "entity_number, or JSON), OFAC's sdn.csv, alt.csv, add.csv or sdn.xml, or an internal"
                         " list (CSV with the header id,name,…)")  # fmt: skip


# -- the Consolidated Screening List -----------------------------------------------------------------------


def _csl_entry(path: str, line: int | None, row: dict[str, Any]) -> ListEntry:
    def strings(key: str) -> tuple[str, ...]:
        value = row.get(key)
        if value is None:
            return ()
        if isinstance(value, list):
            return tuple(dict.fromkeys(s for s in (_flat(v) for v in value) if s))
        if isinstance(value, str):
            return _split(value)
        raise _fail(path, line, f"{key}: expected text or a list, not {type(value).__name__}")

    name = row.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(path, line, "an entry without a name")
    addresses = strings("addresses")
    countries = [a.rsplit(",", 1)[-1] for a in addresses]
    if isinstance(row.get("addresses"), list):
        countries = [str(a.get("country") or "") for a in row["addresses"] if isinstance(a, dict)]
    entry_id = _clean(str(row.get("entity_number") or "")) or _clean(str(row.get("_id") or row.get("id") or ""))
    source = str(row.get("source") or "").strip() or "Consolidated Screening List"
    if entry_id is None:  # BIS entries have no number: a stable id from what identifies them
        entry_id = "h" + hashlib.sha256(f"{source}\n{name.strip()}\n{addresses}".encode()).hexdigest()[:16]
    return ListEntry(
        entry_id=entry_id, source=source, names=tuple(dict.fromkeys((name.strip(), *strings("alt_names")))),
        type=entity_type(str(row.get("type") or "")), programs=strings("programs"), addresses=addresses,
        countries=_codes(countries), dates_of_birth=strings("dates_of_birth"),
        nationalities=_codes(strings("nationalities")), citizenships=_codes(strings("citizenships")),
        ids=strings("ids"), start_date=_clean(str(row.get("start_date") or "")),
        remarks=_clean(str(row.get("remarks") or "")),
    )  # fmt: skip


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(str(v) for v in value.values() if v not in (None, ""))
    return "" if value is None else str(value).strip()


def _csl_csv(path: str, text: str) -> list[ListEntry]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    header = [c.strip() for c in reader.fieldnames or ()]
    missing = [c for c in ("source", "entity_number", "name") if c not in header]
    if missing:
        raise _fail(path, 1, f"missing column(s) {', '.join(missing)}")
    entries = []
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            raise _fail(path, reader.line_num, f"expected {len(header)} fields")
        entries.append(_csl_entry(path, reader.line_num, {k.strip(): v for k, v in row.items()}))
    return entries


def _csl_json(path: str, text: str) -> list[ListEntry]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({k for k, _ in items}) != len(items):
            raise _fail(path, None, f"a duplicate key in an object ({', '.join(sorted(k for k, _ in items))[:120]})")
        return dict(items)

    def constant(name: str) -> Any:
        raise _fail(path, None, f"{name} is not JSON")

    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise _fail(path, exc.lineno, f"not JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # nested too deep, an integer of thousands of digits
        raise _fail(path, None, f"not JSON this version reads: {str(exc)[:120]}") from None
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(path, None, "a NUL or a lone surrogate (\\ud800-\\udfff): not text") from None
    results = data.get("results") if isinstance(data, dict) else data
    if not isinstance(results, list):
        raise _fail(path, 1, 'expected a list of entries, or an object with "results"')
    entries = []
    for number, row in enumerate(results, 1):
        if not isinstance(row, dict):
            raise _fail(path, None, f"entry {number}: expected an object")
        try:
            entries.append(_csl_entry(path, None, row))
        except ScreeningListError as exc:
            raise _fail(path, None, f"entry {number}: {exc.reason}") from None
    return entries


# -- OFAC SDN ------------------------------------------------------------------------------------------------

_REMARK_DOB = re.compile(r"\b(?:alt\. )?DOB ([^;]+)")
_REMARK = {"nationality": re.compile(r"\bnationality ([^;]+)"), "citizen": re.compile(r"\bcitizen ([^;]+)")}
_REMARK_ID = re.compile(r"\b((?:Passport|National ID No\.|Cedula No\.|Tax ID No\.|Registration Number)"
                        r" [^;]+)")  # fmt: skip


def _rows(path: str, text: str, width: int) -> Iterable[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    for row in reader:
        if not row or (len(row) == 1 and row[0].strip() in ("", "\x1a")):
            continue
        if len(row) != width:
            raise _fail(path, reader.line_num, f"expected {width} fields, found {len(row)}")
        if not row[0].strip().isdigit():
            raise _fail(path, reader.line_num, f"ent_num {row[0].strip()!r} is not a number")
        yield reader.line_num, [c.strip() for c in row]


def _sdn_csv(files: dict[str, tuple[str, str]]) -> tuple[list[ListEntry], int]:
    """``files``: kind -> (path, text) for sdn, alt and add."""
    path, text = files["sdn-csv"]
    main: dict[str, dict[str, Any]] = {}
    for line, row in _rows(path, text, 12):
        ent, name, kind, program, *_, remarks = row
        if not _clean(name):
            raise _fail(path, line, "an entry without a name")
        if ent in main:
            raise _fail(path, line, f"ent_num {ent} appears twice")
        remarks = _clean(remarks) or ""
        main[ent] = {"names": [name], "type": entity_type(kind) or "entity", "programs": _programs(program),
                     "addresses": [], "countries": [], "remarks": remarks or None,
                     "dates_of_birth": [d.strip() for d in _REMARK_DOB.findall(remarks)],
                     "nationalities": _codes(_REMARK["nationality"].findall(remarks)),
                     "citizenships": _codes(_REMARK["citizen"].findall(remarks)),
                     "ids": [i.strip().rstrip(".") for i in _REMARK_ID.findall(remarks)]}  # fmt: skip
    ignored = 0
    if "alt-csv" in files:
        apath, atext = files["alt-csv"]
        for _, row in _rows(apath, atext, 5):
            if row[0] not in main:
                ignored += 1
            elif _clean(row[3]):
                main[row[0]]["names"].append(row[3])
    if "add-csv" in files:
        dpath, dtext = files["add-csv"]
        for _, row in _rows(dpath, dtext, 6):
            if row[0] not in main:
                ignored += 1
                continue
            parts = [p for p in (_clean(row[2]), _clean(row[3]), _clean(row[4])) if p]
            if parts:
                main[row[0]]["addresses"].append(", ".join(parts))
            if _clean(row[4]):
                main[row[0]]["countries"].append(row[4])
    entries = [ListEntry(entry_id=ent, source="Specially Designated Nationals (SDN) - Treasury Department",
                         names=tuple(dict.fromkeys(e["names"])), type=e["type"], programs=e["programs"],
                         addresses=tuple(e["addresses"]), countries=_codes(e["countries"]),
                         dates_of_birth=tuple(e["dates_of_birth"]), nationalities=e["nationalities"],
                         citizenships=e["citizenships"], ids=tuple(e["ids"]), remarks=e["remarks"])
               for ent, e in main.items()]  # fmt: skip
    return entries, ignored


def _programs(text: str) -> tuple[str, ...]:
    """``"NPWMD] [IFSR"`` (how sdn.csv writes several) -> ("NPWMD", "IFSR")."""
    return tuple(p for p in (s.strip(" []") for s in (_clean(text) or "").split("] [")) if p)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: Any, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return _clean(child.text)
    return None


def _children(element: Any, path: Sequence[str]) -> list[Any]:
    found = [element]
    for name in path:
        found = [c for e in found for c in e if _local(c.tag) == name]
    return found


def _person_name(element: Any) -> str | None:
    last, first = _child(element, "lastName"), _child(element, "firstName")
    return f"{last}, {first}" if last and first else (last or first)


def _sdn_xml(path: str, data: bytes) -> tuple[list[ListEntry], str | None]:
    entries: list[ListEntry] = []
    published = None
    seen: set[str] = set()
    try:
        for _, element in iterparse(io.BytesIO(data), events=("end",), forbid_dtd=True):
            tag = _local(element.tag)
            if tag == "Publish_Date":
                published = _clean(element.text)
            if tag != "sdnEntry":
                continue
            uid, name = _child(element, "uid"), _person_name(element)
            if not uid or not name:
                raise _fail(path, None, f"sdnEntry {uid or len(entries) + 1}: without a uid or a name")
            if uid in seen:
                raise _fail(path, None, f"sdnEntry {uid} appears twice")
            seen.add(uid)
            akas = [n for n in (_person_name(a) for a in _children(element, ("akaList", "aka"))) if n]
            addresses = []
            countries = []
            for address in _children(element, ("addressList", "address")):
                parts = [_child(address, k) for k in ("address1", "address2", "address3", "city",
                                                      "stateOrProvince", "postalCode", "country")]  # fmt: skip
                if any(parts):
                    addresses.append(", ".join(p for p in parts if p))
                if _child(address, "country"):
                    countries.append(str(_child(address, "country")))
            ids = [" ".join(p for p in (_child(i, "idType"), _child(i, "idNumber"),
                                        f"({_child(i, 'idCountry')})" if _child(i, "idCountry") else None) if p)
                   for i in _children(element, ("idList", "id"))]  # fmt: skip
            entries.append(ListEntry(
                entry_id=uid, source="Specially Designated Nationals (SDN) - Treasury Department",
                names=tuple(dict.fromkeys((name, *akas))), type=entity_type(_child(element, "sdnType")) or "entity",
                programs=tuple(p for p in (_clean(e.text) for e in _children(element, ("programList", "program")))
                               if p),
                addresses=tuple(addresses), countries=_codes(countries),
                dates_of_birth=tuple(d for d in (_child(e, "dateOfBirth")
                                                 for e in _children(element, ("dateOfBirthList", "dateOfBirthItem")))
                                     if d),
                nationalities=_codes(c for c in (_child(e, "country")
                                                 for e in _children(element, ("nationalityList", "nationality")))
                                     if c),
                citizenships=_codes(c for c in (_child(e, "country")
                                                for e in _children(element, ("citizenshipList", "citizenship")))
                                    if c),
                ids=tuple(ids), remarks=_child(element, "remarks"),
            ))  # fmt: skip
            element.clear()
    except DefusedXmlException as exc:
        raise _fail(path, None, f"refused: {exc}") from None
    except SyntaxError as exc:  # xml.etree.ElementTree.ParseError
        position = getattr(exc, "position", None)
        raise _fail(path, position[0] if position else None, f"not well-formed XML: {exc.msg}") from None
    if not entries:
        raise _fail(path, None, "no sdnEntry in the file")
    return entries, published


# -- an internal list ----------------------------------------------------------------------------------------


def _internal(path: str, text: str, source: str) -> list[ListEntry]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    header = [c.strip().lower() for c in reader.fieldnames or ()]
    unknown = [c for c in header if c not in _INTERNAL_COLUMNS]
    if unknown:
        raise _fail(path, 1, f"unknown column(s) {', '.join(unknown)}; the columns are {', '.join(_INTERNAL_COLUMNS)}")
    entries, seen = [], set()
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            raise _fail(path, reader.line_num, f"expected {len(header)} fields")
        values = {k.strip().lower(): (v or "").strip() for k, v in row.items()}
        if not values["id"] or not values["name"]:
            raise _fail(path, reader.line_num, "id and name must not be empty")
        if values["id"] in seen:
            raise _fail(path, reader.line_num, f"id {values['id']!r} appears twice")
        seen.add(values["id"])
        kind = values.get("type") or None
        if kind and kind.lower() not in ("individual", "entity", "vessel", "aircraft"):
            raise _fail(path, reader.line_num, f"type {kind!r}: expected individual, entity, vessel or aircraft")
        entries.append(ListEntry(entry_id=values["id"], source=source,
                                 names=tuple(dict.fromkeys((values["name"], *_split(values.get("aliases"))))),
                                 type=kind.lower() if kind else None, programs=_split(values.get("programs")),
                                 countries=_codes(_split(values.get("countries"))),
                                 dates_of_birth=_split(values.get("dates_of_birth")),
                                 remarks=values.get("remarks") or None))  # fmt: skip
    if not entries:
        raise _fail(path, None, "no entries")
    return entries


# -- reading what ``screening load`` was given ---------------------------------------------------------------


def read_lists(paths: Sequence[str | Path], *, internal_name: str = "internal") -> list[ParsedList]:
    """Read ``paths`` into lists: the CSL, the SDN (its CSV trio, or its XML) and internal lists. Files of
    one list are read together; any malformed file raises ScreeningListError and nothing is returned."""
    loaded: dict[str, dict[str, tuple[str, bytes]]] = {}
    for given in paths:
        path = str(given)
        data = _read(path)
        if not data.strip():
            raise _fail(path, 1, "empty file")
        kind = _kind(path, data)
        group = {"csl-csv": "csl", "csl-json": "csl", "internal-csv": internal_name}.get(kind, "ofac-sdn")
        if kind in loaded.setdefault(group, {}) or (group == "csl" and loaded[group]):
            raise _fail(path, None, f"a second file for the list {group!r}: load one list's files at a time")
        if group == "ofac-sdn" and loaded[group] and (kind == "sdn-xml") != ("sdn-xml" in loaded[group]):
            raise _fail(path, None, "the SDN list's CSV and XML forms are the same list: load one of them")
        loaded[group][kind] = (path, data)
    lists = []
    for group, files in loaded.items():
        try:
            lists.append(_read_one(group, files, internal_name))
        except csv.Error as exc:  # a NUL, a stray quote: the reader's own words, with the file
            raise _fail(next(iter(files.values()))[0], None, f"not readable as CSV: {exc}") from None
    return lists


def _read_one(group: str, files: dict[str, tuple[str, bytes]], internal_name: str) -> ParsedList:
    sources = tuple(SourceFile(Path(p).name, hashlib.sha256(d).hexdigest(), len(d)) for p, d in files.values())
    published, ignored = None, 0
    if "sdn-xml" in files:
        entries, published = _sdn_xml(*files["sdn-xml"])
    elif group == "ofac-sdn":
        if "sdn-csv" not in files:
            named = next(iter(files.values()))[0]
            raise _fail(named, None, "alt.csv and add.csv need the sdn.csv they belong to")
        entries, ignored = _sdn_csv({k: (p, _text(p, d)) for k, (p, d) in files.items()})
    elif "csl-json" in files:
        entries = _csl_json(files["csl-json"][0], _text(*files["csl-json"]))
    elif "csl-csv" in files:
        entries = _csl_csv(files["csl-csv"][0], _text(*files["csl-csv"]))
    else:
        path, data = files["internal-csv"]
        entries = _internal(path, _text(path, data), f"internal list {group}")
    if not entries:
        raise _fail(next(iter(files.values()))[0], None, "no entries: a list that names nobody would clear everyone")
    for entry in entries:
        _check_text(next(iter(files.values()))[0], entry)
    entries = _unique(group, files, entries)
    kind = "internal" if group == internal_name and group not in ("csl", "ofac-sdn") else group
    return ParsedList(group, kind, sources, tuple(entries), ignored, published)


def _check_text(path: str, entry: ListEntry) -> None:
    """No NUL and no lone surrogate in anything kept (JSON can write ``\\ud800``; a record could not hold it)."""
    for value in (entry.entry_id, *entry.names, *entry.addresses, *entry.programs, *entry.ids, entry.remarks or ""):
        if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
            raise _fail(path, None, f"entry {entry.entry_id[:40]!r}: a NUL or a lone surrogate in {value[:40]!r}")


def _unique(group: str, files: dict[str, tuple[str, bytes]], entries: list[ListEntry]) -> list[ListEntry]:
    """Entries with distinct ids. The CSL repeats a number when two of its lists name one party: the second
    and later get ``#2``, ``#3``; anywhere else two entries under one id refuse the file."""
    seen: dict[str, int] = {}
    out = []
    for entry in entries:
        count = seen[entry.entry_id] = seen.get(entry.entry_id, 0) + 1
        if count > 1:
            if group != "csl":
                path = next(iter(files.values()))[0]
                raise _fail(path, None, f"entry id {entry.entry_id!r} appears twice")
            out.append(dataclasses.replace(entry, entry_id=f"{entry.entry_id}#{count}"))
            continue
        out.append(entry)
    return out
