"""The writer: strict and async modes, checkpoints, failure without loss or gaps."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from exportgate.audit import (
    AuditStore,
    AuditWriter,
    ChainRow,
    canonical_json,
    chain_hash,
    entry_for,
    open_store,
    verify_store,
)
from exportgate.errors import StoreError
from exportgate.policy import decide
from exportgate.signing import home_signer, trusted_keys
from tests.audit.conftest import entry, write_records
from tests.conftest import at, us_citizen


def wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def rows_of(url: str, home: Path) -> list[ChainRow]:
    store = open_store(url, home)
    try:
        return list(store.chain_rows())
    finally:
        store.close()


def test_canonical_json_is_sorted_compact_utf8_and_exact():
    text = canonical_json({"b": 1, "a": "ü", "t": 1795357989277508760, "f": 1.5, "n": None})
    assert text == '{"a":"ü","b":1,"f":1.5,"n":null,"t":1795357989277508760}'


def test_entry_for_a_decision(directive):
    subject = us_citizen(name="ada", key_id="k1", source="api_key", organization="Acme, Inc.")
    decision = decide(subject, at("CN", ip="114.114.114.114"), "FABLE5", directive)
    made = entry_for(
        decision,
        subject,
        at("CN", ip="114.114.114.114"),
        request_id="r1",
        time_ns=7,
        directive_sha256=directive.sha256,
        http_status=451,
    )
    body = json.loads(made.body("w1", 3))
    assert body["schema"] == "exportgate.audit/v1" and (body["writer"], body["seq"]) == ("w1", 3)
    assert (body["account"], body["key_id"], body["requested_model"], body["model"]) == (
        "ada",
        "k1",
        "FABLE5",
        "fable-5",
    )
    assert body["reasons"] == [{"code": "location_not_allowed", "rule": "allow_location", "value": "CN"}]
    assert body["subject"]["us_person"] is True and body["directive_sha256"] == directive.sha256
    assert body["subject"]["organization"] == "Acme, Inc." and "name" not in body["subject"]
    assert body["http_status"] == 451 and body["decision"] == "deny" and body["client_ip"] == "114.114.114.114"


def test_strict_chain_is_contiguous_with_checkpoints(store_url, audit_home):
    write_records(store_url, audit_home, 12, checkpoint_every=5)
    rows = rows_of(store_url, audit_home)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert [r.kind for r in rows].count("checkpoint") == 4  # opening (seq 1), after 5, after 10, final
    assert rows[0].kind == "checkpoint" and json.loads(rows[0].body)["covers_seq"] == 0
    assert rows[0].prev == "0" * 64
    for before, after in itertools.pairwise(rows):
        assert after.prev == before.hash
    for row in rows:
        assert row.hash == chain_hash(
            row.prev, row.writer, row.kind, row.time_ns, row.request_id, row.account, row.model, row.decision, row.body,
            row.signals,
        )  # fmt: skip
        assert (row.signals is None) == (row.kind == "checkpoint")  # every decision row carries its signals
    assert json.loads(rows[-1].body)["final"] is True


def test_time_based_checkpoint(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    writer = write_records(url, tmp_path, 3, checkpoint_every=1000, checkpoint_seconds=0.05, close=False)
    time.sleep(0.4)
    kinds = [r.kind for r in rows_of(url, tmp_path)]
    writer.close()
    writer.store.close()
    assert kinds[:5] == ["checkpoint"] + ["decision"] * 3 + ["checkpoint"]


def test_many_writers_each_keep_their_own_chain(store_url, audit_home):
    writers = [write_records(store_url, audit_home, 0, close=False) for _ in range(3)]
    for i in range(30):
        writers[i % 3].append(entry(i))
    for w in writers:
        w.close()
        w.store.close()
    store = open_store(store_url, audit_home)
    report = verify_store(store, trusted_keys(audit_home))
    store.close()
    assert (
        report.ok and len(report.chains) == 3 and {c.last_seq for c in report.chains} == {14}
    )  # an opening checkpoint, 10 records, 2 checkpoints, final


def test_async_mode_flushes_and_verifies(store_url, audit_home):
    writer = write_records(store_url, audit_home, 0, close=False, mode="async")

    async def produce() -> None:
        for i in range(200):
            assert await writer.append_async(entry(i)) is None

    asyncio.run(produce())
    writer.flush()
    assert writer.committed == 200
    writer.close()
    store = open_store(store_url, audit_home)
    report = verify_store(store, trusted_keys(audit_home))
    assert report.ok and store.count() >= 200
    store.close()


def test_strict_async_callers_get_their_sequence_numbers(store_url, audit_home):
    writer = write_records(store_url, audit_home, 0, close=False, checkpoint_every=1000)

    async def produce() -> list[int | None]:
        return list(await asyncio.gather(*(writer.append_async(entry(i)) for i in range(100))))

    seqs = asyncio.run(produce())
    writer.close()
    writer.store.close()
    assert sorted(s for s in seqs if s is not None) == list(range(2, 102))  # 1 is the opening checkpoint


class FlakyStore(AuditStore):
    """Wraps a real store; every write (``append_rows``, ``probe``) fails while ``down`` is set."""

    def __init__(self, inner: AuditStore) -> None:
        self.inner, self.url, self.down = inner, inner.url, False
        self.store_id, self.opening_checkpoints_since_ns = inner.store_id, inner.opening_checkpoints_since_ns

    def append_rows(self, rows: Sequence[ChainRow]) -> None:
        if self.down:
            raise StoreError("disk on fire")
        self.inner.append_rows(rows)

    def probe(self, writer: str, time_ns: int) -> None:
        if self.down:
            raise StoreError("disk on fire")
        self.inner.probe(writer, time_ns)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    register_writer = property(lambda self: self.inner.register_writer)  # type: ignore[assignment]
    writers = property(lambda self: self.inner.writers)  # type: ignore[assignment]
    chain_rows = property(lambda self: self.inner.chain_rows)  # type: ignore[assignment]
    get_row = property(lambda self: self.inner.get_row)  # type: ignore[assignment]
    query = property(lambda self: self.inner.query)  # type: ignore[assignment]
    prune = property(lambda self: self.inner.prune)  # type: ignore[assignment]
    checkpoints_before = property(lambda self: self.inner.checkpoints_before)  # type: ignore[assignment]
    count = property(lambda self: self.inner.count)  # type: ignore[assignment]
    schema_version = property(lambda self: self.inner.schema_version)  # type: ignore[assignment]
    close = property(lambda self: self.inner.close)  # type: ignore[assignment]


def flaky_writer(url: str, home: Path, **kw) -> tuple[FlakyStore, AuditWriter]:
    store = FlakyStore(open_store(url, home))
    return store, AuditWriter(store, home_signer(home), home=home, **kw).start()


def test_strict_failure_raises_and_leaves_no_gap(store_url, audit_home):
    store, writer = flaky_writer(store_url, audit_home, checkpoint_every=1000, retry_interval=0.05)
    assert writer.append(entry(1)) == 2
    store.down = True
    with pytest.raises(StoreError, match="disk on fire"):
        writer.append(entry(2))
    store.down = False
    assert wait_until(lambda: writer.error is None)  # the writer's probe finds the store back
    assert writer.append(entry(3)) == 3  # the failed record took no sequence number
    writer.close()
    report = verify_store(store.inner, trusted_keys(audit_home))
    assert report.ok and [r.request_id for r in store.inner.chain_rows() if r.kind == "decision"] == ["req-1", "req-3"]
    store.inner.close()


def test_async_failure_refuses_further_appends_then_recovers(store_url, audit_home):
    store, writer = flaky_writer(store_url, audit_home, mode="async", retry_interval=0.02)
    writer.append(entry(1))
    writer.flush()
    store.down = True
    writer.append(entry(2))
    deadline = time.monotonic() + 5
    while writer._error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(StoreError, match="audit store unavailable"):
        writer.append(entry(3))
    store.down = False
    while writer._error is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.append(entry(4))
    writer.close()
    ids = [r.request_id for r in store.inner.chain_rows() if r.kind == "decision"]
    assert ids == ["req-1", "req-2", "req-4"]  # the record in flight when the store failed was kept and retried
    store.inner.close()


def test_async_close_with_the_store_down_saves_what_it_could_not_write(tmp_path: Path):
    store, writer = flaky_writer(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, mode="async", retry_interval=0.01)
    store.down = True
    writer.append(entry(1))
    writer.append(entry(2))
    with pytest.raises(StoreError, match=r"2 audit records could not be written; saved to .*unwritten-"):
        writer.close()
    saved = next(iter((tmp_path / "audit").glob("unwritten-*.jsonl"))).read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in saved] == ["req-1", "req-2"]
    store.inner.close()


def test_closed_writer_refuses(tmp_path: Path):
    writer = write_records(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, 1)
    with pytest.raises(StoreError, match="closed"):
        writer.append(entry(1))


def test_backpressure_blocks_instead_of_dropping(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    writer = write_records(url, tmp_path, 0, close=False, mode="async", async_queue=4, max_batch=2)
    for i in range(300):
        writer.append(entry(i))
    writer.close()
    writer.store.close()
    assert sum(1 for r in rows_of(url, tmp_path) if r.kind == "decision") == 300


def _finishes(work, seconds: float = 20.0) -> bool:
    """Run ``work`` on a thread; whether it returned within ``seconds`` (it is left running if not)."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def _callers_finish(writer: AuditWriter, callers: int, each: int) -> bool:
    """``callers`` coroutines on one event loop each append ``each`` entries (ids 0..callers*each-1);
    whether they all returned within :func:`_finishes`'s time."""

    async def produce() -> None:
        async def caller(n: int) -> None:
            for i in range(each):
                await writer.append_async(entry(n * each + i))

        await asyncio.gather(*(caller(n) for n in range(callers)))

    return _finishes(lambda: asyncio.run(produce()))


