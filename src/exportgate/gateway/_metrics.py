"""Prometheus metrics, kept as plain counters (a dict increment per request).

Each worker process counts its own and writes a snapshot to
``HOME/metrics/<pid>.json`` every few seconds; ``/metrics`` answers with the
sum over live workers, so a scrape sees the whole gateway whichever worker
takes it (the snapshot lag is at most the interval).
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from exportgate._files import private_dir, private_file

__all__ = ["Metrics"]

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_HISTOGRAMS = {
    "exportgate_gateway_overhead_seconds": "Time the gateway spent before forwarding: auth, geo, decision, audit.",
    "exportgate_request_duration_seconds": "Whole request time, including the upstream.",
}
_COUNTERS = {
    "exportgate_decisions_total": (
        "Decisions by result, reason, model and tier.",
        ("result", "reason", "model", "tier"),
    ),
    "exportgate_responses_total": ("Answers by route and HTTP status.", ("route", "status")),
    "exportgate_upstream_errors_total": ("Upstream failures by upstream and kind.", ("upstream", "kind")),
    "exportgate_directive_reloads_total": ("Directive reloads by outcome.", ("outcome",)),
}
_GAUGES = {
    "exportgate_audit_up": ("1 while this worker's audit writer can write, else 0.", ("writer",)),
    "exportgate_audit_unwritten_records": (
        "Records this worker could not commit and saved to HOME/audit/unwritten-<writer>.jsonl.",
        ("writer",),
    ),
    "exportgate_state_staleness_seconds": (
        "Seconds since this worker last confirmed its shared state is current (0 on SQLite).",
        ("backend",),
    ),
    "exportgate_state_stale": ("1 while past state_max_staleness: requests answer 503.", ("backend",)),
    "exportgate_directive_published_version": ("The published directive version in force (0: a file).", ()),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.counters: dict[str, defaultdict[tuple[str, ...], float]] = {
            n: defaultdict(float) for n in (*_COUNTERS, *_GAUGES)
        }
        self.histograms: dict[str, defaultdict[tuple[str, ...], list[float]]] = {
            n: defaultdict(lambda: [0.0] * (len(BUCKETS) + 2)) for n in _HISTOGRAMS
        }

    def count(self, name: str, labels: tuple[str, ...], value: float = 1.0) -> None:
        self.counters[name][labels] += value

    def gauge(self, name: str, labels: tuple[str, ...], value: float) -> None:
        self.counters[name][labels] = value

    def observe(self, name: str, labels: tuple[str, ...], seconds: float) -> None:
        row = self.histograms[name][labels]  # [bucket counts..., +Inf count, sum]
        row[bisect.bisect_left(BUCKETS, seconds)] += 1
        row[-1] += seconds

    # -- several workers -----------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "counters": {n: [[list(k), v] for k, v in c.items()] for n, c in self.counters.items()},
            "histograms": {n: [[list(k), v] for k, v in h.items()] for n, h in self.histograms.items()},
        }

    def save(self) -> None:
        if self.directory is None:
            return
        with contextlib.suppress(OSError):
            private_dir(self.directory)
            tmp = self.directory / f".{os.getpid()}.tmp"
            with private_file(tmp) as handle:
                handle.write(json.dumps(self.snapshot()))
            os.replace(tmp, self.directory / f"{os.getpid()}.json")

    def _others(self) -> list[dict[str, Any]]:
        if self.directory is None or not self.directory.is_dir():
            return []
        out = []
        for path in self.directory.glob("*.json"):
            pid = int(path.stem) if path.stem.isdigit() else -1
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, 0)
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                with contextlib.suppress(OSError):
                    path.unlink()  # a worker that is gone
        return out

    # -- exposition ----------------------------------------------------------

    def render(self) -> bytes:
        counters = {n: defaultdict(float, c) for n, c in self.counters.items()}
        histograms = {n: {k: list(v) for k, v in h.items()} for n, h in self.histograms.items()}
        for other in self._others():
            for name, rows in other.get("counters", {}).items():
                for key, value in rows:
                    counters.setdefault(name, defaultdict(float))[tuple(key)] += value
            for name, rows in other.get("histograms", {}).items():
                for key, values in rows:
                    mine = histograms.setdefault(name, {}).setdefault(tuple(key), [0.0] * len(values))
                    for i, v in enumerate(values):
                        mine[i] += v
        lines: list[str] = []
        for name, (help_text, label_names), kind in [
            *((n, spec, "counter") for n, spec in _COUNTERS.items()),
            *((n, spec, "gauge") for n, spec in _GAUGES.items()),
        ]:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            for key, value in sorted(counters.get(name, {}).items()):
                labels = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(label_names, key, strict=True))
                lines.append(f"{name}{{{labels}}} {value:g}")
        for name, help_text in _HISTOGRAMS.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
            for key, row in sorted(histograms.get(name, {}).items()):
                route = f'route="{_escape(key[0])}"'
                cumulative = 0.0
                for bound, count in zip((*BUCKETS, float("inf")), row[:-1], strict=True):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    lines.append(f'{name}_bucket{{{route},le="{le}"}} {cumulative:g}')
                lines.append(f"{name}_sum{{{route}}} {row[-1]:.6f}")
                lines.append(f"{name}_count{{{route}}} {cumulative:g}")
        return ("\n".join(lines) + "\n").encode()
