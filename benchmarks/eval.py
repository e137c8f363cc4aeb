"""Benchmark: evaluation harness speed (docs/performance.md: >= 500 turns/s against the simulator, <= 1 ms overhead per
turn). The simulator is served by ``exportgate sim serve`` on CPU 1; the harness runs crescendo over the
canary set at concurrency 64 on CPU 0: the adaptive ``crescendo`` (its attacker is the simulator's
attacker role, in the harness process, so its CPU counts as harness overhead) and ``crescendo-template``,
in interleaved rounds (these machines are noisy), each figure reported as its range over the rounds.
Overhead per turn = the harness process's CPU time / turns (it includes the HTTP client's work, excludes
the simulator's).

Peer in the same run: PyRIT's ``CrescendoAttack`` (installed from PyPI into ``benchmarks/.pyrit-venv``)
against the same simulator, driven by ``_pyrit_crescendo.py`` with the same template attacker and
substring scorers, so neither side calls an attacker or judge model. PyRIT runs fewer trials (it is far
slower); both figures are per turn, so the comparison is like for like. PyRIT runs in every round, after
exportgate's, and the ratio to it is taken round by round: its median over the rounds, with min-max."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import conclude, peer_venv, shown_spread, spread  # noqa: E402
from exportgate.eval import Campaign, Crescendo, CrescendoTemplate, Strategy, load_objectives, target_for  # noqa: E402
from gateway import free_port, launch, stop  # noqa: E402

TARGETS = {"turns_per_s": 500, "overhead_ms_per_turn": 1.0}
PYRIT_TRIALS = 10  # per canary
ROUNDS = 3
STRATEGIES: dict[str, type[Strategy]] = {"crescendo": Crescendo, "crescendo-template": CrescendoTemplate}


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


async def campaign(url: str, trials: int, strategy: str = "crescendo") -> tuple[int, float, float]:
    target = target_for(url, "sim-1")
    run = Campaign(target, load_objectives(), [STRATEGIES[strategy]()], trials=trials, concurrency=64)
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
    runs: dict[str, list[tuple[int, float, float]]] = {name: [] for name in STRATEGIES}
    local: list[float] = []
    peers: list[dict[str, float]] = []
    try:
        for name in STRATEGIES:
            asyncio.run(campaign(url, 2, name))  # warm up
        for _ in range(ROUNDS):
            for name in STRATEGIES:
                runs[name].append(asyncio.run(campaign(url, 400, name)))
            local_turns, local_wall, _ = asyncio.run(campaign("sim:typical", 400))
            local.append(local_turns / local_wall)
            peer = pyrit(url)  # the peer in every round, so the ratio to it is taken round by round
            if peer is not None:
                template_turns, template_wall, _ = runs["crescendo-template"][-1]
                peers.append({**peer, "versus": template_turns / template_wall / (peer["turns"] / peer["seconds"])})
    finally:
        stop(sim)
    rates = {name: [t / w for t, w, _ in rows] for name, rows in runs.items()}
    cpus = {name: [c / t * 1000 for t, _, c in rows] for name, rows in runs.items()}
    figures: dict[str, float] = {
        "turns_per_s": round(min(rates["crescendo"])),  # the worst round is the one held to the target
        "overhead_ms_per_turn": round(max(cpus["crescendo"]), 3),
        "template_turns_per_s": round(min(rates["crescendo-template"])),
        "template_overhead_ms_per_turn": round(max(cpus["crescendo-template"]), 3),
        "in_process_turns_per_s": round(min(local)),
    }
    print(f"eval harness, crescendo x {len(load_objectives())} canaries x 400 trials, concurrency 64, {ROUNDS} rounds")
    for name in STRATEGIES:
        turns = runs[name][0][0]
        print(
            f"  {name} over HTTP: {turns:,} turns per round, {min(rates[name]):,.0f}-{max(rates[name]):,.0f} turns/s;"
            f" harness CPU {min(cpus[name]):.3f}-{max(cpus[name]):.3f} ms per turn"
        )
    print(f"  adaptive crescendo, in-process simulator: {min(local):,.0f}-{max(local):,.0f} turns/s")
    first_turns, first_wall, _ = runs["crescendo"][0]
    results: dict[str, object] = {"http": {"turns": first_turns, "seconds": round(first_wall, 3)},
                                  "rounds": {n: [list(r) for r in rows] for n, rows in runs.items()}}  # fmt: skip
    if peers:
        results["pyrit"] = peers
        pyrit_rates = [p["turns"] / p["seconds"] for p in peers]
        pyrit_cpu_ms = [p["cpu_seconds"] / p["turns"] * 1000 for p in peers]
        versus = spread([p["versus"] for p in peers], 1)
        figures["pyrit_turns_per_s"] = round(statistics.median(pyrit_rates), 1)
        figures["pyrit_overhead_ms_per_turn"] = round(statistics.median(pyrit_cpu_ms), 2)
        figures["vs_pyrit"] = versus["median"]
        figures["vs_pyrit_min"], figures["vs_pyrit_max"] = versus["min"], versus["max"]
        print(
            f"  PyRIT CrescendoAttack, {peers[0]['trials']} trials per round: {min(pyrit_rates):,.1f}-"
            f"{max(pyrit_rates):,.1f} turns/s; harness CPU {min(pyrit_cpu_ms):.2f}-{max(pyrit_cpu_ms):.2f} ms per turn"
            f" (exportgate's template crescendo, the like-for-like peer, round by round: {shown_spread(versus)}x"
            " the turns/s, median (min-max))"
        )
    ok = figures["turns_per_s"] >= TARGETS["turns_per_s"] and figures["overhead_ms_per_turn"] <= 1.0
    conclude("eval", results, TARGETS, figures, ok, ">= 500 turns/s, <= 1 ms harness overhead per turn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
