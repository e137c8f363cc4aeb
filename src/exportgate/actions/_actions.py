"""Every change to the system of record, each one an audit record.

The CLI, the admin API (and later the dashboard) call these and nothing else to change accounts, keys,
suspensions, alerts, directives or admin tokens, so one action is one code path and one record whichever
door it came through. A record (event ``admin``, :class:`~exportgate.audit.AdminAction`) names the actor,
its role and door, the action and its target, the state before and after, and the note given.

Roles (:data:`NEEDS`, data next to the actions they guard): a *viewer* reads; an *officer* acts on accounts,
keys and alerts; an *admin* also publishes directives and manages admin tokens. The check is made here,
whatever the door; the admin API checks the route's role first as well.

Order of work: the actor's role and the note are checked, then the audit store is probed (a store that
is down refuses the action before anything changes), then the change is committed, then its record is
written. Should the store go away in the moment between the probe and the record, the record is not
lost: the writer keeps it and retries, and saves it to ``HOME/audit/unwritten-<writer>.jsonl`` if its
process ends first (and the action's answer stands: an account's first key is still shown).
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from exportgate.audit import AdminAction, AuditWriter
from exportgate.errors import ConfigError, ConflictError, DirectiveError, ForbiddenError, NotFoundError, StoreError
from exportgate.identity import Account, AccountChange, AccountStore, ApiKeyInfo, NewKey, Suspension, Trip
from exportgate.monitor import AlertStore, Transition
from exportgate.policy import parse_directive
from exportgate.state import ROLES, AdminTokens, Database, DirectiveStore, NewAdminToken, PublishedDirective

__all__ = ["NEEDS", "Actions", "Actor", "account_dict"]

#: The least role each action needs.
NEEDS: dict[str, str] = {
    "account.create": "officer",
    "account.update": "officer",
    "account.suspend": "officer",
    "account.unsuspend": "officer",
    "account.delete": "officer",
    "account.restore": "officer",
    "account.reverify": "officer",
    "account.restore_kyc": "officer",
    "account.trip": "officer",
    "key.issue": "officer",
    "key.revoke": "officer",
    "alert.acknowledged": "officer",
    "alert.resolved": "officer",
    "alert.open": "officer",
    "directive.publish": "admin",
    "directive.rollback": "admin",
    "token.add": "admin",
    "token.revoke": "admin",
}
log = logging.getLogger("exportgate.actions")
MAX_NOTE = 2000
#: How records name subjects that are not accounts: an account may not take such a name.
_SUBJECT_PREFIXES = ("jwt:", "account:")


@dataclass(frozen=True)
class Actor:
    """Who acts: a name (an admin token's name, or the operator at a terminal), a role, a door."""

    name: str
    role: str
    via: str  # "cli" | "api" | "monitor"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def account_dict(account: Account) -> dict[str, object]:
    """An account as records, the CLI and the admin API show it."""
    return {
        "name": account.name,
        "organization": account.organization,
        "citizenships": list(account.citizenships),
        "residencies": list(account.residencies),
        "us_person": account.us_person,
        "us_person_attested": account.us_person_attested,
        "kyc": account.kyc.label,
        "screening": account.screening.value if account.screening else None,
        "controlled_by": account.controlled_by,
        "suspended": account.suspended,
        "created_at": account.created_at,
        "deleted_at": account.deleted_at,
        "revision": account.revision,
        "updated_at": account.updated_at,
    }


def _note(note: str | None) -> str | None:
    if note is None:
        return None
    if len(note) > MAX_NOTE:
        raise ConfigError(f"a note is at most {MAX_NOTE} characters")
    return note


class Actions:
    def __init__(self, state: Database, audit: AuditWriter, actor: Actor, *, alerts: AlertStore | None = None) -> None:
        self.state, self.audit, self.actor, self.alerts = state, audit, actor, alerts
        self.accounts = AccountStore(state)
        self.directives = DirectiveStore(state)
        self.tokens = AdminTokens(state)

    # -- plumbing -------------------------------------------------------------------------------

    def _allowed(self, action: str, note: str | None = None) -> str | None:
        """The actor may do ``action`` and its record can be written now; the note, checked. Called before
        anything changes, so a refused action leaves no change without a record."""
        note = _note(note)
        needed = NEEDS[action]
        if not self.actor.may(needed):
            raise ForbiddenError(f"{action} needs the {needed} role; {self.actor.name} is {self.actor.role}")
        try:
            self.audit.check()  # the store answers now: an action is refused before it changes anything
        except StoreError as exc:
            raise StoreError(f"{action} refused: its audit record cannot be written ({exc})") from None
        return note

    def _record(self, action: str, target: str, before: Mapping[str, Any] | None,  # noqa: PLR0917
                after: Mapping[str, Any] | None, note: str | None, account: str | None = None) -> None:  # fmt: skip
        entry = AdminAction(time.time_ns(), self.actor.name, self.actor.role, self.actor.via, action, target,
                            before, after, note, account)  # fmt: skip
        try:
            self.audit.append(entry)
        except StoreError as exc:  # the store went away between the check and now: the change is made
            log.error("%s %s was done; its audit record is kept by the writer and retried (%s)", action, target, exc)
            self.audit.keep(entry)

    def _account_change(self, action: str, name: str, note: str | None,
                        change: Callable[[str], AccountChange]) -> Account:  # fmt: skip
        note = self._allowed(action, note)
        result = change(name)
        self._record(action, name, account_dict(result.before), account_dict(result.after), note, name)
        return result.after

    # -- accounts -------------------------------------------------------------------------------

    def create_account(self, name: str, *, note: str | None = None, **attributes: Any) -> tuple[Account, NewKey]:
        note = self._allowed("account.create", note)
        if name.strip().lower().startswith(_SUBJECT_PREFIXES):
            raise ConfigError(f"an account name may not start with {' or '.join(_SUBJECT_PREFIXES)} (how records "
                              "name subjects of other kinds)")  # fmt: skip
        account, key = self.accounts.add_account(name, **attributes)
        self._record("account.create", account.name, None, {**account_dict(account), "key_id": key.key_id}, note,
                     account.name)  # fmt: skip
        return account, key

    def update_account(self, name: str, changes: Mapping[str, Any], *, expected_revision: int | None = None,
                       note: str | None = None) -> Account:  # fmt: skip
        return self._account_change("account.update", name, note, lambda n: self.accounts.update_account(
            n, changes, expected_revision=expected_revision))

    def _is_subject(self, name: str) -> bool:
        """A JWT subject as records name it, and no account of that name (an account always wins)."""
        if not name.startswith("jwt:"):
            return False
        try:
            self.accounts.get_account(name)
        except NotFoundError:
            return True
        return False

    def _subject_suspended(self, name: str) -> bool:
        return any(s.subject == name for s in self.accounts.suspensions())

    def suspend(self, name: str, *, note: str | None = None) -> Account | Suspension:
        """Suspend an account, or a JWT subject (``jwt:<issuer>#<sub>``, as records name it)."""
        if self._is_subject(name):
            note = self._allowed("account.suspend", note)
            was = self._subject_suspended(name)
            suspension = self.accounts.suspend_subject(name, by=self.actor.name, note=note)
            self._record("account.suspend", name, {"suspended": was}, {"suspended": True}, note, name)
            return suspension
        return self._account_change("account.suspend", name, note, lambda n: self.accounts.suspension(n, True))

    def unsuspend(self, name: str, *, note: str | None = None) -> Account | Suspension:
        if self._is_subject(name):
            note = self._allowed("account.unsuspend", note)
            suspension = self.accounts.restore_subject(name)
            self._record("account.unsuspend", name, {"suspended": True}, {"suspended": False}, note, name)
            return suspension
        return self._account_change("account.unsuspend", name, note, lambda n: self.accounts.suspension(n, False))

    def delete_account(self, name: str, *, note: str | None = None) -> Account:
        return self._account_change("account.delete", name, note, self.accounts.tombstone)

    def restore_account(self, name: str, *, note: str | None = None) -> Account:
        return self._account_change("account.restore", name, note, self.accounts.undelete)

    def reverify(self, name: str, *, note: str | None = None) -> Account:
        return self._account_change("account.reverify", name, note, self.accounts.hold)

    def restore_kyc(self, name: str, *, note: str | None = None) -> Account:
        return self._account_change("account.restore_kyc", name, note, self.accounts.end_hold)

    def add_trip(self, name: str, country: str, starts: dt.date, ends: dt.date, note: str | None = None) -> Trip:
        note = self._allowed("account.trip", note)
        trip = self.accounts.add_trip(name, country, starts, ends, note)
        after = {"id": trip.id, "country": country, "starts": starts.isoformat(), "ends": ends.isoformat()}
        self._record("account.trip", name, None, after, note, name)
        return trip

    # -- keys -----------------------------------------------------------------------------------

    def issue_key(self, name: str, *, note: str | None = None) -> NewKey:
        note = self._allowed("key.issue", note)
        key = self.accounts.create_key(name)
        self._record("key.issue", key.key_id, None, {"key_id": key.key_id, "account": name}, note, name)
        return key

    def revoke_key(self, key_id: str, *, note: str | None = None) -> ApiKeyInfo:
        note = self._allowed("key.revoke", note)
        before = next((k for k in self.accounts.list_keys() if k.key_id == key_id), None)
        info = self.accounts.revoke_key(key_id)
        self._record("key.revoke", key_id, None if before is None else {"revoked_at": before.revoked_at},
                     {"revoked_at": info.revoked_at, "account": info.account}, note, info.account)  # fmt: skip
        return info

    # -- alerts ---------------------------------------------------------------------------------

    def set_alert_state(self, alert: str, state: str, *, note: str | None = None) -> Transition:
        if self.alerts is None:
            raise ConfigError("no alert store here")
        action = f"alert.{state}"
        if action not in NEEDS:
            raise ConfigError(f"an alert can be acknowledged, resolved or reopened, not {state!r}")
        note = self._allowed(action, note)
        transition = self.alerts.set_state(alert, state, note, self.actor.name)
        if transition.changed:
            self._record(action, alert, {"state": transition.previous}, {"state": state}, note,
                         transition.alert.get("account"))  # fmt: skip
        return transition

    # -- directives -----------------------------------------------------------------------------

    def publish_directive(self, content: bytes, *, note: str | None = None, source: str = "<published>",
                          rollback_of: int | None = None) -> PublishedDirective:  # fmt: skip
        """Validate ``content`` and make it the directive in force on every replica. A directive that does
        not validate changes nothing anywhere (DirectiveError)."""
        action = "directive.rollback" if rollback_of is not None else "directive.publish"
        note = self._allowed(action, note)
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise DirectiveError("a directive is UTF-8 text", file=source) from None
        directive = parse_directive(content, source=source)
        self._same_version_same_content(directive.id, directive.version, directive.sha256)
        before = self.directives.active()
        published = self.directives.publish(text, directive_id=directive.id, directive_version=directive.version,
                                            by=self.actor.name, note=note, rollback_of=rollback_of)  # fmt: skip
        self._record(action, f"directive v{published.version}",
                     None if before is None else _directive_ref(before), _directive_ref(published), note)  # fmt: skip
        return published

    def _same_version_same_content(self, directive_id: str, version: str, sha256: str) -> None:
        """A directive's version names one content: decision records name the version, so two contents under
        one version could not be told apart by its id and version alone."""
        for earlier in self.directives.history():
            same = (earlier.directive_id, earlier.directive_version) == (directive_id, version)
            if same and earlier.sha256 != sha256:
                raise ConflictError(f"{directive_id} version {version} was published with other content (v"
                                    f"{earlier.version}); give this one a new version")  # fmt: skip

    def rollback_directive(self, version: int, *, note: str | None = None) -> PublishedDirective:
        """Publish the content of ``version`` again, as a new version."""
        self._allowed("directive.rollback", note)
        earlier = self.directives.get(version)
        assert earlier.content is not None
        return self.publish_directive(earlier.content.encode("utf-8"), note=note or f"rollback to v{version}",
                                      source=f"<published v{version}>", rollback_of=version)  # fmt: skip

    def diff_directives(self, old: int, new: int) -> str:
        a, b = (self.directives.get(v).content or "" for v in (old, new))
        return "".join(difflib.unified_diff(a.splitlines(keepends=True), b.splitlines(keepends=True), f"v{old}",
                                            f"v{new}"))  # fmt: skip

    # -- admin tokens ---------------------------------------------------------------------------

    def add_token(self, name: str, role: str, *, note: str | None = None) -> NewAdminToken:
        note = self._allowed("token.add", note)
        made = self.tokens.add(name, role, by=self.actor.name)
        self._record("token.add", made.token.id, None, made.token.as_dict(), note)
        return made

    def revoke_token(self, token_id: str, *, note: str | None = None) -> dict[str, object]:
        note = self._allowed("token.revoke", note)
        before = self.tokens.get(token_id)
        after = self.tokens.revoke(token_id)
        self._record("token.revoke", token_id, before.as_dict(), after.as_dict(), note)
        return after.as_dict()


def _directive_ref(published: PublishedDirective) -> dict[str, object]:
    return {"version": published.version, "directive_id": published.directive_id,
            "directive_version": published.directive_version, "sha256": published.sha256}  # fmt: skip

