"""The screening index: every name and alias of the loaded lists, found by blocking keys and scored with
Jaro-Winkler over aligned tokens (docs/screening.md, Matching).

**Finding candidates.** Each name's tokens give keys: the token, its consonant skeleton (a coarse phonetic
key), its one-deletion variants (SymSpell: two words within one substitution, insertion, deletion or
swap share one) and, for every pair of tokens of a name, the pair of skeletons. A query looks its own keys
up; a key that more than :data:`BLOCK_CAP` names share (``muhammad``, ``trading``) is skipped alone, the
pair keys still find a name written with two common words. A name is a candidate when enough of the
query's tokens found it (two, or all of either name's if fewer).

**Scoring.** Tokens are aligned one to one, best pairs first, with rapidfuzz's Jaro-Winkler similarity;
a pair below :data:`TOKEN_FLOOR` does not align. Each side's *coverage* is the weight (token length,
halved for particles such as ``al``/``bin``) of its aligned tokens times their similarity, over its whole
weight, where a listed person's middle names weigh a tenth (a name written without them still
matches). The score is the mean of both coverages, so one shared token never matches alone. The score of the names
written together without spaces (``ABUTEIR``) is taken when higher.

**Other fields.** A date or year of birth that agrees adds :data:`BOOST`, one that disagrees by two years
or more takes away :data:`PENALTY`; the same for a country; a party of another type (an individual
against a vessel) takes away :data:`TYPE_PENALTY`. The boosts together never exceed :data:`BOOST`, so a
name alone must come within :data:`BOOST` of the threshold: a country or a date never makes a match.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

from ._entry import Candidate, ListEntry, Query
from ._normalize import PARTICLES, skeleton, spellings, tokens, weight

__all__ = ["BLOCK_CAP", "BOOST", "DEFAULT_THRESHOLD", "PENALTY", "TOKEN_FLOOR", "TYPE_PENALTY",
           "ScreeningIndex", "name_similarity"]  # fmt: skip

#: Chosen from benchmarks/screening.py (docs/screening.md, Measured): on its labelled set recall stays
#: >= 0.98 and the false-positive rate <= 1% from 0.80 to 0.86; 0.84 keeps recall clear of its target and
#: the false-positive rate a quarter of its limit.
DEFAULT_THRESHOLD = 0.84
TOKEN_FLOOR = 0.82
#: A token pair less similar than this counts twice its shortfall (one typo in a long word costs little, two
#: unrelated short words that happen to look alike cost a lot).
_CLOSE = 0.92
BLOCK_CAP = 400
BOOST = 0.05
PENALTY = 0.08
TYPE_PENALTY = 0.15
MIDDLE = 0.1
#: What a name of two or more words scores when only one of them aligned.
ONE_WORD = 0.75
#: At most this many candidates (by tokens found) are scored in full.
_SCORED = 200
_JW = JaroWinkler.similarity
_LEV = OSA.distance  # an edit is a substitution, insertion, deletion or swap of two neighbours
#: Words this short align only one edit apart (Jaro-Winkler is generous to short words).
_SHORT = 4


@dataclass(frozen=True, slots=True)
class _Name:
    entry: int
    text: str
    tokens: tuple[str, ...]
    spellings: tuple[str, ...]
    weights: tuple[float, ...]
    total: float
    joined: str


def _prepared(text: str, individual: bool = False) -> tuple[tuple[str, ...], tuple[float, ...], float, str]:
    """Tokens, their weights, the total weight and the tokens written together. In a listed person's name,
    middle names weigh :data:`MIDDLE` of their length: the surname(s) (before the comma in "LAST, First
    Middle", else the last word) and the first given name carry the name."""
    toks = tokens(text)
    weights = [weight(t) for t in spellings(text)]
    if individual and len(toks) >= 3:
        surname, comma, given = text.partition(",")
        first, rest = (len(tokens(surname)), tokens(given)) if comma else (len(toks) - 1, toks[1:-1])
        while comma and first < len(toks) - 1 and toks[first] in PARTICLES:  # "Al-Basher": the name is Basher
            first += 1
        middle = range(first + 1, len(toks)) if comma else range(1, len(toks) - 1)
        if comma and len(tokens(surname)) + len(rest) != len(toks):
            middle = range(0)
        for i in middle:
            weights[i] *= MIDDLE
    return toks, tuple(weights), sum(weights) or 1.0, "".join(toks)


@lru_cache(maxsize=131072)
def _token_keys(token: str) -> frozenset[str]:
    keys = {"t" + token, "d" + token}
    skel = skeleton(token)
    if len(skel) >= 2:
        keys.add("s" + skel)
    if len(token) >= 5:
        keys.update("d" + token[:i] + token[i + 1 :] for i in range(len(token)))
    return frozenset(keys)


def _pair_keys(toks: Sequence[str]) -> set[str]:
    skels = sorted({skeleton(t) for t in toks[:8] if len(t) >= 2})
    return {f"p{a}|{b}" for i, a in enumerate(skels) for b in skels[i + 1 :]}


def name_similarity(query: Sequence[str], qspelled: Sequence[str], qweights: Sequence[float], qtotal: float,  # noqa: PLR0917
                    name: Sequence[str], nspelled: Sequence[str], nweights: Sequence[float], ntotal: float,
                    ) -> tuple[float, tuple[tuple[str, str, float], ...]]:  # fmt: skip
    """The similarity of two names in [0, 1] from their tokens (variants folded) and spellings (as written),
    and the aligned tokens (see the module)."""
    pairs = []
    for i, a in enumerate(query):
        for j, b in enumerate(name):
            if a == b:
                s = 1.0
            elif a in PARTICLES or b in PARTICLES or abs(len(a) - len(b)) > 3:  # "al" or "aliakbari" for "ali"
                continue
            else:
                s = _JW(a, b)
                if qspelled[i] != a or nspelled[j] != b:  # a folded variant: a typo of how it was written
                    s = max(s, _JW(qspelled[i], nspelled[j]))
                if (s >= TOKEN_FLOOR and min(len(a), len(b)) <= _SHORT and _LEV(a, b, score_cutoff=1) > 1
                        and _LEV(qspelled[i], nspelled[j], score_cutoff=1) > 1):  # fmt: skip
                    continue  # a short word one typo away, not two: ali is not halil, ahmad not rahman
            if s >= TOKEN_FLOOR:
                pairs.append((s if s >= _CLOSE else 2 * s - _CLOSE, i, j))
    pairs.sort(reverse=True)
    used_q: set[int] = set()
    used_n: set[int] = set()
    qsum = nsum = 0.0
    aligned = []
    for s, i, j in pairs:
        if i in used_q or j in used_n:
            continue
        used_q.add(i)
        used_n.add(j)
        qsum += qweights[i] * s
        nsum += nweights[j] * s
        aligned.append((query[i], name[j], round(s, 4)))
    score = 0.5 * (qsum / qtotal + nsum / ntotal)
    if len(aligned) < min(2, len(name)):  # one shared word never matches a name of two or more alone
        score *= ONE_WORD
    return score, tuple(aligned)


_DATE = re.compile(r"^(\d{4})(?:-(\d{2})-(\d{2}))?$")
_MONTHS = {
    m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)
}


