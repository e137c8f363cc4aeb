"""Audit records for monitor tests, written by the real audit writer into a home's ``audit.db``."""

from __future__ import annotations

from pathlib import Path

from exportgate.audit import AuditEntry
from tests.audit.conftest import entry, write_records


def allowed(start_ns: int, account: str, count: int, step_s: float, **where: object) -> list[AuditEntry]:
    """``count`` allowed requests of one account and key, ``step_s`` apart; ``where`` sets the country,
    address, ... (the index ``i`` in a callable's place)."""
    return [entry(i, account=account, key_id=f"k-{account}", decision="allow", reasons=(), http_status=200,
                  time_ns=start_ns + int(i * step_s * 1e9), **{k: v(i) if callable(v) else v for k, v in where.items()})
            for i in range(count)]  # fmt: skip


def shared_key(start_ns: int, account: str = "ada", count: int = 6) -> list[AuditEntry]:
    """One API key used from three networks in turn, a second apart: key sharing."""
    return allowed(start_ns, account, count, 1.0, client_ip=lambda i: f"3.3.{i % 3}.7")


def abroad(start_ns: int, account: str, count: int = 12) -> list[AuditEntry]:
    """A US citizen's requests from Germany, a second apart."""
    return allowed(start_ns, account, count, 1.0, country="DE", client_ip="5.5.5.9")


def record(home: Path, entries: list[AuditEntry]) -> str:
    """Append the entries to ``HOME/audit.db``; returns the store's URL."""
    url = f"sqlite:///{home / 'audit.db'}"
    writer = write_records(url, home, 0, close=False)
    for item in entries:
        writer.append(item)
    writer.close()
    writer.store.close()
    return url
