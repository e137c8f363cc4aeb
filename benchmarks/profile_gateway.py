"""Profile the gateway under load: where a request's CPU goes (docs/gateway.md, "Where the time goes").

The set-up of ``gateway.py`` (one worker pinned to CPU 0, the simulator and wrk on CPU 1, every check
and the strict audit on), with py-spy sampling the worker while wrk holds 64 connections. Only samples
of a thread holding the GIL are kept (``--gil``): on one core that is the Python CPU a request costs.
Writes ``benchmarks/results/gateway-profile-LOAD.svg`` (a flame graph) and ``.txt`` (the collapsed
stacks, for any flame graph tool) and prints the functions with the most samples, inclusive and self.
``python benchmarks/profile_gateway.py [json|stream] [seconds]``.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import RESULTS  # noqa: E402
from gateway import BODY, EXPORTGATE, STREAM_BODY, free_port, gateway_command, launch, lua, stop  # noqa: E402


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is needed: pip install py-spy (make bench installs it)")
    return found


def worker_of(pid: int) -> int:
    """granian's worker: the serving process's child (the process itself with one worker and no fork)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    return pid


def summary(collapsed: Path, top: int = 25) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r":\d+\)$", ")", re.sub(r"\(/\S*/(site-packages|src|python3\.\d+)/", "(", f))
                  for f in stack.split(";")]  # fmt: skip
        total += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
        own[frames[-1]] += int(count)
    lines = [f"{total} samples holding the GIL", "inclusive (exportgate's own functions):"]
    own_code = [(f, n) for f, n in inclusive.most_common() if "(exportgate/" in f and "exportgate/cli" not in f
                and not f.startswith("serve (")]  # fmt: skip
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own_code[:top]]
    lines += ["self:"] + [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    load = sys.argv[1] if len(sys.argv) > 1 else "json"
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    work = Path(tempfile.mkdtemp(prefix="eg-profile-"))
    processes = []
    try:
        sim_port, gw_port = free_port(), free_port()
        upstream = f"http://127.0.0.1:{sim_port}"
        processes.append(launch([*EXPORTGATE, "sim", "serve", "--port", str(sim_port)], "1", upstream + "/v1/models"))
        key = subprocess.run([*EXPORTGATE, "accounts", "add", "ada", "--citizenship", "US", "--kyc", "verified",
                              "--home", str(work / "home")], capture_output=True, text=True, check=True).stdout
        key = re.search(r"egk_\S+", key).group(0)  # type: ignore[union-attr]
        gateway = f"http://127.0.0.1:{gw_port}"
        server = launch(gateway_command(work / "home", gw_port, upstream), "0", gateway + "/healthz")
        processes.append(server)
        script = lua(work / "load.lua", STREAM_BODY if load == "stream" else BODY,
                     {"Authorization": f"Bearer {key}", "X-Forwarded-For": "3.3.3.3"})  # fmt: skip
        url = gateway + "/v1/chat/completions"
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c64", "-d3s", "-s", str(script), url],
                       check=True, capture_output=True)  # fmt: skip
        command = ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds + 3}s", "-s", str(script), url]
        wrk = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        RESULTS.mkdir(parents=True, exist_ok=True)
        worker = worker_of(server.pid)
        outputs = {}
        for kind, suffix in (("raw", "txt"), ("flamegraph", "svg")):  # two short samplings of the same load
            outputs[kind] = RESULTS / f"gateway-profile-{load}.{suffix}"
            subprocess.run([py_spy(), "record", "--pid", str(worker), "--gil", "--nonblocking", "--rate", "250",
                            "--duration", str(seconds // 2), "--format", kind, "--output", str(outputs[kind])],
                           check=True, capture_output=True)  # fmt: skip
        out, _ = wrk.communicate()
        print(f"profile of one gateway worker under 64 connections ({load}); wrk during it:")
        print("  " + next((line.strip() for line in out.splitlines() if "Requests/sec" in line), "?"))
        print(summary(outputs["raw"]))
        print(f"wrote {outputs['raw'].relative_to(HERE.parent)} and {outputs['flamegraph'].relative_to(HERE.parent)}")
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
