"""The audit writer: one chain per writer, group commit on a dedicated thread.

Callers hand entries to a bounded queue; the writer thread takes everything
waiting (up to ``max_batch``), seals it into the chain, appends a signed
checkpoint when one is due, and commits the whole batch in one transaction.
While one batch commits the next accumulates, so many concurrent callers
share each commit (group commit).

``strict`` (default): ``append`` returns only after its batch is committed;
a failed commit raises :class:`StoreError` to every caller in the batch and
the chain is left exactly as before it (no gap).

``async``: ``append`` returns once the entry is queued; the thread commits at
least every ``flush_interval`` (100 ms). A crash loses at most what was
queued and not yet committed: the queue holds ``async_queue`` entries
(2,000), under 100 ms of work at the measured commit rate. When the store
fails, the failed batch is kept and retried, and every further ``append``
raises :class:`StoreError` until a retry succeeds (the gateway then denies).
Entries still unwritten at ``close()`` are saved to
``HOME/audit/unwritten-<writer>.jsonl`` and reported, never dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Literal, TypeAlias

from exportgate.errors import StoreError

from ._record import (
    CHECKPOINT_SCHEMA,
    GENESIS,
    AuditEntry,
    ChainRow,
    OutcomeBatch,
    canonical_json,
    chain_hash,
    checkpoint_message,
)
from ._signing import Signer
from ._store import AuditStore, store_label

__all__ = ["AuditWriter", "Mode"]

Mode = Literal["strict", "async"]
#: A queued entry and who waits for it: a thread (concurrent Future), a
#: coroutine (asyncio Future), or nobody (async mode).
_Waiter: TypeAlias = "Future[int] | asyncio.Future[int] | None"
_Record: TypeAlias = AuditEntry | OutcomeBatch
_Item: TypeAlias = tuple[_Record, _Waiter]
_STOP = object()


def _ends_wait(item: object) -> bool:
    """A close or a flush marker: commit what is there without waiting for more callers."""
    return item is _STOP or isinstance(item, Future)


class AuditWriter:
    def __init__(
        self,
        store: AuditStore,
        signer: Signer,
        *,
        mode: Mode = "strict",
        home: str | Path | None = None,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 10.0,
        max_batch: int = 4096,
        strict_queue: int = 20_000,
        async_queue: int = 2_000,
        flush_interval: float = 0.1,
        retry_interval: float = 0.5,
        writer_id: str | None = None,
        commit_window: float | None = None,
        window_after: int = 4,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if mode not in ("strict", "async"):
            raise ValueError(f"audit mode must be strict or async, not {mode!r}")
        self.store, self.signer, self.mode = store, signer, mode
        self.writer_id = writer_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.checkpoint_every = max(1, checkpoint_every)
        self.checkpoint_ns = int(checkpoint_seconds * 1e9)
        self.max_batch, self.flush_interval, self.retry_interval = max_batch, flush_interval, retry_interval
        self.audit_dir = Path(home).expanduser() / "audit" if home is not None else None
        self._clock = clock
        self._queue: queue.Queue[object] = queue.Queue(strict_queue if mode == "strict" else async_queue)
        self._seq, self._prev = 0, GENESIS
        self._unsigned, self._last_checkpoint_ns = 0, clock()
        self._retry: list[_Item] = []
        #: Group commit window: when the previous batch had at least ``window_after`` records (callers are
        #: arriving concurrently), wait up to ``commit_window`` seconds for about as many to share the next
        #: commit, and no longer once they are there. Fewer, larger commits cost far less CPU (each commit
        #: rewrites its pages to the WAL); a fixed sleep instead capped throughput at one batch per window.
        self.commit_window = commit_window if commit_window is not None else (0.002 if mode == "strict" else 0.02)
        self.window_after = window_after
        self._last_batch = 0
        #: Event-loop callers waiting for room in a full queue; woken once per batch taken.
        self._space_lock = threading.Lock()
        self._space_waiters: list[asyncio.Future[int]] = []
        #: Seconds a caller waiting for room looks again on its own (only matters if the writer has died).
        self.space_guard = 0.5
        self._error: StoreError | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"audit-{self.writer_id}", daemon=True)
        self.committed = 0

    # -- caller side -------------------------------------------------------

    def start(self) -> AuditWriter:
        self.store.register_writer(self.writer_id, socket.gethostname(), os.getpid(), self.signer.key_id, self._clock())
        self._thread.start()
        return self

    @property
    def error(self) -> StoreError | None:
        """The store failure that makes appends raise (async mode, until a retry succeeds)."""
        return self._error

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("audit writer is closed")
        if self._error is not None:
            raise StoreError(f"audit store unavailable: {self._error}")

    def append(self, entry: AuditEntry) -> int | None:
        """Record one entry. Strict: returns its sequence number once committed."""
        self._check_open()
        waiter: Future[int] | None = Future() if self.mode == "strict" else None
        self._queue.put((entry, waiter))  # blocks while full: backpressure
        return waiter.result() if waiter is not None else None

    async def append_async(self, entry: _Record, *, wait: bool | None = None) -> int | None:
        """As :meth:`append`, without blocking the event loop. The writer wakes
        each event loop once per committed batch, not once per entry.

        ``wait`` (default: strict mode) waits for the commit; ``wait=False``
        only queues the entry (outcome records, which gate nothing)."""
        self._check_open()
        waiter: asyncio.Future[int] | None = None
        if self.mode == "strict" if wait is None else wait:
            waiter = asyncio.get_running_loop().create_future()
        item = (entry, waiter)
        while not self._offer(item):
            # Backpressure: sleep until the writer takes a batch (no polling: 64 callers polling a full queue
            # every millisecond took the GIL from the writer they were waiting for). Register, then offer once
            # more, so a batch taken in between cannot leave us asleep; the timeout only guards a dead writer.
            space = asyncio.get_running_loop().create_future()
            with self._space_lock:
                self._space_waiters.append(space)
            if self._offer(item):
                break
            await asyncio.wait((space,), timeout=self.space_guard)
            self._check_open()
        return await waiter if waiter is not None else None

    def _offer(self, item: _Item) -> bool:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def flush(self) -> None:
        """Wait until everything queued so far is committed (or has failed)."""
        marker: Future[int] = Future()
        self._queue.put(marker)
        marker.result()

    def close(self) -> None:
        """Drain the queue, write a final checkpoint, stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        if self._retry:
            path = self._save_unwritten()
            raise StoreError(f"{len(self._retry)} audit records could not be written; saved to {path}")

    # -- writer thread -----------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, markers, stopping = self._take()
            self._last_batch = len(batch)
            if batch:
                self._commit(batch)
            elif self._unsigned and self._clock() - self._last_checkpoint_ns >= self.checkpoint_ns:
                self._commit([])
            for marker in markers:
                marker.set_result(0)
        if self._unsigned or self._seq:
            self._commit([], final=True)

    def _take(self) -> tuple[list[_Item], list[Future[int]], bool]:
        batch: list[_Item] = list(self._retry)
        markers: list[Future[int]] = []
        self._retry = []
        timeout = self.retry_interval if batch else self.flush_interval
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return batch, markers, False
        # Group commit: when the previous batch shows callers arriving concurrently, wait for about as many
        # as last time (never longer than the window) so they share this commit; a flush or close ends the wait.
        grouping = self._last_batch >= self.window_after and self.commit_window > 0
        want = self._last_batch if grouping and not _ends_wait(first) else 0
        deadline = time.monotonic() + self.commit_window
        pending = [first]
        while len(pending) + len(batch) < self.max_batch:
            try:
                if len(pending) + len(batch) < want:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                break
            pending.append(item)
            if _ends_wait(item):
                want = 0
        if self._space_waiters:  # after draining: a caller registering later finds room when it offers again
            with self._space_lock:
                waiting, self._space_waiters = self._space_waiters, []
            _settle_in_loops([(space, None) for space in waiting], None)
        stopping = False
        for item in pending:
            if item is _STOP:
                stopping = True
            elif isinstance(item, Future):
                markers.append(item)
            else:
                batch.append(item)  # type: ignore[arg-type]
        if stopping:  # drain what is left so nothing queued before close is lost
            while not self._queue.empty():
                rest = self._queue.get_nowait()
                if isinstance(rest, Future):
                    markers.append(rest)
                elif rest is not _STOP:
                    batch.append(rest)  # type: ignore[arg-type]
        return batch, markers, stopping

    def _commit(self, batch: list[_Item], *, final: bool = False) -> None:
        rows, seq, prev = [], self._seq, self._prev
        for entry, _ in batch:
            seq += 1
            body = entry.body(self.writer_id, seq)
            columns = (self.writer_id, entry.event, entry.time_ns, entry.request_id, entry.account, entry.model)
            signals = entry.signals()
            digest = chain_hash(prev, *columns, entry.decision, body, signals)
            rows.append(ChainRow(self.writer_id, seq, *columns[1:], entry.decision, prev, digest, body, signals))
            prev = digest
        unsigned = self._unsigned + len(batch)
        now = self._clock()
        due = unsigned >= self.checkpoint_every or (unsigned and now - self._last_checkpoint_ns >= self.checkpoint_ns)
        checkpoint = self._checkpoint(seq + 1, prev, now, final) if (due or final) else None
        if checkpoint is not None:
            rows.append(checkpoint)
        try:
            self.store.append_rows(rows)
        except StoreError as exc:
            self._failed(batch, exc)
            return
        except Exception as exc:  # a driver error the store did not translate: still never silent
            self._failed(batch, StoreError(f"audit store failed: {exc!r}"))
            return
        self._seq, self._prev = rows[-1].seq, rows[-1].hash
        self._unsigned = 0 if checkpoint is not None else unsigned
        if checkpoint is not None:
            self._last_checkpoint_ns = now
            self._write_head(checkpoint)
        self._error = None
        self.committed += len(batch)
        _settle(batch, [row.seq for row in rows[: len(batch)]], None)

    def _failed(self, batch: list[_Item], exc: StoreError) -> None:
        if self.mode == "strict":
            _settle(batch, None, exc)
            return
        self._error = exc
        self._retry = batch

    def _checkpoint(self, seq: int, head: str, now: int, final: bool) -> ChainRow:
        signature = self.signer.sign(checkpoint_message(self.writer_id, seq - 1, head, now, final))
        body = canonical_json(
            {
                "schema": CHECKPOINT_SCHEMA,
                "writer": self.writer_id,
                "seq": seq,
                "time_ns": now,
                "covers_seq": seq - 1,
                "head": head,
                "key_id": self.signer.key_id,
                "signature": signature,
                "final": final,
            }
        )
        digest = chain_hash(head, self.writer_id, "checkpoint", now, None, None, None, None, body)
        return ChainRow(self.writer_id, seq, "checkpoint", now, None, None, None, None, head, digest, body)

    def _write_head(self, checkpoint: ChainRow) -> None:
        """Remember the newest signed checkpoint outside the store: truncation behind it is then visible."""
        if self.audit_dir is None:
            return
        heads = self.audit_dir / "heads"
        try:
            heads.mkdir(parents=True, exist_ok=True)
            tmp = heads / f".{self.writer_id}.tmp"
            tmp.write_text(
                json.dumps(
                    {
                        "writer": checkpoint.writer,
                        "seq": checkpoint.seq,
                        "hash": checkpoint.hash,
                        "time_ns": checkpoint.time_ns,
                        "store": store_label(self.store.url),
                    }
                )
            )
            os.replace(tmp, heads / f"{self.writer_id}.json")
        except OSError:
            pass  # the store already holds the checkpoint; a missing head only weakens truncation detection

    def _save_unwritten(self) -> Path:
        directory = self.audit_dir or Path.cwd()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"unwritten-{self.writer_id}.jsonl"
        with path.open("a", encoding="utf-8") as handle:
            for entry, _ in self._retry:
                handle.write(entry.body(self.writer_id, 0) + "\n")
        return path


def _settle(batch: list[_Item], seqs: list[int] | None, error: StoreError | None) -> None:
    """Resolve every waiter of a batch: threads directly, event loops through :func:`_settle_in_loops`."""
    in_loops: list[tuple[asyncio.Future[int], int | None]] = []
    for index, (_, waiter) in enumerate(batch):
        seq = seqs[index] if seqs is not None else None
        if isinstance(waiter, Future):
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(seq or 0)
        elif waiter is not None:
            in_loops.append((waiter, seq))
    _settle_in_loops(in_loops, error)


def _settle_in_loops(waiters: list[tuple[asyncio.Future[int], int | None]], error: StoreError | None) -> None:
    """Resolve event-loop futures from the writer thread, with one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], int | None]]] = {}
    for waiter, seq in waiters:
        by_loop.setdefault(waiter.get_loop(), []).append((waiter, seq))
    for loop, group in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_settle_in_loop, group, error)


def _settle_in_loop(waiters: list[tuple[asyncio.Future[int], int | None]], error: StoreError | None) -> None:
    for waiter, seq in waiters:
        if waiter.done():  # the caller was cancelled (client went away)
            continue
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(seq or 0)
