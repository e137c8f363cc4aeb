"""Benchmark: evasion monitoring (issue targets: precision >= 0.95 and recall >= 0.9 per detector on the
default population; 1M audit records scanned in <= 10 s).

1. Detection quality, twice over the same labelled synthetic populations of ``exportgate sim traffic``
   (10 accounts per population, 12 simulated hours; per detector, precision and recall at the account
   level, and time to detect: simulated minutes from an evader's first evidence record to the record that
   completed the pattern):
   a. scaled: ``exportgate serve`` (SQLite audit, trusted loopback proxy) receives the requests compressed
      7,200x; the monitor reads the gateway's audit record back stretched by the same factor;
   b. unscaled: each request decided with the library (``decide`` on the example directive, geo lookup of
      its address, ``entry_for``) and written by the audit writer at a real time (13 hours ago plus the
      request's simulated offset); the monitor scans that window at time scale 1.
2. Scan speed: 1,000,000 decision records (10,000 accounts of mixed behaviour, written by the audit writer
   to a SQLite store) read and run through all six detectors.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import conclude  # noqa: E402
from exportgate._types import RequestContext  # noqa: E402
from exportgate.audit import AuditEntry, AuditStore, AuditWriter, Signer, entry_for, open_store  # noqa: E402
from exportgate.geo import GeoLookup  # noqa: E402
from exportgate.identity import AccountStore  # noqa: E402
from exportgate.monitor import (  # noqa: E402
    AlertStore,
    Monitor,
    MonitorConfig,
    Plan,
    build_plan,
    read_events,
    scorecard,
    send_plan,
)
from exportgate.policy import decide, example_directive_path, load_directive  # noqa: E402
from gateway import free_port, launch, stop  # noqa: E402

TARGETS = {"precision": 0.95, "recall": 0.9, "scan_1m_s": 10.0}
SCALE = 7200.0
SEED, PER_POPULATION, HOURS = 11, 10, 12
NS = 1_000_000_000

Quality = tuple[dict[str, dict], dict[str, float], int]


def scaled(work: Path) -> Quality:
    """The populations through a real gateway at ``SCALE``, read back stretched by it."""
    home = work / "gateway"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = launch([sys.executable, "-m", "exportgate.cli", "serve", "--home", str(home), "--port", str(port),
                      "--trusted-proxy", "127.0.0.1/32"], "0", url + "/healthz", log=work / "gateway.log")  # fmt: skip
    try:
        accounts = AccountStore(home / "accounts.db")
        plan = build_plan(accounts, GeoLookup(), per_population=PER_POPULATION, hours=HOURS, time_scale=SCALE,
                          seed=SEED)  # fmt: skip
        asyncio.run(send_plan(plan, url))
        time.sleep(0.5)  # the last outcomes batch
    finally:
        stop(gateway)
    return judge(work / "scaled-alerts.db", open_store(None, home), accounts, plan, None, SCALE)


def unscaled(work: Path) -> Quality:
    """The same populations' requests decided with the library and recorded at real times, 13 hours ago on."""
    home = work / "library"
    accounts, geo = AccountStore(home / "accounts.db"), GeoLookup()
    plan = build_plan(accounts, geo, per_population=PER_POPULATION, hours=HOURS, time_scale=1.0, seed=SEED)
    directive = load_directive(example_directive_path())
    subjects = {name: accounts.subject_for_key(key) for name, key in plan.keys.items()}
    start_ns = time.time_ns() - (HOURS + 1) * 3600 * NS
    store = open_store(None, home)
    writer = AuditWriter(store, Signer.load_or_create(home / "audit"), home=home).start()
    for i, step in enumerate(plan.steps):
        subject, context = subjects[step.account], RequestContext.from_geo(step.ip, geo.lookup(step.ip))
        decision = decide(subject, context, step.model, directive)
        writer.append(entry_for(decision, subject, context, request_id=f"req-{i}", time_ns=start_ns + int(step.t * NS),
                                directive_sha256=directive.sha256,
                                http_status=200 if decision.decision == "allow" else 451))  # fmt: skip
    writer.close()
    return judge(work / "unscaled-alerts.db", store, accounts, plan, start_ns - NS, 1.0)


def judge(alerts_db: Path, store: AuditStore, accounts: AccountStore, plan: Plan, since_ns: int | None,
          scale: float) -> Quality:  # fmt: skip
    """The scorecard of a scan over the store, and the median time to detect per detector."""
    monitor = Monitor(MonitorConfig(), AlertStore(alerts_db), accounts)
    card = scorecard(monitor.scan_store(store, since_ns, time_scale=scale), plan.labels())
    delays: dict[str, list[float]] = {}
    first: set[tuple[str, str]] = set()
    fresh = Monitor(MonitorConfig(), AlertStore(":memory:"), accounts)  # first finding per account
    for event in read_events(store, since_ns, time_scale=scale):
        for detector in fresh.detectors:
            for finding in detector.feed(event.account or "", [event]) if event.account else ():
                if (finding.detector, finding.account) not in first:
                    first.add((finding.detector, finding.account))
                    delays.setdefault(finding.detector, []).append((finding.end_ns - finding.start_ns) / 60e9)
    store.close()
    accounts.close()
    return card, {d: round(statistics.median(v), 1) for d, v in delays.items()}, len(plan.steps)


