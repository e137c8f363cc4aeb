"""Benchmark: gateway throughput and added latency on loopback (docs/performance.md).

Peers in the same run, all in front of the same upstream (``exportgate sim serve``):

- direct: wrk straight to the upstream;
- bare: a bare aiohttp pass-through proxy on granian (``_bare_proxy.py``), the
  usual ceiling for a Python proxy, and the peer the targets name;
- bare-lean: the same pass-through with exportgate's own upstream client
  (``exportgate._http``), so that exportgate's distance to it is the cost
  of the checks and the audit alone;
- exportgate: ``exportgate serve`` with every check (API key, trusted-proxy
  client IP, geo, directive) and the strict audit on (SQLite, synchronous=FULL);
- litellm: LiteLLM proxy, installed into ``benchmarks/.litellm-venv`` if absent.

Each proxy is one worker process pinned to CPU 0; wrk and the upstream share
CPU 1. Loads: 64 connections for JSON and for streaming, and one request at a
time (p50/p99 from wrk --latency). Targets: >= 80% of the bare proxy's
throughput, >= 30x LiteLLM's, <= 1.5 ms added to a single request.
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

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import conclude, peer_venv  # noqa: E402

PY = sys.executable
EXPORTGATE = [PY, "-m", "exportgate.cli"]
DURATION = int(os.environ.get("GATEWAY_BENCH_SECONDS", "8"))
TARGETS = {"vs_bare": 0.8, "vs_litellm": 30, "added_ms_single": 1.5}
#: LiteLLM refuses to start without a master key (it would accept every request); a fixed benchmark key.
LITELLM_KEY = "sk-" + "0123456789abcdef" * 4
BODY = '{"model":"fable-5","messages":[{"role":"user","content":"hello there, how are you?"}]}'
STREAM_BODY = BODY[:-1] + ',"stream":true}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(cmd: list[str], cpu: str, url: str, env: dict[str, str] | None = None, log: Path | None = None):
    out = log.open("wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(["taskset", "-c", cpu, *cmd], stdout=out, stderr=out,
                               env={**os.environ, **(env or {})}, start_new_session=True)
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


def wrk(url: str, script: Path, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{DURATION}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed responses")

    def pct(p: str) -> float:
        match = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(match.group(1)), match.group(2)  # type: ignore[union-attr]
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 3)

    return {"req_per_s": round(rps), "p50_ms": pct("50"), "p99_ms": pct("99")}


def litellm(upstream: str, port: int, work: Path) -> list[str] | None:
    """The LiteLLM proxy command, installing it into its own venv once; None when it cannot be installed."""
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


def main() -> int:
    results: dict[str, object] = {}
    work = Path(tempfile.mkdtemp(prefix="eg-bench-"))
    processes = []
    try:
        sim_port, bare_port, gw_port, ll_port = free_port(), free_port(), free_port(), free_port()
        upstream = f"http://127.0.0.1:{sim_port}"
        processes.append(launch([*EXPORTGATE, "sim", "serve", "--port", str(sim_port)], "1", upstream + "/v1/models"))
        home = work / "home"
        key = subprocess.run([*EXPORTGATE, "accounts", "add", "ada", "--citizenship", "US", "--kyc", "verified",
                              "--home", str(home)], capture_output=True, text=True, check=True).stdout
        key = re.search(r"egk_\S+", key).group(0)  # type: ignore[union-attr]
        bare = f"http://127.0.0.1:{bare_port}"
        processes.append(launch([PY, str(HERE / "_bare_proxy.py"), str(bare_port), upstream, "aiohttp"], "0",
                                bare + "/"))
        lean_port = free_port()
        lean = f"http://127.0.0.1:{lean_port}"
        processes.append(launch([PY, str(HERE / "_bare_proxy.py"), str(lean_port), upstream, "lean"], "0",
                                lean + "/"))
        gateway = f"http://127.0.0.1:{gw_port}"
        processes.append(launch(
            [*EXPORTGATE, "serve", "--home", str(home), "--port", str(gw_port), "--upstream", upstream,
             "--trusted-proxy", "127.0.0.1/32"], "0", gateway + "/healthz", log=work / "gateway.log"))
        peers = {"direct": upstream, "bare": bare, "bare-lean": lean, "exportgate": gateway}
        command = litellm(upstream, ll_port, work)
        if command is not None:
            try:
                processes.append(launch(command, "0", f"http://127.0.0.1:{ll_port}/health/liveliness",
                                        log=work / "litellm.log"))
                peers["litellm"] = f"http://127.0.0.1:{ll_port}"
            except RuntimeError as exc:
                print(f"  litellm: not measured: {exc}")
        auth = {"Authorization": f"Bearer {key}", "X-Forwarded-For": "3.3.3.3"}
        scripts = {
            "json": lua(work / "json.lua", BODY, auth),
            "stream": lua(work / "stream.lua", STREAM_BODY, auth),
            "litellm json": lua(work / "ll-json.lua", BODY, {"Authorization": f"Bearer {LITELLM_KEY}"}),
            "litellm stream": lua(work / "ll-stream.lua", STREAM_BODY, {"Authorization": f"Bearer {LITELLM_KEY}"}),
        }
        print(f"gateway on loopback, one proxy worker pinned to CPU 0, {DURATION} s per run")
        for load, connections in (("json", 64), ("stream", 64), ("single", 1)):
            kind = "json" if load == "single" else load
            for name, url in peers.items():
                script = scripts[f"litellm {kind}" if name == "litellm" else kind]
                figures = wrk(url + "/v1/chat/completions", script, connections)
                results[f"{name} {load}"] = figures
                print(f"  {name:<11} {load:<7} {figures['req_per_s']:>7,} req/s  p50 {figures['p50_ms']:.3f} ms"
                      f"  p99 {figures['p99_ms']:.3f} ms", flush=True)
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(work, ignore_errors=True)
    eg, bare_r = results["exportgate json"], results["bare json"]
    figures = {
        "vs_bare_json": round(eg["req_per_s"] / bare_r["req_per_s"], 2),  # type: ignore[index]
        "vs_bare_stream": round(results["exportgate stream"]["req_per_s"]  # type: ignore[index]
                                / results["bare stream"]["req_per_s"], 2),  # type: ignore[index]
        "vs_bare_lean_json": round(eg["req_per_s"] / results["bare-lean json"]["req_per_s"], 2),  # type: ignore[index]
        "vs_bare_lean_stream": round(results["exportgate stream"]["req_per_s"]  # type: ignore[index]
                                     / results["bare-lean stream"]["req_per_s"], 2),  # type: ignore[index]
        "added_ms_single_p50": round(results["exportgate single"]["p50_ms"]  # type: ignore[index]
                                     - results["direct single"]["p50_ms"], 3),  # type: ignore[index]
    }
    if "litellm json" in results:
        figures["vs_litellm_json"] = round(eg["req_per_s"] / results["litellm json"]["req_per_s"], 1)  # type: ignore[index]
        figures["vs_litellm_stream"] = round(results["exportgate stream"]["req_per_s"]  # type: ignore[index]
                                             / results["litellm stream"]["req_per_s"], 1)  # type: ignore[index]
    ok = (min(figures["vs_bare_json"], figures["vs_bare_stream"]) >= TARGETS["vs_bare"]
          and figures["added_ms_single_p50"] <= TARGETS["added_ms_single"]
          and min(figures.get("vs_litellm_json", 0), figures.get("vs_litellm_stream", 0)) >= TARGETS["vs_litellm"])
    conclude("gateway", results, TARGETS, figures, ok,
             ">= 80% of the bare proxy, >= 30x LiteLLM, <= 1.5 ms added to a single request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
