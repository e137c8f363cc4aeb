"""`make bench`: run every benchmark, print the figures, write benchmarks/results/*.json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["decision.py", "geo.py", "identity.py", "audit.py", "gateway.py", "profile_gateway.py", "replicas.py",
              "eval.py", "classify.py", "monitor.py", "screening.py"]


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"\n=== benchmarks/{name}", flush=True)
        if subprocess.run([sys.executable, str(HERE / name)], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