def million(work: Path, count: int = 1_000_000) -> tuple[float, int, int]:
    home = work / "big"
    write_records(home, count)
    store = open_store(None, home)
    monitor = Monitor(MonitorConfig(), AlertStore(work / "big-alerts.db"))
    started = time.perf_counter()
    alerts = monitor.scan_store(store, None)
    seconds = time.perf_counter() - started
    store.close()
    return seconds, monitor.events, len(alerts)


def write_records(home: Path, count: int) -> None:
    """``count`` decision records of 10,000 accounts, each mostly at home, now and then elsewhere."""
    store = open_store(None, home, durable=False)
    writer = AuditWriter(store, Signer.load_or_create(home / "audit"), mode="async", home=home,
                         checkpoint_every=100_000, async_queue=200_000).start()  # fmt: skip
    rng = random.Random(5)  # synthetic records
    homes = ["US"] * 12 + ["DE", "GB", "CA", "FR", "JP", "CN", "IN", "BR"]
    people = [(rng.choice(homes), f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.9")
              for _ in range(10_000)]  # fmt: skip
    start_ns = time.time_ns() - count * 50_000_000
    for i in range(count):
        person = rng.randrange(10_000)
        country, ip = people[person]
        if rng.random() < 0.005:  # now and then somewhere else, or through a VPN
            country, ip = rng.choice(homes), f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.9"
        allowed = country == "US"
        writer.append(AuditEntry(
            request_id=f"r{i}", decision="allow" if allowed else "deny", time_ns=start_ns + i * 50_000_000,
            account=f"user-{person}", key_id=f"k{person}", client_ip=ip, country=country,
            subject={"citizenships": [people[person][0]], "residencies": [], "kyc": "verified"},
            anonymizers=("vpn",) if rng.random() < 0.001 else (), requested_model="fable-5", model="fable-5",
            tier="domestic", directive_id="d", directive_version="1",
            reasons=() if allowed else ({"code": "location_not_allowed", "rule": "allow_location", "value": country},),
            http_status=200 if allowed else 451,
        ))  # fmt: skip
    writer.close()
    store.close()


def show(title: str, quality: Quality) -> None:
    card, delays, requests = quality
    print(f"detection, {title} ({requests:,} requests, {PER_POPULATION * 8} accounts):")
    for detector, c in card.items():
        print(f"  {detector:<22} precision {c['precision']:.3f}  recall {c['recall']:.3f}  "
              f"(true+ {c['true_positives']}, false+ {c['false_positives']}, missed {c['missed']}); "
              f"detected {delays.get(detector, '-')} min after the first evidence (simulated, median)")  # fmt: skip
        if c["false_positive_accounts"] or c["missed_accounts"]:
            print(f"    false positives {', '.join(c['false_positive_accounts']) or '-'}; "
                  f"missed {', '.join(c['missed_accounts']) or '-'}")  # fmt: skip


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="eg-monitor-bench-"))
    try:
        runs = {"scaled": scaled(work), "unscaled": unscaled(work)}
        show(f"scaled: through a real gateway compressed {SCALE:,.0f}x, read back stretched", runs["scaled"])
        show("unscaled: decided with the library, recorded at real times over the last 13 hours", runs["unscaled"])
        seconds, events, alerts = million(work)
        print(f"scan: {events:,} decision records through 6 detectors in {seconds:.2f} s "
              f"({events / seconds:,.0f} records/s; {alerts:,} alerts)")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cards = [c for card, _, _ in runs.values() for c in card.values()]
    worst_p, worst_r = min(c["precision"] for c in cards), min(c["recall"] for c in cards)
    figures = {"min_precision": worst_p, "min_recall": worst_r, "scan_1m_s": round(seconds, 2),
               "records_per_s": round(events / seconds)}  # fmt: skip
    ok = worst_p >= TARGETS["precision"] and worst_r >= TARGETS["recall"] and seconds <= TARGETS["scan_1m_s"]
    results = {"scorecard": runs["scaled"][0], "time_to_detect_min": runs["scaled"][1],
               "scorecard_unscaled": runs["unscaled"][0], "time_to_detect_min_unscaled": runs["unscaled"][1],
               "requests": runs["scaled"][2], "scan": {"records": events}}  # fmt: skip
    conclude("monitor", results, TARGETS, figures, ok,
             "precision >= 0.95, recall >= 0.9 per detector, scaled and unscaled; 1M records in <= 10 s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
