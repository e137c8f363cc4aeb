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
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from exportgate._types import ScreeningStatus
from exportgate.audit import AdminAction, AuditWriter
from exportgate.errors import ConfigError, ConflictError, DirectiveError, ForbiddenError, NotFoundError, StoreError
from exportgate.identity import Account, AccountChange, AccountStore, ApiKeyInfo, NewKey, Suspension, Trip
from exportgate.monitor import AlertStore, Transition
from exportgate.policy import parse_directive
from exportgate.screening import (
    DEFAULT_THRESHOLD,
    MANUAL_HIT,
    LoadedList,
    Review,
    ScreeningResult,
    ScreeningStore,
    assess,
    read_lists,
    screening_input,
)
from exportgate.state import ROLES, AdminTokens, Database, DirectiveStore, NewAdminToken, PublishedDirective

__all__ = ["NEEDS", "Actions", "Actor", "ListsLoaded", "account_dict"]

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
    "screening.load": "officer",
    "screening.result": "officer",
    "screening.clear": "officer",
    "screening.confirm": "officer",
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
        "legal_name": account.legal_name,
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


_LIST_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
#: What changing these attributes of an account means for its screening: screened again.
_SCREENED = frozenset({"legal_name", "organization", "citizenships", "residencies"})


@dataclass(frozen=True)
class ListsLoaded:
    """What ``screening load`` did: each list (stored as a new version, or the same files already in force),
    how many accounts were screened against the lists in force, and the accounts whose status changed."""

    lists: tuple[tuple[LoadedList, bool], ...]
    screened: int
    changed: tuple[AccountChange, ...]
    ignored: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"lists": [{**x.as_dict(), "stored": stored} for x, stored in self.lists], "screened": self.screened,
                "changed": [{"account": c.after.name, "before": _status(c.before), "after": _status(c.after)}
                            for c in self.changed], "ignored_rows": self.ignored}  # fmt: skip


def _status(account: Account) -> str | None:
    return None if account.screening is None else account.screening.value


