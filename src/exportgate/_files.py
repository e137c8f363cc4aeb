"""Files and directories that hold personal data or keys: owner-only from the moment they exist.

A home holds citizenships and KYC levels (the account store), the audit record, signing keys and raw
transcripts, so the home and its subdirectories are 0700 and every file in them 0600, whatever the
umask. Files are *created* with that mode (never created open and tightened later), and files and
directories from older versions are tightened when exportgate opens them.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from pathlib import Path
from typing import IO, Any, Literal

from exportgate.errors import ConfigError

__all__ = ["output_path", "private_dir", "private_file", "private_sqlite", "read_input", "sqlite_connect"]

_Isolation = Literal["DEFERRED", "EXCLUSIVE", "IMMEDIATE"] | None
_WRITE_FLAGS = {
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
}


#: The most a command reads of a file it is given (objectives, maps, calibrations, labels, bundles).
MAX_INPUT_BYTES = 1 << 30


def read_input(path: str | Path, what: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a regular file given as input, at most ``limit``: a FIFO, a device or a directory is
    refused (reading one could block forever or never end), in one :class:`ConfigError`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"cannot read {what} {path}: not a regular file")
        if info.st_size > limit:
            raise ConfigError(f"{what} {path} is larger than {limit >> 20} MiB")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ConfigError(f"{what} {path} is larger than {limit >> 20} MiB")
    return data


def output_path(path: str | Path, what: str) -> Path:
    """``path`` checked as a place to write a file: its directory exists, and it is not something other
    than a regular file (writing over a device, a FIFO or a directory, as root, replaces it)."""
    target = Path(path)
    if not target.name or not target.parent.is_dir():
        raise ConfigError(f"cannot write {what} {path}: no such directory {target.parent}")
    if target.exists() and not target.is_file():
        raise ConfigError(f"cannot write {what} {path}: it exists and is not a regular file")
    return target


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700 directories; an existing one is tightened to 0700
    when this user owns it."""
    missing = []
    for parent in (path, *path.parents):
        if parent.exists():
            break
        missing.append(parent)
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made by another process in between
            directory.mkdir(mode=0o700)
    if not missing and path.is_dir() and _ours_to_tighten(path):
        path.chmod(0o700)
    return path


def _ours_to_tighten(path: Path) -> bool:
    """An existing directory is tightened only when this user owns it, it is open to others, and it is
    not a shared system directory: never a sticky one (/tmp) nor the root or a directory right below it
    (/dev, /srv), which a command run as root could otherwise close to everyone else."""
    info = path.stat()
    resolved = path.resolve()
    shared = bool(info.st_mode & stat.S_ISVTX) or resolved.parent == resolved or resolved.parent == Path("/")
    return info.st_uid == os.getuid() and bool(info.st_mode & 0o077) and not shared


def private_file(path: Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None) -> IO[Any]:
    """Open ``path`` for writing (``w``, ``a``, ``x``; add ``b`` for bytes) as a 0600 file."""
    binary = "b" in mode
    fd = _open_regular(path, _WRITE_FLAGS[mode.replace("b", "")])
    try:
        os.fchmod(fd, 0o600)  # a file from before: tighten it too
        if binary:
            return os.fdopen(fd, mode)
        return os.fdopen(fd, mode, encoding=encoding, newline=newline)
    except BaseException:
        os.close(fd)
        raise


def _open_regular(path: Path, flags: int) -> int:
    """Open (or create, 0600) ``path``, a regular file only: tightening a device or a FIFO given as a place
    to write (``--record /dev/null``, as root) would close it to everyone else, and a FIFO would block."""
    fd = os.open(path, flags | os.O_NONBLOCK, 0o600)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"cannot write {path}: it exists and is not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_sqlite(path: Path, *, own_directory: bool = True) -> Path:
    """Make an SQLite database file 0600 before SQLite opens it (SQLite gives its -wal and -shm files the
    database file's mode), in a 0700 directory; an existing database and its companions are tightened.

    ``own_directory=False`` for a database in a directory the user chose (an evaluation checkpoint beside
    its ``--out``): that directory is left as it is, never tightened (it may be /tmp or /dev)."""
    if own_directory:
        private_dir(path.parent)
    fd = _open_regular(path, os.O_RDWR | os.O_CREAT)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.chmod(0o600)
    return path


def sqlite_connect(
    path: Path, *, read_only: bool = False, isolation_level: _Isolation = None, check_same_thread: bool = True
) -> sqlite3.Connection:
    """Connect to an SQLite database (autocommit unless ``isolation_level`` says otherwise): for writing,
    created owner-only when missing (:func:`private_sqlite`); read-only, never created (``FileNotFoundError``
    when missing) and opened with SQLite's ``mode=ro``. ``:memory:`` is an in-memory database either way."""
    target, uri = str(path), False
    if target != ":memory:" and not read_only:
        private_sqlite(path)
    elif target != ":memory:":
        if not path.is_file():
            raise FileNotFoundError(path)
        target, uri = path.resolve().as_uri() + "?mode=ro", True
    return sqlite3.connect(target, uri=uri, isolation_level=isolation_level, check_same_thread=check_same_thread)
