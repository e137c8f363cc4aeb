"""Verify every chain and checkpoint; name the first bad record of each kind.

Kinds of tampering and how each shows (docs/audit.md has the full table):

- ``changed``: a row whose recomputed hash differs from its stored hash
  (a field or the body was edited), or a checkpoint whose signed head no
  longer matches the chain (the rows before it were rewritten and re-hashed);
- ``deleted``: a gap in a writer's sequence numbers, a chain that does not
  start at 1 or at a signed checkpoint, or a row whose predecessor exists
  nowhere (deleted, and the rest renumbered to hide the gap);
- ``inserted``: a row that nothing links to, sitting between two rows that
  link to each other;
- ``reordered``: a row whose predecessor sits elsewhere in the chain;
- ``bad_checkpoint``: an unreadable checkpoint, an unknown signing key, or a
  signature that does not verify;
- ``truncated``: a checkpoint a writer recorded outside the store (its
  heads file) that is no longer in the store: the tail behind it was cut.

And across chains (writers register in ``audit_writers`` and, since schema 3,
open their chain with a signed checkpoint at sequence 1):

- ``deleted``: a writer registered since schema 3 with no rows at all (its
  whole chain was deleted, heads file and all);
- ``inserted``: a chain whose writer never registered in this store;
- ``bad_checkpoint``: a chain with no signed checkpoint by a trusted key,
  which nothing ties to a writer of this gateway.

Heads files name the store by the id written into it at creation
(``store_id``), so the same store reached by another URL, a relative path or
a copy at another path is still checked against them; a head whose writer is
known to the store applies to it whatever it names.

The first pass streams the rows and keeps O(1) state per chain; only when a
link is broken does a second pass look the missing links up.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exportgate.signing import TrustedKeys

from ._record import CHECKPOINT_SCHEMA, GENESIS, ChainRow, checkpoint_message
from ._store import AuditStore, RawRow, store_label

_GENESIS = GENESIS.encode()

__all__ = ["KINDS", "ChainSummary", "Head", "Problem", "VerifyReport", "load_heads", "verify_store"]

KINDS = ("changed", "deleted", "inserted", "reordered", "bad_checkpoint", "truncated")


@dataclass(frozen=True)
class Problem:
    kind: str
    writer: str
    seq: int | None
    detail: str

    @property
    def where(self) -> str:
        return f"{self.writer}:{self.seq}" if self.seq is not None else self.writer


@dataclass
class ChainSummary:
    writer: str
    first_seq: int = 0
    last_seq: int = 0
    rows: int = 0
    checkpoints: int = 0
    last_signed_seq: int = 0
    closed: bool = False

    @property
    def unsigned_tail(self) -> int:
        return self.last_seq - self.last_signed_seq


@dataclass(frozen=True)
class Head:
    """A checkpoint a writer recorded outside the store."""

    writer: str
    seq: int
    hash: str
    time_ns: int


@dataclass
class VerifyReport:
    chains: list[ChainSummary] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def first_by_kind(self) -> dict[str, Problem]:
        """For each kind of tampering, the first bad record (in writer, sequence order)."""
        first: dict[str, Problem] = {}
        for problem in sorted(self.problems, key=lambda p: (p.writer, p.seq if p.seq is not None else -1)):
            first.setdefault(problem.kind, problem)
        return first

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "chains": [{**c.__dict__, "unsigned_tail": c.unsigned_tail} for c in self.chains],
            "first_bad_record": {k: {"record": p.where, "detail": p.detail} for k, p in self.first_by_kind().items()},
            "problems": len(self.problems),
        }


@dataclass
class _Broken:
    writer: str
    seq: int
    prev: str
    before_hash: str | None  # hash of the row just before it (None at chain start)
    two_back_seq: int | None


class _Verifier:
    def __init__(self, trusted: TrustedKeys) -> None:
        self.trusted = trusted
        self.report = VerifyReport()
        self.broken: list[_Broken] = []

    def add(self, kind: str, writer: str, seq: int | None, detail: str) -> None:
        self.report.problems.append(Problem(kind, writer, seq, detail))

    def run(self, rows: Iterable[RawRow]) -> None:
        """First pass: content hashes, sequence gaps, links, checkpoints. Text arrives as bytes."""
        sha256, newline, empty = hashlib.sha256, b"\n", b""
        chain: ChainSummary | None = None
        writer_b: bytes | None = None
        last: RawRow | None = None
        before_last: RawRow | None = None
        count = 0
        for row in rows:
            writer, seq, kind, time_ns, request_id, account, model, decision, prev, stored, body, signals = row
            if writer != writer_b:
                writer_b, last, before_last = writer, None, None
                chain = ChainSummary(writer.decode(), first_seq=seq)
                self.report.chains.append(chain)
            assert chain is not None
            count += 1
            chain.rows += 1
            chain.last_seq = seq
            message = newline.join(
                (
                    prev,
                    writer,
                    kind,
                    b"%d" % time_ns,
                    request_id or empty,
                    account or empty,
                    model or empty,
                    decision or empty,
                    body,
                )
            )
            digest = sha256(message)
            if signals is not None:
                digest.update(newline + signals)  # short: cheaper than copying the message
            if digest.hexdigest().encode() != stored:
                self.add("changed", chain.writer, seq, "content does not match its hash (a field was edited)")
            self._link(chain.writer, row, last, before_last)
            chain.closed = False
            if kind == b"checkpoint":
                self._checkpoint(row, chain)
            before_last, last = last, row
        self.report.rows += count

    def _link(self, writer: str, row: RawRow, last: RawRow | None, before_last: RawRow | None) -> None:
        seq, prev = row[1], row[8]
        if last is None:
            if seq == 1:
                if prev != _GENESIS:
                    self.broken.append(_Broken(writer, seq, prev.decode(), None, None))
            elif row[2] != b"checkpoint":  # a pruned chain starts at a signed checkpoint
                self.add("deleted", writer, 1, f"records 1..{seq - 1} are missing (chain start deleted)")
            return
        if seq != last[1] + 1:
            span = f"{last[1] + 1}" if seq == last[1] + 2 else f"{last[1] + 1}..{seq - 1}"
            self.add("deleted", writer, last[1] + 1, f"record(s) {span} missing")
        elif prev != last[9]:
            two_back = before_last[1] if before_last is not None else None
            self.broken.append(_Broken(writer, seq, prev.decode(), last[9].decode(), two_back))

    def _checkpoint(self, row: RawRow, chain: ChainSummary) -> None:
        chain.checkpoints += 1
        seq, prev = row[1], row[8].decode()
        try:
            body = json.loads(row[10])
            message = checkpoint_message(
                body["writer"], body["covers_seq"], body["head"], body["time_ns"], bool(body["final"])
            )
            key_id, signature = body["key_id"], body["signature"]
            consistent = (
                body["schema"] == CHECKPOINT_SCHEMA
                and body["writer"] == chain.writer
                and body["seq"] == seq
                and body["covers_seq"] == seq - 1
            )
        except (ValueError, KeyError, TypeError):
            self.add("bad_checkpoint", chain.writer, seq, "checkpoint cannot be read")
            return
        if not consistent:
            self.add("bad_checkpoint", chain.writer, seq, "checkpoint does not describe its own place in the chain")
        elif key_id not in self.trusted:
            self.add("bad_checkpoint", chain.writer, seq, f"signed by key {key_id}, which is not trusted")
        elif not self.trusted.verify(key_id, message, signature):
            self.add("bad_checkpoint", chain.writer, seq, "signature does not verify")
        elif body["head"] != prev:
            self.add(
                "changed",
                chain.writer,
                seq - 1,
                f"rows up to {seq - 1} were rewritten: checkpoint {seq} signed a different head",
            )
        else:
            chain.last_signed_seq = seq
            chain.closed = bool(body["final"])

    def classify_broken(self, rows: Iterable[ChainRow]) -> None:
        """Second pass: where do the broken links point?"""
        wanted = {(b.writer, b.prev) for b in self.broken}
        candidates = {(b.writer, b.before_hash) for b in self.broken if b.before_hash}
        located: dict[tuple[str, str], int] = {}
        referenced: set[tuple[str, str]] = set()
        for row in rows:
            if (row.writer, row.hash) in wanted:
                located[(row.writer, row.hash)] = row.seq
            if (row.writer, row.prev) in candidates:
                referenced.add((row.writer, row.prev))
        for b in self.broken:
            target = located.get((b.writer, b.prev))
            if target is None:
                self.add("deleted", b.writer, b.seq, "its predecessor is missing (deleted and renumbered)")
            elif target == b.two_back_seq and b.before_hash is not None and (b.writer, b.before_hash) not in referenced:
                self.add("inserted", b.writer, b.seq - 1, "no record links to it: it was inserted")
            else:
                self.add("reordered", b.writer, b.seq, f"its predecessor is record {target}: out of order")


def verify_store(store: AuditStore, trusted: TrustedKeys, heads: Iterable[Head] = ()) -> VerifyReport:
    """Verify every chain and checkpoint in ``store`` (raises StoreError if it cannot be read)."""
    start = time.perf_counter()
    verifier = _Verifier(trusted)
    verifier.run(store.chain_rows_bytes())
    if verifier.broken:
        verifier.classify_broken(store.chain_rows())
    _check_writers(store, verifier)
    _check_heads(store, verifier, list(heads))
    verifier.report.seconds = time.perf_counter() - start
    return verifier.report


def _check_writers(store: AuditStore, verifier: _Verifier) -> None:
    """Every chain belongs to a registered writer and carries a trusted signature; every writer registered
    since chains open with a checkpoint still has its chain."""
    registered = store.writers()
    chains = {c.writer: c for c in verifier.report.chains}
    for writer, chain in chains.items():
        if writer not in registered:
            verifier.add("inserted", writer, chain.first_seq,
                         "this writer never registered in the store: the chain was added from outside")  # fmt: skip
        if chain.last_signed_seq == 0 and not any(p.writer == writer and p.kind == "bad_checkpoint"
                                                  for p in verifier.report.problems):  # fmt: skip
            verifier.add("bad_checkpoint", writer, None, "no checkpoint signed by a trusted key covers this chain")
    since = store.opening_checkpoints_since_ns
    for writer, started_ns in sorted(registered.items()):
        if writer not in chains and since is not None and started_ns >= since:
            verifier.add("deleted", writer, None, "a registered writer has no records: its whole chain was deleted")


def _check_heads(store: AuditStore, verifier: _Verifier, heads: list[Head]) -> None:
    """Each checkpoint a writer recorded outside the store must still be in it."""
    missing = [h for h in heads if (row := store.get_row(h.writer, h.seq)) is None or row.hash != h.hash]
    if not missing:
        return
    wanted = {(h.writer, h.hash) for h in missing}
    moved = {(row.writer, row.hash) for row in store.chain_rows() if (row.writer, row.hash) in wanted}
    for head in missing:
        if (head.writer, head.hash) in moved:
            continue  # renumbered: the chain checks above already name what happened
        if store.get_row(head.writer, head.seq) is None:
            verifier.add(
                "truncated",
                head.writer,
                head.seq,
                f"checkpoint {head.seq} recorded by the writer is gone: the chain was cut behind it",
            )
        else:
            verifier.add("changed", head.writer, head.seq, "checkpoint differs from the one the writer recorded")


def load_heads(audit_dir: str | Path, store: AuditStore) -> list[Head]:
    """The newest checkpoint each writer recorded for this store (``HOME/audit/heads``): heads that name
    the store's id, or (files from before store ids) its URL, or whose writer the store knows."""
    heads: list[Head] = []
    directory = Path(audit_dir) / "heads"
    if not directory.is_dir():
        return heads
    known = set(store.writers())
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text("utf-8"))
            ours = (
                (store.store_id is not None and data.get("store_id") == store.store_id)
                or data.get("store") == store_label(store.url)
                or data.get("writer") in known
            )
            if ours:
                heads.append(Head(str(data["writer"]), int(data["seq"]), str(data["hash"]), int(data["time_ns"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return heads
