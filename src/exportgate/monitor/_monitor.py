"""The monitor: decision events through every enabled detector, findings into deduplicated alerts,
configured actions on new alerts (re-verification hold or suspension, effective on the account's next
request), and webhook delivery. The same object serves a batch run and ``--follow``."""

from __future__ import annotations

import gc
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from exportgate.audit import AdminAction, AuditStore, AuditWriter
from exportgate.errors import NotFoundError, StoreError
from exportgate.identity import Account, AccountStore

from ._alerts import AlertStore
from ._config import MonitorConfig
from ._detectors import Detector, Finding, Trips, detector_named
from ._events import Event, read_events
from ._webhook import Webhook

__all__ = ["Monitor"]

log = logging.getLogger("exportgate.monitor")
OVERLAP_NS = 10 * 1_000_000_000


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection during a scan: the events held in a chunk and in detector state are
    hundreds of thousands of tracked tuples, and each full collection would walk them all (a third of a
    million-record scan's time); a scan creates no reference cycles, and collection resumes after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class Monitor:
    config: MonitorConfig
    alerts: AlertStore
    accounts: AccountStore | None = None  # declared trips; and the accounts actions apply to
    webhook: Webhook | None = None
    apply_actions: bool = True  # False: alerts are raised but no account is suspended or held
    audit: AuditWriter | None = None  # where an applied action is recorded (event admin, via monitor)
    detectors: list[Detector] = field(init=False)
    last_ns: int | None = field(init=False, default=None)  # time of the newest event seen
    recent: dict[str, int] = field(init=False, default_factory=dict)  # records seen within OVERLAP_NS of it
    floor_ns: int | None = field(init=False, default=None)  # where the first scan started: follow never reads before
    time_scale: float = field(init=False, default=1.0)
    scale_base_ns: int | None = field(init=False, default=None)  # time is stretched from here: the first record read
    events: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        trips = Trips(self.accounts.trips() if self.accounts is not None else ())
        self.detectors = [detector_named(name, trips, params) for name, params in self.config.params.items()]

    def scan(self, events: Iterable[Event], chunk: int = 200_000) -> list[dict[str, Any]]:
        """Feed events (in time order); returns the alerts created or extended. Events are taken ``chunk``
        at a time and grouped by account, so each detector runs a tight loop over one account's events
        (findings are the same as one event at a time); each chunk's findings are stored in one
        transaction, and actions run for alerts that are new."""
        touched: dict[str, dict[str, Any]] = {}
        stream = iter(events)
        with _collector_paused():
            self._scan(stream, chunk, touched)
        return list(touched.values())

    def _scan(self, stream: Iterator[Event], chunk: int, touched: dict[str, dict[str, Any]]) -> None:
        while batch := list(itertools.islice(stream, chunk)):
            self._observe(batch)
            by_account: defaultdict[str, list[Event]] = defaultdict(list)
            for event in batch:
                if event.account:
                    by_account[event.account].append(event)
            pending: list[tuple[Finding, str]] = []
            for account, mine in by_account.items():
                for detector in self.detectors:
                    for finding in detector.feed(account, mine):
                        pending.append((finding, self.config.actions.get(finding.detector, "alert")))
            self._store(pending, touched)

    def _observe(self, batch: list[Event]) -> None:
        """Count the events and keep those within ``OVERLAP_NS`` of the newest, for :meth:`follow_once`."""
        if self.time_scale != 1.0 and self.scale_base_ns is None:
            self.scale_base_ns = batch[0].time_ns  # the first record read is not moved by the stretch
        self.events += len(batch)
        self.last_ns = max(self.last_ns or 0, *(e.time_ns for e in batch))
        horizon = self.last_ns - OVERLAP_NS
        self.recent = {r: t for r, t in self.recent.items() if t >= horizon}
        self.recent.update((e.record, e.time_ns) for e in batch if e.time_ns >= horizon)

    def _store(self, pending: list[tuple[Finding, str]], touched: dict[str, dict[str, Any]]) -> None:
        if not pending:
            return
        for upserted in self.alerts.upsert_many(pending, self.config.dedup_s):
            touched[upserted.alert["id"]] = upserted.alert
            if upserted.new:
                self._act(upserted.alert)
        pending.clear()

    def scan_store(self, store: AuditStore, since_ns: int | None, until_ns: int | None = None,
                   time_scale: float = 1.0) -> list[dict[str, Any]]:  # fmt: skip
        """The records in a window. A later :meth:`follow_once` continues from here (same time scale).

        With ``time_scale`` (a synthetic run compressed into seconds), time is stretched from the first
        record read, where the traffic started, not from ``since_ns``: the records then stand for the hours
        they were sent as, from when they were sent (declared trips are for those days)."""
        self.floor_ns, self.time_scale, self.scale_base_ns = since_ns, time_scale, None
        return self.scan(read_events(store, since_ns, until_ns, time_scale=time_scale))

    def follow_once(self, store: AuditStore) -> list[dict[str, Any]]:
        """The records committed since the last pass (everything on a first call). Passes overlap by
        ``OVERLAP_NS``, so a record committed late with an earlier time (another worker, a queued write)
        is still seen, and records already seen are skipped."""
        since = self.floor_ns
        if self.last_ns is not None:
            horizon = self.last_ns - OVERLAP_NS  # in the events' (possibly stretched) time
            self.recent = {r: t for r, t in self.recent.items() if t >= horizon}
            since = self._real(horizon) if since is None else max(since, self._real(horizon))
        seen = set(self.recent)
        fresh = read_events(store, since, time_scale=self.time_scale, base_ns=self.scale_base_ns)
        return self.scan(e for e in fresh if e.record not in seen)

    def _real(self, ns: int) -> int:
        """A time as events carry it, back in the record's own clock (undoing ``time_scale``)."""
        base = self.scale_base_ns
        return ns if base is None else base + int((ns - base) / self.time_scale)

    def _record(self, alert: dict[str, Any], before: Account | None, after: Account) -> None:
        """The action on the record: who (the monitor), what, before and after, and the alert as the note."""
        if self.audit is None:
            return
        fields = ("suspended", "revision") if alert["action"] == "suspend" else ("revision",)
        shown = [{f: getattr(a, f) for f in fields} | {"kyc": a.kyc.label} if a else None for a in (before, after)]
        action = "account.suspend" if alert["action"] == "suspend" else "account.reverify"
        entry = AdminAction(time.time_ns(), "monitor", "officer", "monitor", action, after.name, shown[0], shown[1],
                            f"alert {alert['id']} ({alert['detector']})", after.name)  # fmt: skip
        try:
            self.audit.append(entry)
        except StoreError as exc:
            log.error("alert %s: %s of %s applied, but its audit record failed: %s", alert["id"], action, after.name,
                      exc)  # fmt: skip

    def _act(self, alert: dict[str, Any]) -> None:
        action = alert["action"]
        if action != "alert" and self.accounts is not None and self.apply_actions:
            try:
                account = alert["account"]
                change = self.accounts.suspension(account, True) if action == "suspend" else self.accounts.hold(account)
                self._record(alert, change.before, change.after)
                log.warning(
                    "alert %s (%s): %s applied to account %s", alert["id"], alert["detector"], action, alert["account"]
                )
            except NotFoundError:
                log.warning(
                    "alert %s: account %s is not in this account store; %s not applied",
                    alert["id"],
                    alert["account"],
                    action,
                )
        if self.webhook is not None:
            self.webhook.send(alert)
