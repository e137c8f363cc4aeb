"""Request ids: ``req_`` and 96 random bits as hex, from the kernel's CSPRNG, drawn in blocks.

``os.urandom`` per request was a system call per request, and a system call releases the GIL: under
load the audit writer thread took it at every request, so the request waited on the writer's Python
work as often as it arrived. One call now serves :data:`BLOCK` ids. A forked worker starts with an
empty block (``os.register_at_fork``), so no two processes hand out the same ids.
"""

from __future__ import annotations

import os

__all__ = ["BLOCK", "request_id"]

BLOCK = 1024
_WIDTH = 24  # hex digits: 12 random bytes

_hex = ""
_at = 0


def request_id() -> str:
    global _hex, _at  # noqa: PLW0603 - one pool per process, refilled in place
    if _at >= len(_hex):
        _hex, _at = os.urandom(BLOCK * _WIDTH // 2).hex(), 0
    start = _at
    _at += _WIDTH
    return "req_" + _hex[start:_at]


def _forget() -> None:
    global _hex, _at
    _hex, _at = "", 0


os.register_at_fork(after_in_child=_forget)
