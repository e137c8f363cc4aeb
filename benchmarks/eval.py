"""Benchmark: evaluation harness speed (docs/performance.md: >= 500 turns/s against the simulator, <= 1 ms overhead per
turn). The simulator is served by ``exportgate sim serve`` on CPU 1; the harness runs crescendo over the
canary set at concurrency 64 on CPU 0. Overhead per turn = the harness process's CPU time / turns (it
includes the HTTP client's work, excludes the simulator's).

Peer in the same run: PyRIT's ``CrescendoAttack`` (installed from PyPI into ``benchmarks/.pyrit-venv``)
against the same simulator, driven by ``_pyrit_crescendo.py`` with the same template attacker and
substring scorers, so neither side calls an attacker or judge model. PyRIT runs fewer trials (it is far
slower); both figures are per turn, so the comparison is like for like."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import conclude, peer_venv  # noqa: E402
from exportgate.eval import Campaign, Crescendo, load_objectives, target_for  # noqa: E402
from gateway import free_port, launch, stop  # noqa: E402

TARGETS = {"turns_per_s": 500, "overhead_ms_per_turn": 1.0}
PYRIT_TRIALS = 10  # per canary


def pyrit(url: str) -> dict[str, float] | None:
    """PyRIT's crescendo against ``url`` on CPU 0, in its own venv; None when PyRIT cannot run here."""
    bin_dir = peer_venv("pyrit", "pyrit")
    if bin_dir is None:
        return None
    goals = json.dumps({o.goal: o.topic for o in load_objectives()})
    command = ["taskset", "-c", "0", str(bin_dir / "python"), str(HERE / "_pyrit_crescendo.py"), url, goals,
               str(PYRIT_TRIALS), "64"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        print(f"  pyrit: not measured, it failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


async def campaign(url: str, trials: int) -> tuple[int, float, float]:
    target = target_for(url, "sim-1")
    run = Campaign(target, load_objectives(), [Crescendo()], trials=trials, concurrency=64)
    wall, cpu = time.perf_counter(), time.process_time()
    results = await run.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await target.close()
    return sum(r.turns for r in results), wall, cpu


def main() -> int:
    os.sched_setaffinity(0, {0})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sim = launch([sys.executable, "-m", "exportgate.cli", "sim", "serve", "--port", str(port), "--profile", "typical"],
                 "1", url + "/v1/models")  # fmt: skip
    try:
        asyncio.run(campaign(url, 2))  # warm up
        turns, wall, cpu = asyncio.run(campaign(url, 400))
        local_turns, local_wall, _ = asyncio.run(campaign("sim:typical", 400))
        peer = pyrit(url)
    finally:
        stop(sim)
    figures = {
        "turns_per_s": round(turns / wall),
        "overhead_ms_per_turn": round(cpu / turns * 1000, 3),
        "in_process_turns_per_s": round(local_turns / local_wall),
    }
    print(f"eval harness, crescendo x {len(load_objectives())} canaries x 400 trials, concurrency 64")
    print(f"  over HTTP: {turns:,} turns in {wall:.2f} s = {figures['turns_per_s']:,} turns/s; "
          f"harness CPU {figures['overhead_ms_per_turn']} ms per turn")
    print(f"  in-process simulator: {figures['in_process_turns_per_s']:,} turns/s")
    results: dict[str, object] = {"http": {"turns": turns, "seconds": round(wall, 3)}}
    if peer is not None:
        results["pyrit"] = peer
        pyrit_rate = peer["turns"] / peer["seconds"]
        pyrit_cpu_ms = peer["cpu_seconds"] / peer["turns"] * 1000
        figures["pyrit_turns_per_s"] = round(pyrit_rate, 1)
        figures["pyrit_overhead_ms_per_turn"] = round(pyrit_cpu_ms, 2)
        figures["vs_pyrit"] = round(figures["turns_per_s"] / pyrit_rate, 1)
        print(f"  PyRIT CrescendoAttack, {peer['trials']} trials: {peer['turns']:,} turns in {peer['seconds']:.2f} s"
              f" = {pyrit_rate:,.1f} turns/s; harness CPU {pyrit_cpu_ms:.2f} ms per turn"
              f" (exportgate: {figures['vs_pyrit']}x the turns/s)")
    ok = figures["turns_per_s"] >= TARGETS["turns_per_s"] and figures["overhead_ms_per_turn"] <= 1.0
    conclude("eval", results, TARGETS, figures, ok,
             ">= 500 turns/s, <= 1 ms harness overhead per turn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