def _full_dates(entry: ListEntry) -> set[str]:
    found = set()
    for text in entry.dates_of_birth:
        for d, m, y in re.findall(r"\b(\d{1,2}) ([A-Za-z]{3})[a-z]* (\d{4})\b", text):
            if m.lower() in _MONTHS:
                found.add(f"{y}-{_MONTHS[m.lower()]:02d}-{int(d):02d}")
        found.update(re.findall(r"\b\d{4}-\d{2}-\d{2}\b", text))
    return found


class ScreeningIndex:
    """Every name of some lists, ready to screen against. Build once per list set; ``screen`` is safe to
    call from many threads."""

    def __init__(self, lists: Iterable[tuple[str, int, Sequence[ListEntry]]], *,
                 threshold: float = DEFAULT_THRESHOLD) -> None:  # fmt: skip
        """``lists``: (list name, list version, entries) for each list in force."""
        self.threshold = threshold
        self.entries: list[tuple[str, int, ListEntry, str]] = []
        self.names: list[_Name] = []
        postings: dict[str, list[int]] = {}
        collecting = gc.isenabled()
        gc.disable()  # hundreds of thousands of small objects, none in a cycle: no collection while they are made
        try:
            for list_name, version, entries in lists:
                for entry in entries:
                    entry_no = len(self.entries)
                    self.entries.append((list_name, version, entry, entry.digest))
                    seen: set[tuple[str, ...]] = set()
                    for text in entry.names:
                        toks, weights, total, joined = _prepared(text, entry.type == "individual")
                        if not toks or toks in seen:
                            continue
                        seen.add(toks)
                        name_no = len(self.names)
                        spelled = spellings(text)
                        self.names.append(_Name(entry_no, text, toks, spelled, weights, total, joined))
                        keys: set[str] = set()
                        for token in {*toks, *spelled}:
                            keys.update(_token_keys(token))
                        keys.update(_pair_keys(toks))
                        for key in keys:
                            postings.setdefault(key, []).append(name_no)
        finally:
            if collecting:
                gc.enable()
        self._postings = postings

    def __len__(self) -> int:
        return len(self.entries)

    def _found(self, toks: tuple[str, ...], spelled: tuple[str, ...]) -> list[int]:
        postings, cap = self._postings, BLOCK_CAP
        hits: dict[int, int] = {}
        for i, token in enumerate(toks):
            bit = 1 << i
            found: set[int] = set()
            keys = _token_keys(token) if spelled[i] == token else _token_keys(token) | _token_keys(spelled[i])
            for key in keys:
                posting = postings.get(key)
                if posting is not None and len(posting) <= cap:
                    found.update(posting)
            for name_no in found:
                hits[name_no] = hits.get(name_no, 0) | bit
        every = (1 << len(toks)) - 1
        for key in _pair_keys(toks):
            posting = postings.get(key)
            if posting is not None and len(posting) <= cap * 4:
                for name_no in posting:
                    hits[name_no] = every
        names = self.names
        need = 1 if len(toks) <= 2 else 2
        chosen = [n for n, bits in hits.items() if bits.bit_count() >= min(need, len(names[n].tokens))]
        if len(chosen) > _SCORED:
            chosen.sort(key=lambda n: -hits[n].bit_count())
            del chosen[_SCORED:]
        return chosen

    def screen(self, query: Query | str, *, threshold: float | None = None, limit: int = 10) -> list[Candidate]:
        """The candidates for ``query`` scoring at least ``threshold`` (the index's by default), best
        first, one per list entry, at most ``limit``."""
        if isinstance(query, str):
            query = Query(query)
        floor = self.threshold if threshold is None else threshold
        qtoks, qweights, qtotal, qjoined = _prepared(query.name)
        if not qtoks:
            return []
        qspelled = spellings(query.name)
        best: dict[int, Candidate] = {}
        for name_no in self._found(qtoks, qspelled):
            name = self.names[name_no]
            score, aligned = name_similarity(qtoks, qspelled, qweights, qtotal,
                                             name.tokens, name.spellings, name.weights, name.total)  # fmt: skip
            if len(qjoined) >= 6 and (score < floor) and len(qtoks) != len(name.tokens):
                score = max(score, fuzz.ratio(qjoined, name.joined) / 100 - 0.04)
            if score < floor - BOOST:
                continue
            candidate = self._candidate(query, name, score, aligned)
            if candidate.score >= floor:
                held = best.get(name.entry)
                if held is None or candidate.score > held.score:
                    best[name.entry] = candidate
        ranked = sorted(best.values(), key=lambda c: (-c.score, c.list, c.entry_id))
        return ranked[:limit]

    def _candidate(self, query: Query, name: _Name, score: float,
                   aligned: tuple[tuple[str, str, float], ...]) -> Candidate:  # fmt: skip
        list_name, version, entry, digest = self.entries[name.entry]
        agreed: list[str] = []
        disagreed: list[str] = []
        boost = 0.0
        if query.dob:
            boost += self._dob(query.dob, entry, agreed, disagreed)
        if query.country:
            countries = entry.all_countries
            if countries:
                if query.country.upper() in countries:
                    agreed.append(f"country {query.country.upper()}")
                    boost += BOOST
                else:
                    disagreed.append(f"country {query.country.upper()} not in {', '.join(sorted(countries))}")
                    boost -= PENALTY
        if query.type and entry.type and query.type != entry.type:
            disagreed.append(f"type {query.type} is not {entry.type}")
            boost -= TYPE_PENALTY
        elif query.type and entry.type:
            agreed.append(f"type {entry.type}")
        final = max(0.0, min(1.0, score + min(boost, BOOST)))
        return Candidate(list_name, version, entry.entry_id, entry.source, entry.type, entry.programs, name.text,
                         entry.name, round(final, 4), round(score, 4), aligned, tuple(agreed), tuple(disagreed),
                         digest)  # fmt: skip

    @staticmethod
    def _dob(dob: str, entry: ListEntry, agreed: list[str], disagreed: list[str]) -> float:
        years = entry.years_of_birth
        match = _DATE.match(dob)
        if not years or match is None:
            return 0.0
        year = int(match.group(1))
        if match.group(2) and dob in _full_dates(entry):
            agreed.append(f"date of birth {dob}")
            return BOOST
        if year in years:
            agreed.append(f"year of birth {year}")
            return BOOST
        if min(abs(year - y) for y in years) >= 2:
            disagreed.append(f"year of birth {year} not {', '.join(str(y) for y in sorted(years))}")
            return -PENALTY
        return 0.0
