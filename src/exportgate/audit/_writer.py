"""The audit writer: one chain per writer, group commit on a dedicated thread.

Callers encode their record (:meth:`AuditEntry.seal`, so a value that cannot be recorded fails that
request, in the caller) and hand it to a bounded queue; the writer thread takes everything waiting
(up to ``max_batch``), seals it into the chain, appends a signed checkpoint when one is due, and
commits the whole batch in one transaction. While one batch commits the next accumulates, so many
concurrent callers share each commit (group commit). A new writer's chain opens with a signed
checkpoint at sequence 1, so every writer that registered has a chain a verifier can find.

``strict`` (default): ``append`` returns only after its batch is committed;
a failed commit raises :class:`StoreError` to every caller in the batch and
the chain is left exactly as before it (no gap).

``async``: ``append`` returns once the entry is queued; the thread commits at
least every ``flush_interval`` (100 ms). A crash loses at most what was
queued and not yet committed: the queue holds ``async_queue`` entries
(2,000), under 100 ms of work at the measured commit rate.

When the store fails (either mode) the writer is *down* until it has written
again: records that gate a request (decisions) are refused at once with
:class:`StoreError` (the gateway answers 503 without waiting on the store),
:attr:`error` says so (``/readyz`` is not ready), and every
``retry_interval`` the thread retries what it kept (async records, outcome
records, which gate nothing) or, with nothing kept, probes the store with a
small real write. The first success ends the outage. What is kept is bounded
(``max_kept``); past that the oldest records are saved to
``HOME/audit/unwritten-<writer>.jsonl``, counted in :attr:`unwritten` and
logged, never dropped silently. A batch that fails while the store answers
probes holds a record the store refuses: its records are committed one at a
time and only the refused one fails.

If the thread itself ever stops (a bug), it logs why, every queued caller gets
:class:`StoreError`, and every later append raises at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Literal, TypeAlias

import orjson

from exportgate._files import private_dir, private_file
from exportgate.errors import StoreError
from exportgate.signing import Signer

from ._record import (
    CHECKPOINT_SCHEMA,
    GENESIS,
    AdminAction,
    AuditEntry,
    ChainRow,
    OutcomeBatch,
    SealedRecord,
    canonical_json,
    chain_hash,
    checkpoint_message,
)
from ._store import AuditStore

__all__ = ["AuditWriter", "Mode"]

log = logging.getLogger("exportgate.audit")

Mode = Literal["strict", "async"]
#: A queued record and who waits for it: a thread (concurrent Future), a
#: coroutine (asyncio Future), or nobody (async mode, outcome records).
_Waiter: TypeAlias = "Future[int] | asyncio.Future[int] | None"
_Record: TypeAlias = AuditEntry | OutcomeBatch | AdminAction
_Item: TypeAlias = tuple[SealedRecord, _Waiter]
_STOP = object()
#: Seconds a thread waiting for room in a full queue sleeps between looks.
SPACE_POLL = 0.0005


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
        max_kept: int = 100_000,
        writer_id: str | None = None,
        commit_window: float | None = None,
        window_after: int = 4,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if mode not in ("strict", "async"):
            raise ValueError(f"audit mode must be strict or async, not {mode!r}")
        self.store, self.signer, self.mode = store, signer, mode
        self.writer_id = writer_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._writer_json = orjson.dumps(self.writer_id).decode("utf-8")
        self.checkpoint_every = max(1, checkpoint_every)
        self.checkpoint_ns = int(checkpoint_seconds * 1e9)
        self.max_batch, self.flush_interval, self.retry_interval = max_batch, flush_interval, retry_interval
        self.max_kept = max_kept
        self.audit_dir = Path(home).expanduser() / "audit" if home is not None else None
        self._clock = clock
        #: A SimpleQueue (C; a put costs a fraction of a microsecond, where queue.Queue's lock and condition
        #: cost several per request) bounded by ``capacity`` here: producers offer only below it. The bound is
        #: soft by at most the number of threads offering at the same instant.
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.capacity = strict_queue if mode == "strict" else async_queue
        self._seq, self._prev = 0, GENESIS
        self._unsigned, self._last_checkpoint_ns = 0, clock()
        #: Records kept from failed commits (they gate nothing, or nobody waits for them), retried in order.
        self._kept: list[_Item] = []
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
        self._error: StoreError | None = None  # the store is down (set by a failed commit, cleared by a success)
        self._next_attempt = 0.0  # monotonic time of the next retry or probe while down
        self._dead: StoreError | None = None  # the writer thread has stopped
        self._in_hand: tuple[list[_Item], list[Future[int]]] = ([], [])
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"audit-{self.writer_id}", daemon=True)
        self.committed = 0
        #: Records that could not be committed and were saved to the unwritten file instead.
        self.unwritten = 0

    # -- caller side -------------------------------------------------------

    def start(self) -> AuditWriter:
        """Register the writer, commit its chain's opening checkpoint (seq 1), start the thread."""
        now = self._clock()
        self.store.register_writer(self.writer_id, socket.gethostname(), os.getpid(), self.signer.key_id, now)
        opening = self._checkpoint(1, GENESIS, now, final=False)
        self.store.append_rows([opening])
        self._seq, self._prev, self._last_checkpoint_ns = 1, opening.hash, now
        self._write_head(opening)
        self._thread.start()
        return self

    @property
    def error(self) -> StoreError | None:
        """Why records cannot be written now (the store is down, or the writer stopped), else None."""
        if self._dead is not None:
            return self._dead
        if self._thread.ident is not None and not self._thread.is_alive() and not self._closed:
            return StoreError("the audit writer thread is not running")
        return self._error

    def _check_open(self, gates: bool = True) -> None:
        if self._closed:
            raise StoreError("audit writer is closed")
        if self._dead is not None:
            raise self._dead
        if gates and self._error is not None:
            raise StoreError(f"audit store unavailable: {self._error}")

    def append(self, entry: _Record) -> int | None:
        """Record one entry. Strict: returns its sequence number once committed."""
        sealed = entry.seal()
        self._check_open(entry.gates)
        waiter: Future[int] | None = Future() if self.mode == "strict" else None
        self._put((sealed, waiter))  # waits while full: backpressure
        return waiter.result() if waiter is not None else None

    def append_all(self, entries: Sequence[_Record]) -> list[int | None]:
        """Record several entries, queued together so that strict mode commits them in as few groups as it
        can; each one's sequence number once committed (None when not strict)."""
        waiters: list[Future[int] | None] = []
        for entry in entries:
            sealed = entry.seal()
            self._check_open(entry.gates)
            waiter: Future[int] | None = Future() if self.mode == "strict" else None
            self._put((sealed, waiter))
            waiters.append(waiter)
        return [w.result() if w is not None else None for w in waiters]

    def check(self) -> None:
        """StoreError unless the store answers a write now (one probe row); what an action asks first."""
        self._check_open()
        if not self._store_answers():
            raise StoreError(f"the audit store {self.store.url if hasattr(self.store, 'url') else ''} does not answer")

    def keep(self, entry: _Record) -> None:
        """Queue a record nobody waits for: kept and retried while the store is down, saved to the
        unwritten file if this writer closes first (an action already done must not lose its record)."""
        sealed = entry.seal()
        self._check_open(gates=False)
        self._put((sealed, None))

    async def append_async(self, entry: _Record, *, wait: bool | None = None) -> int | None:
        """As :meth:`append`, without blocking the event loop. The writer wakes
        each event loop once per committed batch, not once per entry.

        ``wait`` (default: strict mode) waits for the commit; ``wait=False``
        only queues the entry (outcome records, which gate nothing)."""
        return await self.append_sealed(entry.seal(), gates=entry.gates, wait=wait)

    async def append_sealed(self, sealed: SealedRecord, *, gates: bool = True, wait: bool | None = None) -> int | None:
        """:meth:`append_async` for a record its caller has sealed (the gateway: ``seal_decision``)."""
        self._check_open(gates)
        waiter: asyncio.Future[int] | None = None
        if self.mode == "strict" if wait is None else wait:
            waiter = asyncio.get_running_loop().create_future()
        item = (sealed, waiter)
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
            self._check_open(gates)
        self._after_put()
        return await waiter if waiter is not None else None

    def _offer(self, item: object) -> bool:
        if self._queue.qsize() >= self.capacity:
            return False
        self._queue.put(item)
        return True

    def _put(self, item: object) -> None:
        """Queue from a thread, waiting while the queue is full (a writer that stops meanwhile raises).
        Threads that append (the CLI, the admin API, the monitor) are few: they look again every
        :data:`SPACE_POLL` seconds rather than being woken."""
        while not self._offer(item):
            self._check_open(gates=False)
            time.sleep(SPACE_POLL)
        self._after_put()

    def _after_put(self) -> None:
        """A record queued just as the thread stopped would wait forever: answer it here instead."""
        if self._dead is not None:
            self._abandon(self._dead)

    def flush(self) -> None:
        """Wait until everything queued so far is committed (or has failed, or is kept for a retry)."""
        self._check_open(gates=False)
        marker: Future[int] = Future()
        self._put(marker)
        marker.result()

    def close(self) -> None:
        """Drain the queue, write a final checkpoint, stop the thread."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        if self._kept:
            count = len(self._kept)
            path = self._save_unwritten(self._kept)
            self._kept = []
            raise StoreError(f"{count} audit records could not be written; saved to {path}")

    # -- writer thread -----------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a bug, never a store failure (those are handled): stop loudly
            self._dead = StoreError(f"the audit writer stopped: {exc!r}")
            log.critical("audit writer %s stopped; every request now fails", self.writer_id, exc_info=exc)
            self._abandon(self._dead)

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            batch, markers, stopping = self._take()
            self._last_batch = len(batch)
            self._in_hand = (batch, markers)  # what the thread holds: answered by _abandon if it stops
            if batch:
                self._commit(batch)
            elif self._error is not None:
                self._probe()
            elif self._unsigned and self._clock() - self._last_checkpoint_ns >= self.checkpoint_ns:
                self._commit([])
            for marker in markers:
                marker.set_result(0)
            self._in_hand = ([], [])
        if self._error is None:  # close the chain with a final checkpoint (also with nothing new to sign)
            self._commit([], final=True)

    def _take(self) -> tuple[list[_Item], list[Future[int]], bool]:
        """The next batch: records kept from a failed commit first, then what callers queued."""
        batch, self._kept = self._kept, []
        if self._error is not None:
            return self._wait_out(batch)
        try:
            first = self._queue.get(timeout=self.flush_interval)
        except queue.Empty:
            return batch, [], False
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
        self._wake_space_waiters()
        return self._sort(pending, batch)

    def _wait_out(self, batch: list[_Item]) -> tuple[list[_Item], list[Future[int]], bool]:
        """The store is down: collect what arrives until the next attempt is due (or a close)."""
        pending: list[object] = []
        while (left := self._next_attempt - time.monotonic()) > 0 and len(batch) + len(pending) < self.max_batch:
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                break
            pending.append(item)
            if item is _STOP:
                break
        self._wake_space_waiters()
        return self._sort(pending, batch)

    def _sort(self, pending: list[object], batch: list[_Item]) -> tuple[list[_Item], list[Future[int]], bool]:
        """Split what was taken into records, flush markers and a stop; on stop, drain the queue too."""
        markers: list[Future[int]] = []
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

    def _wake_space_waiters(self) -> None:
        if self._space_waiters:  # after draining: a caller registering later finds room when it offers again
            with self._space_lock:
                waiting, self._space_waiters = self._space_waiters, []
            _settle_in_loops([(space, None) for space in waiting], None)

    def _commit(self, batch: list[_Item], *, final: bool = False) -> bool:
        rows, seq, prev = [], self._seq, self._prev
        writer, writer_json = self.writer_id, self._writer_json
        for sealed, _ in batch:
            seq += 1
            body = sealed.body(seq, writer_json)
            digest = chain_hash(prev, writer, sealed.event, sealed.time_ns, sealed.request_id, sealed.account,
                                sealed.model, sealed.decision, body, sealed.signals)  # fmt: skip
            rows.append(ChainRow(writer, seq, sealed.event, sealed.time_ns, sealed.request_id, sealed.account,
                                 sealed.model, sealed.decision, prev, digest, body, sealed.signals))  # fmt: skip
            prev = digest
        unsigned = self._unsigned + len(batch)
        now = self._clock()
        due = unsigned >= self.checkpoint_every or (unsigned and now - self._last_checkpoint_ns >= self.checkpoint_ns)
        checkpoint = self._checkpoint(seq + 1, prev, now, final) if (due or final) else None
        if checkpoint is not None:
            rows.append(checkpoint)
        try:
            self.store.append_rows(rows)
        except Exception as exc:  # a driver error the store did not translate is still never silent
            self._failed(batch, exc if isinstance(exc, StoreError) else StoreError(f"audit store failed: {exc!r}"))
            return False
        self._seq, self._prev = rows[-1].seq, rows[-1].hash
        self._unsigned = 0 if checkpoint is not None else unsigned
        if checkpoint is not None:
            self._last_checkpoint_ns = now
            self._write_head(checkpoint)
        self._recovered()
        self.committed += len(batch)
        _settle(batch, [row.seq for row in rows[: len(batch)]], None)
        return True

    def _failed(self, batch: list[_Item], exc: StoreError) -> None:
        if batch and self._store_answers():  # the store takes writes: something in this batch does not
            if len(batch) == 1:
                self._refuse(batch[0], exc)
                return
            log.error("audit store refused a batch of %d while writable (%s); writing it record by record",
                      len(batch), exc)  # fmt: skip
            for item in batch:
                self._commit([item])
            return
        if self._error is None:
            log.error("audit store unavailable; records that gate requests are refused until it is back: %s", exc)
        self._error = exc
        self._next_attempt = time.monotonic() + self.retry_interval
        answered = self.mode == "strict"  # strict callers get the error now; the rest is kept for a retry
        _settle([item for item in batch if answered and item[1] is not None], None, exc)
        self._keep([item for item in batch if not (answered and item[1] is not None)])

    def _refuse(self, item: _Item, exc: StoreError) -> None:
        """One record the store refuses while it takes others: that request fails; the writer goes on."""
        log.error("audit store refused record %s: %s", item[0].request_id or item[0].event, exc)
        if item[1] is None or self.mode == "async":
            self.unwritten += 1
            self._save_unwritten([item])
        _settle([item], None, StoreError(f"the audit store refused this record: {exc}"))

    def _keep(self, items: list[_Item]) -> None:
        self._kept = items + self._kept
        if len(self._kept) > self.max_kept:
            spill, self._kept = self._kept[: -self.max_kept], self._kept[-self.max_kept :]
            self.unwritten += len(spill)
            path = self._save_unwritten(spill)
            log.error("audit store down: %d records past the %d kept were saved to %s", len(spill), self.max_kept, path)

    def _store_answers(self) -> bool:
        try:
            self.store.probe(self.writer_id, self._clock())
        except Exception:
            return False
        return True

    def _probe(self) -> None:
        if self._store_answers():
            self._recovered()
        else:
            self._next_attempt = time.monotonic() + self.retry_interval

    def _recovered(self) -> None:
        if self._error is not None:
            log.warning("audit store available again after: %s", self._error)
            self._error = None

    def _abandon(self, error: StoreError) -> None:
        """The thread has stopped: answer every waiting caller, save every record nobody waits for."""
        held, markers = self._in_hand
        self._in_hand = ([], [])
        items, self._kept = [*held, *self._kept], []
        for marker in markers:
            if not marker.done():
                marker.set_exception(error)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Future):
                item.set_exception(error)
            elif item is not _STOP:
                items.append(item)  # type: ignore[arg-type]
        unattended = [item for item in items if item[1] is None]
        if unattended:
            self.unwritten += len(unattended)
            self._save_unwritten(unattended)
        _settle([item for item in items if item[1] is not None], None, error)
        self._wake_space_waiters()

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
        """Remember the newest signed checkpoint outside the store: truncation behind it is then visible.
        The store is named by the id written into it when it was created, not by its URL."""
        if self.audit_dir is None:
            return
        heads = self.audit_dir / "heads"
        try:
            private_dir(heads)
            tmp = heads / f".{self.writer_id}.tmp"
            record = {
                "writer": checkpoint.writer,
                "seq": checkpoint.seq,
                "hash": checkpoint.hash,
                "time_ns": checkpoint.time_ns,
                "store_id": self.store.store_id,
            }
            with private_file(tmp, "w") as handle:
                handle.write(json.dumps(record))
            os.replace(tmp, heads / f"{self.writer_id}.json")
        except OSError:
            pass  # the store already holds the checkpoint; a missing head only weakens truncation detection

    def _save_unwritten(self, items: list[_Item]) -> Path:
        directory = self.audit_dir or Path.cwd()
        path = directory / f"unwritten-{self.writer_id}.jsonl"
        try:
            if self.audit_dir is not None:
                private_dir(self.audit_dir)
            with private_file(path, "a") as handle:
                for sealed, _ in items:
                    handle.write(sealed.body(0, self._writer_json) + "\n")
        except OSError as exc:
            log.critical("cannot save %d unwritten audit records to %s: %s", len(items), path, exc)
        return path


def _settle(batch: list[_Item], seqs: list[int] | None, error: StoreError | None) -> None:
    """Resolve every waiter of a batch: threads directly, event loops through :func:`_settle_in_loops`."""
    in_loops: list[tuple[asyncio.Future[int], int | None]] = []
    for index, (_, waiter) in enumerate(batch):
        seq = seqs[index] if seqs is not None else None
        if isinstance(waiter, Future):
            if waiter.done():
                continue
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