class Actions:
    def __init__(self, state: Database, audit: AuditWriter, actor: Actor, *, alerts: AlertStore | None = None,
                 screening_threshold: float = DEFAULT_THRESHOLD,
                 screening: ScreeningStore | None = None) -> None:  # fmt: skip
        """``screening``: a store shared between the actions of a long-lived process (it keeps the index)."""
        self.state, self.audit, self.actor, self.alerts = state, audit, actor, alerts
        self.screening = screening or ScreeningStore(state, threshold=screening_threshold)
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
        screened = self._screened_by_lists(attributes.get("screening") is not None)
        if screened:  # fail closed until screened below
            attributes = {**attributes, "screening": ScreeningStatus.PENDING}
        account, key = self.accounts.add_account(name, **attributes)
        self._record("account.create", account.name, None, {**account_dict(account), "key_id": key.key_id}, note,
                     account.name)  # fmt: skip
        if screened:
            self._screen([account])
            account = self.accounts.get_account(account.name)
        return account, key

    def update_account(self, name: str, changes: Mapping[str, Any], *, expected_revision: int | None = None,
                       note: str | None = None) -> Account:  # fmt: skip
        screened = self._screened_by_lists("screening" in changes)  # even null: the lists decide
        rescreen = screened and bool(_SCREENED & set(changes))
        if rescreen and self.accounts.get_account(name).screening is not ScreeningStatus.HIT:
            changes = {**changes, "screening": ScreeningStatus.PENDING}  # fail closed until screened below
        account = self._account_change(
            "account.update",
            name,
            note,
            lambda n: self.accounts.update_account(n, changes, expected_revision=expected_revision),
        )
        if rescreen:
            self._screen([account])
            account = self.accounts.get_account(name)
        return account

    def _screened_by_lists(self, given: bool) -> bool:
        """Whether lists are loaded (then screening decides an account's status, and it cannot be set by hand,
        not even to null)."""
        if not self.screening.lists():
            return False
        if given:
            raise ConflictError("screening is decided by the lists loaded (exportgate screening lists); an officer "
                                "reviews a potential match with exportgate screening clear|confirm")  # fmt: skip
        return True

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
        """Bring back a deleted account. With lists loaded it is screened again at once: it missed every
        re-screening while deleted (``pending`` until then, fail closed)."""
        account = self._account_change("account.restore", name, note, self.accounts.undelete)
        if self.screening.lists():
            if account.screening is not ScreeningStatus.HIT:  # a hit stays a hit
                self.accounts.apply_screening([(account.id, ScreeningStatus.PENDING)], lambda tx: None)
            self._screen([self.accounts.get_account(name)])
            account = self.accounts.get_account(name)
        return account

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

    # -- screening ------------------------------------------------------------------------------

    def load_lists(self, paths: list[str], *, list_name: str | None = None, note: str | None = None) -> ListsLoaded:
        """Read restricted-party list files (a malformed one refuses them all), store each list as a new
        version unless the same files are in force, then screen every account not yet screened against
        the lists in force (so loading the same files again finishes an interrupted re-screening)."""
        note = self._allowed("screening.load", note)
        if list_name is not None and (not _LIST_NAME.fullmatch(list_name) or list_name in ("csl", "ofac-sdn")):
            raise ConfigError("a list's name is 1 to 40 of a-z, 0-9, '_', '-', '.', starting with a letter or digit,"
                              " and not csl or ofac-sdn (those name the published lists)")  # fmt: skip
        parsed = read_lists(paths, internal_name=list_name or "internal")
        done = self.screening.add_all(parsed, by=self.actor.name, note=note)  # every list, or none
        for loaded, stored in done:
            if stored:
                self._record("screening.load", f"{loaded.name} v{loaded.version}", None, loaded.as_dict(), note)
        screened, changed = self.rescreen()
        return ListsLoaded(tuple(done), screened, tuple(changed), sum(p.ignored for p in parsed))

    def rescreen(self) -> tuple[int, list[AccountChange]]:
        """Screen every live account whose result is not for the lists in force and its current names."""
        lists = self.screening.lists()
        if not lists:
            return 0, []
        key = self.screening.key(lists)
        results = self.screening.results()
        stale = []
        for account in self.accounts.list_accounts():
            held = results.get(account.id)
            if held is None or held.lists != key or held.input != _input(account):
                stale.append(account)
        changed: list[AccountChange] = []
        for start in range(0, len(stale), 500):
            changed += self._screen(stale[start : start + 500])
        return len(stale), changed

    def _screen(self, accounts: list[Account], *, adding: Review | None = None,
                also: Callable[[Any], None] | None = None) -> list[AccountChange]:  # fmt: skip
        """Screen ``accounts`` against the lists in force and write their results and statuses (with
        ``also`` in the same transaction); ``adding``: a review about to be written, counted already."""
        lists = self.screening.lists()
        index = self.screening.index(lists)
        if index is None:
            raise NotFoundError("no screening list is loaded")
        key = self.screening.key(lists)
        reviews = self.screening.all_reviews()
        if adding is not None:
            reviews.setdefault(adding.account_id, []).append(adding)
        held = self._held(accounts)
        results = [assess(index, key, a.id, legal_name=a.legal_name, organization=a.organization,
                          countries=(*a.citizenships, *a.residencies), reviews=reviews.get(a.id, ()),
                          held_hits=held.get(a.id, ())) for a in accounts]  # fmt: skip
        return self._apply(results, also)

    def _held(self, accounts: list[Account]) -> dict[int, tuple[str, ...]]:
        """A hit set by hand before any list decided (no screening result yet) is never lowered by a list: it
        stands as a confirmed candidate, ``manual:hit``, until an officer clears it."""
        results = self.screening.results([a.id for a in accounts])
        held: dict[int, tuple[str, ...]] = {}
        for account in accounts:
            before = results.get(account.id)
            if (before is None and account.screening is ScreeningStatus.HIT) or (
                    before is not None and MANUAL_HIT in before.confirmed):  # fmt: skip
                held[account.id] = (MANUAL_HIT,)
        return held

    def _apply(self, results: list[ScreeningResult], also: Callable[[Any], None] | None = None) -> list[AccountChange]:
        def write(tx: Any) -> None:
            if also is not None:
                also(tx)
            ScreeningStore.put(tx, results)

        changes = self.accounts.apply_screening([(r.account_id, r.status) for r in results], write)
        by_id = {r.account_id: r for r in results}
        now = time.time_ns()
        entries = [AdminAction(now, self.actor.name, self.actor.role, self.actor.via, "screening.result",
                               change.after.name, {"screening": _status(change.before)},
                               {"screening": _status(change.after), "lists": by_id[change.after.id].lists,
                                "candidates": [c.id for c in by_id[change.after.id].candidates]}, None,
                               change.after.name) for change in changes]  # fmt: skip
        try:
            self.audit.append_all(entries)
        except StoreError as exc:  # the store went away after the probe: the changes are made, keep their records
            log.error("screening results were written; their audit records are kept by the writer (%s)", exc)
            for entry in entries:
                self.audit.keep(entry)
        return changes

    def review_screening(self, name: str, candidate: str, decision: str, *, reason: str | None) -> Account:
        """Record an officer's review of one candidate: ``clear`` (a false positive: not raised again for
        these names until the entry changes) or ``confirm`` (a hit: the account is denied ``screening_hit``
        on every replica). The account is screened again at once."""
        action = f"screening.{decision}"
        if action not in ("screening.clear", "screening.confirm"):
            raise ConfigError(f"a candidate is cleared or confirmed, not {decision!r}")
        if decision == "clear" and not _visible(reason or ""):
            raise ConfigError("clearing a candidate needs a reason (--reason): the record says why it is not a match")
        reason = self._allowed(action, reason) or "confirmed"
        account = self.accounts.get_account(name)
        if not self.screening.lists():
            raise NotFoundError("no screening list is loaded")
        found = self.screening.candidate(account.id, candidate, self.screening.reviews(account.id))
        digest, by = _input(account), self.actor.name
        before = _status(account)
        self._screen([account], adding=Review(0, account.id, found.id, found.entry_digest, digest, decision, reason,
                                              by, "", 0),
                     also=lambda tx: ScreeningStore.add_review(tx, account.id, found, input_digest=digest,
                                                               decision=decision, reason=reason, by=by))  # fmt: skip
        after = self.accounts.get_account(name)
        self._record(action, name, {"screening": before},
                     {"screening": _status(after), "candidate": found.id, "entry_digest": found.entry_digest,
                      "list_version": found.list_version, "score": found.score}, reason, name)  # fmt: skip
        return after

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


def _visible(text: str) -> bool:
    """Whether ``text`` has a character one can see (a zero-width space or a direction mark is not a reason)."""
    return any(not c.isspace() and unicodedata.category(c) not in ("Cf", "Cc", "Zs", "Zl", "Zp") for c in text)


def _input(account: Account) -> str:
    return screening_input(account.legal_name, account.organization)


def _directive_ref(published: PublishedDirective) -> dict[str, object]:
    return {"version": published.version, "directive_id": published.directive_id,
            "directive_version": published.directive_version, "sha256": published.sha256}  # fmt: skip
