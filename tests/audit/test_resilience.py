"""The writer cannot die silently: no value stops it, a thread that stops anyway answers every caller,
a store that fails is refused at once and probed until it is back, outcomes survive an outage, and a
record the store refuses fails alone."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exportgate.audit import (
    AuditEntry,
    AuditWriter,
    ChainRow,
    Outcome,
    OutcomeBatch,
    canonical_json,
    open_store,
    verify_store,
)
from exportgate.errors import StoreError, UnrecordableError
from exportgate.signing import home_signer, trusted_keys
from tests.audit.conftest import entry
from tests.audit.test_writer import FlakyStore, wait_until

#: Any text, and often the characters that break encoders: lone surrogates, NUL, the signals separator,
#: commas, quotes, backslashes, line breaks (st.text alone almost never yields a surrogate).
TRICKY = st.sampled_from(["\ud800", "\udfff", "\x00", "\x1f", ",", '"', "\\", "\n", "\x85", "a", "é"])
TEXT = st.text(max_size=10) | st.text(TRICKY, max_size=6)


def _has_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_surrogate(v) for v in value)
    return False


entries = st.builds(
    AuditEntry,
    request_id=TEXT,
    decision=st.sampled_from(["allow", "deny"]),
    time_ns=st.integers(0, 2**63 - 1),
    account=st.none() | TEXT,
    key_id=st.none() | TEXT,
    subject=st.none() | st.dictionaries(TEXT, st.none() | TEXT | st.lists(TEXT, max_size=3), max_size=4),
    client_ip=st.none() | TEXT,
    country=st.none() | TEXT,
    anonymizers=st.none() | st.lists(TEXT, max_size=3).map(tuple),
    requested_model=st.none() | TEXT,
    model=st.none() | TEXT,
    tier=st.none() | TEXT,
    reasons=st.lists(st.fixed_dictionaries({"code": TEXT, "rule": TEXT, "value": st.none() | TEXT}), max_size=3).map(
        tuple
    ),
    http_status=st.none() | st.integers(100, 599),
    latency_ms=st.none() | st.floats(0, 1e6),
    tokens=st.none() | st.dictionaries(TEXT, st.integers(0, 2**40), max_size=2),
)


@given(entries, st.integers(1, 2**40), st.text(max_size=40))  # writer ids are the writer's own
def test_a_sealed_record_is_exactly_the_canonical_body_or_refused(record: AuditEntry, seq: int, writer: str):
    fields = {**record.fields(), "seq": seq, "writer": writer}
    nul = any("\x00" in (v or "") for v in (record.request_id, record.account, record.model, record.decision))
    if _has_surrogate(fields) or nul:
        with pytest.raises(UnrecordableError):
            record.seal()
        return
    body = record.seal().body(seq, json.dumps(writer, ensure_ascii=False))
    assert body == canonical_json(fields)
    assert json.loads(body) == json.loads(canonical_json(fields))


@pytest.fixture(scope="module")
def live_writer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditWriter]:
    home = tmp_path_factory.mktemp("resilience")
    store = open_store(f"sqlite:///{home / 'audit.db'}", home)
    writer = AuditWriter(store, home_signer(home), home=home, checkpoint_every=50).start()
    yield writer
    writer.close()
    assert verify_store(store, trusted_keys(home)).ok
    store.close()


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=entries)
def test_no_value_stops_the_writer(live_writer: AuditWriter, record: AuditEntry):
    before = live_writer.committed
    try:
        live_writer.append(record)
    except UnrecordableError:
        assert live_writer.committed == before  # refused in the caller: nothing was queued
    assert live_writer.error is None
    assert isinstance(live_writer.append(entry(1)), int) and live_writer.error is None


class Boom(BaseException):
    """Not an Exception: nothing in the writer's store handling catches it (a bug's stand-in)."""


class ExplodingStore(FlakyStore):
    def __init__(self, inner, after: int) -> None:
        super().__init__(inner)
        self.calls, self.after = 0, after

    def append_rows(self, rows: Sequence[ChainRow]) -> None:
        self.calls += 1
        if self.calls > self.after:
            raise Boom("the writer thread dies here")
        self.inner.append_rows(rows)


@pytest.mark.parametrize("mode", ["strict", "async"])
def test_a_writer_thread_that_stops_answers_every_caller_and_refuses_the_rest(tmp_path: Path, mode: str, caplog):
    store = ExplodingStore(open_store(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path), after=1)  # the opening
    writer = AuditWriter(store, home_signer(tmp_path), home=tmp_path, mode=mode).start()
    caplog.set_level(logging.CRITICAL, "exportgate.audit")
    if mode == "strict":
        with pytest.raises(StoreError, match="audit writer stopped"):
            writer.append(entry(1))  # waited for a commit that never comes: answered, not hung
    else:
        writer.append(entry(1))
        assert wait_until(lambda: writer.error is not None)
    assert "stopped" in str(writer.error)
    with pytest.raises(StoreError, match="audit writer stopped"):
        writer.append(entry(2))  # at once
    assert any(r.levelno == logging.CRITICAL and "stopped" in r.getMessage() for r in caplog.records)
    if mode == "async":  # the record nobody waited for is saved, not lost
        saved = (tmp_path / "audit" / f"unwritten-{writer.writer_id}.jsonl").read_text().splitlines()
        assert [json.loads(line)["request_id"] for line in saved] == ["req-1"]
    writer.close()
    store.inner.close()


class CountingFlakyStore(FlakyStore):
    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.attempts = 0

    def append_rows(self, rows: Sequence[ChainRow]) -> None:
        self.attempts += 1
        super().append_rows(rows)


def test_a_store_that_fails_is_refused_at_once_then_probed_until_it_is_back(tmp_path: Path):
    store = CountingFlakyStore(open_store(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path))
    writer = AuditWriter(store, home_signer(tmp_path), home=tmp_path, retry_interval=0.05).start()
    assert writer.error is None
    store.down = True
    with pytest.raises(StoreError, match="disk on fire"):
        writer.append(entry(1))
    attempts = store.attempts
    assert writer.error is not None  # strict mode too: readiness follows the store
    for i in range(20):
        with pytest.raises(StoreError, match="unavailable"):
            writer.append(entry(i))
    assert store.attempts == attempts  # none of them waited on the store
    store.down = False
    assert wait_until(lambda: writer.error is None)  # found by the writer's own probe, no request needed
    assert writer.append(entry(99)) == 2  # the failed record took no sequence number
    writer.close()
    assert verify_store(store.inner, trusted_keys(tmp_path)).ok
    store.inner.close()


def _outcome_batch(n: int) -> OutcomeBatch:
    return OutcomeBatch(1_000 + n, (Outcome(f"req-{n}", 200, 200, 1.5, {"prompt_tokens": 3}),))


def _outcome_ids(store: FlakyStore) -> list[str]:
    return [json.loads(r.body)["outcomes"][0]["request_id"] for r in store.inner.chain_rows() if r.kind == "outcomes"]


def test_outcomes_finished_before_an_outage_are_written_after_it(tmp_path: Path):
    store = FlakyStore(open_store(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path))
    writer = AuditWriter(store, home_signer(tmp_path), home=tmp_path, retry_interval=0.05).start()
    store.down = True

    async def queue_outcomes() -> None:
        for n in range(5):
            await writer.append_async(_outcome_batch(n), wait=False)  # accepted while down: nothing waits on them

    asyncio.run(queue_outcomes())
    assert wait_until(lambda: writer.error is not None)
    store.down = False
    assert wait_until(lambda: writer.error is None)
    writer.flush()
    assert _outcome_ids(store) == [f"req-{n}" for n in range(5)] and writer.unwritten == 0
    writer.close()
    assert verify_store(store.inner, trusted_keys(tmp_path)).ok
    store.inner.close()


def test_past_the_bound_kept_records_are_saved_and_counted_never_dropped(tmp_path: Path):
    store = FlakyStore(open_store(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path))
    writer = AuditWriter(store, home_signer(tmp_path), home=tmp_path, retry_interval=0.05,
                         max_kept=3).start()  # fmt: skip
    store.down = True

    async def queue_outcomes() -> None:
        for n in range(8):
            await writer.append_async(_outcome_batch(n), wait=False)
            await asyncio.sleep(0.06)  # each one taken into its own retry

    asyncio.run(queue_outcomes())
    assert writer.unwritten == 5
    saved = (tmp_path / "audit" / f"unwritten-{writer.writer_id}.jsonl").read_text().splitlines()
    assert [json.loads(s)["outcomes"][0]["request_id"] for s in saved] == [f"req-{n}" for n in range(5)]
    store.down = False
    assert wait_until(lambda: writer.error is None)
    writer.flush()
    assert _outcome_ids(store) == ["req-5", "req-6", "req-7"]
    writer.close()
    store.inner.close()


class PickyStore(FlakyStore):
    """A store that refuses any batch holding a row for request ``poison`` (as PostgreSQL refuses a value
    it cannot store) and takes everything else, probes included."""

    def append_rows(self, rows: Sequence[ChainRow]) -> None:
        if any(r.request_id == "poison" for r in rows):
            raise StoreError("invalid byte sequence")
        self.inner.append_rows(rows)


@pytest.mark.parametrize("mode", ["strict", "async"])
def test_a_record_the_store_refuses_fails_alone(tmp_path: Path, mode: str):
    store = PickyStore(open_store(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path))
    writer = AuditWriter(store, home_signer(tmp_path), home=tmp_path, mode=mode).start()

    async def callers() -> list[object]:
        names = ["a", "b", "poison", "c", "d"]
        results = await asyncio.gather(*(writer.append_async(entry(0, request_id=n)) for n in names),
                                       return_exceptions=True)  # fmt: skip
        return list(results)

    results = asyncio.run(callers())
    writer.flush()
    ids = [r.request_id for r in store.inner.chain_rows() if r.kind == "decision"]
    assert sorted(ids) == ["a", "b", "c", "d"] and writer.error is None
    if mode == "strict":
        assert isinstance(results[2], StoreError) and all(isinstance(r, int) for i, r in enumerate(results) if i != 2)
    else:
        saved = (tmp_path / "audit" / f"unwritten-{writer.writer_id}.jsonl").read_text().splitlines()
        assert [json.loads(s)["request_id"] for s in saved] == ["poison"] and writer.unwritten == 1
    writer.close()
    assert verify_store(store.inner, trusted_keys(tmp_path)).ok
    store.inner.close()


@pytest.mark.parametrize(
    "bad",
    [
        {"account": "jwt:https://idp#a\x00b"},  # PostgreSQL TEXT refuses NUL
        {"account": "jwt:https://idp#\ud800"},  # a lone surrogate: not UTF-8 at all
        {"requested_model": "\udfff"},
        {"subject": {"subject_id": "jwt:https://idp#\ud800"}},
    ],
)
def test_values_a_store_cannot_hold_are_refused_before_the_writer(store_url: str, audit_home: Path, bad: dict):
    store = open_store(store_url, audit_home)
    writer = AuditWriter(store, home_signer(audit_home), home=audit_home).start()
    with pytest.raises(UnrecordableError):
        writer.append(entry(1, **bad))
    assert writer.append(entry(2)) == 2 and writer.error is None
    writer.close()
    assert verify_store(store, trusted_keys(audit_home)).ok
    store.close()