def test_group_commit_waits_for_the_callers_it_expects_not_the_whole_window(tmp_path: Path):
    """The window is an upper bound: once as many callers as last time are queued, the batch commits.
    (A fixed sleep of the window per batch capped strict throughput at one batch per window.)"""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    writer = write_records(url, tmp_path, 0, close=False, commit_window=60.0, window_after=4)
    callers, rounds = 8, 12
    assert _callers_finish(writer, callers, rounds), "a batch waited out the 60 s window with every caller queued"
    assert writer.committed == callers * rounds
    writer.close()
    writer.store.close()


@pytest.mark.parametrize("end", ["flush", "close"])
def test_a_flush_or_close_ends_the_group_commit_wait(tmp_path: Path, end: str):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    writer = write_records(url, tmp_path, 0, close=False, mode="async", commit_window=60.0, window_after=4)
    for i in range(50):  # a large batch: the next one waits for company
        writer.append(entry(i))
    writer.flush()
    writer.append(entry(50))  # alone: it would wait the window for 49 more
    assert _finishes(writer.flush if end == "flush" else writer.close)
    assert writer.committed == 51
    if end == "flush":
        writer.close()
    writer.store.close()
    assert sum(1 for r in rows_of(url, tmp_path) if r.kind == "decision") == 51


def test_event_loop_callers_wait_for_room_without_polling_and_lose_nothing(tmp_path: Path):
    """A full async queue parks event-loop callers until the writer takes a batch. The guard timeout is
    set to a minute, so a lost wake-up would stall the test instead of being covered by polling."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    writer = write_records(url, tmp_path, 0, close=False, mode="async", async_queue=4, max_batch=3)
    writer.space_guard = 60.0
    callers, each = 16, 40
    assert _callers_finish(writer, callers, each), "a caller waiting for room was never woken"
    writer.close()
    writer.store.close()
    ids = [json.loads(r.body)["request_id"] for r in rows_of(url, tmp_path) if r.kind == "decision"]
    assert sorted(ids) == sorted(entry(i).request_id for i in range(callers * each))
