"""Screening in the state database (:mod:`exportgate.state`): loaded lists as versions, each account's
latest result, and every review (docs/screening.md).

A load stores a new version of a list (``csl``, ``ofac-sdn``, an internal list's name) with the sha256 of
its files, who loaded it and when; the newest version of each list is in force. The same files loaded
again are a no-op. Results and reviews name the account by its row id, the list versions they were made
against, and the *input* (a digest of the name and organization screened): a cleared candidate is not
raised again for the same input until its entry changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from threading import Lock
from typing import Any

from exportgate._types import ScreeningStatus
from exportgate.errors import NotFoundError
from exportgate.state import Database, Transaction

from ._entry import Candidate, ListEntry, Query
from ._index import DEFAULT_THRESHOLD, ScreeningIndex
from ._parse import ParsedList

__all__ = ["LoadedList", "Review", "Screened", "ScreeningResult", "ScreeningStore", "screening_input"]

TOPIC = "screening"
_LIST_COLUMNS = "version, name, kind, sha256, files, entries, names, published, loaded_at, loaded_by, note"
_REVIEW_COLUMNS = ("id, account_id, candidate, entry_digest, input, decision, reason, reviewed_by, reviewed_at, "
                   "list_version")  # fmt: skip


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def screening_input(legal_name: str | None, organization: str | None) -> str:
    """The digest of what is screened for an account: a review holds for this input only."""
    text = json.dumps([legal_name or "", organization or ""], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class LoadedList:
    version: int
    name: str
    kind: str
    sha256: str
    files: tuple[dict[str, object], ...]
    entries: int
    names: int
    published: str | None
    loaded_at: str
    loaded_by: str
    note: str | None

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "files": list(self.files)}


def _list_row(row: Sequence[Any]) -> LoadedList:
    version, name, kind, sha, files, entries, names, published, at, by, note = row
    return LoadedList(int(version), str(name), str(kind), str(sha), tuple(json.loads(files)), int(entries),
                      int(names), published, str(at), str(by), note)  # fmt: skip


@dataclass(frozen=True)
class Screened:
    """One screening of a name: the query, the threshold used, the lists in force (``name:version``; none
    loaded: empty) and the candidates, best first."""

    query: Query
    threshold: float
    lists: tuple[str, ...]
    candidates: tuple[Candidate, ...]

    def as_dict(self) -> dict[str, object]:
        q = self.query
        return {"query": {"name": q.name, "country": q.country, "dob": q.dob, "type": q.type},
                "threshold": self.threshold, "lists": list(self.lists),
                "candidates": [c.as_dict() for c in self.candidates]}  # fmt: skip


@dataclass(frozen=True)
class ScreeningResult:
    """An account's latest screening: its status (None: nothing to screen, no name or organization on
    file), the lists it was screened against (``name:version``), the candidates still open, the confirmed
    ones, and when."""

    account_id: int
    status: ScreeningStatus | None
    lists: str
    input: str
    candidates: tuple[Candidate, ...]
    screened_at: str
    confirmed: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"status": None if self.status is None else self.status.value, "lists": self.lists,
                "candidates": [c.as_dict() for c in self.candidates], "confirmed": list(self.confirmed),
                "screened_at": self.screened_at}  # fmt: skip


@dataclass(frozen=True)
class Review:
    id: int
    account_id: int
    candidate: str
    entry_digest: str
    input: str
    decision: str
    reason: str
    reviewed_by: str
    reviewed_at: str
    list_version: int

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "account_id"}


class ScreeningStore:
    """Lists, results and reviews over a :class:`~exportgate.state.Database`. Safe to share between threads;
    the index of the lists in force is built once per set of versions."""

    def __init__(self, db: Database, *, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.db = db
        self.threshold = threshold
        self._index: tuple[tuple[int, ...], ScreeningIndex] | None = None
        self._lock = Lock()

    # -- lists ---------------------------------------------------------------------------------------------

    def lists(self) -> list[LoadedList]:
        """The version in force of each list, by name."""
        newest = "(SELECT MAX(version) FROM screening_lists t WHERE t.name = s.name)"
        rows = self.db.query(f"SELECT {_LIST_COLUMNS} FROM screening_lists s WHERE version = {newest} ORDER BY name")  # noqa: S608
        return [_list_row(r) for r in rows]

    def history(self) -> list[LoadedList]:
        return [_list_row(r) for r in self.db.query(f"SELECT {_LIST_COLUMNS} FROM screening_lists ORDER BY version")]  # noqa: S608

    def key(self, lists: Sequence[LoadedList] | None = None) -> str:
        """The lists in force as ``name:version`` joined: what a result was screened against."""
        return " ".join(f"{x.name}:{x.version}" for x in (self.lists() if lists is None else lists))

    def add(self, parsed: ParsedList, *, by: str, note: str | None = None) -> tuple[LoadedList, bool]:
        return self.add_all([parsed], by=by, note=note)[0]

    def add_all(self, lists: Sequence[ParsedList], *, by: str,
                note: str | None = None) -> list[tuple[LoadedList, bool]]:  # fmt: skip
        """Store each list as the next version of its name, all in one transaction (in force together from
        its commit, or none of them); (the list, True) each. A list whose version in force has the same
        files is not stored again: (that version, False)."""
        now = _now()
        done = []
        with self.db.transaction() as tx:
            tx.lock("exportgate.screening")
            for parsed in lists:
                sha = parsed.sha256
                current = tx.execute(f"SELECT {_LIST_COLUMNS} FROM screening_lists WHERE name = ? "  # noqa: S608
                                     "ORDER BY version DESC LIMIT 1", (parsed.name,)).fetchone()  # fmt: skip
                if current is not None and str(current[3]) == sha:
                    done.append((_list_row(current), False))
                    continue
                names = sum(len(e.names) for e in parsed.entries)
                files = [{"name": f.name, "sha256": f.sha256, "bytes": f.size} for f in parsed.files]
                version = int(tx.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM screening_lists").fetchone()[0])
                tx.execute(f"INSERT INTO screening_lists ({_LIST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                           (version, parsed.name, parsed.kind, sha, json.dumps(files), len(parsed.entries), names,
                            parsed.published, now, by, note))  # fmt: skip
                tx.executemany("INSERT INTO screening_entries (version, entry_id, data) VALUES (?, ?, ?)",
                               [(version, e.entry_id, json.dumps(e.as_dict(), ensure_ascii=False, sort_keys=True))
                                for e in parsed.entries])  # fmt: skip
                done.append((LoadedList(version, parsed.name, parsed.kind, sha, tuple(files), len(parsed.entries),
                                        names, parsed.published, now, by, note), True))  # fmt: skip
            tx.touch(TOPIC)
        return done

    def entries(self, version: int) -> list[ListEntry]:
        rows = self.db.query("SELECT data FROM screening_entries WHERE version = ? ORDER BY entry_id", (version,))
        return [ListEntry.from_dict(json.loads(r[0])) for r in rows]

    def index(self, lists: Sequence[LoadedList] | None = None) -> ScreeningIndex | None:
        """The index of the lists in force (None when no list is loaded), rebuilt when a version changes."""
        lists = self.lists() if lists is None else lists
        if not lists:
            return None
        versions = tuple(x.version for x in lists)
        with self._lock:
            if self._index is not None and self._index[0] == versions:
                return self._index[1]
            built = ScreeningIndex([(x.name, x.version, self.entries(x.version)) for x in lists],
                                   threshold=self.threshold)  # fmt: skip
            self._index = (versions, built)
            return built

    def screen(self, query: Query, *, threshold: float | None = None, limit: int = 10) -> Screened:
        """``query`` against the lists in force: what ``exportgate screen`` and ``POST /screening/screen`` show."""
        lists = self.lists()
        index = self.index(lists)
        found = [] if index is None else index.screen(query, threshold=threshold, limit=limit)
        return Screened(query, self.threshold if threshold is None else threshold,
                        tuple(f"{x.name}:{x.version}" for x in lists), tuple(found))  # fmt: skip

    # -- results -------------------------------------------------------------------------------------------

    def result(self, account_id: int) -> ScreeningResult | None:
        rows = self.db.query("SELECT account_id, status, lists, input, candidates, screened_at FROM screening_results"
                             " WHERE account_id = ?", (account_id,))  # fmt: skip
        return _result(rows[0]) if rows else None

    def results(self, account_ids: Sequence[int] | None = None) -> dict[int, ScreeningResult]:
        """The latest result of each account (of those named, read 500 at a time)."""
        select = "SELECT account_id, status, lists, input, candidates, screened_at FROM screening_results"
        if account_ids is None:
            return {int(r[0]): _result(r) for r in self.db.query(select)}
        out = {}
        for start in range(0, len(account_ids), 500):
            chunk = list(account_ids[start:start + 500])
            rows = self.db.query(f"{select} WHERE account_id IN ({', '.join('?' * len(chunk))})", chunk)
            out.update({int(r[0]): _result(r) for r in rows})
        return out

    @staticmethod
    def put(tx: Transaction, results: Sequence[ScreeningResult]) -> None:
        """Write each result as its account's latest, in the caller's transaction (with the accounts' status)."""
        rows = []
        for result in results:
            payload = json.dumps({"candidates": [c.as_dict() for c in result.candidates],
                                  "confirmed": list(result.confirmed)}, ensure_ascii=False)  # fmt: skip
            status = None if result.status is None else result.status.value
            rows.append((result.account_id, status, result.lists, result.input, payload, result.screened_at))
        tx.executemany("INSERT INTO screening_results (account_id, status, lists, input, candidates, screened_at)"
                       " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET status = excluded.status,"
                       " lists = excluded.lists, input = excluded.input, candidates = excluded.candidates,"
                       " screened_at = excluded.screened_at", rows)  # fmt: skip
        tx.touch(TOPIC)

    # -- reviews -------------------------------------------------------------------------------------------

    def reviews(self, account_id: int) -> list[Review]:
        rows = self.db.query(f"SELECT {_REVIEW_COLUMNS} FROM screening_reviews WHERE account_id = ? ORDER BY id",  # noqa: S608
                             (account_id,))  # fmt: skip
        return [_review(r) for r in rows]

    def all_reviews(self) -> dict[int, list[Review]]:
        rows = self.db.query(f"SELECT {_REVIEW_COLUMNS} FROM screening_reviews ORDER BY id")  # noqa: S608
        out: dict[int, list[Review]] = {}
        for r in rows:
            out.setdefault(int(r[1]), []).append(_review(r))
        return out

    @staticmethod
    def add_review(tx: Transaction, account_id: int, candidate: Candidate, *, input_digest: str, decision: str,
                   reason: str, by: str) -> None:  # fmt: skip
        tx.execute("INSERT INTO screening_reviews (account_id, candidate, entry_digest, input, decision, reason,"
                   " reviewed_by, reviewed_at, list_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (account_id, candidate.id, candidate.entry_digest, input_digest, decision, reason, by, _now(),
                    candidate.list_version))  # fmt: skip
        tx.touch(TOPIC)

    def queue(self) -> list[tuple[int, ScreeningResult]]:
        """Every account whose screening is pending, oldest first."""
        rows = self.db.query("SELECT account_id, status, lists, input, candidates, screened_at FROM screening_results"
                             " WHERE status = 'pending' ORDER BY screened_at, account_id")  # fmt: skip
        return [(int(r[0]), _result(r)) for r in rows]

    def candidate(self, account_id: int, wanted: str, reviews: Sequence[Review] = ()) -> Candidate:
        """The open or confirmed candidate ``wanted`` (``list:entry`` or an entry id naming one) of an account:
        a confirmed one is found by its review even when the account's names no longer match it."""
        found = self.result(account_id)
        pool = list(found.candidates) if found else []
        confirmed = set(found.confirmed) if found else set()
        for review in reviews:
            if review.candidate in confirmed and all(c.id != review.candidate for c in pool):
                listed, _, entry_id = review.candidate.partition(":")
                pool.append(Candidate(listed, review.list_version, entry_id, "", None, (), "", "", 0.0, 0.0, (),
                                      entry_digest=review.entry_digest))  # fmt: skip
                confirmed.discard(review.candidate)
        for kept in sorted(confirmed - {c.id for c in pool}):  # a hit set by hand (manual:hit) has no review
            listed, _, entry_id = kept.partition(":")
            pool.append(Candidate(listed, 0, entry_id, "", None, (), "", "", 0.0, 0.0, ()))
        matches = [c for c in pool if wanted in (c.id, c.entry_id)]
        if len(matches) > 1:
            raise NotFoundError(f"candidate {wanted!r} names more than one entry; give it as list:entry "
                                f"({', '.join(c.id for c in matches)})")  # fmt: skip
        if not matches:
            shown = ", ".join(c.id for c in pool) or "none"
            raise NotFoundError(f"no open candidate {wanted!r} for this account (open: {shown})")
        return matches[0]


def _review(row: Sequence[Any]) -> Review:
    id_, account_id, candidate, digest, input_digest, decision, reason, by, at, version = row
    return Review(int(id_), int(account_id), str(candidate), str(digest), str(input_digest), str(decision),
                  str(reason), str(by), str(at), int(version))  # fmt: skip


def _result(row: Sequence[Any]) -> ScreeningResult:
    account_id, status, lists, input_digest, payload, at = row
    data = json.loads(payload)
    return ScreeningResult(int(account_id), None if status is None else ScreeningStatus(status), str(lists),
                           str(input_digest), tuple(Candidate.from_dict(c) for c in data.get("candidates", ())),
                           str(at), tuple(data.get("confirmed", ())))  # fmt: skip
