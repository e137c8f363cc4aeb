"""Alert delivery by webhook: HTTP POST of the alert JSON, signed with HMAC-SHA256
(``X-Exportgate-Signature: sha256=<hex>`` over the exact body), retried with exponential backoff on
connection errors and 5xx/429, from a background thread so the caller (the monitor, or a gateway running
it) never waits on the receiver."""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import orjson

__all__ = ["Webhook", "signature"]

log = logging.getLogger("exportgate.monitor")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhook:
    def __init__(
        self, url: str, secret: str | None, *, attempts: int = 5, backoff_s: float = 0.5, timeout_s: float = 10.0
    ) -> None:
        self.url, self.secret = url, secret
        self.attempts, self.backoff_s, self.timeout_s = attempts, backoff_s, timeout_s
        self.delivered = 0
        self.failed = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=10_000)
        self._thread = threading.Thread(target=self._run, name="exportgate-webhook", daemon=True)
        self._thread.start()

    def send(self, alert: dict[str, Any]) -> None:
        """Queue an alert for delivery; never blocks (a full queue drops it, and says so in the log)."""
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.failed += 1
            log.error("webhook queue full: alert %s not delivered", alert.get("id"))

    def close(self, timeout_s: float = 30.0) -> None:
        """Deliver what is queued (up to ``timeout_s``), then stop."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while (alert := self._queue.get()) is not None:
            if self._deliver(alert):
                self.delivered += 1
            else:
                self.failed += 1

    def _deliver(self, alert: dict[str, Any]) -> bool:
        body = orjson.dumps(alert)
        headers = {"Content-Type": "application/json", "User-Agent": "exportgate-monitor"}
        if self.secret:
            headers["X-Exportgate-Signature"] = signature(self.secret, body)
        for attempt in range(self.attempts):
            try:
                request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                    if response.status < 300:
                        return True
            except urllib.error.HTTPError as exc:
                if exc.code < 500 and exc.code != 429:
                    log.error("webhook refused alert %s: HTTP %s", alert.get("id"), exc.code)
                    return False
            except (urllib.error.URLError, OSError) as exc:
                log.warning("webhook attempt %d for alert %s failed: %s", attempt + 1, alert.get("id"), exc)
            time.sleep(self.backoff_s * 2**attempt)
        log.error("webhook gave up on alert %s after %d attempts", alert.get("id"), self.attempts)
        return False
