"""Denied-party screening (docs/screening.md): the published restricted-party lists read and kept as
versions, names matched against every name and alias, and the results an officer reviews."""

from ._entry import Candidate, ListEntry, Query, country_code
from ._index import DEFAULT_THRESHOLD, ScreeningIndex, name_similarity
from ._normalize import fold, skeleton, tokens
from ._parse import LIST_KINDS, ParsedList, SourceFile, read_lists

__all__ = [
    "DEFAULT_THRESHOLD",
    "LIST_KINDS",
    "Candidate",
    "ListEntry",
    "ParsedList",
    "Query",
    "ScreeningIndex",
    "SourceFile",
    "country_code",
    "fold",
    "name_similarity",
    "read_lists",
    "skeleton",
    "tokens",
]
