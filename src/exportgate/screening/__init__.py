"""Denied-party screening (docs/screening.md): the published restricted-party lists read and kept as
versions, names matched against every name and alias, and the results an officer reviews."""

from ._assess import MANUAL_HIT, assess
from ._entry import MAX_NAME, Candidate, ListEntry, Query, clean_name, country_code
from ._index import DEFAULT_THRESHOLD, ScreeningIndex, name_similarity
from ._normalize import fold, skeleton, tokens
from ._parse import LIST_KINDS, ParsedList, SourceFile, read_lists
from ._store import LoadedList, Review, Screened, ScreeningResult, ScreeningStore, screening_input

__all__ = [
    "Candidate",
    "DEFAULT_THRESHOLD",
    "LIST_KINDS",
    "ListEntry",
    "LoadedList",
    "MANUAL_HIT",
    "MAX_NAME",
    "ParsedList",
    "Query",
    "Review",
    "Screened",
    "ScreeningIndex",
    "ScreeningResult",
    "ScreeningStore",
    "SourceFile",
    "assess",
    "clean_name",
    "country_code",
    "fold",
    "name_similarity",
    "read_lists",
    "screening_input",
    "skeleton",
    "tokens",
]
