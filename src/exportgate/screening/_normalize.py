"""Names as the matcher compares them (docs/screening.md, Matching).

A name becomes a tuple of *tokens*: Unicode folded (NFKC, then every script transliterated to Latin by
``anyascii``), lower case, split on anything that is not a letter or digit, with honorifics dropped,
company-form words (LLC, LTD, OOO, GMBH, …) and connecting words (of, and, de, …) dropped unless nothing
else is left, and common transliteration variants of one name folded to one spelling (Mohammed, Muhammad,
Mohamed → ``muhammad``; Abou → ``abu``). Word order is kept for display only: the matcher compares tokens
as a set, so "ABU TEIR, Mohammed" and "Mohammed Abu Teir" are the same tokens.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import groupby

from anyascii import anyascii
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import extractOne

__all__ = ["COMPANY_FORMS", "HONORIFICS", "PARTICLES", "fold", "phonetic", "skeleton", "spellings", "tokens", "weight"]

HONORIFICS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "sir",
        "dame",
        "madam",
        "mme",
        "mlle",
        "herr",
        "frau",
        "sr",
        "sra",
        "srta",
        "don",
        "dona",
        "hon",
        "rev",
    ]
)
#: Legal-form words: dropped for matching (an added "LLC" must not hide a listed company), kept when the
#: name is nothing else.
COMPANY_FORMS = frozenset(
    [
        "llc",
        "ltd",
        "limited",
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "co",
        "company",
        "companies",
        "plc",
        "sa",
        "sas",
        "sarl",
        "sal",
        "ag",
        "gmbh",
        "kg",
        "ooo",
        "oao",
        "zao",
        "pao",
        "ao",
        "jsc",
        "ojsc",
        "cjsc",
        "pjsc",
        "ojs",
        "bv",
        "nv",
        "ab",
        "oy",
        "spa",
        "srl",
        "pte",
        "pty",
        "lp",
        "llp",
        "fze",
        "fzco",
        "fzc",
        "fzllc",
        "bhd",
        "kk",
        "jv",
        "sro",
        "doo",
        "ead",
        "zrt",
        "kft",
        "tov",
        "compania",
        "companhia",
        "sociedad",
        "societe",
        "gesellschaft",
        "obshchestvo",
    ]
)
_CONNECTORS = frozenset(
    [
        "the",
        "of",
        "and",
        "for",
        "de",
        "del",
        "della",
        "di",
        "du",
        "des",
        "la",
        "le",
        "los",
        "las",
        "y",
        "e",
        "und",
        "et",
    ]
)
#: Short name particles: they count, but less than the distinctive parts of a name.
PARTICLES = frozenset(
    ["al", "el", "ul", "bin", "ibn", "bint", "ben", "abu", "van", "von", "der", "den", "da", "dos", "das"]
)

#: Spellings of one name in different transliterations, folded to one.
_VARIANTS: dict[str, str] = {}
for _canonical, _spellings in {
    "muhammad": "mohammed muhammed mohamed mohammad mohamad muhamad muhammet mohamud mohd mohammod mouhamed",
    "ahmad": "ahmed ahmet ahmat",
    "abu": "abou abo",
    "al": "el ul",
    "abdul": "abdel abdoul",
    "abdullah": "abdallah abdulla abdollah",
    "husayn": "hussein husain hussain husein hosein hossein hussien",
    "hasan": "hassan",
    "usama": "osama oussama",
    "yusuf": "yousef youssef yousuf yusef youcef",
    "umar": "omar omer",
    "khalid": "khaled",
    "mahmud": "mahmoud mahmood",
    "mustafa": "mostafa moustafa mustapha",
    "ibrahim": "ebrahim ibraheem",
    "ismail": "ismael esmail",
    "said": "saeed sayed sayyid syed saiid",
    "jamal": "gamal",
    "muhsin": "mohsen mohsin",
    "qasim": "kassem qassem qasem kasim",
    "sergey": "sergei serguei",
    "aleksandr": "alexander alexandr aleksander",
    "aleksey": "alexei alexey aleksei",
    "andrey": "andrei",
    "dmitry": "dmitri dmitriy",
    "evgeny": "yevgeny evgeniy yevgeniy evgenii",
    "nikolay": "nikolai",
    "yuri": "yury yuriy iouri",
    "mikhail": "michail",
}.items():
    for _spelling in _spellings.split():
        _VARIANTS[_spelling] = _canonical

_PHONETIC_VARIANTS: dict[str, str] = {}  # filled below, once phonetic() is defined
_SPLIT = re.compile(r"[a-z0-9]+")
_APOSTROPHES = re.compile(r"['`\u2018\u2019\u02bc\u02bb]")
_VOWELS = re.compile(r"[aeiouyhw]")


def fold(text: str) -> str:
    """``text`` in lower-case ASCII: NFKC, then ``anyascii`` (Cyrillic, Arabic, Chinese, … to Latin), with
    apostrophes removed so that O'Brien and OBrien are one word."""
    return _APOSTROPHES.sub("", anyascii(unicodedata.normalize("NFKC", text))).lower()


