"""A writer killed with SIGKILL mid-stream loses no acknowledged strict record, and verify passes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from exportgate.audit import load_heads, open_store, verify_store
from exportgate.signing import trusted_keys
from tests.conftest import ROOT


def test_sigkill_mid_stream_keeps_every_acknowledged_record(store_url: str, audit_home: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.audit.crash_writer", store_url, str(audit_home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    acknowledged: dict[str, int] = {}
    assert child.stdout is not None
    for line in child.stdout:
        request_id, seq = line.split()
        acknowledged[request_id] = int(seq)
        if len(acknowledged) >= 600:
            break
    os.kill(child.pid, signal.SIGKILL)
    rest, err = child.communicate(timeout=30)
    for line in rest.splitlines():  # acknowledged before the kill, still in the pipe
        if line.count(" ") == 1:
            request_id, seq = line.split()
            acknowledged[request_id] = int(seq)
    assert child.returncode == -signal.SIGKILL, err

    store = open_store(store_url, audit_home)
    try:
        stored = {row.request_id: row.seq for row in store.chain_rows() if row.kind == "decision"}
        lost = {r: s for r, s in acknowledged.items() if stored.get(r) != s}
        assert not lost, f"{len(lost)} acknowledged records missing after SIGKILL"
        report = verify_store(store, trusted_keys(audit_home), load_heads(audit_home / "audit", store))
        assert report.ok, report.problems
        (chain,) = report.chains
        assert not chain.closed and chain.checkpoints >= 10
    finally:
        store.close()
