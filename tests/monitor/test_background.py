"""The gateway's background monitor: with several workers on one HOME, one runs the detectors."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from exportgate.gateway._monitoring import BackgroundMonitor


def _until(condition: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_one_monitor_per_home_runs_and_another_takes_over_when_it_stops(tmp_path: Path):
    first = BackgroundMonitor(tmp_path, None, None, 0.05)
    first.start()
    _until(lambda: first.passes > 0, "the first monitor never ran")
    second = BackgroundMonitor(tmp_path, None, None, 0.05)
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
    monitor = BackgroundMonitor(tmp_path, None, None, 0.05)
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
