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
from exportgate._memo import ByIdentity
from exportgate._types import Decision, RequestContext

__all__ = ["AccessLog", "JsonFormatter", "configure_logging"]


class AccessLog:
    """Lines are collected in memory and written in one call per flush (each watch interval, or every
    ``batch`` lines): a write per request would hand the GIL to the audit thread at every call."""

    def __init__(self, stream: IO[bytes] | None = None, batch: int = 2048) -> None:
        self.stream = stream if stream is not None else sys.stderr.buffer
        self.batch = batch
        self._lines: list[bytes] = []
        #: Each decision's fields, encoded once per decision object.
        self._decided: ByIdentity[Decision | None, str] = ByIdentity(_encoded_decision)

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
        """One line: ``time level event request_id route status decision reasons model account client_ip
        country latency_ms``. The decision's part is encoded once per decision (the gateway hands out one
        object per allowed model); values a client controls go through orjson, and a value that is not
        valid Unicode is escaped rather than lost."""
        now, latency = time.time(), round(seconds * 1_000_000) / 1000  # ms, to the microsecond
        try:
            line = (
                f'{{"time":{now!r},"level":"info","event":"request","request_id":{_text(request_id)},'
                f'"route":{_text(route)},"status":{int(status)},{self._decided(decision)},"account":{_text(account)},'
                f'"client_ip":{_text(context.ip)},"country":{_text(context.country)},"latency_ms":{latency!r}}}'
            ).encode()
        except TypeError:  # a value that is not valid Unicode (a claim with a lone surrogate): escape it
            line = orjson.dumps(printable({
                "time": now, "level": "info", "event": "request", "request_id": request_id, "route": route,
                "status": status, **_decision_fields(decision), "account": account, "client_ip": context.ip,
                "country": context.country, "latency_ms": latency,
            }))  # fmt: skip
        self._lines.append(line)
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


def _text(value: str | None) -> str:
    return orjson.dumps(value).decode()


def _encoded_decision(decision: Decision | None) -> str:
    return orjson.dumps(_decision_fields(decision)).decode()[1:-1]


def _decision_fields(decision: Decision | None) -> dict[str, object]:
    return {
        "decision": decision.decision if decision else None,
        "reasons": [r.code.value for r in decision.reasons] if decision else None,
        "model": decision.model if decision else None,
    }
