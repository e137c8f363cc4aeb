"""Benchmark: evaluation harness speed (SPEC §8: >= 500 turns/s against the simulator, <= 1 ms overhead per
turn). The simulator is served by ``exportgate sim serve`` on CPU 1; the harness runs crescendo over the
canary set at concurrency 64 on CPU 0. Overhead per turn = the harness process's CPU time / turns (it
includes the HTTP client's work, excludes the simulator's). PyRIT is not run side by side: it needs a
hub-style install of its own stack and an OpenAI-compatible memory setup that does not fit here."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import conclude  # noqa: E402
from exportgate.eval import Campaign, Crescendo, load_objectives, target_for  # noqa: E402
from gateway import free_port, launch, stop  # noqa: E402

TARGETS = {"turns_per_s": 500, "overhead_ms_per_turn": 1.0}


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
    ok = figures["turns_per_s"] >= TARGETS["turns_per_s"] and figures["overhead_ms_per_turn"] <= 1.0
    conclude("eval", {"http": {"turns": turns, "seconds": round(wall, 3)}}, TARGETS, figures, ok,
             ">= 500 turns/s, <= 1 ms harness overhead per turn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
