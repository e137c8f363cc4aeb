"""Accounts and API keys in SQLite under the home directory.

Schema changes are numbered migrations applied in order and recorded in
``PRAGMA user_version``; a database newer than this code is refused rather
than misread. WAL mode lets the gateway read while the CLI writes.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from exportgate._files import sqlite_connect
from exportgate._types import KycLevel, ScreeningStatus, Subject
from exportgate.errors import ConflictError, InvalidApiKeyError, NotFoundError, StoreError

from ._account import Account, ApiKeyInfo, Trip
from ._keys import NewKey, generate_key, key_id_of, matches
from ._revision import Revision

__all__ = ["AccountStore"]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        organization TEXT,
        citizenships TEXT NOT NULL DEFAULT '[]',
        residencies TEXT NOT NULL DEFAULT '[]',
        us_person_attested INTEGER,
        kyc TEXT NOT NULL DEFAULT 'none',
        screening TEXT,
        controlled_by TEXT,
        suspended INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE TABLE api_keys (
        key_id TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        key_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE INDEX api_keys_account ON api_keys(account_id);
    """,
    """
    CREATE TABLE trips (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        country TEXT NOT NULL,
        starts TEXT NOT NULL,
        ends TEXT NOT NULL,
        note TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX trips_account ON trips(account_id);
    ALTER TABLE accounts ADD COLUMN kyc_held TEXT;
    """,
    "ALTER TABLE accounts ADD COLUMN deleted_at TEXT",
)

_ACCOUNT_COLUMNS = (
    "id, name, organization, citizenships, residencies, us_person_attested, kyc, screening, "
    "controlled_by, suspended, created_at, deleted_at"
)


