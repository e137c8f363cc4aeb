"""Admin tokens: a name, a role (viewer < officer < admin), stored as a SHA-256 hash (a token carries 256
random bits, so a fast hash is enough), shown once when made, revocable.

A token reads ``egadm_<id>_<secret>``: the id finds the row, the secret is compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from exportgate.errors import AuthenticationError, ConfigError, NotFoundError

from ._db import Database

__all__ = ["ROLES", "AdminToken", "AdminTokens", "NewAdminToken"]

ROLES = ("viewer", "officer", "admin")
PREFIX = "egadm_"
_COLUMNS = "id, name, role, created_at, created_by, revoked_at"


@dataclass(frozen=True)
class AdminToken:
    id: str
    name: str
    role: str
    created_at: str
    created_by: str | None
    revoked_at: str | None

    def may(self, role: str) -> bool:
        """Whether this token's role includes ``role`` (admin ⊇ officer ⊇ viewer)."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class NewAdminToken:
    token: AdminToken
    secret: str  # the whole bearer token, shown once


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class AdminTokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, name: str, role: str, *, by: str | None = None) -> NewAdminToken:
        check_role(role)
        name = name.strip()
        if not name or not name.isprintable() or len(name) > 200:
            raise ConfigError("a token name must be printable, 1 to 200 characters")
        token_id = secrets.token_hex(6)
        secret = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = _now()
        with self.db.transaction() as tx:
            tx.execute(f"INSERT INTO admin_tokens ({_COLUMNS}, token_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                       (token_id, name, role, now, by, None, _hash(secret)))  # fmt: skip
            tx.touch("admin_tokens")
        return NewAdminToken(AdminToken(token_id, name, role, now, by, None), secret)

    def list(self) -> list[AdminToken]:
        rows = self.db.query(f"SELECT {_COLUMNS} FROM admin_tokens ORDER BY created_at, id")  # noqa: S608
        return [_token(r) for r in rows]

    def get(self, token_id: str) -> AdminToken:
        rows = self.db.query(f"SELECT {_COLUMNS} FROM admin_tokens WHERE id = ?", (token_id,))  # noqa: S608
        if not rows:
            raise NotFoundError(f"no admin token {token_id!r}")
        return _token(rows[0])

    def revoke(self, token_id: str) -> AdminToken:
        with self.db.transaction() as tx:
            if tx.execute("UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                          (_now(), token_id)).rowcount == 0 and not tx.execute(
                    "SELECT 1 FROM admin_tokens WHERE id = ?", (token_id,)).fetchone():  # fmt: skip
                raise NotFoundError(f"no admin token {token_id!r}")
            tx.touch("admin_tokens")
        return self.get(token_id)

    def verify(self, secret: str) -> AdminToken:
        """The live token behind a bearer secret; AuthenticationError for anything else."""
        if not secret.startswith(PREFIX):
            raise AuthenticationError("not an admin token")
        token_id = secret[len(PREFIX):].partition("_")[0]
        rows = self.db.query(f"SELECT {_COLUMNS}, token_hash FROM admin_tokens WHERE id = ?", (token_id,))  # noqa: S608
        if not rows or not hmac.compare_digest(str(rows[0][6]), _hash(secret)):
            raise AuthenticationError("unknown admin token")
        token = _token(rows[0])
        if token.revoked_at is not None:
            raise AuthenticationError("admin token revoked")
        return token


def _token(row: tuple[object, ...]) -> AdminToken:
    tid, name, role, created, by, revoked = row[:6]
    return AdminToken(str(tid), str(name), str(role), str(created), None if by is None else str(by),
                      None if revoked is None else str(revoked))  # fmt: skip
