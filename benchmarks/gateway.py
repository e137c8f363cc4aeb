"""Benchmark: gateway throughput, tail and added latency on loopback (docs/performance.md).

Peers in the same run, all in front of the same upstream (``exportgate sim serve``):

- direct: wrk straight to the upstream;
- bare: a bare aiohttp pass-through proxy on granian (``_bare_proxy.py``), the usual Python proxy;
- bare-lean: the same pass-through with exportgate's own upstream client (``exportgate._http``), so that
  exportgate's distance to it is the cost of the checks and the audit alone: the peer the targets name;
- exportgate: ``exportgate serve`` with every check (API key, trusted-proxy client IP, geo, directive)
  and the strict audit on (SQLite, synchronous=FULL);
- litellm: LiteLLM proxy, installed into ``benchmarks/.litellm-venv`` if absent.

Each proxy is one worker process pinned to CPU 0; wrk and the upstream share CPU 1. Loads: 64
connections for JSON and for streaming, and one request at a time (p50/p99 from wrk --latency).

These machines are noisy, so the peers are measured in interleaved rounds (every peer under one load,
then the next load, then the next round: A B C D, A B C D, ...; ``GATEWAY_BENCH_ROUNDS``, 3 by
default) and every ratio is the median over the rounds, shown with its min-max; the raw figures of
every round are in the JSON. Beside each run the CPU seconds the peer's processes used are read from
/proc, so the CPU cost of a request (microseconds per request) is known too: that figure hardly moves
with the machine's noise, and it is what a core can serve (docs/deployment.md).

Then ``--workers 2``: exportgate with one worker and with two, CPU per request for each (from /proc),
and the throughput each reaches on this 2-core machine when nothing is pinned (wrk and the upstream
then take their share of both cores). What a second worker costs is the CPU per request it adds;
the scaling on cores of their own is predicted from that (2 x cpu(1 worker) / cpu(2 workers)).

Targets (on the medians): >= 0.80 of bare-lean's throughput for JSON and for streaming; p99 at 64
connections <= 1.5x bare-lean's; <= 0.3 ms added to a single request's p50 over bare-lean; >= 30x
LiteLLM; two workers >= 1.7x one on cores of their own. ``GATEWAY_BENCH_SECONDS`` (6),
``GATEWAY_BENCH_LOADS`` (json,stream,single) and ``GATEWAY_BENCH_WORKERS=0`` shorten a run; a partial
run prints its figures and writes ``results/gateway-partial.json`` without a verdict.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import conclude, peer_venv, shown_spread, spread, tree_cpu_seconds, write  # noqa: E402

PY = sys.executable
EXPORTGATE = [PY, "-m", "exportgate.cli"]
DURATION = int(os.environ.get("GATEWAY_BENCH_SECONDS", "6"))
ROUNDS = int(os.environ.get("GATEWAY_BENCH_ROUNDS", "3"))
TARGETS = {"vs_bare_lean": 0.8, "p99_vs_bare_lean": 1.5, "added_ms_single_p50": 0.3, "vs_litellm": 30,
           "two_workers_vs_one": 1.7}  # fmt: skip
#: LiteLLM refuses to start without a master key (it would accept every request); a fixed benchmark key.
LITELLM_KEY = "sk-" + "0123456789abcdef" * 4
BODY = '{"model":"fable-5","messages":[{"role":"user","content":"hello there, how are you?"}]}'
STREAM_BODY = BODY[:-1] + ',"stream":true}'
#: The loads, each with its connections; ``GATEWAY_BENCH_LOADS=json,single`` measures some only.
LOADS = tuple((name, connections) for name, connections in (("json", 64), ("stream", 64), ("single", 1))
              if name in os.environ.get("GATEWAY_BENCH_LOADS", "json,stream,single").split(","))  # fmt: skip
WORKERS_PHASE = os.environ.get("GATEWAY_BENCH_WORKERS", "1") != "0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(cmd: list[str], cpu: str | None, url: str, env: dict[str, str] | None = None, log: Path | None = None):
    out = log.open("wb") if log else subprocess.DEVNULL
    pinned = ["taskset", "-c", cpu] if cpu is not None else []
    process = subprocess.Popen([*pinned, *cmd], stdout=out, stderr=out, env={**os.environ, **(env or {})},
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited ({process.returncode}); see {log}")
        try:
            httpx.get(url, timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{' '.join(cmd)} did not come up")


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, 9)


def lua(path: Path, body: str, headers: dict[str, str]) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = '{body}'", 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk(url: str, script: Path, connections: int, pid: int | None = None, cpu: str | None = "1") -> dict[str, float]:
    """One wrk run; with ``pid``, also the CPU microseconds per request that process tree used."""
    before = tree_cpu_seconds(pid) if pid is not None else 0.0
    pinned = ["taskset", "-c", cpu] if cpu is not None else []
    out = subprocess.run(
        [*pinned, "wrk", "-t1", f"-c{connections}", f"-d{DURATION}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    used = tree_cpu_seconds(pid) - before if pid is not None else 0.0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed responses")

    def pct(p: str) -> float:
        match = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(match.group(1)), match.group(2)  # type: ignore[union-attr]
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 3)

    figures = {"req_per_s": round(rps), "p50_ms": pct("50"), "p99_ms": pct("99")}
    if pid is not None:
        figures["cpu_us_per_request"] = round(used / total * 1e6, 1)
    return figures


def litellm(upstream: str, port: int, work: Path) -> list[str] | None:
    """The LiteLLM proxy command, installing it into its own venv once; None when it cannot be installed."""
    if os.environ.get("GATEWAY_BENCH_LITELLM") == "0":
        return None
    bin_dir = peer_venv("litellm", "litellm[proxy]")
    if bin_dir is None:
        return None
    binary = bin_dir / "litellm"
    config = work / "litellm.yaml"
    config.write_text(
        "model_list:\n  - model_name: fable-5\n    litellm_params:\n"
        f"      model: openai/fable-5\n      api_base: {upstream}/v1\n      api_key: sk-none\n"
        f"general_settings:\n  master_key: {LITELLM_KEY}\n"
    )
    return [str(binary), "--config", str(config), "--port", str(port), "--num_workers", "1"]


def gateway_command(home: Path, port: int, upstream: str, workers: int = 1) -> list[str]:
    return [*EXPORTGATE, "serve", "--home", str(home), "--port", str(port), "--upstream", upstream,
            "--trusted-proxy", "127.0.0.1/32", "--workers", str(workers)]  # fmt: skip


def ratios(round_: dict[str, dict[str, dict[str, float]]]) -> dict[str, float]:
    """The figures the targets name, from one round's runs."""
    def rps(peer: str, load: str) -> float:
        return round_[load][peer]["req_per_s"]

    def p(peer: str, load: str, which: str) -> float:
        return round_[load][peer][which]

    out = {}
    for load in (load for load in ("json", "stream") if load in round_):
        out[f"vs_bare_lean_{load}"] = rps("exportgate", load) / rps("bare-lean", load)
        out[f"p99_vs_bare_lean_{load}"] = p("exportgate", load, "p99_ms") / p("bare-lean", load, "p99_ms")
        out[f"cpu_vs_bare_lean_{load}"] = (p("exportgate", load, "cpu_us_per_request")
                                           / p("bare-lean", load, "cpu_us_per_request"))  # fmt: skip
        out[f"vs_bare_{load}"] = rps("exportgate", load) / rps("bare", load)
        if "litellm" in round_[load]:
            out[f"vs_litellm_{load}"] = rps("exportgate", load) / rps("litellm", load)
    if "single" in round_:
        out["added_ms_single_p50"] = p("exportgate", "single", "p50_ms") - p("bare-lean", "single", "p50_ms")
        out["added_ms_single_p50_vs_direct"] = p("exportgate", "single", "p50_ms") - p("direct", "single", "p50_ms")
    return out


