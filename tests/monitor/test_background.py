"""The gateway's background monitor: with several workers on one HOME, one runs the detectors."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from exportgate.config import Settings
from exportgate.gateway._monitoring import BackgroundMonitor


def _until(condition: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _monitor(home: Path, database_url: str | None = None) -> BackgroundMonitor:
    return BackgroundMonitor(Settings({"home": str(home), "monitor_interval": 0.05, "database_url": database_url},
                                      env={}))  # fmt: skip


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_one_monitor_runs_and_another_takes_over_when_it_stops(tmp_path: Path, backend: str, request):
    url = None
    if backend == "postgres":  # two replicas: separate homes, one database
        url = request.getfixturevalue("state_url")
    first = _monitor(tmp_path / "a", url)
    first.start()
    _until(lambda: first.passes > 0, "the first monitor never ran")
    second = _monitor(tmp_path / ("b" if url else "a"), url)
    second.start()
    try:
        time.sleep(0.5)  # ten intervals: the second looks for the lock each time
        assert first.leading and not second.leading and second.passes == 0
        first.close()
        assert not first.leading
        _until(lambda: second.passes > 0, "the second monitor did not take over")
        assert second.leading
    finally:
        first.close()
        second.close()


def test_a_lock_held_by_another_process_keeps_the_monitor_idle_until_that_process_ends(tmp_path: Path):
    (tmp_path / "monitor.lock").touch()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'ab');"
         " fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)", str(tmp_path / "monitor.lock")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    monitor = _monitor(tmp_path)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monitor.start()
        time.sleep(0.5)
        assert not monitor.leading and monitor.passes == 0
        holder.kill()
        holder.wait()
        _until(lambda: monitor.passes > 0, "the monitor did not take over from the ended process")
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
        monitor.close()
