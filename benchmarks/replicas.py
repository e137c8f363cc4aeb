"""Replicas on one PostgreSQL: how fast a change reaches the others, and what a second replica adds.

Setup: a throwaway PostgreSQL cluster on loopback (tests/pgserver.py, fsync on), `exportgate db upgrade`,
three `exportgate serve` processes (one worker each, separate homes and ports, one --database-url, strict
audit into the same database), the admin API on replica A.

1. Propagation: 100 changes made through A's admin API, alternately suspending and restoring one account;
   after each answer (the change is committed), B and C are asked with the account's key, each on its own
   keep-alive connection (made once, before the changes) and thread, until they answer the new way (451
   account_suspended, or 200). The latency is from the admin API's answer to the first answer of the new
   kind on each replica; a request costs about a millisecond, so that is the resolution (it includes the
   start of the watching threads). Target: p99 <= 1 s; aim <= 100 ms.
2. Throughput, one vs two replicas: wrk (64 connections, one thread) against B alone, then against B and C
   at once (two wrk processes; the figure is their sum), in interleaved rounds (1, 2, 1, 2). On this 2-core
   machine both replicas, PostgreSQL and wrk share the same two cores, so the ratio says what contention
   costs here, not what a second host adds (that is in docs/deployment.md).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from tests.pgserver import PgServer, pg_bindir  # noqa: E402

from _harness import conclude, shown_spread, spread  # noqa: E402
from gateway import free_port, lua, stop, wrk  # noqa: E402

EXPORTGATE = [sys.executable, "-m", "exportgate.cli"]
CHANGES = int(os.environ.get("REPLICAS_BENCH_CHANGES", "100"))
ROUNDS = int(os.environ.get("REPLICAS_BENCH_ROUNDS", "3"))
TARGETS = {"propagation_p99_ms": 1000, "propagation_aim_p99_ms": 100}
BODY = '{"model":"fable-5","messages":[{"role":"user","content":"hello there, how are you?"}]}'


def cli(*args: str) -> str:
    done = subprocess.run([*EXPORTGATE, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"exportgate {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def replica(work: Path, name: str, url: str, admin: bool) -> tuple[str, str | None, subprocess.Popen[bytes]]:
    port = free_port()
    admin_port = free_port() if admin else None
    command = [*EXPORTGATE, "serve", "--home", str(work / name), "--port", str(port), "--database-url", url,
               "--trusted-proxy", "127.0.0.1/32"]  # fmt: skip
    if admin_port:
        command += ["--admin-port", str(admin_port)]
    log = (work / f"{name}.log").open("wb")
    env = {**os.environ, "EXPORTGATE_ACCESS_LOG": "false"}
    process = subprocess.Popen(command, stdout=log, stderr=log, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200 and (
                admin_port is None or httpx.get(f"http://127.0.0.1:{admin_port}/admin/v1/openapi.json").is_success
            ):
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"replica {name} did not come up; see {work / name}.log")
        time.sleep(0.2)
    return base, (f"http://127.0.0.1:{admin_port}/admin/v1" if admin_port else None), process


def watch(client: httpx.Client, want: int, seen: dict[str, float], name: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if client.post("/v1/chat/completions", content=BODY).status_code == want:
            seen[name] = time.perf_counter()
            return


def propagation(admin: str, token: str, key: str, others: dict[str, str]) -> dict[str, list[float]]:
    """The watchers' connections are made once, before the changes: a new client costs tens of ms (its TLS
    context), which would be measured as propagation."""
    latencies: dict[str, list[float]] = {name: [] for name in others}
    headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": "3.3.3.3", "content-type": "application/json"}
    clients = {name: httpx.Client(base_url=url, headers=headers, timeout=10) for name, url in others.items()}
    for client in clients.values():
        client.post("/v1/chat/completions", content=BODY)  # connected and warm
    with httpx.Client(base_url=admin, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        for i in range(CHANGES):
            action, want = ("suspend", 451) if i % 2 == 0 else ("restore", 200)
            answer = client.post(f"/accounts/ada/{action}", json={"note": f"benchmark change {i}"})
            committed = time.perf_counter()
            answer.raise_for_status()
            seen: dict[str, float] = {}
            threads = [threading.Thread(target=watch, args=(clients[name], want, seen, name)) for name in others]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for name in others:
                if name not in seen:
                    raise RuntimeError(f"change {i} ({action}) never reached replica {name}")
                latencies[name].append((seen[name] - committed) * 1000)
    for watcher in clients.values():
        watcher.close()
    return latencies


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))], 2)


def throughput(work: Path, key: str, bases: list[str]) -> float:
    script = lua(work / "call.lua", BODY, {"Authorization": f"Bearer {key}", "X-Forwarded-For": "3.3.3.3"})
    results: list[float] = []

    def run(base: str) -> None:
        results.append(wrk(base + "/v1/chat/completions", script, 64)["req_per_s"])

    threads = [threading.Thread(target=run, args=(base,)) for base in bases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(results)


def main() -> int:
    bindir = pg_bindir()
    if bindir is None:
        print("replicas: PostgreSQL server binaries are not installed (apt-get install postgresql)")
        return 1
    server = PgServer(bindir)
    processes: list[subprocess.Popen[bytes]] = []
    results: dict[str, object] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            url = server.create_database()
            cli("db", "upgrade", "--database-url", url)
            _, admin, pa = replica(work, "a", url, True)
            b, _, pb = replica(work, "b", url, False)
            c, _, pc = replica(work, "c", url, False)
            processes += [pa, pb, pc]
            token = cli("admin", "tokens", "add", "bench", "--role", "officer", "--database-url", url, "--home",
                        str(work / "a"))  # fmt: skip
            assert admin is not None
            made = httpx.post(admin + "/accounts", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                              json={"name": "ada", "citizenships": ["US"], "kyc": "verified"})  # fmt: skip
            made.raise_for_status()
            key = made.json()["key"]["secret"]
            print(f"propagation of {CHANGES} changes from A's admin API to B and C (ms after the commit)")
            latencies = propagation(admin, token, key, {"B": b, "C": c})
            every = [v for values in latencies.values() for v in values]
            for name, values in latencies.items():
                print(f"  {name}: p50 {pct(values, 50):7.2f}  p99 {pct(values, 99):7.2f}  max {max(values):7.2f}")
            print(f"  all: p50 {pct(every, 50):7.2f}  p99 {pct(every, 99):7.2f}  mean {statistics.fmean(every):.2f}")
            per_replica = {n: {"p50": pct(v, 50), "p99": pct(v, 99)} for n, v in latencies.items()}
            results["propagation_ms"] = {"p50": pct(every, 50), "p99": pct(every, 99), "max": round(max(every), 2),
                                         **per_replica}  # fmt: skip
            print("throughput, strict audit on PostgreSQL, wrk -c64 (req/s)")
            rounds: list[dict[str, float]] = []
            for round_ in range(ROUNDS):
                one = throughput(work, key, [b])
                two = throughput(work, key, [b, c])
                rounds.append({"one": one, "two": two, "ratio": round(two / one, 2)})
                print(f"  round {round_ + 1}: one replica {one:8.0f}   two replicas {two:8.0f}"
                      f"   ratio {two / one:.2f}")
            results["throughput"] = rounds
    finally:
        for process in processes:
            stop(process)
        server.close()
    p99 = results["propagation_ms"]["p99"]  # type: ignore[index]
    ratio = spread([r["ratio"] for r in results["throughput"]])  # type: ignore[union-attr]
    print(f"  two replicas vs one, median over {ROUNDS} interleaved rounds (min-max): {shown_spread(ratio)}")
    conclude("replicas", results, TARGETS, {"propagation_p99_ms": p99, "two_vs_one": ratio["median"],
                                            "two_vs_one_min": ratio["min"], "two_vs_one_max": ratio["max"]},
             p99 <= TARGETS["propagation_p99_ms"], "propagation p99 <= 1000 ms (aim <= 100 ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
