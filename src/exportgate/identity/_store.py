"""Accounts, API keys, trips and JWT-subject suspensions, in the state database
(:mod:`exportgate.state`: SQLite ``HOME/accounts.db`` by default, PostgreSQL with ``database_url``).

Every account row carries a ``revision`` that each change increments. A change names only the columns it
sets (one ``UPDATE``, no read-modify-write), so two replicas changing different attributes of one account
at once both land; a caller that read an account and wants its change to apply only to what it read passes
``expected_revision`` and gets a ConflictError (409) if someone changed the account in between.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from exportgate._types import KycLevel, ScreeningStatus, Subject
from exportgate.errors import ConfigError, ConflictError, InvalidApiKeyError, NotFoundError
from exportgate.state import STATE, Database, Revision, Transaction, database_at

from ._account import Account, ApiKeyInfo, Trip
from ._keys import NewKey, generate_key, key_id_of, matches

__all__ = ["AccountChange", "AccountStore", "Suspension"]

TOPIC = "accounts"
MIGRATIONS = STATE.sqlite

_ACCOUNT_COLUMNS = (
    "id, name, organization, citizenships, residencies, us_person_attested, kyc, screening, "
    "controlled_by, suspended, created_at, deleted_at, revision, updated_at, legal_name"
)
#: Attributes ``update_account`` may set, with how each is stored.
_UPDATABLE = ("organization", "citizenships", "residencies", "us_person_attested", "kyc", "screening",
              "controlled_by", "legal_name")  # fmt: skip


_SELECT_ACCOUNTS = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts"  # noqa: S608 - constant column list
_KEY_LOOKUP = (
    "SELECT k.key_hash, k.revoked_at, "  # noqa: S608 - constant column list, no user input
    + ", ".join("a." + c.strip() for c in _ACCOUNT_COLUMNS.split(","))
    + " FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.key_id = ?"
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclasses.dataclass(frozen=True)
class AccountChange:
    """An account before and after one change (what an audited action records)."""

    before: Account
    after: Account


@dataclasses.dataclass(frozen=True)
class Suspension:
    subject: str
    suspended_at: str
    suspended_by: str | None
    note: str | None


class AccountStore:
    """Accounts and keys over a :class:`~exportgate.state.Database` (a path opens SQLite there).
    Safe to share between threads."""

    def __init__(self, source: str | Path | Database, *, read_only: bool = False) -> None:
        """``read_only`` opens an existing store and never creates one (a missing store is a StoreError)."""
        self.db = database_at(source, STATE, read_only=read_only)
        self.read_only = self.db.read_only
        self._suspended_subjects: tuple[int, frozenset[str]] | None = None

    @property
    def revision(self) -> Revision:
        return self.db.revision

    @property
    def path(self) -> str:
        return self.db.label

    def _tx(self) -> Any:
        return self.db.transaction()

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.db.query(sql, params)

    def health(self) -> str | None:
        """``None`` while the store answers a query, else why not (what ``/readyz`` reports)."""
        return self.db.health()

    @property
    def schema_version(self) -> int:
        return self.db.version("state")

    def close(self) -> None:
        self.db.close()

    # -- accounts ----------------------------------------------------------

    def add_account(
        self,
        name: str,
        *,
        citizenships: Sequence[str] = (),
        residencies: Sequence[str] = (),
        us_person_attested: bool | None = None,
        kyc: KycLevel = KycLevel.NONE,
        screening: ScreeningStatus | None = None,
        organization: str | None = None,
        controlled_by: str | None = None,
        legal_name: str | None = None,
    ) -> tuple[Account, NewKey]:
        """Create an account and its first API key. The key's secret is in the result only."""
        name = name.strip()
        if not name:
            raise ConflictError("account name must not be empty")
        key = generate_key()
        now = _now()
        with self._tx() as db:
            found = db.execute("SELECT deleted_at FROM accounts WHERE name = ?", (name,)).fetchone()
            if found and found[0] is not None:
                raise ConflictError(f"account {name!r} was deleted; restore it, or choose another name")
            if found:
                raise ConflictError(f"account {name!r} already exists")
            account_id = db.execute(
                "INSERT INTO accounts (name, organization, citizenships, residencies, us_person_attested, kyc,"
                " screening, controlled_by, created_at, legal_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    name,
                    organization,
                    json.dumps(sorted(set(citizenships))),
                    json.dumps(sorted(set(residencies))),
                    None if us_person_attested is None else int(us_person_attested),
                    kyc.label,
                    screening.value if screening else None,
                    controlled_by,
                    now,
                    legal_name,
                ),
            ).fetchone()[0]
            db.execute(
                "INSERT INTO api_keys (key_id, account_id, key_hash, created_at) VALUES (?, ?, ?, ?)",
                (key.key_id, account_id, key.hash, now),
            )
            db.touch(TOPIC)
        return self.get_account(name), key

    def get_account(self, name: str) -> Account:
        rows = self._query(_SELECT_ACCOUNTS + " WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"no account named {name!r}")
        return _account(rows[0])

    def list_accounts(self, *, deleted: bool = False) -> list[Account]:
        """Live accounts (and, with ``deleted``, the deleted ones too)."""
        where = "" if deleted else " WHERE deleted_at IS NULL"
        return [_account(row) for row in self._query(_SELECT_ACCOUNTS + where + " ORDER BY name")]

    def page(self, search: str | None, limit: int, offset: int, *, deleted: bool = False) -> tuple[int, list[Account]]:
        """One page of accounts in name order (``search``: a case-insensitive part of the name), and the total."""
        clauses, params = ([] if deleted else ["deleted_at IS NULL"]), []
        if search:
            escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("lower(name) LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        total = int(self._query(f"SELECT COUNT(*) FROM accounts{where}", params)[0][0])  # noqa: S608 - constant clauses
        rows = self._query(_SELECT_ACCOUNTS + where + " ORDER BY name LIMIT ? OFFSET ?", [*params, limit, offset])
        return total, [_account(row) for row in rows]

    # Each change below comes in two forms: the account before and after it (what an audited action
    # records), and the account after it.

    def tombstone(self, name: str) -> AccountChange:
        """Tombstone an account: it is no longer listed or usable and every key is revoked; the row stays, so
        records that name it keep meaning something, and :meth:`undelete` can bring it back."""
        return self._change(name, "deleted_at = ?", (_now(),), revoke_keys=True)

    def undelete(self, name: str) -> AccountChange:
        """Undo a deletion. Its keys stay revoked: create a new one."""
        return self._change(name, "deleted_at = NULL", (), deleted=True)

    def suspension(self, name: str, suspended: bool) -> AccountChange:
        return self._change(name, "suspended = ?", (int(suspended),))

    def hold(self, name: str) -> AccountChange:
        """KYC drops to ``none`` until :meth:`end_hold`; the level it had is kept (a second hold keeps it)."""
        return self._change(name, "kyc_held = COALESCE(kyc_held, kyc), kyc = 'none'", ())

    def end_hold(self, name: str) -> AccountChange:
        """End a reverification hold: the KYC level from before it comes back."""
        return self._change(name, "kyc = COALESCE(kyc_held, kyc), kyc_held = NULL", ())

    def delete_account(self, name: str) -> Account:
        return self.tombstone(name).after

    def restore_account(self, name: str) -> Account:
        return self.undelete(name).after

    def set_suspended(self, name: str, suspended: bool) -> Account:
        return self.suspension(name, suspended).after

    def set_kyc(self, name: str, kyc: KycLevel) -> Account:
        return self.update_account(name, {"kyc": kyc}).after

    def set_screening(self, name: str, screening: ScreeningStatus | None) -> Account:
        return self.update_account(name, {"screening": screening}).after

    def hold_for_reverification(self, name: str) -> Account:
        return self.hold(name).after

    def restore_kyc(self, name: str) -> Account:
        return self.end_hold(name).after

    def update_account(self, name: str, changes: Mapping[str, Any], *,
                       expected_revision: int | None = None) -> AccountChange:  # fmt: skip
        """Set the given attributes (names of :data:`_UPDATABLE`; lists of country codes, a KycLevel, a
        ScreeningStatus, a bool or None for ``us_person_attested``) in one statement."""
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise ConfigError(f"cannot update {', '.join(sorted(unknown))}: updatable are {', '.join(_UPDATABLE)}")
        if not changes:
            raise ConfigError("nothing to update")
        columns = sorted(changes)
        values = tuple(_stored(column, changes[column]) for column in columns)
        return self._change(name, ", ".join(f"{c} = ?" for c in columns), values,
                                   expected_revision=expected_revision)  # fmt: skip

    def _change(self, name: str, assignment: str, params: Sequence[object], *, deleted: bool = False,
                       revoke_keys: bool = False, expected_revision: int | None = None) -> AccountChange:  # fmt: skip
        """One change to one account (live, or with ``deleted`` a deleted one), its revision moved on; the
        account before and after it, read in the same transaction."""
        where = "deleted_at IS NOT NULL" if deleted else "deleted_at IS NULL"
        with self._tx() as db:
            db.lock(f"exportgate.account:{name}")
            rows = db.execute(_SELECT_ACCOUNTS + f" WHERE name = ? AND {where}", (name,)).fetchall()
            if not rows:
                raise NotFoundError(f"no {'deleted ' if deleted else ''}account named {name!r}")
            before = _account(rows[0])
            if expected_revision is not None and before.revision != expected_revision:
                raise ConflictError(f"account {name!r} changed since revision {expected_revision} (it is at "
                                    f"{before.revision}): read it again")  # fmt: skip
            sql = f"UPDATE accounts SET {assignment}, revision = revision + 1, updated_at = ? WHERE id = ?"  # noqa: S608
            db.execute(sql, (*params, _now(), before.id))
            if revoke_keys:
                db.execute("UPDATE api_keys SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL",
                           (_now(), before.id))  # fmt: skip
            after = _account(db.execute(_SELECT_ACCOUNTS + " WHERE id = ?", (before.id,)).fetchone())
            db.touch(TOPIC)
        return AccountChange(before, after)

    def apply_screening(self, statuses: Sequence[tuple[int, ScreeningStatus | None]],
                        also: Callable[[Transaction], None]) -> list[AccountChange]:  # fmt: skip
        """Set the screening status of the accounts named by id (those whose status changes get a new
        revision, and so reach every replica), with ``also`` (the screening results) in the same
        transaction; the accounts that changed, before and after."""
        wanted = dict(statuses)
        changes = []
        with self._tx() as db:
            ids = list(wanted)
            before: dict[int, Account] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                for row in db.execute(_SELECT_ACCOUNTS + f" WHERE id IN ({marks})", chunk).fetchall():
                    account = _account(row)
                    if account.screening != wanted[account.id]:
                        before[account.id] = account
            now = _now()
            db.executemany("UPDATE accounts SET screening = ?, revision = revision + 1, updated_at = ? WHERE id = ?",
                           [(_stored("screening", wanted[i]), now, i) for i in before])  # fmt: skip
            for account_id, was in before.items():
                changes.append(AccountChange(was, dataclasses.replace(
                    was, screening=wanted[account_id], revision=was.revision + 1, updated_at=now)))
            also(db)
            db.touch(TOPIC)
        return changes

    def kyc_held(self, name: str) -> KycLevel | None:
        """The KYC level an account had before a reverification hold, or None when it is not held."""
        rows = self._query("SELECT kyc_held FROM accounts WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"no account named {name!r}")
        return None if rows[0][0] is None else KycLevel.parse(str(rows[0][0]))

    # -- subjects of bearer JWTs -------------------------------------------

    def suspend_subject(self, subject: str, *, by: str | None = None, note: str | None = None) -> Suspension:
        """Suspend a JWT subject (as records name it: ``jwt:<issuer>#<sub>``); its tokens keep verifying,
        and every decision for it is ``account_suspended`` until :meth:`restore_subject`."""
        if not subject.startswith("jwt:") or "#" not in subject:
            raise ConfigError(f"{subject!r} is not a JWT subject (jwt:<issuer>#<sub>, as decision records name it)")
        now = _now()
        with self._tx() as db:
            db.execute("DELETE FROM subject_suspensions WHERE subject = ?", (subject,))
            db.execute("INSERT INTO subject_suspensions (subject, suspended_at, suspended_by, note)"
                       " VALUES (?, ?, ?, ?)", (subject, now, by, note))  # fmt: skip
            db.touch(TOPIC)
        return Suspension(subject, now, by, note)

    def restore_subject(self, subject: str) -> Suspension:
        with self._tx() as db:
            row = db.execute("SELECT subject, suspended_at, suspended_by, note FROM subject_suspensions"
                             " WHERE subject = ?", (subject,)).fetchone()  # fmt: skip
            if row is None:
                raise NotFoundError(f"no suspended subject {subject!r}")
            db.execute("DELETE FROM subject_suspensions WHERE subject = ?", (subject,))
            db.touch(TOPIC)
        return Suspension(*(None if v is None else str(v) for v in row))  # type: ignore[arg-type]

    def suspensions(self) -> list[Suspension]:
        rows = self._query("SELECT subject, suspended_at, suspended_by, note FROM subject_suspensions ORDER BY subject")
        return [Suspension(*(None if v is None else str(v) for v in r)) for r in rows]  # type: ignore[arg-type]

    def subject_suspended(self, subject: str) -> bool:
        """Whether a JWT subject is suspended (from a set read once per revision of the store)."""
        revision = self.revision.current()
        cached = self._suspended_subjects
        if cached is None or cached[0] != revision:
            rows = self._query("SELECT subject FROM subject_suspensions")
            cached = self._suspended_subjects = (revision, frozenset(str(r[0]) for r in rows))
        return subject in cached[1]

    # -- trips -------------------------------------------------------------

    def add_trip(self, name: str, country: str, starts: dt.date, ends: dt.date, note: str | None = None) -> Trip:
        """Declare that the account will use the service from ``country`` between the two dates (inclusive)."""
        if ends < starts:
            raise ConflictError("a trip must end on or after the day it starts")
        account = self._live(name)
        with self._tx() as db:
            trip_id = db.execute(
                "INSERT INTO trips (account_id, country, starts, ends, note, created_at) VALUES (?, ?, ?, ?, ?, ?)"
                " RETURNING id",
                (account.id, country, starts.isoformat(), ends.isoformat(), note, _now()),
            ).fetchone()[0]
            db.touch(TOPIC)
        return Trip(int(trip_id), name, country, starts, ends, note)

    def trips(self, name: str | None = None) -> list[Trip]:
        sql = (
            "SELECT t.id, a.name, t.country, t.starts, t.ends, t.note"
            " FROM trips t JOIN accounts a ON a.id = t.account_id"
        )
        params: tuple[object, ...] = ()
        if name is not None:
            sql, params = sql + " WHERE a.name = ?", (name,)
        rows = self._query(sql + " ORDER BY t.starts, t.id", params)
        return [
            Trip(int(str(r[0])), str(r[1]), str(r[2]), dt.date.fromisoformat(str(r[3])),
                 dt.date.fromisoformat(str(r[4])), None if r[5] is None else str(r[5]))
            for r in rows
        ]  # fmt: skip

    # -- keys --------------------------------------------------------------

    def _live(self, name: str) -> Account:
        account = self.get_account(name)
        if account.deleted_at is not None:
            raise NotFoundError(f"account {name!r} was deleted (accounts restore {name} brings it back)")
        return account

    def create_key(self, name: str) -> NewKey:
        account = self._live(name)
        key = generate_key()
        with self._tx() as db:
            db.execute(
                "INSERT INTO api_keys (key_id, account_id, key_hash, created_at) VALUES (?, ?, ?, ?)",
                (key.key_id, account.id, key.hash, _now()),
            )
            db.touch(TOPIC)
        return key

    def revoke_key(self, key_id: str) -> ApiKeyInfo:
        with self._tx() as db:
            row = db.execute("SELECT revoked_at FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no API key with id {key_id!r}")
            if row[0] is None:
                db.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", (_now(), key_id))
                db.touch(TOPIC)
        return next(k for k in self.list_keys() if k.key_id == key_id)

    def list_keys(self, account: str | None = None) -> list[ApiKeyInfo]:
        sql = (
            "SELECT k.key_id, a.name, k.created_at, k.revoked_at FROM api_keys k JOIN accounts a ON a.id = k.account_id"
        )
        params: tuple[object, ...] = ()
        if account is not None:
            sql += " WHERE a.name = ?"
            params = (account,)
        rows = self._query(sql + " ORDER BY k.created_at, k.key_id", params)
        return [ApiKeyInfo(str(r[0]), str(r[1]), str(r[2]), None if r[3] is None else str(r[3])) for r in rows]

    def subject_for_key(self, token: str) -> Subject:
        """The subject behind an API key; InvalidApiKeyError for any key that is not live."""
        key_id = key_id_of(token)
        if key_id is None:
            raise InvalidApiKeyError("malformed API key")
        rows = self._query(_KEY_LOOKUP, (key_id,))
        if not rows or not matches(token, str(rows[0][0])):
            raise InvalidApiKeyError("unknown API key")
        if rows[0][1] is not None:
            raise InvalidApiKeyError("API key revoked")
        account = _account(rows[0][2:])
        if account.deleted_at is not None:
            raise InvalidApiKeyError("the key's account was deleted")
        return account.subject(key_id)


def _stored(column: str, value: Any) -> object:
    """How ``update_account`` stores an attribute's value."""
    if column in ("citizenships", "residencies"):
        return json.dumps(sorted(set(value)))
    if column == "kyc":
        return KycLevel.parse(value).label if isinstance(value, str) else value.label
    if column == "screening":
        return None if value is None else ScreeningStatus(value).value
    if column == "us_person_attested":
        return None if value is None else int(bool(value))
    return value


def _account(row: Sequence[object]) -> Account:
    (id_, name, org, cits, res, attested, kyc, screening, controlled_by, suspended, created, deleted, revision,
     updated, legal_name) = row  # fmt: skip
    return Account(
        id=int(id_),  # type: ignore[call-overload]
        name=str(name),
        organization=None if org is None else str(org),
        citizenships=tuple(json.loads(str(cits))),
        residencies=tuple(json.loads(str(res))),
        us_person_attested=None if attested is None else bool(attested),
        kyc=KycLevel.parse(str(kyc)),
        screening=None if screening is None else ScreeningStatus(str(screening)),
        controlled_by=None if controlled_by is None else str(controlled_by),
        suspended=bool(suspended),
        created_at=str(created),
        deleted_at=None if deleted is None else str(deleted),
        revision=int(revision),  # type: ignore[call-overload]
        updated_at=None if updated is None else str(updated),
        legal_name=None if legal_name is None else str(legal_name),
    )
