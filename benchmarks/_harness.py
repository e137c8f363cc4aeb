"""Shared benchmark plumbing: per-call timing with overhead subtracted, JSON output."""

from __future__ import annotations

import gc
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def peer_venv(name: str, requirement: str) -> Path | None:
    """A peer tool's own virtualenv (``benchmarks/.NAME-venv``), installed from PyPI once; its ``bin``
    directory, or None (with the reason printed) when it cannot be installed here."""
    venv = HERE / f".{name}-venv"
    marker = venv / ".installed"
    if not marker.exists():
        print(f"  (installing {requirement} into benchmarks/{venv.name}, once)", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", requirement], check=True, timeout=900,
                           capture_output=True)  # fmt: skip
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"  {name}: not measured, install failed: {exc}")
            shutil.rmtree(venv, ignore_errors=True)
            return None
        marker.touch()
    return venv / "bin"


def _timer_overhead(samples: int = 20000) -> float:
    clock = time.perf_counter_ns
    laps = []
    for _ in range(samples):
        start = clock()
        laps.append(clock() - start)
    return statistics.median(laps)


def per_call(fn: Callable[[], object], calls: int = 100_000, warmup: int = 2_000) -> dict[str, float]:
    """Time ``calls`` individual calls; median, p99 and mean in microseconds, timer overhead removed."""
    for _ in range(warmup):
        fn()
    overhead = _timer_overhead()
    clock = time.perf_counter_ns
    laps = [0] * calls
    gc.disable()
    try:
        for i in range(calls):
            start = clock()
            fn()
            laps[i] = clock() - start
    finally:
        gc.enable()
    laps.sort()
    net = [max(lap - overhead, 0) for lap in laps]
    return {
        "median_us": round(statistics.median(net) / 1000, 3),
        "p99_us": round(net[int(len(net) * 0.99)] / 1000, 3),
        "mean_us": round(statistics.fmean(net) / 1000, 3),
        "calls": calls,
    }


def cycling(fn: Callable[[Any], object], inputs: list[Any]) -> Callable[[], object]:
    """A zero-argument call that feeds ``fn`` the next input each time (adds ~0.05 us)."""
    feed = itertools.cycle(inputs).__next__
    return lambda: fn(feed())


def machine() -> dict[str, Any]:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()}


def write(name: str, results: dict[str, Any], targets: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "targets": targets,
        "results": results,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return path


def show(label: str, figures: dict[str, float]) -> None:
    parts = [f"{k}={v}" for k, v in figures.items() if k != "calls"]
    print(f"  {label:<44} {'  '.join(parts)}")


def conclude(
    name: str, results: dict[str, Any], targets: dict[str, Any], figures: dict[str, float], ok: bool, description: str
) -> None:
    """Print the verdict against the target (docs/performance.md), then write the JSON document."""
    shown = ", ".join(f"{key} {value}" for key, value in figures.items())
    print(f"  target {description}: {'met' if ok else 'MISSED'} ({shown})")
    results["summary"] = {**figures, "target_met": ok}
    write(name, results, targets)


def spread(values: list[float], digits: int = 2) -> dict[str, float]:
    """A figure measured in several rounds: the median (what targets are held to) with its min and max."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}  # fmt: skip


def shown_spread(figure: dict[str, float]) -> str:
    return f"{figure['median']} ({figure['min']}-{figure['max']})"


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process, its threads and every descendant, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo, seen = 0.0, [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        tasks = Path(f"/proc/{current}/task")
        try:
            for task in tasks.iterdir():
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total