_SELECT_ACCOUNTS = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts"  # noqa: S608 - constant column list
_KEY_LOOKUP = (
    "SELECT k.key_hash, k.revoked_at, "  # noqa: S608 - constant column list, no user input
    + ", ".join("a." + c.strip() for c in _ACCOUNT_COLUMNS.split(","))
    + " FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.key_id = ?"
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class AccountStore:
    """Accounts and keys. Safe to share between threads (one connection, one lock)."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        """``read_only`` opens an existing store and never creates one (a missing store is a StoreError)."""
        self.path = Path(path)
        self.read_only = read_only
        memory = str(path) == ":memory:"
        try:
            self._db = sqlite_connect(self.path, read_only=read_only, check_same_thread=False, isolation_level=None)
            if not read_only:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("PRAGMA foreign_keys=ON")
            self.revision = Revision(None if memory or read_only else self.path.with_name(self.path.name + ".rev"))
        except FileNotFoundError:
            raise StoreError(f"no account store at {self.path}") from None
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open account store {self.path}: {exc}") from None
        self._lock = threading.Lock()
        self._migrate()

    # -- plumbing ----------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"account store {self.path}: {exc}") from None
            self.revision.bump()

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return list(self._db.execute(sql, params))
            except sqlite3.Error as exc:
                raise StoreError(f"account store {self.path}: {exc}") from None

    def _migrate(self) -> None:
        if self.read_only:
            version = int(str(self._query("PRAGMA user_version")[0][0]))
            if version != len(MIGRATIONS):
                raise StoreError(f"account store {self.path} has schema {version}, this exportgate "
                                 f"{len(MIGRATIONS)}: open it once for writing to upgrade it")  # fmt: skip
            return
        with self._tx() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"account store {self.path} has schema {version}; this exportgate knows up to {len(MIGRATIONS)}"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    def health(self) -> str | None:
        """``None`` while the store answers a query, else why not (what ``/readyz`` reports)."""
        try:
            self._query("SELECT 1 FROM accounts LIMIT 1")
        except StoreError as exc:
            return str(exc)
        return None

    @property
    def schema_version(self) -> int:
        return int(str(self._query("PRAGMA user_version")[0][0]))

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self.revision.close()

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
            cursor = db.execute(
                "INSERT INTO accounts (name, organization, citizenships, residencies, us_person_attested, kyc,"
                " screening, controlled_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )
            db.execute(
                "INSERT INTO api_keys (key_id, account_id, key_hash, created_at) VALUES (?, ?, ?, ?)",
                (key.key_id, cursor.lastrowid, key.hash, now),
            )
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

    def delete_account(self, name: str) -> Account:
        """Tombstone an account: it is no longer listed or usable and every key is revoked; the row stays, so
        records that name it keep meaning something, and :meth:`restore_account` can bring it back."""
        now = _now()
        with self._tx() as db:
            row = db.execute("SELECT id FROM accounts WHERE name = ? AND deleted_at IS NULL", (name,)).fetchone()
            if row is None:
                raise NotFoundError(f"no account named {name!r}")
            db.execute("UPDATE accounts SET deleted_at = ? WHERE id = ?", (now, row[0]))
            db.execute("UPDATE api_keys SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL", (now, row[0]))
        return self.get_account(name)

    def restore_account(self, name: str) -> Account:
        """Undo a deletion. Its keys stay revoked: create a new one."""
        with self._tx() as db:
            if db.execute("UPDATE accounts SET deleted_at = NULL WHERE name = ? AND deleted_at IS NOT NULL",
                          (name,)).rowcount == 0:  # fmt: skip
                raise NotFoundError(f"no deleted account named {name!r}")
        return self.get_account(name)

    def set_suspended(self, name: str, suspended: bool) -> Account:
        self._update(name, "suspended = ?", (int(suspended),))
        return self.get_account(name)

    def set_kyc(self, name: str, kyc: KycLevel) -> Account:
        self._update(name, "kyc = ?", (kyc.label,))
        return self.get_account(name)

    def set_screening(self, name: str, screening: ScreeningStatus | None) -> Account:
        self._update(name, "screening = ?", (screening.value if screening else None,))
        return self.get_account(name)

    def hold_for_reverification(self, name: str) -> Account:
        """KYC drops to ``none`` until :meth:`restore_kyc`; the level it had is kept (a second hold keeps it)."""
        self._update(name, "kyc_held = COALESCE(kyc_held, kyc), kyc = 'none'", ())
        return self.get_account(name)

    def restore_kyc(self, name: str) -> Account:
        """End a reverification hold: the KYC level from before it comes back."""
        self._update(name, "kyc = COALESCE(kyc_held, kyc), kyc_held = NULL", ())
        return self.get_account(name)

    def kyc_held(self, name: str) -> KycLevel | None:
        """The KYC level an account had before a reverification hold, or None when it is not held."""
        rows = self._query("SELECT kyc_held FROM accounts WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"no account named {name!r}")
        return None if rows[0][0] is None else KycLevel.parse(str(rows[0][0]))

    # -- trips -------------------------------------------------------------

    def add_trip(self, name: str, country: str, starts: dt.date, ends: dt.date, note: str | None = None) -> Trip:
        """Declare that the account will use the service from ``country`` between the two dates (inclusive)."""
        if ends < starts:
            raise ConflictError("a trip must end on or after the day it starts")
        account = self._live(name)
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO trips (account_id, country, starts, ends, note, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (account.id, country, starts.isoformat(), ends.isoformat(), note, _now()),
            )
        return Trip(int(cursor.lastrowid or 0), name, country, starts, ends, note)

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

    def _update(self, name: str, assignment: str, params: tuple[object, ...]) -> None:
        with self._tx() as db:
            sql = f"UPDATE accounts SET {assignment} WHERE name = ? AND deleted_at IS NULL"  # noqa: S608 - constant
            if db.execute(sql, (*params, name)).rowcount == 0:
                raise NotFoundError(f"no account named {name!r}")

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
        return key

    def revoke_key(self, key_id: str) -> ApiKeyInfo:
        with self._tx() as db:
            row = db.execute("SELECT revoked_at FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no API key with id {key_id!r}")
            if row[0] is None:
                db.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", (_now(), key_id))
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


def _account(row: Sequence[object]) -> Account:
    (id_, name, org, cits, res, attested, kyc, screening, controlled_by, suspended, created, deleted) = row
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
    )
