"""The records of screening: a list entry as loaded, a candidate found for a name (docs/screening.md)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache

import pycountry

from exportgate.errors import ConfigError

__all__ = ["MAX_NAME", "Candidate", "ListEntry", "Query", "clean_name", "country_code", "entity_type"]

#: Country names as the lists write them that ISO 3166 names differently.
_COUNTRY_ALIASES = {
    "russia": "RU", "iran": "IR", "syria": "SY", "burma": "MM", "korea, north": "KP", "north korea": "KP",
    "korea, south": "KR", "south korea": "KR", "venezuela": "VE", "bolivia": "BO", "tanzania": "TZ",
    "vietnam": "VN", "laos": "LA", "moldova": "MD", "taiwan": "TW", "turkey": "TR", "czech republic": "CZ",
    "macau": "MO", "macao": "MO", "kosovo": "XK", "palestinian": "PS", "west bank": "PS", "gaza": "PS",
    "congo, democratic republic of the": "CD", "democratic republic of the congo": "CD",
    "congo, republic of the": "CG", "the gambia": "GM", "gambia, the": "GM", "bahamas, the": "BS",
    "cote d ivoire": "CI", "ivory coast": "CI", "united kingdom": "GB", "uk": "GB", "united states": "US",
    "usa": "US", "micronesia, federated states of": "FM", "brunei": "BN", "cape verde": "CV", "swaziland": "SZ",
    "region: crimea": "UA", "crimea": "UA", "hong kong": "HK", "curacao": "CW", "sint maarten": "SX",
}  # fmt: skip


@lru_cache(maxsize=4096)
def country_code(text: str) -> str | None:
    """An ISO 3166-1 alpha-2 code for a country as a list writes it (a code, a name, an alias), else None."""
    value = re.sub(r"[^a-z ,:]", " ", text.strip().lower()).strip()
    value = re.sub(r"\s+", " ", value)
    if not value:
        return None
    if value in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[value]
    if len(value) == 2 and value.isalpha():
        found = pycountry.countries.get(alpha_2=value.upper())
        return str(found.alpha_2) if found else None
    try:
        return str(pycountry.countries.lookup(text.strip()).alpha_2)
    except LookupError:
        return None


def entity_type(text: str | None) -> str | None:
    """``individual``, ``entity``, ``vessel`` or ``aircraft`` from a list's own word for it, else None."""
    value = (text or "").strip().lower()
    if not value or value == "-0-":
        return None
    if value.startswith(("individual", "person")):
        return "individual"
    if value.startswith(("vessel", "aircraft")):
        return value.split()[0]
    return "entity"


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One entry of a restricted-party list, as published: its id on that list (for OFAC, the SDN
    ``ent_num``), the source list, the names (the primary name first, then every alias) and what else the
    list says about the party. Countries are ISO 3166-1 alpha-2 codes where the list's words name one."""

    entry_id: str
    source: str
    names: tuple[str, ...]
    type: str | None = None
    programs: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    dates_of_birth: tuple[str, ...] = ()
    nationalities: tuple[str, ...] = ()
    citizenships: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    start_date: str | None = None
    remarks: str | None = None

    @property
    def name(self) -> str:
        return self.names[0]

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in _ENTRY_FIELDS:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ListEntry:
        values = {k: tuple(str(x) for x in v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)  # type: ignore[arg-type]

    @property
    def digest(self) -> str:
        """sha256 of the entry's canonical JSON: a cleared candidate is raised again once this changes."""
        text = json.dumps(self.as_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def years_of_birth(self) -> frozenset[int]:
        return frozenset(int(y) for d in self.dates_of_birth for y in re.findall(r"\b(1[89]\d\d|20\d\d)\b", d))

    @property
    def all_countries(self) -> frozenset[str]:
        return frozenset((*self.countries, *self.nationalities, *self.citizenships))


_ENTRY_FIELDS = tuple(f.name for f in fields(ListEntry))


@dataclass(frozen=True, slots=True)
class Query:
    """What is screened: a name, and optionally a country, a date or year of birth and the party's type."""

    name: str
    country: str | None = None
    dob: str | None = None
    type: str | None = None

    @classmethod
    def checked(cls, name: object, *, country: object = None, dob: object = None, type: object = None) -> Query:
        """A query from what a caller sent (the CLI, the admin API), each part checked: ConfigError names
        the first that is wrong."""
        if country is not None and (not isinstance(country, str) or len(country.strip()) != 2
                                    or country_code(country.strip()) != country.strip().upper()):  # fmt: skip
            raise ConfigError(f"country is an ISO 3166-1 alpha-2 code, not {str(country)[:20]!r}")
        if dob is not None and not (isinstance(dob, str) and _is_date_of_birth(dob)):
            raise ConfigError(f"dob is YYYY or YYYY-MM-DD (a real date), not {str(dob)[:20]!r}")
        if type not in (None, "individual", "entity"):
            raise ConfigError(f"type is individual or entity, not {str(type)[:20]!r}")
        return cls(clean_name(name, "name"), None if country is None else str(country).strip().upper(),
                   None if dob is None else str(dob), None if type is None else str(type))  # fmt: skip


#: The longest name kept or screened (a name, a legal name, an organization), once spaces are folded.
MAX_NAME = 300


def clean_name(value: object, field: str = "name") -> str:
    """A name as kept and screened: a string with its runs of spaces folded to one, 1 to MAX_NAME long
    (ConfigError otherwise)."""
    if not isinstance(value, str):
        raise ConfigError(f"{field} must be a string")
    folded = " ".join(value.split())
    if not folded:
        raise ConfigError(f"{field} is empty")
    if len(folded) > MAX_NAME:
        raise ConfigError(f"{field} is longer than {MAX_NAME} characters")
    return folded


def _is_date_of_birth(text: str) -> bool:
    if re.fullmatch(r"\d{4}", text):
        return 1800 <= int(text) <= 2100
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Candidate:
    """One list entry that a screened name may be: which list and entry, the name or alias that matched,
    the score in [0, 1] and why (``tokens``: query token → the entry's token it matched, with the
    similarity; ``agreed`` / ``disagreed``: the other fields that raised or lowered the score)."""

    list: str
    list_version: int
    entry_id: str
    source: str
    type: str | None
    programs: tuple[str, ...]
    matched_name: str
    primary_name: str
    score: float
    name_score: float
    tokens: tuple[tuple[str, str, float], ...]
    agreed: tuple[str, ...] = ()
    disagreed: tuple[str, ...] = ()
    entry_digest: str = field(default="", repr=False)

    @property
    def id(self) -> str:
        """How a review names this candidate: ``<list>:<entry id>``."""
        return f"{self.list}:{self.entry_id}"

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["id"] = self.id
        out["programs"] = list(self.programs)
        out["tokens"] = [{"query": q, "entry": e, "similarity": s} for q, e, s in self.tokens]
        out["agreed"], out["disagreed"] = list(self.agreed), list(self.disagreed)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Candidate:
        tokens = tuple((str(t["query"]), str(t["entry"]), float(t["similarity"]))
                       for t in data.get("tokens", ()))  # type: ignore[attr-defined] # fmt: skip
        return cls(str(data["list"]), int(str(data["list_version"])), str(data["entry_id"]), str(data["source"]),
                   None if data.get("type") is None else str(data["type"]),
                   tuple(str(p) for p in data.get("programs", ())),  # type: ignore[attr-defined]
                   str(data["matched_name"]), str(data["primary_name"]), float(str(data["score"])),
                   float(str(data["name_score"])), tokens,
                   tuple(str(a) for a in data.get("agreed", ())),  # type: ignore[attr-defined]
                   tuple(str(a) for a in data.get("disagreed", ())),  # type: ignore[attr-defined]
                   str(data.get("entry_digest", "")))  # fmt: skip