def workers_phase(work: Path, upstream: str, json_script: Path) -> dict[str, Any]:
    """One worker against two, unpinned, in interleaved rounds: CPU per request (the cost a second worker
    adds) and the throughput each reaches here."""
    rows: dict[str, list[dict[str, float]]] = {"1": [], "2": []}
    gateways: dict[str, tuple[str, subprocess.Popen]] = {}
    try:
        for workers in ("1", "2"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            gateways[workers] = url, launch(gateway_command(work / "home", port, upstream, int(workers)), None,
                                            url + "/healthz", log=work / f"gateway-{workers}w.log")  # fmt: skip
            wrk(url + "/v1/chat/completions", json_script, 64, cpu=None)  # warm every worker
        for _ in range(ROUNDS):
            for workers, (url, process) in gateways.items():
                rows[workers].append(wrk(url + "/v1/chat/completions", json_script, 64, process.pid, cpu=None))
                print(f"  {workers} worker(s): {rows[workers][-1]['req_per_s']:>7,} req/s  cpu "
                      f"{rows[workers][-1]['cpu_us_per_request']:7.1f} us per request", flush=True)  # fmt: skip
    finally:
        for _, process in gateways.values():
            stop(process)
    pairs = list(zip(rows["1"], rows["2"], strict=True))
    return {
        "rounds": rows,
        "cpu_us_per_request": {w: spread([r["cpu_us_per_request"] for r in rs], 1) for w, rs in rows.items()},
        "req_per_s": {w: spread([r["req_per_s"] for r in rs], 0) for w, rs in rows.items()},
        "predicted_two_vs_one_on_own_cores": spread([2 * o["cpu_us_per_request"] / t["cpu_us_per_request"]
                                                     for o, t in pairs]),
        "measured_two_vs_one_here": spread([t["req_per_s"] / o["req_per_s"] for o, t in pairs]),
    }  # fmt: skip


def main() -> int:
    results: dict[str, Any] = {"rounds": []}
    work = Path(tempfile.mkdtemp(prefix="eg-bench-"))
    processes: dict[str, subprocess.Popen] = {}
    try:
        sim_port, bare_port, lean_port, gw_port, ll_port = (free_port() for _ in range(5))
        upstream = f"http://127.0.0.1:{sim_port}"
        processes["direct"] = launch([*EXPORTGATE, "sim", "serve", "--port", str(sim_port)], "1",
                                     upstream + "/v1/models")  # fmt: skip
        home = work / "home"
        key = subprocess.run([*EXPORTGATE, "accounts", "add", "ada", "--citizenship", "US", "--kyc", "verified",
                              "--home", str(home)], capture_output=True, text=True, check=True).stdout
        key = re.search(r"egk_\S+", key).group(0)  # type: ignore[union-attr]
        peers = {"direct": upstream}
        for name, port, client in (("bare", bare_port, "aiohttp"), ("bare-lean", lean_port, "lean")):
            peers[name] = f"http://127.0.0.1:{port}"
            processes[name] = launch([PY, str(HERE / "_bare_proxy.py"), str(port), upstream, client], "0",
                                     peers[name] + "/")  # fmt: skip
        peers["exportgate"] = f"http://127.0.0.1:{gw_port}"
        processes["exportgate"] = launch(gateway_command(home, gw_port, upstream), "0",
                                         peers["exportgate"] + "/healthz", log=work / "gateway.log")  # fmt: skip
        command = litellm(upstream, ll_port, work)
        if command is not None:
            try:
                peers["litellm"] = f"http://127.0.0.1:{ll_port}"
                processes["litellm"] = launch(command, "0", peers["litellm"] + "/health/liveliness",
                                              log=work / "litellm.log")  # fmt: skip
            except RuntimeError as exc:
                del peers["litellm"]
                print(f"  litellm: not measured: {exc}")
        auth = {"Authorization": f"Bearer {key}", "X-Forwarded-For": "3.3.3.3"}
        scripts = {
            "json": lua(work / "json.lua", BODY, auth),
            "stream": lua(work / "stream.lua", STREAM_BODY, auth),
            "litellm json": lua(work / "ll-json.lua", BODY, {"Authorization": f"Bearer {LITELLM_KEY}"}),
            "litellm stream": lua(work / "ll-stream.lua", STREAM_BODY, {"Authorization": f"Bearer {LITELLM_KEY}"}),
        }
        print(f"gateway on loopback, one proxy worker pinned to CPU 0, {DURATION} s per run, {ROUNDS} interleaved "
              "rounds; cpu = the peer's CPU microseconds per request (the upstream's, for direct)")  # fmt: skip
        for name, url in peers.items():  # warm-up: connections, caches, the JIT-less interpreter's first paths
            wrk(url + "/v1/chat/completions", scripts["litellm json" if name == "litellm" else "json"], 64)
        for number in range(1, ROUNDS + 1):
            round_: dict[str, dict[str, dict[str, float]]] = {}
            for load, connections in LOADS:
                kind = "json" if load == "single" else load
                round_[load] = {}
                for name, url in peers.items():
                    script = scripts[f"litellm {kind}" if name == "litellm" else kind]
                    figures = wrk(url + "/v1/chat/completions", script, connections, processes[name].pid)
                    round_[load][name] = figures
                    print(f"  round {number} {name:<11} {load:<7} {figures['req_per_s']:>7,} req/s  p50 "
                          f"{figures['p50_ms']:8.3f} ms  p99 {figures['p99_ms']:8.3f} ms  cpu "
                          f"{figures['cpu_us_per_request']:7.1f} us", flush=True)  # fmt: skip
            results["rounds"].append(round_)
        stop(processes.pop("exportgate"))
        if WORKERS_PHASE:
            print("one worker against two (nothing pinned; wrk and the upstream share both cores)")
            results["workers"] = workers_phase(work, upstream, scripts["json"])
    finally:
        for process in reversed(processes.values()):
            stop(process)
        shutil.rmtree(work, ignore_errors=True)
    per_round = [ratios(r) for r in results["rounds"]]
    summary = {name: spread([r[name] for r in per_round], 3) for name in per_round[0]}
    results["ratios"] = {"per_round": per_round, "summary": summary}
    if len(LOADS) < 3 or not WORKERS_PHASE:  # a partial run (GATEWAY_BENCH_LOADS, GATEWAY_BENCH_WORKERS=0)
        for name, figure in summary.items():
            print(f"  {name:<32} {shown_spread(figure)}")
        print("  a partial run: no verdict")
        write("gateway-partial", results, TARGETS)
        return 0
    w = results["workers"]
    print(f"  cpu per request, 1 worker {shown_spread(w['cpu_us_per_request']['1'])} us, 2 workers "
          f"{shown_spread(w['cpu_us_per_request']['2'])} us; req/s here 1 worker {shown_spread(w['req_per_s']['1'])},"
          f" 2 workers {shown_spread(w['req_per_s']['2'])}")  # fmt: skip
    print("ratios over the rounds, median (min-max):")
    for name, figure in summary.items():
        print(f"  {name:<32} {shown_spread(figure)}")
    median = {name: figure["median"] for name, figure in summary.items()}
    figures = {
        "vs_bare_lean_json": median["vs_bare_lean_json"], "vs_bare_lean_stream": median["vs_bare_lean_stream"],
        "p99_vs_bare_lean_json": median["p99_vs_bare_lean_json"],
        "p99_vs_bare_lean_stream": median["p99_vs_bare_lean_stream"],
        "added_ms_single_p50": median["added_ms_single_p50"],
        "two_workers_vs_one": w["predicted_two_vs_one_on_own_cores"]["median"],
        "cpu_us_per_request": w["cpu_us_per_request"]["1"]["median"],
    }  # fmt: skip
    if "vs_litellm_json" in median:
        figures["vs_litellm_json"] = round(median["vs_litellm_json"], 1)
        figures["vs_litellm_stream"] = round(median["vs_litellm_stream"], 1)
    ok = (min(figures["vs_bare_lean_json"], figures["vs_bare_lean_stream"]) >= TARGETS["vs_bare_lean"]
          and max(figures["p99_vs_bare_lean_json"], figures["p99_vs_bare_lean_stream"]) <= TARGETS["p99_vs_bare_lean"]
          and figures["added_ms_single_p50"] <= TARGETS["added_ms_single_p50"]
          and figures["two_workers_vs_one"] >= TARGETS["two_workers_vs_one"]
          and min(figures.get("vs_litellm_json", 0), figures.get("vs_litellm_stream", 0)) >= TARGETS["vs_litellm"])
    conclude("gateway", results, TARGETS, figures, ok,
             "on the medians: >= 0.80 of bare-lean (JSON, stream), p99 <= 1.5x bare-lean's, <= 0.3 ms added to a "
             "single request, >= 30x LiteLLM, two workers >= 1.7x one")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
