"""The directive a gateway enforces, reloaded on change, never replaced by a bad one.

The file is checked every ``interval`` seconds (mtime, size, inode) and on
SIGHUP (granian answers SIGHUP by gracefully respawning its workers, and a
new worker loads the file afresh). A new directive that does not validate is
refused whole: the last good one stays in force, the error is logged and
shown on ``/readyz``. Every good directive is also copied to
``HOME/directive.last-good.yaml``, so a worker that starts while the file is
broken enforces the last good directive instead of failing open or down.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from exportgate.errors import DirectiveError
from exportgate.policy import Directive, parse_directive

__all__ = ["DirectiveHolder"]

log = logging.getLogger("exportgate.gateway")
LAST_GOOD = "directive.last-good.yaml"


@dataclass(frozen=True)
class _Stamp:
    mtime_ns: int
    size: int
    inode: int


def _stamp(path: Path) -> _Stamp | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return _Stamp(info.st_mtime_ns, info.st_size, info.st_ino)


class DirectiveHolder:
    def __init__(self, path: str | Path, home: str | Path) -> None:
        self.path = Path(path)
        self.last_good_path = Path(home).expanduser() / LAST_GOOD
        self.error: str | None = None
        self._stamp = _stamp(self.path)
        try:
            self.current = self._read()
        except DirectiveError as exc:
            fallback = self._read_last_good()
            if fallback is None:
                raise
            self.current, self.error = fallback, str(exc)
            log.error(
                "directive %s is invalid, enforcing the last good one (%s %s): %s",
                self.path,
                fallback.id,
                fallback.version,
                exc,
            )
        else:
            self._save_last_good()

    def _read(self) -> Directive:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise DirectiveError(f"cannot read directive: {exc.strerror or exc}", file=str(self.path)) from None
        directive = parse_directive(data, source=str(self.path))
        self._data = data
        return directive

    def _read_last_good(self) -> Directive | None:
        try:
            return parse_directive(self.last_good_path.read_bytes(), source=str(self.last_good_path))
        except (OSError, DirectiveError):
            return None

    def _save_last_good(self) -> None:
        try:
            self.last_good_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.last_good_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(self._data)
            os.replace(tmp, self.last_good_path)
        except OSError as exc:
            log.warning("cannot keep a copy of the last good directive at %s: %s", self.last_good_path, exc)

    def changed(self) -> bool:
        return _stamp(self.path) != self._stamp

    def reload(self) -> bool:
        """Load the file again; True when a new directive took effect."""
        self._stamp = _stamp(self.path)
        try:
            directive = self._read()
        except DirectiveError as exc:
            self.error = str(exc)
            log.error("directive reload refused, keeping %s %s: %s", self.current.id, self.current.version, exc)
            return False
        previous, self.current, self.error = self.current, directive, None
        self._save_last_good()
        log.info(
            "directive reloaded: %s %s -> %s %s (sha256 %s)",
            previous.id,
            previous.version,
            directive.id,
            directive.version,
            directive.sha256[:12],
        )
        return True
