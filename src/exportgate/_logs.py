"""JSON log lines, for exportgate's own loggers and for the server under it (granian), on stderr.

One line per event: ``{"time", "level", "logger", "message"[, "exception"]}``. A value that is not valid
Unicode (a client's lone surrogate, say) is escaped, never allowed to break the line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

__all__ = ["JsonFormatter", "configure_logging", "printable", "server_log_config"]


def printable(value: Any) -> Any:
    """``value`` with every string made valid UTF-8 (unencodable characters as backslash escapes)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [printable(v) for v in value]
    if isinstance(value, dict):
        return {k: printable(v) for k, v in value.items()}
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(line).decode()
        except TypeError:
            return orjson.dumps(printable(line)).decode()


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("exportgate")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def server_log_config() -> dict[str, Any]:
    """granian's logging (worker spawned, exited unexpectedly, respawned) as the same JSON lines on stderr."""
    handler = {"formatter": "json", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "exportgate._logs.JsonFormatter"}},
        "handlers": {"console": handler, "access": handler},
        "loggers": {
            "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "WARNING", "propagate": False},
        },
    }
