"""Every kind of tampering is detected, on both stores, and the first bad record is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from exportgate.audit import chain_hash, load_heads, open_store, verify_store
from exportgate.signing import TrustedKeys, trusted_keys
from tests.audit.conftest import Raw, write_records

COUNT = 20  # opening checkpoint 1, decisions 2-6, checkpoint 7, 8-12, checkpoint 13, ... 25, final checkpoint 26


def verify(url: str, home: Path, keys: TrustedKeys | None = None):
    store = open_store(url, home)
    try:
        return verify_store(store, keys if keys is not None else trusted_keys(home), load_heads(home / "audit", store))
    finally:
        store.close()


@pytest.fixture
def chain(store_url: str, audit_home: Path) -> tuple[Raw, str]:
    write_records(store_url, audit_home, COUNT)
    raw = Raw(store_url)
    return raw, raw.writer()


def rehash_from(raw: Raw, writer: str, seq: int) -> None:
    """What a forger does after an edit: recompute every hash and link from ``seq`` on."""
    prev = raw.row(writer, seq - 1)[9] if seq > 1 else "0" * 64
    last = raw.execute("SELECT MAX(seq) FROM audit_records WHERE writer = ?", (writer,))[0][0]
    for n in range(seq, last + 1):
        w, s, kind, t, req, acct, model, dec, _, _, body, signals = raw.row(writer, n)
        digest = chain_hash(prev, w, kind, t, req, acct, model, dec, body, signals)
        raw.execute("UPDATE audit_records SET prev = ?, hash = ? WHERE writer = ? AND seq = ?", (prev, digest, w, s))
        prev = digest


def renumber(raw: Raw, writer: str, first: int, delta: int) -> None:
    seqs = [
        r[0]
        for r in raw.execute(
            "SELECT seq FROM audit_records WHERE writer = ? AND seq >= ? ORDER BY seq", (writer, first)
        )
    ]
    for seq in sorted(seqs, reverse=delta > 0):
        raw.execute("UPDATE audit_records SET seq = ? WHERE writer = ? AND seq = ?", (seq + delta, writer, seq))


def first_bad(report, kind: str) -> int | None:
    problem = report.first_by_kind().get(kind)
    return problem.seq if problem else None


def test_an_untouched_chain_verifies(chain, store_url, audit_home):
    report = verify(store_url, audit_home)
    assert report.ok, report.problems
    (summary,) = report.chains
    assert (summary.first_seq, summary.last_seq, summary.checkpoints, summary.closed) == (1, 26, 6, True)
    assert summary.unsigned_tail == 0 and report.rows == 26


def test_changed_body(chain, store_url, audit_home):
    raw, w = chain
    raw.execute("UPDATE audit_records SET body = replace(body, 'FABLE5', 'FABLE6') WHERE writer = ? AND seq = 3", (w,))
    report = verify(store_url, audit_home)
    assert not report.ok and first_bad(report, "changed") == 3


def test_changed_index_column(chain, store_url, audit_home):
    raw, w = chain
    raw.execute("UPDATE audit_records SET decision = 'allow', account = 'acct-9' WHERE writer = ? AND seq = 4", (w,))
    assert first_bad(verify(store_url, audit_home), "changed") == 4


@pytest.mark.parametrize(
    "edit",
    [
        "replace(signals, 'US', 'CN')",  # where the request came from, as monitoring reads it
        "replace(signals, 'location_not_allowed', '')",  # the denial's reason dropped
        "NULL",  # the column removed, so readers would fall back to the (unchanged) body
    ],
)
def test_changed_signals_column(chain, store_url, audit_home, edit):
    raw, w = chain
    before = raw.row(w, 2)[11]
    assert before is not None and "US" in before and "location_not_allowed" in before  # the fixture's denial
    raw.execute(f"UPDATE audit_records SET signals = {edit} WHERE writer = ? AND seq = 2", (w,))
    assert first_bad(verify(store_url, audit_home), "changed") == 2


def test_signals_added_to_a_row_without_them(chain, store_url, audit_home):
    raw, w = chain
    assert raw.row(w, 7)[11] is None  # a checkpoint has none
    raw.execute("UPDATE audit_records SET signals = 's1' WHERE writer = ? AND seq = 7", (w,))
    assert first_bad(verify(store_url, audit_home), "changed") == 7


def test_deleted_record_leaves_a_gap(chain, store_url, audit_home):
    raw, w = chain
    raw.execute("DELETE FROM audit_records WHERE writer = ? AND seq = 8", (w,))
    report = verify(store_url, audit_home)
    assert first_bad(report, "deleted") == 8
    assert "changed" not in report.first_by_kind()


def test_deleted_record_and_renumbered_rest(chain, store_url, audit_home):
    raw, w = chain
    raw.execute("DELETE FROM audit_records WHERE writer = ? AND seq = 8", (w,))
    renumber(raw, w, 9, -1)
    assert first_bad(verify(store_url, audit_home), "deleted") == 8


def test_deleted_chain_start(chain, store_url, audit_home):
    raw, w = chain
    raw.execute("DELETE FROM audit_records WHERE writer = ? AND seq < 3", (w,))
    assert first_bad(verify(store_url, audit_home), "deleted") == 1


def test_inserted_record(chain, store_url, audit_home):
    raw, w = chain
    renumber(raw, w, 9, +1)
    _, _, kind, t, _, acct, model, dec, _, _, body, signals = raw.row(w, 8)
    forged_body = body.replace("req-", "forged-")
    prev = raw.row(w, 8)[9]
    digest = chain_hash(prev, w, kind, t, "forged", acct, model, dec, forged_body, signals)
    raw.execute(
        "INSERT INTO audit_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (w, 9, kind, t, "forged", acct, model, dec, prev, digest, forged_body, signals),
    )
    report = verify(store_url, audit_home)
    assert first_bad(report, "inserted") == 9
    assert "changed" not in report.first_by_kind()


def test_reordered_records(chain, store_url, audit_home):
    raw, w = chain
    raw.execute("UPDATE audit_records SET seq = -1 WHERE writer = ? AND seq = 3", (w,))
    raw.execute("UPDATE audit_records SET seq = 3 WHERE writer = ? AND seq = 4", (w,))
    raw.execute("UPDATE audit_records SET seq = 4 WHERE writer = ? AND seq = -1", (w,))
    report = verify(store_url, audit_home)
    assert first_bad(report, "reordered") == 3
    assert not {"changed", "deleted", "inserted"} & set(report.first_by_kind())


def test_truncated_tail_behind_the_last_checkpoint(chain, store_url, audit_home):
    raw, w = chain
    raw.execute("DELETE FROM audit_records WHERE writer = ? AND seq >= 13", (w,))
    report = verify(store_url, audit_home)
    assert first_bad(report, "truncated") == 26
    assert set(report.first_by_kind()) == {"truncated"}  # the rest of the chain is consistent


def test_rewritten_and_rehashed_history_breaks_the_signed_head(chain, store_url, audit_home):
    raw, w = chain
    raw.execute(
        "UPDATE audit_records SET body = replace(body, '\"deny\"', '\"allow\"'), decision = 'allow'"
        " WHERE writer = ? AND seq = 5",
        (w,),
    )  # record 5 was a denial
    rehash_from(raw, w, 5)  # every hash and link is valid again; only the signatures know
    report = verify(store_url, audit_home)
    assert not report.ok
    assert first_bad(report, "changed") == 6  # checkpoint 7 signed a different head for rows up to 6


def test_forged_checkpoint_signature(chain, store_url, audit_home):
    raw, w = chain
    body = raw.row(w, 13)[10]
    forged = body.replace('"signature":"', '"signature":"AAAA', 1)
    raw.execute("UPDATE audit_records SET body = ? WHERE writer = ? AND seq = 13", (forged, w))
    rehash_from(raw, w, 13)
    assert first_bad(verify(store_url, audit_home), "bad_checkpoint") == 13


def test_checkpoints_from_an_untrusted_key(chain, store_url, audit_home):
    report = verify(store_url, audit_home, keys=TrustedKeys())
    assert first_bad(report, "bad_checkpoint") == 1  # the chain's opening checkpoint
    assert "not trusted" in report.first_by_kind()["bad_checkpoint"].detail
