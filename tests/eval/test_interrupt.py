"""Ctrl-C during a campaign: finished trials are kept, the exit code is 130, and --resume finishes the run
with the same statistics as an uninterrupted one. Real processes: ``sim serve`` with a reply latency and
``exportgate eval run`` interrupted with SIGINT."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.gateway.conftest import EXPORTGATE, free_port, start


@pytest.fixture(scope="module")
def slow_vulnerable_sim() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(["sim", "serve", "--port", str(port), "--profile", "vulnerable", "--latency-ms", "40"],
                    url + "/v1/models")  # fmt: skip
    yield url
    process.terminate()
    process.wait(timeout=15)
    if process.stderr is not None:
        process.stderr.close()


def _args(url: str, out: Path) -> list[str]:
    return [*EXPORTGATE, "eval", "run", "--target", url, "--model", "sim-1", "--strategies", "crescendo",
            "--trials", "6", "--concurrency", "2", "--seed", "7", "--out", str(out),
            "--home", str(out.parent / "home"), "--price-in", "3", "--price-out", "15"]  # fmt: skip


def _finished(checkpoint: Path) -> int:
    if not checkpoint.exists():
        return 0
    try:
        with sqlite3.connect(checkpoint) as db:
            return int(db.execute("SELECT count(*) FROM trials").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not there yet
        return 0


def _cells(bundle: Path) -> list[dict[str, object]]:
    return list(orjson.loads(bundle.read_bytes())["statistics"]["cells"])


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_keeps_finished_trials_and_resume_matches_an_uninterrupted_run(
    slow_vulnerable_sim: str, tmp_path: Path, sent: signal.Signals
):
    out = tmp_path / "interrupted" / "ev.json"
    out.parent.mkdir()
    checkpoint = out.with_suffix(".checkpoint.db")
    run = subprocess.Popen(_args(slow_vulnerable_sim, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while _finished(checkpoint) < 3 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.poll() is None, "the campaign finished before it could be interrupted; slow the simulator down"
    run.send_signal(sent)  # SIGTERM (a service manager, a container stopping) is handled as Ctrl-C
    _, err = run.communicate(timeout=30)
    assert run.returncode == 130, err.decode()
    assert b"--resume" in err and b"Traceback" not in err
    kept = _finished(checkpoint)
    assert 3 <= kept < 24  # 4 canaries x 6 trials: some kept, not all
    assert not out.exists()  # no bundle from a partial run

    resumed = subprocess.run([*_args(slow_vulnerable_sim, out), "--resume"], capture_output=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert len(orjson.loads(out.read_bytes())["trials"]) == 24
    assert not checkpoint.exists()  # removed once the bundle is written

    fresh = tmp_path / "fresh" / "ev.json"
    fresh.parent.mkdir()
    whole = subprocess.run(_args(slow_vulnerable_sim, fresh), capture_output=True, timeout=120)
    assert whole.returncode == 0, whole.stderr.decode()
    assert _cells(out) == _cells(fresh)
    usage = orjson.loads(out.read_bytes())["statistics"]["usage"]
    assert usage == orjson.loads(fresh.read_bytes())["statistics"]["usage"]  # kept trials' spend is counted too
    assert usage["total"]["cost"] > 0
