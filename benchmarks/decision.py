"""Benchmark: one policy decision in-process (docs/performance.md: median <= 2 us, p99 <= 10 us).

Peer in the same run: the same domestic-tier rule as a Cedar policy through
cedarpy (pre-parsed policy set and entities), when cedarpy is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import conclude, cycling, per_call, show
from exportgate import KycLevel, RequestContext, Subject, decide, load_directive

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"median_us": 2.0, "p99_us": 10.0}


def scenarios() -> dict[str, tuple]:
    directive = load_directive(ROOT / "examples" / "directive.yaml")
    us = Subject("us", citizenships=("US",), kyc=KycLevel.VERIFIED)
    cn = Subject("cn", citizenships=("CN",), kyc=KycLevel.BASIC)
    home = RequestContext(ip="3.3.3.3", country="US", anonymizers=frozenset())
    china = RequestContext(ip="114.114.114.114", country="CN", anonymizers=frozenset())
    tor = RequestContext(ip="185.220.101.1", country="DE", anonymizers=frozenset({"tor"}))
    return {
        "allow, canonical name": (us, home, "fable-5", directive),
        "allow, alias spelling (FABLE5)": (us, home, "FABLE5", directive),
        "deny, 3 reasons (CN citizen in CN)": (cn, china, "fable-5", directive),
        "deny, 2 reasons (US citizen on Tor)": (us, tor, "fable-5", directive),
        "allow, open tier": (cn, china, "sonnet-4", directive),
        "deny, unknown model": (us, home, "no-such-model", directive),
    }


def mixed(cases: dict[str, tuple]) -> list[tuple]:
    return [cases[name] for name in cases for _ in range(3 if name.startswith("allow") else 1)]


def cedar_peer() -> dict[str, float] | None:
    try:
        import cedarpy
    except ImportError:
        return None
    policies = cedarpy.PolicySet.from_str(
        'permit(principal, action == Action::"invoke", resource == Model::"fable-5") when {'
        ' principal.us_person && context.country == "US" && !context.anonymizer && principal.kyc >= 2 };'
    )
    entities = cedarpy.Entities.from_json_str(
        '[{"uid": {"type": "User", "id": "us"}, "attrs": {"us_person": true, "kyc": 2}, "parents": []},'
        ' {"uid": {"type": "Model", "id": "fable-5"}, "attrs": {}, "parents": []}]'
    )
    request = {
        "principal": 'User::"us"',
        "action": 'Action::"invoke"',
        "resource": 'Model::"fable-5"',
        "context": {"country": "US", "anonymizer": False},
    }
    assert cedarpy.is_authorized(request, policies, entities).allowed
    return per_call(lambda: cedarpy.is_authorized(request, policies, entities), calls=5_000, warmup=200)


def main() -> int:
    cases = scenarios()
    results: dict[str, dict[str, float]] = {}
    print("policy decision, in-process (microseconds per call)")
    for name, args in cases.items():
        results[name] = per_call(lambda args=args: decide(*args))
        show(name, results[name])
    results["mixed workload (allow 3:1)"] = per_call(cycling(lambda a: decide(*a), mixed(cases)))
    show("mixed workload (allow 3:1)", results["mixed workload (allow 3:1)"])
    peer = cedar_peer()
    if peer is not None:
        results["peer: cedarpy, same domestic rule"] = peer
        show("peer: cedarpy, same domestic rule", peer)
        ratio = peer["median_us"] / max(results["allow, canonical name"]["median_us"], 1e-3)
        results["ratio"] = {"cedar_median_over_exportgate_median": round(ratio, 1)}
        print(f"  exportgate is {ratio:.0f}x faster than cedarpy at the median")
    worst = max(r["median_us"] for k, r in results.items() if not k.startswith(("peer", "ratio")))
    worst_p99 = max(r["p99_us"] for k, r in results.items() if not k.startswith(("peer", "ratio")))
    ok = worst <= TARGETS["median_us"] and worst_p99 <= TARGETS["p99_us"]
    conclude(
        "decision",
        results,
        TARGETS,
        {"worst_median_us": worst, "worst_p99_us": worst_p99},
        ok,
        "median <= 2 us and p99 <= 10 us in every scenario",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
