"""Structured JSON logs: one line per request (the access log) and the gateway's own events.

Access lines go to a buffered stream flushed every watch interval and at
shutdown: a crash may lose the last second of access lines, never an audit
record (the audit trail, not the log, is the record).
"""

from __future__ import annotations

import sys
import time
from typing import IO

import orjson

from exportgate._logs import JsonFormatter, configure_logging, printable
from exportgate._types import Decision, RequestContext

__all__ = ["AccessLog", "JsonFormatter", "configure_logging"]


class AccessLog:
    """Lines are collected in memory and written in one call per flush (each watch interval, or every
    ``batch`` lines): a write per request would hand the GIL to the audit thread at every call."""

    def __init__(self, stream: IO[bytes] | None = None, batch: int = 2048) -> None:
        self.stream = stream if stream is not None else sys.stderr.buffer
        self.batch = batch
        self._lines: list[bytes] = []

    def request(  # noqa: PLR0917
        self,
        request_id: str,
        route: str,
        status: int,
        decision: Decision | None,
        account: str | None,
        context: RequestContext,
        seconds: float,
    ) -> None:
        line = {
            "time": time.time(),
            "level": "info",
            "event": "request",
            "request_id": request_id,
            "route": route,
            "status": status,
            "decision": decision.decision if decision else None,
            "reasons": [r.code.value for r in decision.reasons] if decision else None,
            "model": decision.model if decision else None,
            "account": account,
            "client_ip": context.ip,
            "country": context.country,
            "latency_ms": round(seconds * 1_000_000) / 1000,
        }
        try:
            encoded = orjson.dumps(line)
        except TypeError:  # a value that is not valid Unicode (a claim with a lone surrogate): escape it
            encoded = orjson.dumps(printable(line))
        self._lines.append(encoded)
        if len(self._lines) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            self.stream.write(b"\n".join(lines) + b"\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass
