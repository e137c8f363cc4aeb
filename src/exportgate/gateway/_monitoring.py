"""The evasion monitor in the background of a gateway (``serve --monitor``): a daemon thread that reads
the audit records written since its last pass, every ``interval`` seconds, with its own connections, so
the request path never waits on it. Errors are logged and the next pass tries again; actions (a
suspension, a re-verification hold) reach the request path through the account store's revision counter.

With ``--workers N`` every worker has one, but only the holder of the monitor lock runs the detectors; the
others look for the lock each interval and one takes over when the holder's process ends, starting again
from the last 24 hours (alerts are deduplicated, so nothing is raised twice). On SQLite the lock is
``HOME/monitor.lock`` (an exclusive ``flock``, released by the kernel); on PostgreSQL it is a session
advisory lock held on a connection of its own, so one leader runs across every replica and host, over the
shared audit record, and when its process or host dies the server ends the session and releases the lock:
another replica takes over at its next look (``monitor_interval``, 5 s by default)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import time
from typing import IO, Any

from exportgate._files import private_file
from exportgate.audit import AuditWriter, open_store
from exportgate.config import Settings
from exportgate.identity import AccountStore
from exportgate.monitor import AlertStore, Monitor, Webhook, load_config
from exportgate.state import Database, database_url, open_database

__all__ = ["BackgroundMonitor"]

log = logging.getLogger("exportgate.gateway")
FIRST_LOOK_BACK_NS = 24 * 3600 * 1_000_000_000


class BackgroundMonitor:
    def __init__(self, settings: Settings, audit: AuditWriter | None = None) -> None:
        self.settings, self.audit = settings, audit  # the worker's writer: the monitor's actions are recorded
        self.home, self.audit_url, self.interval = settings.home_path, settings.audit_url, settings.monitor_interval
        self.config = load_config(settings.monitor_config)  # a bad config stops the gateway at start, not later
        self.shared = database_url(settings) is not None
        self.passes = 0
        self.lock_path = self.home / "monitor.lock"
        self._lock: IO[Any] | Any | None = None
        self._state: Database | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="exportgate-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def leading(self) -> bool:
        """Whether this process holds the monitor lock and runs the detectors."""
        return self._lock is not None

    def _lead(self) -> bool:
        """Take ``HOME/monitor.lock`` if no other process (or monitor) holds it; keep it once taken."""
        if self._lock is not None and self.shared and not _alive(self._lock):
            log.warning("monitor: lost the connection holding the monitor lock; leading again only once retaken")
            self._release()
        if self._lock is None and self.shared:
            assert self._state is not None
            self._lock = self._state.advisory_lock("exportgate.monitor")  # type: ignore[attr-defined]
            if self._lock is None:
                return False
            log.info("monitor: this process runs the evasion detectors for every replica (advisory lock)")
        if self._lock is None:
            handle = private_file(self.lock_path, "ab")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
            self._lock = handle
            log.info("monitor: this process runs the evasion detectors (holds %s)", self.lock_path)
        return True

    def _release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(Exception):
                self._lock.close()  # closing the only descriptor releases the flock (the session: the lock)
            self._lock = None

    @property
    def running(self) -> bool:
        """Whether the monitor's thread is alive (what ``/readyz`` reports)."""
        return self._thread.is_alive() or not self._thread.ident

    def _run(self) -> None:
        """Until closed: open what a pass needs, then lead or wait; any failure (a store down at start, a
        lost lock connection, a pass that fails) is logged and tried again an interval later."""
        while not self._stop.is_set():
            try:
                self._serve()
            except Exception:
                log.exception("background monitor stopped by an error; starting again in %.1f s", self.interval)
                self._release()
                self._stop.wait(self.interval)

    def _serve(self) -> None:
        webhook = Webhook(self.config.webhook_url, self.config.webhook_secret) if self.config.webhook_url else None
        with contextlib.ExitStack() as stack:
            if webhook is not None:
                stack.callback(webhook.close, timeout_s=5)
            self._state = open_database(self.settings, "state")
            accounts = AccountStore(self._state)
            stack.callback(accounts.close)
            alerts = AlertStore(open_database(self.settings, "alerts"))
            stack.callback(alerts.close)
            monitor = Monitor(self.config, alerts, accounts, webhook, audit=self.audit)
            store = open_store(self.audit_url, self.home)
            stack.callback(store.close)
            stack.callback(self._release)
            self._loop(monitor, store)

    def _loop(self, monitor: Monitor, store: Any) -> None:
        since: int | None = time.time_ns() - FIRST_LOOK_BACK_NS
        while not self._stop.is_set():
            if not self._lead():  # another worker (or replica) runs the detectors
                self._stop.wait(self.interval)
                continue
            try:
                alerts = monitor.scan_store(store, since) if since is not None else monitor.follow_once(store)
                since = None
                self.passes += 1
                for alert in alerts:
                    log.warning("monitor alert %s %s account=%s: %s", alert["id"], alert["detector"],
                                alert["account"], alert["summary"])  # fmt: skip
            except Exception:  # keep monitoring whatever one pass hit
                log.exception("background monitor pass failed; retrying in %.1f s", self.interval)
            self._stop.wait(self.interval)


def _alive(connection: Any) -> bool:
    """Whether the connection holding the advisory lock still answers (its session, and so the lock, live)."""
    try:
        connection.execute("SELECT 1")
    except Exception:
        return False
    return True
