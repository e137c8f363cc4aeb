"""Benchmark: audit records written per second, and verify speed (docs/performance.md).

Targets on this machine: >= 20,000 records/s durable (strict) on SQLite;
verify >= 200,000 records/s. PostgreSQL figures are reported too (a
throwaway cluster on loopback, fsync on, as in tests/pgserver.py).

Producers are 64 asyncio tasks on one event loop, as a gateway worker's
concurrent requests would be; each record is a realistic decision entry.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from _harness import conclude  # noqa: E402
from exportgate.audit import (  # noqa: E402
    AuditEntry,
    AuditWriter,
    Signer,
    open_store,
    trusted_keys,
    verify_store,
)

TARGETS = {"sqlite_strict_records_per_s": 20_000, "verify_records_per_s": 200_000}
RECORDS = 100_000
PRODUCERS = 64


def sample(i: int) -> AuditEntry:
    denied = i % 4 == 0
    return AuditEntry(
        request_id=f"req-{i:08d}", decision="deny" if denied else "allow", time_ns=time.time_ns(),
        account=f"account-{i % 500}", key_id="3f9c0a1b2c3d", model="fable-5", requested_model="fable-5",
        tier="domestic", subject={"subject_id": f"account:account-{i % 500}", "citizenships": ["US"],
                                  "residencies": [], "us_person": True, "kyc": "verified", "screening": "clear",
                                  "controlled_by": "US", "suspended": False},
        client_ip="3.3.3.3", country="US", anonymizers=(), directive_id="frontier-ai-access",
        directive_version="2026-06-14.1", directive_sha256="5" * 64,
        reasons=({"code": "location_not_allowed", "rule": "allow_location", "value": "CN"},) if denied else (),
        http_status=451 if denied else 200, upstream_status=None if denied else 200, latency_ms=1.234,
        tokens=None if denied else {"prompt_tokens": 42, "completion_tokens": 128},
    )


def throughput(url: str, home: Path, mode: str) -> float:
    store = open_store(url, home, durable=mode == "strict")
    writer = AuditWriter(store, Signer.load_or_create(home / "audit"), mode=mode, home=home).start()  # type: ignore[arg-type]
    entries = [sample(i) for i in range(RECORDS)]

    async def produce() -> None:
        async def task(offset: int) -> None:
            for i in range(offset, RECORDS, PRODUCERS):
                await writer.append_async(entries[i])

        await asyncio.gather(*(task(n) for n in range(PRODUCERS)))

    start = time.perf_counter()
    asyncio.run(produce())
    writer.flush()
    seconds = time.perf_counter() - start
    writer.close()
    store.close()
    return RECORDS / seconds


def verify_rate(url: str, home: Path) -> tuple[float, int]:
    store = open_store(url, home)
    report = verify_store(store, trusted_keys(home))
    store.close()
    assert report.ok, report.problems[:3]
    return report.rows / report.seconds, report.rows


def run_store(name: str, url: str, home: Path, results: dict) -> None:
    for mode in ("strict", "async"):
        rate = throughput(url, home, mode)
        results[f"{name} {mode}: records/s"] = round(rate)
        print(f"  {name:<10} {mode:<6} {rate:>10,.0f} records/s  ({PRODUCERS} concurrent producers)")
    rate, rows = verify_rate(url, home)
    results[f"{name} verify: records/s"] = round(rate)
    print(f"  {name:<10} verify {rate:>10,.0f} records/s  ({rows:,} rows, chains and signatures)")


def main() -> int:
    results: dict[str, object] = {}
    print("audit trail (records per second)")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        run_store("sqlite", f"sqlite:///{home / 'audit.db'}", home, results)
        try:
            from tests.pgserver import PgServer, pg_bindir
        except ImportError:
            pg_bindir = None  # type: ignore[assignment]
        bindir = pg_bindir() if pg_bindir else None
        if bindir is None:
            print("  postgres   (not measured: PostgreSQL server binaries are not installed)")
        else:
            server = PgServer(bindir)
            try:
                run_store("postgres", server.create_database(), home, results)
            finally:
                server.close()
    strict, verify = results["sqlite strict: records/s"], results["sqlite verify: records/s"]
    ok = strict >= TARGETS["sqlite_strict_records_per_s"] and verify >= TARGETS["verify_records_per_s"]  # type: ignore[operator]
    conclude("audit", results, TARGETS, {"sqlite_strict_records_per_s": strict, "sqlite_verify_records_per_s": verify},
             ok, ">= 20,000 durable records/s on SQLite and verify >= 200,000 records/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
