"""A change counter: a store bumps it after every committed write, and the gateway's authenticator reads
it on every request, so a suspension, revocation or KYC change made by another process takes effect on the
next request. With a path it is shared between the processes of one host (a memory-mapped 8-byte file,
~0.1 µs a read); without one it is this process's own, moved by :meth:`Revision.advance` (PostgreSQL: the
revision its notifications and polls report)."""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from pathlib import Path

__all__ = ["Revision"]

_FORMAT = struct.Struct("<Q")


class Revision:
    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        self._local = 0
        self._map: mmap.mmap | None = None
        if self.path is not None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_size < _FORMAT.size:
                    os.pwrite(fd, bytes(_FORMAT.size), 0)
                self._map = mmap.mmap(fd, _FORMAT.size)
            finally:
                os.close(fd)

    def current(self) -> int:
        return self._local if self._map is None else int(_FORMAT.unpack_from(self._map, 0)[0])

    def advance(self, value: int) -> None:
        """Move a process-local counter forward to ``value`` (never back)."""
        self._local = max(self._local, value)

    def bump(self) -> None:
        if self._map is None or self.path is None:
            self._local += 1
            return
        with self.path.open("rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _FORMAT.pack_into(self._map, 0, self.current() + 1)
            self._map.flush()

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
