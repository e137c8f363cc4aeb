"""The directive a gateway enforces, reloaded on change, never replaced by a bad one or a half-written one.

The file is checked every ``interval`` seconds (mtime, size, inode) and on
SIGHUP (granian answers SIGHUP by gracefully respawning its workers, and a
new worker loads the file afresh). A changed file is taken only once it is
complete and holds still: no process has it open for writing (asked of the
kernel with a read lease, ``F_SETLEASE``, which is refused while any process
holds a writable descriptor; where leases are not allowed, only the next two
conditions apply), the same bytes and the same mtime, size and inode at two
looks at least ``settle`` seconds apart, and a modification time ``settle``
seconds in the past. A file written in place is therefore not read mid-write
(a prefix of a directive can be valid YAML with fewer rules); publishing by
rename (write ``F.tmp``, then ``mv F.tmp F``) is atomic and is what
docs/gateway.md recommends. A new directive that does not validate is refused whole: the last
good one stays in force, the error is logged and shown on ``/readyz``.

Every directive that took effect is copied to ``HOME/directive.last-good.yaml``
with the path it came from (``directive.last-good.json``), so a worker that
starts while that same file is broken or missing enforces the last good
directive instead of failing open or down. A last good copy of another file
is never used: ``--directive typo.yaml`` is an error, not someone else's rules.

**Published directives.** Given the state's :class:`~exportgate.state.DirectiveStore`, a gateway enforces
the newest published version whenever one exists (``exportgate directive publish``), and the file only
until the first publication. :meth:`DirectiveHolder.refresh` takes a newer version: on PostgreSQL the
change notification calls it at once, on SQLite the watch loop does. A published version that this
gateway cannot parse is refused like a bad file (the one in force stays). The directive is swapped whole,
one reference: a request reads it once and is decided and recorded against that one object, so no request
is ever decided on a mix of two versions.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from exportgate._files import private_dir, private_file
from exportgate.errors import DirectiveError
from exportgate.policy import Directive, parse_directive
from exportgate.state import DirectiveStore

__all__ = ["DirectiveHolder", "Reload"]

log = logging.getLogger("exportgate.gateway")
LAST_GOOD = "directive.last-good.yaml"
LAST_GOOD_SOURCE = "directive.last-good.json"
#: What a look at a changed file did: took a new directive, refused an invalid one, or waits for the file
#: to hold still.
Reload = Literal["ok", "refused", "waiting"]


@dataclass(frozen=True)
class _Stamp:
    mtime_ns: int
    size: int
    inode: int


def _being_written(path: Path) -> bool:
    """Whether some process holds ``path`` open for writing: a read lease is refused (EAGAIN) exactly then.
    Where leases are not permitted (another owner without CAP_LEASE, a network filesystem) this cannot be
    known, and False lets the other stability checks decide."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EBUSY)
    finally:
        os.close(fd)
    return False


def _stamp(path: Path) -> _Stamp | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return _Stamp(info.st_mtime_ns, info.st_size, info.st_ino)