#: Spelling differences between transliteration systems, folded away on both sides (after the variants):
#: Cyrillic letters come back from anyascii as "kh", "zh", "dzh"; one writer's "ou" is another's "u".
_PHONETIC = (("dzh", "j"), ("dj", "j"), ("zh", "j"), ("kh", "h"), ("ph", "f"), ("ck", "k"), ("ch", "\x00"),
             ("c", "k"), ("\x00", "ch"), ("q", "k"), ("ks", "x"), ("w", "v"), ("ou", "u"), ("oo", "u"),
             ("ee", "i"), ("y", "i"))  # fmt: skip


@lru_cache(maxsize=131072)
def phonetic(word: str) -> str:
    """``word`` with transliteration differences folded (kh → h, c → k, ou → u, y → i, …) and doubled
    letters written once: Mokhammed, Mohammed and Mohamed become one spelling."""
    if word.isdigit():
        return word
    for a, b in _PHONETIC:
        if a in word:
            word = word.replace(a, b)
    return "".join(letter for letter, _ in groupby(word))


def _words(text: str) -> list[str]:
    """The words of folded text, a run of single letters written together joined ("S.A." → ``sa``,
    "H.M.M." → ``hmm``; "I. B. M." stays three words)."""
    out: list[str] = []
    for chunk in text.split():
        parts = _SPLIT.findall(chunk)
        if len(parts) > 1 and all(len(p) == 1 and p.isalpha() for p in parts):
            out.append("".join(parts))
        else:
            out.extend(parts)
    return out


@lru_cache(maxsize=65536)
def spellings(name: str) -> tuple[str, ...]:
    """The words of ``name`` the matcher compares, in the order written, spelled as written (folded):
    honorifics, company forms and connecting words dropped, a company form written with one typo too."""
    words = [part for w in _words(fold(name)) for part in _unglued(phonetic(w))]
    kept = [w for w in words if w not in _HONORIFICS_PH] or words
    distinctive = [w for w in kept if w not in _DROPPED_PH and not _form_typo(w)]
    return tuple(distinctive or kept)


@lru_cache(maxsize=65536)
def tokens(name: str) -> tuple[str, ...]:
    """:func:`spellings` with each transliteration variant of a name folded to one (Mohamed → muhamad)."""
    return tuple(_variant(w) for w in spellings(name))


def _unglued(word: str) -> tuple[str, ...]:
    """A name particle written onto the name it belongs to, written apart: Abuteir → abu teir,
    Abdulrahman → abdul rahman (only these two: "al" starts too many names of its own, Albert)."""
    for prefix, rest in (("abu", 3), ("abdul", 4), ("abdel", 4)):
        if word.startswith(prefix) and len(word) - len(prefix) >= rest and word.isalpha():
            return prefix, word[len(prefix):]
    return (word,)


def _form_typo(word: str) -> bool:
    """``word`` is a company form with one typo (compnay, limitd): it must not count as a distinctive word."""
    if len(word) < 5 or not word.isalpha():
        return False
    return extractOne(word, _LONG_FORMS_PH, scorer=Levenshtein.distance, score_cutoff=1) is not None


def _variant(word: str) -> str:
    return _PHONETIC_VARIANTS.get(word, word)


def weight(token: str) -> float:
    """How much a token counts in a name's similarity: its length up to eight letters (one long word must
    not outweigh the rest of a name), halved for a particle (al, bin, abu)."""
    return min(len(token), 8) * (0.5 if token in PARTICLES else 1.0)


@lru_cache(maxsize=131072)
def skeleton(token: str) -> str:
    """A coarse phonetic key for finding candidates: the first letter, then the consonants without
    repeats (muhammad, mohamed → ``md``; teir, tier → ``tr``). Used to find candidates, never to score."""
    if len(token) < 2 or token.isdigit():
        return token
    rest = _VOWELS.sub("", token[1:].replace("ph", "f").replace("ck", "k"))
    return "".join(letter for letter, _ in groupby(token[0] + rest))


_PHONETIC_VARIANTS.update({phonetic(k): phonetic(v) for k, v in _VARIANTS.items()})
_PHONETIC_VARIANTS.update({phonetic(v): phonetic(v) for v in _VARIANTS.values()})
_HONORIFICS_PH = frozenset(phonetic(w) for w in HONORIFICS)
_DROPPED_PH = frozenset(phonetic(w) for w in COMPANY_FORMS | _CONNECTORS)
_LONG_FORMS_PH = sorted(w for w in (phonetic(f) for f in COMPANY_FORMS) if len(w) >= 5)