class DirectiveHolder:
    def __init__(
        self,
        path: str | Path,
        home: str | Path,
        *,
        settle: float = 0.5,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        published: DirectiveStore | None = None,
    ) -> None:
        self.published, self.published_version = published, 0
        self._refresh_lock = threading.Lock()
        self.path = Path(path).expanduser().resolve()
        home = Path(home).expanduser()
        self.last_good_path = home / LAST_GOOD
        self._source_path = home / LAST_GOOD_SOURCE
        self.settle, self._clock, self._sleep = settle, clock, sleep
        self.error: str | None = None
        self._pending: tuple[_Stamp | None, bytes | None] | None = None  # a change seen, not yet taken
        self._stamp: _Stamp | None = None
        if published is not None and self.refresh() is not None:
            return
        try:
            self.current = self._first()
        except DirectiveError as exc:
            fallback = self._read_last_good()
            if fallback is None:
                raise
            self.current, self.error = fallback, str(exc)
            log.error("directive %s cannot be used, enforcing its last good copy (%s %s): %s",
                      self.path, fallback.id, fallback.version, exc)  # fmt: skip
        else:
            self._save_last_good()

    def _first(self) -> Directive:
        """At start: the file once it holds still (waiting up to ten settle periods), parsed."""
        for _ in range(10):
            stamp, data = self._look()
            if stamp is not None and data is not None and self._settled(stamp):
                again = self._look()
                if again == (stamp, data):
                    self._stamp = stamp
                    return self._parse(data)
            self._sleep(self.settle)
        raise DirectiveError("the directive file keeps changing; publish it by rename", file=str(self.path))

    def _look(self) -> tuple[_Stamp | None, bytes | None]:
        stamp = _stamp(self.path)
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise DirectiveError(f"cannot read directive: {exc.strerror or exc}", file=str(self.path)) from None
        return (stamp, data) if _stamp(self.path) == stamp else (None, None)  # changed while read: look again

    def _settled(self, stamp: _Stamp) -> bool:
        return self._clock() - stamp.mtime_ns / 1e9 >= self.settle and not _being_written(self.path)

    def _parse(self, data: bytes) -> Directive:
        directive = parse_directive(data, source=str(self.path))
        self._data = data
        return directive

    def _read_last_good(self) -> Directive | None:
        """The last good copy, only if it came from this same file."""
        try:
            source = json.loads(self._source_path.read_text("utf-8")).get("source")
            if source != str(self.path):
                return None
            return parse_directive(self.last_good_path.read_bytes(), source=str(self.last_good_path))
        except (OSError, ValueError, AttributeError, DirectiveError):
            return None

    def _save_last_good(self) -> None:
        try:
            private_dir(self.last_good_path.parent)
            for target, content in ((self.last_good_path, self._data),
                                    (self._source_path, json.dumps({"source": str(self.path)}).encode())):  # fmt: skip
                tmp = target.with_suffix(f".{os.getpid()}.tmp")
                with private_file(tmp, "wb") as handle:
                    handle.write(content)
                os.replace(tmp, target)
        except OSError as exc:
            log.warning("cannot keep a copy of the last good directive at %s: %s", self.last_good_path, exc)

    @property
    def source(self) -> str:
        """Where the directive in force came from: ``published vN``, or the file's path."""
        return f"published v{self.published_version}" if self.published_version else str(self.path)

    def refresh(self) -> Reload | None:
        """Take the newest published version if it is not the one in force (None: nothing newer). Its
        StoreError propagates: the caller retries, the directive in force stays."""
        if self.published is None:
            return None
        with self._refresh_lock:
            if self.published.latest_version() == self.published_version:
                return None
            active = self.published.active()
            if active is None or active.content is None:
                return None
            self.published_version = active.version
            try:
                directive = parse_directive(active.content.encode("utf-8"), source=f"published v{active.version}")
            except DirectiveError as exc:
                self.error = f"published v{active.version}: {exc}"
                log.error("published directive v%d refused, keeping the one in force: %s", active.version, exc)
                if not hasattr(self, "current"):
                    raise
                return "refused"
            previous = getattr(self, "current", None)
            self.current, self.error = directive, None
        log.info("directive in force: published v%d, %s %s (sha256 %s)%s", active.version, directive.id,
                 directive.version, directive.sha256[:12], "" if previous is None else
                 f", was {previous.id} {previous.version}")  # fmt: skip
        return "ok"

    def changed(self) -> bool:
        if self.published_version:
            return False  # the published version is in force; the file no longer matters
        return _stamp(self.path) != self._stamp

    def reload(self) -> Reload:
        """Look at a changed file: take it once it has held still since the last look, else wait."""
        try:
            stamp, data = self._look()
        except DirectiveError as exc:
            return self._refuse(exc)
        if stamp is None or data is None or not self._settled(stamp) or self._pending != (stamp, data):
            self._pending = (stamp, data)
            return "waiting"
        self._pending = None
        self._stamp = stamp
        try:
            directive = self._parse(data)
        except DirectiveError as exc:
            return self._refuse(exc)
        previous, self.current, self.error = self.current, directive, None
        self._save_last_good()
        log.info("directive reloaded: %s %s -> %s %s (sha256 %s)", previous.id, previous.version, directive.id,
                 directive.version, directive.sha256[:12])  # fmt: skip
        return "ok"

    def _refuse(self, exc: DirectiveError) -> Reload:
        self._stamp, self._pending = _stamp(self.path), None
        self.error = str(exc)
        log.error("directive reload refused, keeping %s %s: %s", self.current.id, self.current.version, exc)
        return "refused"
